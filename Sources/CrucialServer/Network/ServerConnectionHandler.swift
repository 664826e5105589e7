internal import CrucialCore
internal import CrucialTransport
internal import Foundation
internal import Logging
internal import NIOCore

#if canImport(Glibc)
internal import Glibc
#endif

/// Answers parked calls from any thread by writing to the connection's channel.
struct ChannelResponder: Responder {
    let channel: any Channel

    func respond(_ reply: Reply) {
        var buffer = channel.allocator.buffer(capacity: 64)
        WireCodec.encode(.result(reply), into: &buffer)
        channel.writeAndFlush(buffer, promise: nil)
    }
}

/// A responder for a request counted in its connection's in-flight requests.
struct CountingResponder: Responder {
    let base: ChannelResponder
    let inFlight: AtomicCounter

    func respond(_ reply: Reply) {
        inFlight.subtract()
        base.respond(reply)
    }
}

/// Settings every connection of a server shares.
struct ConnectionSettings: Sendable {
    let serverID: String
    let maxFrameSize: Int
    /// The secrets clients may prove. None: no authentication, every client is admin (a
    /// development server).
    let credentials: [Credential]
    let pluginDirectory: String
    let maxPluginBytes: Int
    /// This node's part in a cluster; nil for a server on its own.
    let cluster: Cluster?
    let limits: Limits
    let metrics: ServerMetrics

    /// Clients without a secret are served (without admin rights) when only admin credentials exist.
    var anonymousAllowed: Bool { !credentials.contains { !$0.isAdmin } }
}

