import CrucialCore
@testable import CrucialTransport
import NIOCore
import NIOEmbedded
import Testing

/// The client's connection handler in NIO's EmbeddedChannel: the test plays the server,
/// byte for byte, and the clock.
@Suite("Client connection handler, in an EmbeddedChannel")
struct ClientConnectionHandlerTests {
    struct Connection {
        let channel: EmbeddedChannel
        let hello: EventLoopFuture<HelloReply>
    }

    static func connect(heartbeat: TimeAmount? = nil) throws -> Connection {
        let channel = EmbeddedChannel()
        let promise = channel.eventLoop.makePromise(of: HelloReply.self)
        let handler = ClientConnectionHandler(
            address: "s:1", handshake: ClientHandshake(name: "t", secret: "", address: "s:1"), helloPromise: promise,
            handshakeTimeout: .seconds(2), heartbeat: heartbeat)
        try channel.pipeline.syncOperations.addHandler(handler)
        channel.pipeline.fireChannelActive()
        return Connection(channel: channel, hello: promise.futureResult)
    }

    /// The next frame the client wrote, if any.
    static func sent(_ channel: EmbeddedChannel) throws -> Frame? {
        guard var buffer = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return try WireCodec.decode(buffer)
    }

    /// The server's `frame` reaching the client (past the frame decoder, which strips the length).
    static func receive(_ frame: Frame, on channel: EmbeddedChannel) throws {
        var buffer = channel.allocator.buffer(capacity: 64)
        WireCodec.encode(frame, into: &buffer)
        buffer.moveReaderIndex(forwardBy: 4)
        try channel.writeInbound(buffer)
    }

    static func ready(maxFrameSize: UInt32 = 1 << 20, heartbeat: TimeAmount? = nil) throws -> EmbeddedChannel {
        let c = try connect(heartbeat: heartbeat)
        guard case .hello = try sent(c.channel) else { throw CrucialError(.internal, "no Hello") }
        try receive(.helloReply(HelloReply(serverID: "s", maxFrameSize: maxFrameSize)), on: c.channel)
        _ = try c.hello.wait()
        return c.channel
    }

    static func request(_ id: UInt64, on channel: EmbeddedChannel, args: [Value] = []) throws -> EventLoopFuture<Frame> {
        let promise = channel.eventLoop.makePromise(of: Frame.self)
        let frame = Frame.invoke(Invoke(id: id, ref: ObjectRef(type: "AtomicLong", key: "n"), method: "get", args: args))
        channel.writeAndFlush(OutboundRequest(frame: frame, id: id, promise: promise), promise: nil)
        return promise.futureResult
    }

    @Test("Hello goes out first; the server's HelloReply completes the handshake")
    func handshake() throws {
        let c = try Self.connect()
        guard case .hello(let hello) = try Self.sent(c.channel) else {
            Issue.record("the first frame must be Hello")
            return
        }
        #expect(hello.clientName == "t" && hello.clientNonce.count == 32)
        try Self.receive(.helloReply(HelloReply(serverID: "s", maxFrameSize: 4096)), on: c.channel)
        #expect(try c.hello.wait().serverID == "s")
        _ = try? c.channel.finish()
    }

    @Test("Answers complete their own requests, in whatever order they come")
    func answersMatchRequests() throws {
        let channel = try Self.ready()
        let (one, two) = (try Self.request(1, on: channel), try Self.request(2, on: channel))
        #expect(try Self.sent(channel)?.requestID == 1)
        #expect(try Self.sent(channel)?.requestID == 2)
        try Self.receive(.result(Reply(id: 2, outcome: .value(.int(20)))), on: channel)
        try Self.receive(.result(Reply(id: 1, outcome: .value(.int(10)))), on: channel)
        #expect(try two.wait() == .result(Reply(id: 2, outcome: .value(.int(20)))))
        #expect(try one.wait() == .result(Reply(id: 1, outcome: .value(.int(10)))))
        // An answer to nothing asked is dropped, not a crash.
        try Self.receive(.result(Reply(id: 99, outcome: .void)), on: channel)
        _ = try? channel.finish()
    }

    @Test("A request over the server's frame limit fails at once and is not sent")
    func frameLimit() throws {
        let channel = try Self.ready(maxFrameSize: 64)
        let big = try Self.request(1, on: channel, args: [.string(String(repeating: "x", count: 200))])
        #expect(throws: CrucialError.self) { try big.wait() }
        #expect(try Self.sent(channel) == nil)
        _ = try? channel.finish()
    }

    @Test("A closed connection fails what waits with CONNECTION_LOST, with the server's last word when it said one")
    func closeFailsPending() throws {
        let channel = try Self.ready()
        let waiting = try Self.request(1, on: channel)
        try Self.receive(.result(Reply(id: 0, outcome: .error(CrucialError(.shuttingDown, "bye")))), on: channel)
        try channel.close().wait()
        do {
            _ = try waiting.wait()
            Issue.record("expected CONNECTION_LOST")
        } catch let e as CrucialError {
            #expect(e.code == .connectionLost && e.message.contains("bye"), "\(e)")
        }
    }

    @Test("A silent server: pinged after a quarter of the heartbeat, the connection closed after all of it")
    func heartbeat() throws {
        let channel = try Self.ready(heartbeat: .seconds(4))
        let waiting = try Self.request(1, on: channel)
        _ = try Self.sent(channel)
        let loop = channel.embeddedEventLoop
        loop.advanceTime(by: .seconds(1))
        loop.advanceTime(by: .seconds(1))
        guard case .ping(let id)? = try Self.sent(channel) else {
            Issue.record("expected a ping")
            return
        }
        #expect(id >= ClientConnectionHandler.pingIDs)
        loop.advanceTime(by: .seconds(3))
        #expect(throws: CrucialError.self) { try waiting.wait() }
        #expect(!channel.isActive)
    }
}
