package import CrucialCore
package import NIOCore
internal import NIOPosix
package import NIOSSL

#if canImport(Glibc)
internal import Glibc
#endif

/// Who a connection says it is and how it proves it: the name servers log, the shared
/// secret of the challenge-response (empty: none), and TLS.
package struct ConnectionIdentity: Sendable {
    package var name: String
    package var secret: String
    package var tls: NIOSSLContext?
    /// The name the server's certificate must carry; nil = the host connected to.
    package var serverHostname: String?
    /// The run of cloud threads the client is one of (0: none), named in its Hello.
    package var run: UInt64

    package init(name: String, secret: String, tls: NIOSSLContext? = nil, serverHostname: String? = nil, run: UInt64 = 0) {
        self.name = name
        self.secret = secret
        self.tls = tls
        self.serverHostname = serverHostname
        self.run = run
    }
}

/// A request on its way out, with what its answer completes.
struct OutboundRequest: Sendable {
    let frame: Frame
    let id: UInt64
    let answer: AnswerSink

    init(frame: Frame, id: UInt64, answer: AnswerSink) {
        self.frame = frame
        self.id = id
        self.answer = answer
    }

    init(frame: Frame, id: UInt64, promise: EventLoopPromise<Frame>) {
        self.init(frame: frame, id: id, answer: .promise(promise))
    }
}

