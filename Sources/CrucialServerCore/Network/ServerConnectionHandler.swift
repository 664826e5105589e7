internal import CrucialCore
internal import CrucialTransport
internal import Logging
internal import NIOCore

#if canImport(Glibc)
internal import Glibc
#endif

/// Serves one client connection: the glue between the channel and the two parts that
/// decide, the ``ServerHandshake`` state machine and then a ``RequestDispatcher``. It
/// decodes frames, carries out what those return, flushes the answers of a read batch once
/// at its end, and runs the connection's timers (handshake, write and idle timeouts).
final class ServerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var handshake: ServerHandshake
    /// Set once the handshake is done.
    private var dispatcher: RequestDispatcher?
    /// Nothing more is read once the connection is closing (a refused handshake, an oversized
    /// frame, a timeout).
    private var closing = false
    private let store: ObjectStore
    private let settings: ConnectionSettings
    private let connection: ConnectionID
    private var logger: Logger
    private var responder: ChannelResponder?
    /// The answers of the current read burst, encoded one after the other and written with
    /// one write and one flush at its end (a buffer, a pipeline write and a pending-write
    /// entry per answer were 5 % of a server's time on increments, perf).
    private var answers: ByteBuffer?
    /// Closes a client that reads none of its answers (see ``Limits/writeTimeout``).
    private var unwritableTimer: Scheduled<Void>?
    /// Closes a connection idle for ``Limits/idleTimeout``: checks a few times per timeout
    /// whether it read anything or had calls waiting since the last check. (NIO's
    /// IdleStateHandler made a promise, a future and a callback for every answer written:
    /// 4 % of a server's time on increments, perf.)
    private var idleCheck: RepeatedTask?
    private var activeSinceCheck = true
    private var lastActive = NIODeadline.now()

    init(store: ObjectStore, settings: ConnectionSettings, connection: ConnectionID, logger: Logger, refusal: CrucialError? = nil) {
        self.store = store
        self.settings = settings
        self.connection = connection
        self.logger = logger
        self.handshake = ServerHandshake(
            serverID: settings.serverID, maxFrameSize: settings.maxFrameSize, credentials: settings.credentials, refusal: refusal,
            runRefusal: settings.runs.refusal)
        self.logger[metadataKey: "connection"] = "\(connection.raw)"
    }

    func channelActive(context: ChannelHandlerContext) {
        responder = ChannelResponder(channel: context.channel)
        logger.debug("connection opened", metadata: ["peer": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let limit = settings.limits.handshakeTimeout
        context.eventLoop.scheduleTask(in: .nanoseconds(limit.nanosecondsClamped)) {
            let handler = handler.value
            guard handler.handshake.isPending, !handler.closing else { return }
            handler.settings.metrics.refused(.handshakeTimeout)
            handler.fail(context: bound.value, id: 0, CrucialError(.timeout, "no complete handshake within \(limit): closed"))
        }
        if let idle = settings.limits.idleTimeout {
            let timeout = TimeAmount.nanoseconds(idle.nanosecondsClamped)
            let every = TimeAmount.nanoseconds(max(timeout.nanoseconds / 4, 10_000_000))
            idleCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
                handler.value.checkIdle(context: bound.value, timeout: timeout)
            }
        }
        context.fireChannelActive()
    }

    /// Closes the connection if it read nothing and had no call waiting for `timeout`
    /// (between `timeout` and 1.25 × `timeout` after its last traffic).
    private func checkIdle(context: ChannelHandlerContext, timeout: TimeAmount) {
        let now = NIODeadline.now()
        if activeSinceCheck || (dispatcher?.inFlight.load() ?? 0) > 0 {
            activeSinceCheck = false
            lastActive = now
            return
        }
        guard !closing, now - lastActive >= timeout else { return }
        logger.debug("closing an idle connection")
        settings.metrics.refused(.idle)
        idleCheck?.cancel()
        fail(context: context, id: 0, CrucialError(.timeout, "the connection was idle for \(settings.limits.idleTimeout ?? .zero): closed"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        logger.debug("connection closed", metadata: ["parkedOn": "\(dispatcher?.parkedOn.count ?? 0)"])
        unwritableTimer?.cancel()
        idleCheck?.cancel()
        dispatcher?.closed()
        dispatcher = nil
        responder = nil
        context.fireChannelInactive()
    }

    /// Adds `frame` to the burst's answers (see ``flushAnswers(context:)``).
    private func write(context: ChannelHandlerContext, _ frame: Frame) {
        if answers == nil { answers = context.channel.allocator.buffer(capacity: 256) }
        WireCodec.encode(frame, into: &answers!)
    }

    /// Writes and flushes the answers gathered since the last time.
    private func flushAnswers(context: ChannelHandlerContext) {
        guard let buffer = answers else { return }
        answers = nil
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Answers with `error` and closes once it is written.
    private func fail(context: ChannelHandlerContext, id: UInt64, _ error: CrucialError) {
        logger.info("closing connection", metadata: ["error": "\(error)"])
        closeAfter(context: context, .result(Reply(id: id, outcome: .error(error))))
    }

    /// Writes `frame` as the connection's last word and closes it.
    private func closeAfter(context: ChannelHandlerContext, _ frame: Frame) {
        closing = true
        handshake.close()
        flushAnswers(context: context)  // answers already given go out before the last word
        var buffer = context.channel.allocator.buffer(capacity: 64)
        WireCodec.encode(frame, into: &buffer)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        activeSinceCheck = true
        let frame: Frame
        do {
            frame = try WireCodec.decode(unwrapInboundIn(data))
        } catch {
            settings.metrics.badFrame()
            if dispatcher != nil {
                // The framing is intact, so the stream stays usable: answer and go on.
                logger.debug("undecodable frame", metadata: ["error": "\(error)"])
                write(context: context, .result(Reply(id: 0, outcome: .error(error))))
            } else {
                fail(context: context, id: 0, CrucialError(error.code, "\(error.message); expected a handshake frame"))
            }
            return
        }
        if let dispatcher {
            if let answer = dispatcher.serve(frame) { write(context: context, answer) }
            return
        }
        switch handshake.receive(frame, view: settings.cluster?.view) {
        case .send(let challenge):
            write(context: context, challenge)
        case .accept(let reply, let isAdmin, let credential):
            if let name = handshake.clientName { logger[metadataKey: "client"] = "\(name)" }
            if let credential { logger[metadataKey: "credential"] = "\(credential)" }
            logger.debug("handshake", metadata: ["admin": "\(isAdmin)"])
            dispatcher = makeDispatcher(context: context, isAdmin: isAdmin)
            write(context: context, .helloReply(reply))
        case .refuse(let reply, let error):
            if let name = handshake.clientName { logger[metadataKey: "client"] = "\(name)" }
            logger.notice("refused handshake", metadata: ["error": "\(error)"])
            settings.metrics.refused(error.code == .unauthenticated ? .unauthenticated : error.code == .resourceExhausted ? .limit : .protocol)
            closeAfter(context: context, .helloReply(reply))
        case .fail(let id, let error):
            fail(context: context, id: id, error)
        }
    }

    private func makeDispatcher(context: ChannelHandlerContext, isAdmin: Bool) -> RequestDispatcher? {
        guard let responder else { return nil }
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let bound = NIOLoopBound(context, eventLoop: loop)
        let channel = context.channel
        return RequestDispatcher(
            store: store, settings: settings, connection: connection, logger: logger, isAdmin: isAdmin, responder: responder,
            run: handshake.run, close: { channel.close(promise: nil) }
        ) { frame, cluster in
            // A view change is under way: serve the frame once the cluster serves a view again.
            cluster.whenReady {
                loop.execute {
                    let handler = handler.value
                    guard !handler.closing, let dispatcher = handler.dispatcher, let answer = dispatcher.serve(frame) else { return }
                    handler.write(context: bound.value, answer)
                    handler.flushAnswers(context: bound.value)
                }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushAnswers(context: context)
        context.fireChannelReadComplete()
    }

    /// A client that stops reading its answers: stop reading its requests (their answers
    /// would pile up here), and close it if it does not catch up within the write timeout.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        context.channel.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in }
        if writable {
            unwritableTimer?.cancel()
            unwritableTimer = nil
        } else if unwritableTimer == nil {
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let limit = settings.limits.writeTimeout
            unwritableTimer = context.eventLoop.scheduleTask(in: .nanoseconds(limit.nanosecondsClamped)) {
                let handler = handler.value
                handler.logger.notice("closing a client that read none of its answers", metadata: ["for": "\(limit)"])
                handler.settings.metrics.refused(.slowClient)
                handler.closing = true
                bound.value.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tooLarge = error as? FrameDecoder.FrameTooLarge {
            fail(
                context: context, id: 0,
                CrucialError(.frameTooLarge, "frame of \(tooLarge.length) bytes exceeds this server's limit of \(tooLarge.limit) bytes"))
            return
        }
        if let io = error as? IOError, [ECONNRESET, EPIPE].contains(io.errnoCode) {
            logger.debug("connection reset")
        } else {
            logger.warning("connection error", metadata: ["error": "\(error)"])
        }
        closing = true
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ServerConnectionHandler: Sendable {}
