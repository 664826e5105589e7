import CrucialClient
import CrucialTesting
import NIOPosix
import Testing

@Suite("Atomic counters on a real server")
struct CounterTests {
    @Test("8 tasks × 2,500 addAndGet on one AtomicLong give exactly 20,000")
    func concurrentIncrements() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let counter = AtomicLong("counter", initial: 0, client: client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<2_500 { try await counter.addAndGet(1) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await counter.get() == 20_000)
        try await server.shutdown()
    }

    @Test("Tasks on the client's task executor (its connections' event loops) make exactly the increments they were answered")
    func onTheClientsLoops() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let counter = AtomicLong("counter", initial: 0, client: client)
        let answers = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for _ in 0..<8 {
                group.addTask(executorPreference: client.taskExecutor) {
                    var seen: [Int64] = []
                    for _ in 0..<2_000 {
                        seen.append(try await counter.incrementAndGet())
                        #expect(MultiThreadedEventLoopGroup.currentEventLoop != nil, "the task left its loop")
                    }
                    return seen
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        // Each answer once: none lost, none doubled, in whatever order the tasks got them.
        #expect(answers.sorted() == Array(1...16_000))
        #expect(try await counter.get() == 16_000)
        try await server.shutdown()
    }

    @Test("A batch makes every call and returns the results in order; a failing call fails the batch and the others stay done")
    func batch() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let counters = (0..<100).map { AtomicLong("c\($0)", initial: Int64($0) * 10, client: client) }
        let values = try await client.batch(counters) { try await $0.incrementAndGet() }
        #expect(values == (0..<100).map { Int64($0) * 10 + 1 })
        #expect(try await client.batch([Int]()) { _ in 0 } == [])
        let list = SharedList<Int>("l", client: client)
        do {
            _ = try await client.batch(0..<10) { i in
                if i == 3 { _ = try await list.get(99) }  // out of range
                return try await counters[i].addAndGet(5)
            }
            Issue.record("the failing call did not fail the batch")
        } catch let error as CrucialError {
            #expect(error.code == .outOfRange, "\(error)")
        }
        let after = try await client.batch(counters.prefix(10)) { try await $0.get() }
        var expected: [Int64] = (0..<10).map { Int64($0 * 10 + 6) }
        expected[3] = 31  // its call failed: not incremented
        #expect(after == expected)
        try await server.shutdown()
    }

    @Test("A pipeline sends every call at once and returns the results in order, creating objects on first use")
    func pipeline() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let counters = (0..<100).map { AtomicLong("p\($0)", initial: Int64($0) * 10, client: client) }
        #expect(try await client.pipeline([]) == [])
        let first = try await client.pipeline(counters.map { .init($0, "incrementAndGet") })
        #expect(first == (0..<100).map { .int(Int64($0) * 10 + 1) })
        // Calls on one object apply in the pipeline's order; reads are told by the built-in table.
        let c = counters[7]
        let ordered = try await client.pipeline([.init(c, "addAndGet", [.int(5)]), .init(c, "get"), .init(c, "getAndSet", [.int(0)]), .init(c, "get")])
        #expect(ordered == [.int(76), .int(76), .int(76), .int(0)])
        #expect(CrucialClient.Call(c, "get").readOnly && !CrucialClient.Call(c, "set", [.int(1)]).readOnly)
        // Proxies of other types and of a @Shared-free map, in one pipeline.
        let map = SharedMap<String, Int>("pm", client: client)
        let mixed = try await client.pipeline([.init(map, "put", [.string("a"), .int(1)]), .init(counters[0], "get"), .init(map, "size")])
        #expect(mixed == [.null, .int(1), .int(1)])
        #expect(try await map.get("a") == 1)
        try await server.shutdown()
    }

    @Test("A pipeline's failing calls fail alone: the others are done, pipeline throws the first failure in order")
    func pipelineFailures() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let counters = (0..<4).map { AtomicLong("f\($0)", initial: 0, client: client) }
        let calls: [CrucialClient.Call] = [
            .init(counters[0], "incrementAndGet"), .init(counters[1], "noSuchMethod"), .init(counters[2], "addAndGet", [.string("x")]),
            .init(AtomicLong("nul\u{0}key", client: client), "get"), .init(counters[3], "incrementAndGet"),
        ]
        let results = await client.pipelineResults(calls)
        #expect(results.count == 5)
        #expect(try results[0].get() == .int(1))
        #expect(results[4].map { $0 } == .success(.int(1)))
        for (i, code) in [(1, CrucialError.Code.unknownMethod), (2, .badArguments), (3, .invalidArgument)] {
            guard case .failure(let e) = results[i] else {
                Issue.record("call \(i) did not fail")
                continue
            }
            #expect(e.code == code, "call \(i): \(e)")
        }
        do {
            _ = try await client.pipeline(calls)
            Issue.record("the pipeline did not throw")
        } catch let error as CrucialError {
            #expect(error.code == .unknownMethod, "\(error)")
        }
        // Every call went through once per pipeline: the good ones twice in all.
        #expect(try await counters[0].get() == 2)
        #expect(try await counters[3].get() == 2)
        try await server.shutdown()
    }

    @Test("AtomicLong and AtomicInt methods follow java.util.concurrent")
    func methods() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let l = AtomicLong("l", initial: 5, client: client)
        #expect(try await l.get() == 5)
        #expect(try await l.getAndAdd(3) == 5)
        #expect(try await l.addAndGet(2) == 10)
        #expect(try await l.incrementAndGet() == 11)
        #expect(try await l.getAndIncrement() == 11)
        #expect(try await l.decrementAndGet() == 11)
        #expect(try await l.getAndDecrement() == 11)
        #expect(try await l.compareAndSet(10, 42))
        #expect(try await !l.compareAndSet(10, 43))
        #expect(try await l.getAndSet(7) == 42)
        #expect(try await l.accumulateAndGet(100, "max") == 100)
        try await l.set(Int64.max)
        #expect(try await l.incrementAndGet() == Int64.min)  // wraps, as in Java

        let i = AtomicInt("i", initial: Int32.max, client: client)
        #expect(try await i.incrementAndGet() == Int32.min)
        // A second proxy with another initial value does not reset the object.
        let again = AtomicLong("l", initial: 0, client: client)
        #expect(try await again.get() == Int64.min)

        let b = AtomicBoolean("flag", client: client)
        #expect(try await b.compareAndSet(false, true))
        #expect(try await b.get())
        let d = AtomicDouble("d", initial: 1.5, client: client)
        #expect(try await d.addAndGet(2.25) == 3.75)
        #expect(try await d.compareAndSet(3.75, -1))
        struct Model: Codable, Sendable, Equatable {
            var name: String
            var weights: [Double]
        }
        let r = try AtomicReference<Model?>("model", initial: nil, client: client)
        #expect(try await r.get() == nil)
        let m = Model(name: "m", weights: [1, 2, 3])
        #expect(try await r.compareAndSet(nil, m))
        #expect(try await r.get() == m)
        #expect(try await !r.compareAndSet(nil, m))
    }
}
