internal import CrucialCore
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

/// Settings every connection of a server shares.
struct ConnectionSettings: Sendable {
    let serverID: String
    let maxFrameSize: Int
    let authToken: String?
    /// Grants admin operations (plugin upload) to clients presenting it. With neither
    /// token set, every client is admin (a development server).
    let adminToken: String?
    let pluginDirectory: String
    let maxPluginBytes: Int
    /// This node's part in a cluster; nil for a server on its own.
    let cluster: Cluster?
}

/// Serves one client connection: the handshake, then requests in the order they
/// arrive. Answers produced while reading a batch are flushed once at its end.
final class ServerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// awaitingHello → ready (a valid Hello) → closing (a refused Hello, an oversized
    /// frame or a request before Hello); nothing is read in `closing`.
    private enum State {
        case awaitingHello
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

    init(store: ObjectStore, settings: ConnectionSettings, connection: ConnectionID, logger: Logger) {
        self.store = store
        self.settings = settings
        self.connection = connection
        self.logger = logger
        self.logger[metadataKey: "connection"] = "\(connection.raw)"
    }

    func channelActive(context: ChannelHandlerContext) {
        responder = ChannelResponder(channel: context.channel)
        logger.debug("connection opened", metadata: ["peer": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        logger.debug("connection closed", metadata: ["parkedOn": "\(parkedOn.count)"])
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
            if state == .awaitingHello {
                fail(context: context, id: 0, CrucialError(error.code, "\(error.message); expected a Hello frame"))
            } else {
                // The framing is intact, so the stream stays usable: answer and go on.
                logger.debug("undecodable frame", metadata: ["error": "\(error)"])
                reply(context: context, 0, .error(error))
            }
            return
        }
        switch state {
        case .awaitingHello: handshake(context: context, frame)
        case .ready: serve(context: context, frame)
        case .closing: break
        }
    }

    private func handshake(context: ChannelHandlerContext, _ frame: Frame) {
        guard case .hello(let hello) = frame else {
            fail(context: context, id: frame.requestID ?? 0, CrucialError(.handshakeRequired, "send a Hello frame before any request"))
            return
        }
        var refusal: CrucialError?
        if hello.protocolVersion != crucialProtocolVersion {
            refusal = CrucialError(
                .unsupportedVersion,
                "client speaks protocol version \(hello.protocolVersion); this server speaks \(crucialProtocolVersion)")
        } else if let admin = settings.adminToken, !admin.isEmpty, hello.authToken == admin {
            isAdmin = true
        } else if let token = settings.authToken, hello.authToken != token {
            refusal = CrucialError(.unauthenticated, hello.authToken.isEmpty ? "this server requires an auth token" : "wrong auth token")
        } else {
            isAdmin = settings.adminToken == nil && settings.authToken == nil
        }
        let helloReply = HelloReply(
            serverID: settings.serverID, view: settings.cluster?.view, error: refusal, maxFrameSize: UInt32(clamping: settings.maxFrameSize))
        if let refusal {
            logger.info("refused handshake", metadata: ["error": "\(refusal)", "client": "\(hello.clientName)"])
            closeAfter(context: context, .helloReply(helloReply))
            return
        }
        logger.debug("handshake", metadata: ["client": "\(hello.clientName)"])
        state = .ready
        write(context: context, .helloReply(helloReply))
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
                }
            }
            let waiter = Waiter(
                id: WaiterID(connection: connection, request: invoke.id), clientID: invoke.clientID, seq: invoke.seq,
                responder: responder)
            if let outcome = store.invoke(invoke, waiter: waiter, routedIn: routedIn) {
                reply(context: context, invoke.id, outcome)
            } else {
                parkedOn.insert(invoke.ref)
            }
        case .remove(let id, let ref):
            guard let cluster = settings.cluster else {
                return reply(context: context, id, .value(.bool(store.remove(ref))))
            }
            switch cluster.route(ref, clientView: 0) {
            case .serve:
                let existed = store.remove(ref)
                guard let responder else { return }
                cluster.replicateRemoval(ref).whenSuccess { instead in
                    responder.respond(Reply(id: id, outcome: instead ?? .value(.bool(existed))))
                }
            case .wrongView(let view): reply(context: context, id, .wrongView(view))
            case .wait: serveWhenReady(context: context, frame, cluster)
            }
        case .replicate(let replicate):
            guard let cluster = memberCluster(context: context, replicate.id) else { return }
            reply(context: context, replicate.id, cluster.apply(replicate))
        case .transferDone(let id, let viewID, let from):
            guard let cluster = memberCluster(context: context, id) else { return }
            cluster.transferDone(viewID: viewID, from: from)
            reply(context: context, id, .void)
        case .ping(let id):
            reply(context: context, id, .void)
        case .listObjects(let id, let prefix):
            write(context: context, .objectList(id: id, objects: store.list(typePrefix: prefix)))
        case .keepAlive(let id, let session, let leaseMillis):
            guard session != 0 else {
                reply(context: context, id, .error(CrucialError(.badRequest, "KeepAlive names no session (0)")))
                return
            }
            store.keepAlive(session: session, lease: leaseMillis == 0 ? nil : .milliseconds(Int64(leaseMillis)))
            reply(context: context, id, .void)
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
        case .hello:
            reply(context: context, 0, .error(CrucialError(.badRequest, "the handshake is already done")))
        case .helloReply, .result, .objectList:
            reply(context: context, frame.requestID ?? 0, .error(CrucialError(.badRequest, "a client may not send \(frame.kindName) frames")))
        }
    }

    /// The cluster, for frames only members send: with an admin token set, members present
    /// it (plain clients cannot write replicas); otherwise the auth token suffices.
    private func memberCluster(context: ChannelHandlerContext, _ id: UInt64) -> Cluster? {
        guard let cluster = settings.cluster else {
            reply(context: context, id, .error(CrucialError(.badRequest, "this server is not part of a cluster")))
            return nil
        }
        guard isAdmin || settings.adminToken == nil else {
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
        }
    }
}
