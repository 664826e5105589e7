import Synchronization
import CrucialTransport
import CrucialClient
import NIOCore
import NIOPosix

/// A RESP reply, as far as the benchmark needs it.
enum RESP: Equatable, Sendable {
    case simple(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8]?)
    case array([RESP]?)
}

/// Parses RESP2 replies; returns nil until a whole reply is buffered.
struct RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESP

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        var copy = buffer
        guard let reply = try Self.parse(&copy) else { return .needMoreData }
        buffer = copy
        context.fireChannelRead(Self.wrapInboundOut(reply))
        return .continue
    }

    private static func line(_ b: inout ByteBuffer) -> String? {
        let view = b.readableBytesView
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")), cr + 1 < view.endIndex else { return nil }
        let s = b.readString(length: cr - view.startIndex)
        b.moveReaderIndex(forwardBy: 2)
        return s
    }

    static func parse(_ b: inout ByteBuffer) throws -> RESP? {
        guard let type = b.readInteger(as: UInt8.self), let text = line(&b) else { return nil }
        switch type {
        case UInt8(ascii: "+"): return .simple(text)
        case UInt8(ascii: "-"): return .error(text)
        case UInt8(ascii: ":"): return .integer(Int64(text) ?? 0)
        case UInt8(ascii: "$"):
            let n = Int(text) ?? -1
            if n < 0 { return .bulk(nil) }
            guard b.readableBytes >= n + 2, let bytes = b.readBytes(length: n) else { return nil }
            b.moveReaderIndex(forwardBy: 2)
            return .bulk(bytes)
        case UInt8(ascii: "*"):
            let n = Int(text) ?? -1
            if n < 0 { return .array(nil) }
            var items: [RESP] = []
            for _ in 0..<n {
                guard let item = try parse(&b) else { return nil }
                items.append(item)
            }
            return .array(items)
        default:
            throw CrucialError(.protocolViolation, "bad RESP type byte \(type)")
        }
    }
}

struct RESPCommand: Sendable {
    let args: [[UInt8]]
    let reply: EventLoopPromise<RESP>
}

/// Matches replies to commands in order (Redis answers a connection's commands in order).
final class RESPHandler: ChannelDuplexHandler {
    typealias InboundIn = RESP
    typealias OutboundIn = RESPCommand
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<EventLoopPromise<RESP>>()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        let (args, reply) = (command.args, command.reply)
        var b = context.channel.allocator.buffer(capacity: 64)
        b.writeString("*\(args.count)\r\n")
        for a in args {
            b.writeString("$\(a.count)\r\n")
            b.writeBytes(a)
            b.writeString("\r\n")
        }
        waiting.append(reply)
        context.write(wrapOutboundOut(b), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        waiting.popFirst()?.succeed(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        while let p = waiting.popFirst() { p.fail(CrucialError(.connectionLost, "redis connection closed")) }
    }
}

/// One pipelined Redis connection, with the same write coalescing as Crucial's client.
final class RedisConnection: Sendable {
    let channel: any Channel
    private let writer: WriteCoalescer<RESPCommand>

    init(port: Int, group: any EventLoopGroup) async throws {
        channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                    try ch.pipeline.syncOperations.addHandler(RESPHandler())
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        writer = WriteCoalescer(channel: channel) { $0.reply.fail(CrucialError(.connectionLost, "redis connection closed")) }
    }

    func command(_ args: [[UInt8]]) async throws -> RESP {
        let promise = channel.eventLoop.makePromise(of: RESP.self)
        writer.write(RESPCommand(args: args, reply: promise))
        let reply = try await promise.futureResult.get()
        if case .error(let e) = reply { throw CrucialError(.userError, "redis: \(e)") }
        return reply
    }

    func close() { channel.close(promise: nil) }
}

/// A pool of pipelined Redis connections, like CrucialClient's: connection `i` on event loop
/// `i % loops`; a command made on one of those loops takes one of its own, others go
/// round-robin.
final class RedisPool: Sendable {
    let connections: [RedisConnection]
    private let loops: [any EventLoop]
    /// One per loop, as `CrucialClient.taskExecutor`.
    let executors: [EventLoopTaskExecutor]
    private let next = Atomic<Int>(0)

    init(port: Int, connections: Int) async throws {
        loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        executors = loops.map(EventLoopTaskExecutor.init)
        var cs: [RedisConnection] = []
        for i in 0..<connections { cs.append(try await RedisConnection(port: port, group: loops[i % loops.count])) }
        self.connections = cs
    }

    func command(_ args: String...) async throws -> RESP { try await command(args.map { Array($0.utf8) }) }

    func command(_ args: [[UInt8]]) async throws -> RESP {
        let turn = next.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
        return try await connections[loopAffineSlot(turn: turn, count: connections.count, loops: loops)].command(args)
    }

    /// Every command at once on one of the pool's loops (written in one turn, one flush):
    /// Redis pipelining the way `CrucialClient.batch` does it, for the same harness.
    func batch(_ commands: [[[UInt8]]]) async throws -> [RESP] {
        let executor = executors[(next.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max) % executors.count]
        return try await withTaskExecutorPreference(executor) {
            try await withThrowingTaskGroup(of: (Int, RESP).self) { group in
                for (i, command) in commands.enumerated() { group.addTask { (i, try await self.command(command)) } }
                var replies = [RESP](repeating: .simple(""), count: commands.count)
                for try await (i, reply) in group { replies[i] = reply }
                return replies
            }
        }
    }

    func close() { connections.forEach { $0.close() } }
}
