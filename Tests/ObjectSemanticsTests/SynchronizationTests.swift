import CrucialClient
import CrucialTesting
import Testing

@Suite("Synchronization objects on a real server")
struct SynchronizationTests {
    @Test("A 16-party CyclicBarrier reused for 50 generations")
    func barrierGenerations() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let parties = 16, generations = 50
        let barrier = CyclicBarrier("iteration", parties: parties, client: client)
        let arrivals = AtomicLong("arrivals", client: client)
        let indices = SharedList<Int>("indices", client: client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<parties {
                group.addTask {
                    for g in 0..<generations {
                        try await arrivals.incrementAndGet()
                        let index = try await barrier.await()
                        // Nobody passes generation g before all parties arrived at it.
                        let seen = try await arrivals.get()
                        #expect(seen >= Int64(parties * (g + 1)))
                        if g == generations - 1 { try await indices.add(index) }
                    }
                }
            }
            try await group.waitForAll()
        }
        // The arrival indices of one generation are exactly 0..<parties.
        #expect(try await indices.elements().sorted() == Array(0..<parties))
        #expect(try await arrivals.get() == Int64(parties * generations))
        #expect(try await barrier.numberWaiting() == 0)
        #expect(try await !barrier.isBroken())
    }

    @Test("A timed-out await breaks the barrier for the others; reset repairs it")
    func barrierTimeout() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let barrier = CyclicBarrier("b", parties: 3, client: client)
        async let other: Int = barrier.await()
        try await waitUntil { try await barrier.numberWaiting() == 1 }
        await #expect(throws: CrucialError.self) { try await barrier.await(timeout: .milliseconds(50)) }
        do {
            _ = try await other
            Issue.record("the waiting party should see a broken barrier")
        } catch let e as CrucialError {
            #expect(e.code == .brokenBarrier)
        }
        #expect(try await barrier.isBroken())
        try await barrier.reset()
        #expect(try await !barrier.isBroken())
        // A barrier with another number of parties under the same key is refused.
        let wrong = CyclicBarrier("b", parties: 4, client: client)
        await #expect(throws: CrucialError(.badInitialState, "CyclicBarrier exists with 3 parties; this proxy asks for 4")) {
            try await wrong.parties()
        }
    }

    @Test("A Semaphore never over-admits under contention")
    func semaphoreAdmission() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let permits = 3
        let semaphore = Semaphore("gate", permits: permits, client: client)
        let inside = AtomicLong("inside", client: client)
        let maxInside = AtomicLong("maxInside", client: client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<12 {
                group.addTask {
                    for _ in 0..<20 {
                        let n = t % 2 == 0 ? 1 : 2  // multi-permit acquires too
                        try await semaphore.acquire(n)
                        let now = try await inside.addAndGet(Int64(n))
                        try await maxInside.accumulateAndGet(now, "max")
                        try await inside.addAndGet(-Int64(n))
                        try await semaphore.release(n)
                    }
                }
            }
            try await group.waitForAll()
        }
        let peak = try await maxInside.get()
        #expect(peak <= Int64(permits))
        #expect(peak >= 2)  // there was contention
        #expect(try await semaphore.availablePermits() == permits)
        #expect(try await !semaphore.tryAcquire(permits + 1))
        #expect(try await !semaphore.tryAcquire(permits + 1, timeout: .milliseconds(30)))
        #expect(try await semaphore.tryAcquire(permits))
        #expect(try await semaphore.drainPermits() == 0)
    }

    @Test("SharedFuture get before and after set")
    func future() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let future = SharedFuture<[Double]>("result", client: client)
        async let early = future.get()
        try await waitUntil { (try await client.listObjects(typePrefix: "SharedFuture").first?.waiters ?? 0) == 1 }
        #expect(try await !future.isDone())
        try await future.set([1, 2, 3])
        #expect(try await early == [1, 2, 3])
        #expect(try await future.get() == [1, 2, 3])
        #expect(try await future.isDone())
        await #expect(throws: CrucialError.self) { try await future.set([4]) }
        #expect(try await !future.trySet([4]))
        let never = SharedFuture<Int>("never", client: client)
        do {
            _ = try await never.get(timeout: .milliseconds(30))
            Issue.record("get should time out")
        } catch let e as CrucialError {
            #expect(e.code == .timeout)
        }
    }

    @Test("CountDownLatch releases waiters at zero")
    func latch() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let latch = CountDownLatch("done", count: 3, client: client)
        #expect(try await !latch.await(timeout: .milliseconds(20)))
        async let waited: Void = latch.await()
        for _ in 0..<3 { try await latch.countDown() }
        try await waited
        #expect(try await latch.count() == 0)
        #expect(try await latch.await(timeout: .milliseconds(20)))
    }
}

@Suite("Back-pressure: a bounded number of calls in flight per connection")
struct PendingLimitTests {
    @Test("A call beyond maxPendingCalls fails at once with PENDING_LIMIT, unsent; the waiting calls finish and calls go on")
    func pendingLimit() async throws {
        let server = InProcessServer()
        let client = server.client(configuration: .init(servers: [], connections: 1, maxPendingCalls: 3))
        defer { client.close() }
        let other = server.client()
        defer { other.close() }
        let barrier = CyclicBarrier("gate", parties: 4, client: client)
        let counter = AtomicLong("n", initial: 0, client: client)
        // Keep-alives of the session are not calls: they go whatever the limit (a full
        // connection must not let the session lapse), and the object exists before the waiters.
        #expect(try await barrier.numberWaiting() == 0)
        let waiters = (0..<3).map { _ in Task { try await barrier.await() } }
        let seen = CyclicBarrier("gate", parties: 4, client: other)
        try await waitUntil { try await seen.numberWaiting() == 3 }
        do {
            _ = try await counter.incrementAndGet()
            Issue.record("a fourth call was sent past the limit")
        } catch let error as CrucialError {
            #expect(error.code == .pendingLimit && error.message.contains("maxPendingCalls"), "\(error)")
        }
        _ = try await seen.await(timeout: .seconds(30))  // the fourth party, from the other connection: the three go
        for w in waiters { _ = try await w.value }
        #expect(try await counter.incrementAndGet() == 1, "the refused call was not applied")
    }
}
