import CrucialCore
@testable import CrucialClient
import CrucialTransport
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import Testing

/// A connection that goes nowhere: the pool's bookkeeping is what is tested.
final class FakeConnection: FrameConnection {
    let hello = HelloReply(serverID: "fake", maxFrameSize: 1 << 20)
    private let open = Atomic<Bool>(true)
    let number: Int
    init(_ number: Int) { self.number = number }
    var isActive: Bool { open.load(ordering: .relaxed) }
    func send(_ frame: Frame, id: UInt64) -> EventLoopFuture<Frame> { fatalError("not used") }
    func close() { open.store(false, ordering: .relaxed) }
}

@Suite("The client's connection pool and session keeper, without sockets")
struct ConnectionPoolTests {
    @Test("Calls spread over the pool's connections; each is opened once, and again once closed")
    func opensOncePerSlot() async throws {
        let pool = ConnectionPool(size: 2)
        let opened = Atomic<Int>(0)
        let open: @Sendable ((any EventLoop)?) async throws -> any FrameConnection = { _ in
            FakeConnection(opened.wrappingAdd(1, ordering: .relaxed).newValue)
        }
        var seen: Set<Int> = []
        for _ in 0..<10 { seen.insert((try await pool.connection(to: nil, opening: open) as! FakeConnection).number) }
        #expect(seen == [1, 2] && opened.load(ordering: .relaxed) == 2)
        #expect(pool.openConnection(to: nil) != nil)
        #expect(pool.openConnection(to: "member:1") == nil, "no connection to that member yet")
        pool.closeAll()
        #expect(pool.openConnection(to: nil) == nil)
        _ = try await pool.connection(to: nil, opening: open)
        #expect(opened.load(ordering: .relaxed) == 3)
    }

    @Test("A failed open is not kept: the next call opens again")
    func failedOpenIsRetried() async throws {
        let pool = ConnectionPool(size: 1)
        let attempts = Atomic<Int>(0)
        let open: @Sendable ((any EventLoop)?) async throws -> any FrameConnection = { _ in
            if attempts.wrappingAdd(1, ordering: .relaxed).newValue == 1 { throw CrucialError(.connectionFailed, "refused") }
            return FakeConnection(0)
        }
        await #expect(throws: CrucialError.self) { try await pool.connection(to: "m:1", opening: open) }
        _ = try await pool.connection(to: "m:1", opening: open)
        #expect(attempts.load(ordering: .relaxed) == 2 && pool.openConnection(to: "m:1") != nil)
    }

    @Test("A call made on one of the pool's loops takes a connection opened on that loop; other calls go round-robin")
    func loopAffinity() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { group.shutdownGracefully { _ in } }
        let loops = Array(group.makeIterator())
        let pool = ConnectionPool(size: 4, loops: loops)
        let opened = Mutex<[Int: Int]>([:])  // connection number → index of the loop it was opened on
        let open: @Sendable ((any EventLoop)?) async throws -> any FrameConnection = { loop in
            let index = try #require(loops.firstIndex { $0 === loop })
            return opened.withLock { o in
                o[o.count] = index
                return FakeConnection(o.count - 1)
            }
        }
        for (index, loop) in loops.enumerated() {
            let executor = EventLoopTaskExecutor(loop)
            try await withTaskExecutorPreference(executor) {
                for _ in 0..<6 {
                    #expect(loop.inEventLoop)
                    let c = try await pool.connection(to: nil, opening: open) as! FakeConnection
                    #expect(opened.withLock { $0[c.number] } == index, "a call on loop \(index) got a connection of another loop")
                }
            }
        }
        #expect(opened.withLock { $0.count } == 4, "two connections per loop, each opened once")
        // Fewer connections than loops: a call on a loop without one takes any.
        let small = ConnectionPool(size: 1, loops: loops)
        try await withTaskExecutorPreference(EventLoopTaskExecutor(loops[1])) {
            _ = try await small.connection(to: nil, opening: open)
        }
        #expect(opened.withLock { $0[4] } == 0)
        // The slot arithmetic: 5 connections on 2 loops; loop 0 has slots 0, 2, 4 and loop 1 has 1, 3.
        let onLoop0 = try await loops[0].submit { (0..<4).map { loopAffineSlot(turn: $0, count: 5, loops: loops) } }.get()
        let onLoop1 = try await loops[1].submit { (0..<4).map { loopAffineSlot(turn: $0, count: 5, loops: loops) } }.get()
        #expect(onLoop0 == [0, 2, 4, 0] && onLoop1 == [1, 3, 1, 3])
        #expect((0..<6).map { loopAffineSlot(turn: $0, count: 5, loops: loops) } == [0, 1, 2, 3, 4, 0], "off the loops: round-robin")
    }

    @Test("The session keeper beats at once, then every quarter lease, names the client once asked, and stops")
    func sessionKeeper() {
        let loop = EmbeddedEventLoop()
        let keeper = SessionKeeper(loop: loop, lease: .seconds(4))
        let beats = Mutex<[Bool]>([])
        let beat: @Sendable (Bool) -> Void = { namesClient in beats.withLock { $0.append(namesClient) } }
        keeper.start(beat)
        keeper.start(beat)  // already running: no second timer
        loop.run()
        #expect(beats.withLock { $0 } == [false] && keeper.isRunning)
        loop.advanceTime(by: .seconds(1))
        #expect(beats.withLock { $0 } == [false, false])
        keeper.keepClient(beat)
        loop.run()
        loop.advanceTime(by: .seconds(1))
        #expect(beats.withLock { $0 } == [false, false, true, true])
        keeper.stop()
        loop.advanceTime(by: .seconds(5))
        #expect(beats.withLock { $0 }.count == 4 && !keeper.isRunning)
    }
}
