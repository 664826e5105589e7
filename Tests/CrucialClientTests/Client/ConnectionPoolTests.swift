import CrucialCore
@testable import CrucialClient
import CrucialTransport
import NIOCore
import NIOEmbedded
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
        let open: @Sendable () async throws -> any FrameConnection = {
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
        let open: @Sendable () async throws -> any FrameConnection = {
            if attempts.wrappingAdd(1, ordering: .relaxed).newValue == 1 { throw CrucialError(.connectionFailed, "refused") }
            return FakeConnection(0)
        }
        await #expect(throws: CrucialError.self) { try await pool.connection(to: "m:1", opening: open) }
        _ = try await pool.connection(to: "m:1", opening: open)
        #expect(attempts.load(ordering: .relaxed) == 2 && pool.openConnection(to: "m:1") != nil)
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