/// Matches answers to requests on one connection. Confined to the channel's event loop.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutboundRequest
    typealias OutboundOut = ByteBuffer

    /// Requests waiting for their answers; one call beyond its limit fails with PENDING_LIMIT.
    private var pending: PendingRequests
    private var helloPromise: EventLoopPromise<HelloReply>?
    private var closedError: CrucialError?
    private let address: String
    /// The server's frame limit, learned in the handshake.
    var serverMaxFrameSize = Int.max

    /// Set while the handler is in its pipeline: ``send(_:)`` writes through it.
    private var context: ChannelHandlerContext?

    private var handshake: ClientHandshake
    /// While requests wait, a server that sends nothing for this long (not even the answer
    /// to a ping) is taken for dead or cut off: the connection is closed, failing them, and
    /// the client retries (elsewhere, in a cluster). nil: wait as long as it takes.
    private let heartbeat: TimeAmount?
    /// When the server last said anything, by the event loop's clock (a test's loop has its own).
    private var lastHeard = NIODeadline.uptimeNanoseconds(0)
    private var pinging = false
    private var pingCount: UInt64 = 0
    private var beat: RepeatedTask?
    /// A server that accepted the connection but does not finish the handshake within this
    /// (a paused process) fails it.
    private let handshakeTimeout: TimeAmount
    private var handshakeTimer: Scheduled<Void>?

    init(
        address: String, handshake: ClientHandshake, helloPromise: EventLoopPromise<HelloReply>, handshakeTimeout: TimeAmount,
        heartbeat: TimeAmount? = nil, maxPending: Int = .max
    ) {
        self.pending = PendingRequests(limit: maxPending)
        self.address = address
        self.handshake = handshake
        self.helloPromise = helloPromise
        self.handshakeTimeout = handshakeTimeout
        self.heartbeat = heartbeat
    }

    /// Request ids from this one on are the handler's own pings.
    static let pingIDs: UInt64 = 1 << 63

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelActive(context: ChannelHandlerContext) {
        lastHeard = context.eventLoop.now
        var buffer = context.channel.allocator.buffer(capacity: 64)
        WireCodec.encode(.hello(handshake.hello), into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        // On the event loop, like the answer: a handshake that finished in time is never cut
        // (a timer cancelled by the awaiting task could fire before that task runs, on a loaded machine).
        let handler = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let limit = handshakeTimeout
        handshakeTimer = context.eventLoop.scheduleTask(in: limit) {
            let (handler, context) = handler.value
            guard handler.helloPromise != nil else { return }
            handler.close(
                context: context,
                CrucialError(.connectionFailed, "server \(handler.address) did not finish the handshake within \(limit.nanoseconds / 1_000_000) ms"))
        }
        if let heartbeat {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let quarter = TimeAmount.nanoseconds(heartbeat.nanoseconds / 4)
            beat = context.eventLoop.scheduleRepeatedTask(initialDelay: quarter, delay: quarter) { _ in
                let (handler, context) = bound.value
                handler.checkHeartbeat(context: context, limit: heartbeat)
            }
        }
        context.fireChannelActive()
    }

    private func checkHeartbeat(context: ChannelHandlerContext, limit: TimeAmount) {
        guard !pending.isEmpty, closedError == nil, helloPromise == nil else {
            lastHeard = context.eventLoop.now
            return
        }
        let silent = context.eventLoop.now - lastHeard
        if silent >= limit {
            close(context: context, CrucialError(.connectionLost, "server \(address) answered nothing for \(silent.nanoseconds / 1_000_000) ms"))
        } else if silent.nanoseconds >= limit.nanoseconds / 4, !pinging {
            pinging = true
            pingCount += 1
            var buffer = context.channel.allocator.buffer(capacity: 16)
            WireCodec.encode(.ping(id: Self.pingIDs | pingCount), into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        write(context: context, unwrapOutboundIn(data), promise: promise)
    }

    /// Writes `request` without the pipeline's `NIOAny` box and walk (see
    /// ``ClientConnection``), on the loop; `flush()` sends what was written.
    func send(_ request: OutboundRequest) {
        guard let context else {
            return request.answer.fail(closedError ?? CrucialError(.connectionLost, "connection to \(address) closed"))
        }
        write(context: context, request, promise: nil)
    }

    func flush() { context?.flush() }

    private func write(context: ChannelHandlerContext, _ request: OutboundRequest, promise: EventLoopPromise<Void>?) {
        if let closedError {
            request.answer.fail(closedError)
            promise?.fail(closedError)
            return
        }
        if let error = pending.refusal(of: request.frame, to: address) {
            request.answer.fail(error)
            promise?.fail(error)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 128)
        WireCodec.encode(request.frame, into: &buffer)
        guard buffer.readableBytes - 4 <= serverMaxFrameSize else {
            let error = CrucialError(
                .frameTooLarge, "request of \(buffer.readableBytes - 4) bytes exceeds the server's frame limit of \(serverMaxFrameSize) bytes")
            request.answer.fail(error)
            promise?.fail(error)  // a handler that drops a write completes its promise
            return
        }
        pending.add(request.id, request.frame, request.answer)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastHeard = context.eventLoop.now
        let frame: Frame
        do {
            frame = try WireCodec.decode(unwrapInboundIn(data))
        } catch {
            close(context: context, CrucialError(.protocolViolation, "undecodable frame from \(address): \(error)"))
            return
        }
        if let action = handshake.receive(frame) {
            switch action {
            case .send(let answer):
                var buffer = context.channel.allocator.buffer(capacity: 64)
                WireCodec.encode(answer, into: &buffer)
                context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            case .ready(let reply):
                if let limit = Int(exactly: reply.maxFrameSize), limit > 0 { serverMaxFrameSize = limit }
                handshakeTimer?.cancel()
                helloPromise?.succeed(reply)
                helloPromise = nil
            case .fail(let error):
                helloPromise?.fail(error)
                helloPromise = nil
                close(context: context, error)
            }
            return
        }
        switch frame {
        case .result(let reply) where reply.id == 0:
            // An error not tied to a request after the handshake (those during it go to the
            // handshake): the server is about to close, or a frame was unreadable.
            if case .error(let e) = reply.outcome {
                closedError = CrucialError(.connectionLost, "server \(address) reported \(e)")
            }
        case .result(let reply) where reply.id >= Self.pingIDs:
            pinging = false
        default:
            guard let id = frame.requestID, let answer = pending.remove(id) else { return }
            answer.succeed(frame)
        }
    }

    private func close(context: ChannelHandlerContext, _ error: CrucialError) {
        closedError = error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        beat?.cancel()
        beat = nil
        handshakeTimer?.cancel()
        let error = closedError ?? CrucialError(.connectionLost, "connection to \(address) closed")
        closedError = error
        helloPromise?.fail(error)
        helloPromise = nil
        for answer in pending.removeAll() { answer.fail(error) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context: context, CrucialError(.connectionLost, "connection to \(address) failed: \(error)"))
    }
}

@available(*, unavailable)
extension ClientConnectionHandler: Sendable {}

/// One pipelined connection to a server. Servers of a cluster use it to reach each other.
package final class ClientConnection: FrameConnection {
    let channel: any Channel
    package let address: String
    package let hello: HelloReply
    private let writer: WriteCoalescer<OutboundRequest>

    private init(
        channel: any Channel, handler: NIOLoopBound<ClientConnectionHandler>, address: String, hello: HelloReply, writesInline: Bool
    ) {
        self.channel = channel
        self.address = address
        self.hello = hello
        self.writer = WriteCoalescer(
            channel: channel, writesInline: writesInline, sink: { handler.value.send($0) }, flush: { handler.value.flush() }
        ) { [address] request in
            request.answer.fail(CrucialError(.connectionLost, "connection to \(address) closed"))
        }
    }

    package var isActive: Bool { channel.isActive }

    /// Completes once the connection closed and its handlers are gone.
    package var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    static let maxInboundFrame = 256 << 20

    /// Connects and performs the handshake, within `timeout` (a server that accepts the
    /// connection but never answers, like a paused process, fails it then). `heartbeat`:
    /// see ``ClientConnectionHandler``. `writesInline`: see ``WriteCoalescer``; false for a
    /// sender that must not touch the socket where it sends (a primary, under an object's lock).
    /// `maxPending`: see ``Transport/connect(host:port:group:identity:timeout:heartbeat:maxPending:)``.
    package static func connect(
        host: String, port: Int, group: any EventLoopGroup, identity: ConnectionIdentity, timeout: Duration, heartbeat: Duration? = nil,
        writesInline: Bool = true, maxPending: Int = .max
    ) async throws -> ClientConnection {
        let address = "\(host):\(port)"
        let loop = group.next()
        let helloPromise = loop.makePromise(of: HelloReply.self)
        let handlerPromise = loop.makePromise(of: NIOLoopBound<ClientConnectionHandler>.self)
        let handshake = ClientHandshake(name: identity.name, secret: identity.secret, address: address, run: identity.run)
        // SNI takes names only: for an IP address the certificate's IP entries are checked instead.
        let isIPAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        let hostname = identity.serverHostname ?? (isIPAddress ? nil : host)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.milliseconds(Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls = identity.tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: hostname))
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(FrameDecoder(maxFrameSize: maxInboundFrame)))
                        let handler = ClientConnectionHandler(
                            address: address, handshake: handshake, helloPromise: helloPromise,
                            handshakeTimeout: .nanoseconds(min(timeout, heartbeat ?? timeout).nanosecondsClamped),
                            heartbeat: heartbeat.map { .nanoseconds($0.nanosecondsClamped) }, maxPending: maxPending)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        handlerPromise.succeed(NIOLoopBound(handler, eventLoop: channel.eventLoop))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            helloPromise.fail(error)
            handlerPromise.fail(error)
            if let e = error as? NIOConnectionError, !e.connectionErrors.isEmpty,
                e.connectionErrors.allSatisfy({ ($0.error as? IOError)?.errnoCode == ECONNREFUSED })
            {
                // Nothing listens there: the server is not running (a crashed cluster member, say).
                throw CrucialError(.connectionFailed, "crucial-server at \(address) refused the connection (nothing listens there)")
            }
            throw CrucialError(.connectionFailed, "cannot connect to crucial-server at \(address): \(error)")
        }
        let reply: HelloReply
        do {
            reply = try await helloPromise.futureResult.get()
        } catch let refusal as CrucialError where refusal.code != .connectionLost {
            // The server's refusal (a wrong token, its connection limit, another protocol version), or the handshake timeout.
            channel.close(promise: nil)
            throw refusal
        } catch {
            channel.close(promise: nil)
            throw CrucialError(.connectionFailed, "handshake with \(address) failed: \(error)")
        }
        let handler = try await handlerPromise.futureResult.get()
        return ClientConnection(channel: channel, handler: handler, address: address, hello: reply, writesInline: writesInline)
    }

    /// Queues `frame` at once (frames queued one after the other are written in that
    /// order); the future holds the frame that answers it.
    package func send(_ frame: Frame, id: UInt64) -> EventLoopFuture<Frame> {
        let promise = channel.eventLoop.makePromise(of: Frame.self)
        writer.write(OutboundRequest(frame: frame, id: id, promise: promise))
        return promise.futureResult
    }

    /// As ``send(_:id:)``, resuming the caller with the answer: no promise, future and
    /// callback per call.
    package func request(_ frame: Frame, id: UInt64) async throws -> Frame {
        try await withUnsafeThrowingContinuation { continuation in
            writer.write(OutboundRequest(frame: frame, id: id, answer: .continuation(continuation)))
        }
    }

    package func close() {
        channel.close(promise: nil)
    }
}
