import CrucialCore
@testable import CrucialServerCore
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

/// The connection handler in NIO's EmbeddedChannel: frames in as bytes, frames out as bytes.
@Suite("Server connection handler, in an EmbeddedChannel")
struct ServerConnectionHandlerTests {
    static func channel(credentials: [Credential] = []) throws -> EmbeddedChannel {
        let settings = ConnectionSettings(
            serverID: "s", maxFrameSize: 1 << 20, credentials: credentials, pluginDirectory: "/nonexistent", maxPluginBytes: 1 << 20,
            cluster: nil, limits: Limits(), metrics: ServerMetrics())
        let store = ObjectStore(timerLoop: MultiThreadedEventLoopGroup.singleton.next())
        let handler = ServerConnectionHandler(store: store, settings: settings, connection: ConnectionID(1), logger: Logger(label: "test"))
        let channel = EmbeddedChannel(handler: handler)
        channel.pipeline.fireChannelActive()
        return channel
    }

    static func send(_ frame: Frame, to channel: EmbeddedChannel) throws {
        var buffer = channel.allocator.buffer(capacity: 64)
        WireCodec.encode(frame, into: &buffer)
        buffer.moveReaderIndex(forwardBy: 4)  // the handler takes payloads: the frame decoder sits before it
        try channel.writeInbound(buffer)
        channel.pipeline.fireChannelReadComplete()
    }

    static func received(_ channel: EmbeddedChannel) throws -> Frame? {
        guard var buffer = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return try WireCodec.decode(buffer)
    }

    @Test("Hello, then a call: each answered with one frame, flushed at the end of the read")
    func handshakeThenCall() throws {
        let channel = try Self.channel()
        try Self.send(.hello(Hello(clientName: "t", clientNonce: Array(repeating: 1, count: 32))), to: channel)
        guard case .helloReply(let reply) = try Self.received(channel) else { Issue.record("no HelloReply"); return }
        #expect(reply.error == nil && reply.serverID == "s")
        try Self.send(.invoke(Invoke(id: 5, ref: ObjectRef(type: "AtomicLong", key: "n"), method: "addAndGet", args: [.int(2)], create: Create(initial: .int(0)))), to: channel)
        #expect(try Self.received(channel) == .result(Reply(id: 5, outcome: .value(.int(2)))))
        _ = try? channel.finish()
    }

    @Test("A request before the handshake is answered with HANDSHAKE_REQUIRED and the connection closes")
    func requestBeforeHello() throws {
        let channel = try Self.channel()
        try Self.send(.ping(id: 3), to: channel)
        guard case .result(let reply) = try Self.received(channel), case .error(let e) = reply.outcome else { Issue.record("no refusal"); return }
        #expect(e.code == .handshakeRequired && reply.id == 3)
        try Self.send(.ping(id: 4), to: channel)
        #expect(try Self.received(channel) == nil, "nothing more is read once closing")
        _ = try? channel.finish()
    }
}