/// Serves one client connection: the handshake, then requests in the order they
/// arrive. Answers produced while reading a batch are flushed once at its end.
final class ServerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// awaitingHello → (credentials configured: a Challenge sent) awaitingProof → ready;
    /// closing after a refused handshake, an oversized frame or a request before Hello:
    /// nothing is read in `closing`.
    private enum State: Equatable {
        case awaitingHello
        case awaitingProof(hello: Hello, serverNonce: [UInt8])
        case ready
        case closing
    }

    private var state = State.awaitingHello
    private let store: ObjectStore
    private let settings: ConnectionSettings
    private let connection: ConnectionID
    private var logger: Logger
    private var responder: ChannelResponder?
    /// Objects on which this connection may have parked calls.
    private var parkedOn: Set<ObjectRef> = []
    private var needsFlush = false
    private var isAdmin = false
    private var upload: PluginUpload?
    /// Requests answered later (parked, replicated, waiting for fsync), for the in-flight limit.
    private let inFlight = AtomicCounter()
    /// Set when the server already has its maximum of connections: refused in the handshake.
    private let refusal: CrucialError?
    /// Closes a client that reads none of its answers (see ``Limits/writeTimeout``).
    private var unwritableTimer: Scheduled<Void>?
    /// The metric handles of the methods this connection called: no lock per call.
    private var operationMetrics: [String: [String: ServerMetrics.Operation]] = [:]

    init(store: ObjectStore, settings: ConnectionSettings, connection: ConnectionID, logger: Logger, refusal: CrucialError? = nil) {
        self.store = store
        self.settings = settings
        self.connection = connection
        self.logger = logger
        self.refusal = refusal
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
            switch handler.state {
            case .awaitingHello, .awaitingProof:
                handler.settings.metrics.refused(.handshakeTimeout)
                handler.fail(context: bound.value, id: 0, CrucialError(.timeout, "no complete handshake within \(limit): closed"))
            case .ready, .closing: break
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        logger.debug("connection closed", metadata: ["parkedOn": "\(parkedOn.count)"])
        unwritableTimer?.cancel()
        store.connectionClosed(connection, parkedOn: parkedOn)
        parkedOn.removeAll()
        upload?.discard()
        upload = nil
        responder = nil
        context.fireChannelInactive()
    }

    private func write(context: ChannelHandlerContext, _ frame: Frame) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        WireCodec.encode(frame, into: &buffer)
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    private func reply(context: ChannelHandlerContext, _ id: UInt64, _ outcome: Outcome) {
        write(context: context, .result(Reply(id: id, outcome: outcome)))
    }

    /// Answers with `error` and closes once it is written.
    private func fail(context: ChannelHandlerContext, id: UInt64, _ error: CrucialError) {
        logger.info("closing connection", metadata: ["error": "\(error)"])
        closeAfter(context: context, .result(Reply(id: id, outcome: .error(error))))
    }

    /// Writes `frame` as the connection's last word and closes it.
    private func closeAfter(context: ChannelHandlerContext, _ frame: Frame) {
        state = .closing
        var buffer = context.channel.allocator.buffer(capacity: 64)
        WireCodec.encode(frame, into: &buffer)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state != .closing else { return }
        let payload = unwrapInboundIn(data)
        let frame: Frame
        do {
            frame = try WireCodec.decode(payload)
        } catch {
            settings.metrics.badFrame()
            if state == .ready {
                // The framing is intact, so the stream stays usable: answer and go on.
                logger.debug("undecodable frame", metadata: ["error": "\(error)"])
                reply(context: context, 0, .error(error))
            } else {
                fail(context: context, id: 0, CrucialError(error.code, "\(error.message); expected a handshake frame"))
            }
            return
        }
        switch state {
        case .awaitingHello: handshake(context: context, frame)
        case .awaitingProof(let hello, let nonce): authenticate(context: context, frame, hello: hello, serverNonce: nonce)
        case .ready: serve(context: context, frame)
        case .closing: break
        }
    }

    private func handshake(context: ChannelHandlerContext, _ frame: Frame) {
        guard case .hello(let hello) = frame else {
            fail(context: context, id: frame.requestID ?? 0, CrucialError(.handshakeRequired, "send a Hello frame before any request"))
            return
        }
        logger[metadataKey: "client"] = "\(hello.clientName)"
        if hello.protocolVersion != crucialProtocolVersion {
            return refuse(
                context: context,
                CrucialError(
                    .unsupportedVersion,
                    "client speaks protocol version \(hello.protocolVersion); this server speaks \(crucialProtocolVersion)"))
        }
        if let refusal { return refuse(context: context, refusal) }
        guard !settings.credentials.isEmpty else {
            isAdmin = true
            return accept(context: context, serverProof: [])
        }
        guard hello.clientNonce.count >= 16, hello.clientNonce.count <= 64 else {
            return refuse(
                context: context, CrucialError(.badRequest, "Hello carries a client nonce of \(hello.clientNonce.count) bytes; 16 to 64 expected"))
        }
        let nonce = HandshakeAuth.nonce()
        state = .awaitingProof(hello: hello, serverNonce: nonce)
        write(context: context, .challenge(serverNonce: nonce))
    }

    /// Checks the client's answer to the challenge against each credential.
    private func authenticate(context: ChannelHandlerContext, _ frame: Frame, hello: Hello, serverNonce: [UInt8]) {
        guard case .authenticate(let proof) = frame else {
            fail(context: context, id: frame.requestID ?? 0, CrucialError(.handshakeRequired, "answer the Challenge with Authenticate first"))
            return
        }
        if proof.isEmpty {
            guard settings.anonymousAllowed else {
                return refuse(context: context, CrucialError(.unauthenticated, "this server requires an auth token (CRUCIAL_AUTH_TOKEN)"))
            }
            return accept(context: context, serverProof: [])
        }
        let matched = settings.credentials.first { c in
            HandshakeAuth.matches(
                proof,
                HandshakeAuth.clientProof(secret: c.secret, clientNonce: hello.clientNonce, serverNonce: serverNonce, clientName: hello.clientName))
        }
        guard let matched else {
            return refuse(context: context, CrucialError(.unauthenticated, "wrong auth token"))
        }
        isAdmin = matched.isAdmin
        logger[metadataKey: "credential"] = "\(matched.name)"
        accept(context: context, serverProof: HandshakeAuth.serverProof(secret: matched.secret, serverNonce: serverNonce, clientNonce: hello.clientNonce))
    }

    private func accept(context: ChannelHandlerContext, serverProof: [UInt8]) {
        logger.debug("handshake", metadata: ["admin": "\(isAdmin)"])
        state = .ready
        write(
            context: context,
            .helloReply(
                HelloReply(
                    serverID: settings.serverID, view: settings.cluster?.view, maxFrameSize: UInt32(clamping: settings.maxFrameSize),
                    serverProof: serverProof)))
    }

    private func refuse(context: ChannelHandlerContext, _ error: CrucialError) {
        logger.notice("refused handshake", metadata: ["error": "\(error)"])
        settings.metrics.refused(error.code == .unauthenticated ? .unauthenticated : error.code == .resourceExhausted ? .limit : .protocol)
        closeAfter(
            context: context,
            .helloReply(HelloReply(serverID: settings.serverID, error: error, maxFrameSize: UInt32(clamping: settings.maxFrameSize))))
    }

    private func serve(context: ChannelHandlerContext, _ frame: Frame) {
        switch frame {
        case .invoke(let invoke):
            guard let responder else { return }
            var routedIn: UInt64 = 0
            if let cluster = settings.cluster {
                switch cluster.route(invoke.ref, clientView: invoke.viewID) {
                case .serve(let viewID): routedIn = viewID
                case .wrongView(let view): return reply(context: context, invoke.id, .wrongView(view))
                case .wait: return serveWhenReady(context: context, frame, cluster)
                case .unavailable(let error): return reply(context: context, invoke.id, .error(error))
                }
            }
            let waiter = Waiter(
                id: WaiterID(connection: connection, request: invoke.id), clientID: invoke.clientID, seq: invoke.seq,
                responder: CountingResponder(base: responder, inFlight: inFlight))
            let waiting = inFlight.add()
            let started = ContinuousClock.now
            let outcome = store.invoke(invoke, waiter: waiter, routedIn: routedIn, waiting: waiting)
            let handles = metricHandles(invoke.ref.type, invoke.method, outcome)
            if let outcome {
                inFlight.subtract()
                settings.metrics.operation(handles, outcome, since: started)
                if case .error(let error) = outcome { logFailure(invoke, error) }
                reply(context: context, invoke.id, outcome)
            } else {
                handles.parked.increment()
                parkedOn.insert(invoke.ref)
            }
        case .remove(let id, let ref):
            if store.isPersistent(ref) == true, !isAdmin, settings.credentials.contains(where: \.isAdmin) {
                // Persistent objects outlive applications: deleting one is an operator's act.
                return reply(
                    context: context, id, .error(CrucialError(.unauthenticated, "removing persistent \(ref) needs an admin secret")))
            }
            guard let cluster = settings.cluster else {
                guard let responder else { return }
                return store.remove(ref) { responder.respond(Reply(id: id, outcome: $0)) }
            }
            switch cluster.route(ref, clientView: 0) {
            case .serve(let viewID):
                if let away = cluster.unavailability(of: ref, copies: cluster.rf), store.isPersistent(ref) == nil {
                    return reply(context: context, id, .error(away))
                }
                let (existed, replicated) = store.removeInCluster(ref, replication: cluster, in: viewID)
                guard let replicated else { return reply(context: context, id, .value(.bool(existed))) }
                guard let responder else { return }
                replicated.whenComplete { done in
                    let instead: Outcome? =
                        switch done {
                        case .success(let o): o
                        case .failure(let e): .error(e as? CrucialError ?? CrucialError(.internal, "\(e)"))
                        }
                    responder.respond(Reply(id: id, outcome: instead ?? .value(.bool(existed))))
                }
            case .wrongView(let view): reply(context: context, id, .wrongView(view))
            case .wait: serveWhenReady(context: context, frame, cluster)
            case .unavailable(let error): reply(context: context, id, .error(error))
            }
        case .replicate(let replicate):
            guard let cluster = memberCluster(context: context, replicate.id), let responder else { return }
            cluster.apply(replicate) { outcome in responder.respond(Reply(id: replicate.id, outcome: outcome)) }
        case .transferDone(let report):
            guard let cluster = memberCluster(context: context, report.id) else { return }
            cluster.transferDone(report)
            reply(context: context, report.id, .void)
        case .offer(let id, _, let entries):
            guard memberCluster(context: context, id) != nil else { return }
            reply(context: context, id, .value(.ints(store.wanted(entries).map { Int64($0) })))
        case .ping(let id):
            reply(context: context, id, .void)
        case .listObjects(let id, let prefix):
            write(context: context, .objectList(id: id, objects: store.list(typePrefix: prefix)))
        case .keepAlive(let id, let session, let leaseMillis, let client):
            guard session != 0 || client != 0 else {
                reply(context: context, id, .error(CrucialError(.badRequest, "KeepAlive names no session and no client (both 0)")))
                return
            }
            let lease = store.keepAlive(session: session, client: client, lease: leaseMillis == 0 ? nil : .milliseconds(Int64(leaseMillis)))
            reply(context: context, id, .value(.int(lease.nanosecondsClamped / 1_000_000)))
        case .endSession(let id, let session):
            let removed = store.endSession(session)
            logger.info("session ended; its ephemeral objects were removed", metadata: ["session": "\(String(session, radix: 16))", "removed": "\(removed)"])
            reply(context: context, id, .value(.int(Int64(removed))))
        case .loadPlugin(let id, let name, let offset, let chunk, let last):
            guard isAdmin else {
                reply(context: context, id, .error(CrucialError(.unauthenticated, "loading a plugin needs the admin token (crucial-server --admin-token)")))
                return
            }
            do throws(CrucialError) {
                if offset == 0 {
                    upload?.discard()
                    upload = try PluginUpload(name: name, directory: settings.pluginDirectory, connection: connection)
                }
                guard let current = upload, current.name == name else {
                    throw CrucialError(.badRequest, "no upload of plugin \(name) in progress: start at offset 0")
                }
                try current.append(chunk, at: offset, limit: settings.maxPluginBytes)
                guard last else {
                    reply(context: context, id, .void)
                    return
                }
                upload = nil
                let path = try current.finish(directory: settings.pluginDirectory)
                let types: [String]
                do { types = try store.loadPlugin(path: path) } catch {
                    try? FileManager.default.removeItem(atPath: path)
                    throw error
                }
                logger.notice("plugin loaded", metadata: ["path": "\(path)", "types": "\(types.joined(separator: ", "))"])
                reply(context: context, id, .value(.list(types.map(Value.string))))
            } catch {
                upload?.discard()
                upload = nil
                logger.warning("plugin refused", metadata: ["name": "\(name)", "error": "\(error)"])
                reply(context: context, id, .error(error))
            }
        case .getObject(let id, let ref):
            if let state = store.snapshot(ref) {
                reply(context: context, id, .value(state))
            } else {
                reply(context: context, id, .error(CrucialError(.notFound, "\(ref) does not exist")))
            }
        case .hello, .authenticate:
            reply(context: context, 0, .error(CrucialError(.badRequest, "the handshake is already done")))
        case .helloReply, .result, .objectList, .challenge:
            reply(context: context, frame.requestID ?? 0, .error(CrucialError(.badRequest, "a client may not send \(frame.kindName) frames")))
        }
    }

    /// The handles of a call's type and method. Names no object vouched for (an unknown
    /// type or method, a call on a missing object) count under "(unknown)", so that no
    /// client can grow the metrics with names it makes up.
    private func metricHandles(_ type: String, _ method: String, _ outcome: Outcome?) -> ServerMetrics.Operation {
        var (type, method) = (type, method)
        if case .error(let e) = outcome, [.unknownType, .unknownMethod, .badRequest, .notFound].contains(e.code) {
            if e.code == .unknownType || e.code == .badRequest { type = "(unknown)" }
            method = "(unknown)"
        }
        if let known = operationMetrics[type]?[method] { return known }
        let made = settings.metrics.handles(type, method)
        operationMetrics[type, default: [:]][method] = made
        return made
    }

    /// Logs a failed request with its id: an internal error as an error, a refusal for a
    /// limit as a notice, the caller's mistakes (bad arguments, unknown objects) at debug.
    private func logFailure(_ invoke: Invoke, _ error: CrucialError) {
        let level: Logger.Level =
            switch error.code {
            case .internal: .error
            case .resourceExhausted, .unauthenticated: .notice
            default: .debug
            }
        logger.log(
            level: level, "request failed",
            metadata: [
                "request": "\(connection.raw)/\(invoke.id)", "object": "\(invoke.ref)", "method": "\(invoke.method)",
                "code": "\(error.code.name)", "error": "\(error.message)",
            ])
    }

    /// The cluster, for frames only members send: with an admin token set, members present
    /// it (plain clients cannot write replicas); otherwise the auth token suffices.
    private func memberCluster(context: ChannelHandlerContext, _ id: UInt64) -> Cluster? {
        guard let cluster = settings.cluster else {
            reply(context: context, id, .error(CrucialError(.badRequest, "this server is not part of a cluster")))
            return nil
        }
        guard isAdmin || !settings.credentials.contains(where: \.isAdmin) else {
            reply(context: context, id, .error(CrucialError(.unauthenticated, "only cluster members (with the admin token) may send this")))
            return nil
        }
        return cluster
    }

    /// Serves `frame` again once the cluster serves a view (a view change is in progress).
    private func serveWhenReady(context: ChannelHandlerContext, _ frame: Frame, _ cluster: Cluster) {
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let context = NIOLoopBound(context, eventLoop: loop)
        cluster.whenReady {
            loop.execute {
                let handler = handler.value
                guard handler.state == .ready, handler.responder != nil else { return }
                handler.serve(context: context.value, frame)
                if handler.needsFlush {
                    handler.needsFlush = false
                    context.value.flush()
                }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
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
                handler.state = .closing
                bound.value.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// No traffic for the idle timeout: close unless a request of this connection is waiting.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all else {
            return context.fireUserInboundEventTriggered(event)
        }
        guard state == .ready, inFlight.load() == 0 else { return }
        logger.debug("closing an idle connection")
        settings.metrics.refused(.idle)
        fail(context: context, id: 0, CrucialError(.timeout, "the connection was idle for \(settings.limits.idleTimeout ?? .zero): closed"))
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
        state = .closing
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ServerConnectionHandler: Sendable {}

extension Frame {
    /// The frame's message name, for error messages.
    var kindName: String {
        switch self {
        case .hello: "Hello"
        case .helloReply: "HelloReply"
        case .invoke: "Invoke"
        case .result: "Result"
        case .remove: "Remove"
        case .ping: "Ping"
        case .listObjects: "ListObjects"
        case .objectList: "ObjectList"
        case .keepAlive: "KeepAlive"
        case .endSession: "EndSession"
        case .getObject: "GetObject"
        case .loadPlugin: "LoadPlugin"
        case .replicate: "Replicate"
        case .transferDone: "TransferDone"
        case .challenge: "Challenge"
        case .authenticate: "Authenticate"
        case .offer: "Offer"
        }
    }
}
