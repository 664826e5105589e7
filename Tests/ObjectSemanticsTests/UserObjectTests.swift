import CrucialClient
import CrucialTesting
import CrucialLambda
import CrucialTestFunctions
import Foundation
import Testing

/// A cloud function holding proxies named by their properties, as the paper's fields.
struct CentroidWorker: Runnable {
    @SharedKey var centroids = TestCentroids.Shared(TestCentroids(k: 2, dims: 2))
    @SharedKey("tally-explicit") var tally = Tally.Shared(Tally())
    @SharedKey var runs = AtomicLong()
    var id: Int

    func run() async throws {
        try await centroids.update([[Double(id), 0], [0, 1]], counts: [1, 1])
        try await tally.add(1, note: "worker \(id)")
        try await runs.incrementAndGet()
    }
}

@Suite("User-defined shared objects (@Shared)")
struct UserObjectTests {
    @Test("16 tasks update one GlobalCentroids-like object; it ends in the exact expected state")
    func concurrentUpdates() async throws {
        let server = InProcessServer(sharedTypes: [TestCentroids.self, Tally.self])
        let client = server.client()
        defer { client.close() }
        let k = 4, dims = 3, rounds = 25
        let centroids = TestCentroids.Shared("centroids", TestCentroids(k: k, dims: dims), client: client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    for round in 0..<rounds {
                        // Worker w adds w+1 to every coordinate of cluster (w + round) % k, with count 1.
                        var partial = Array(repeating: Array(repeating: 0.0, count: dims), count: k)
                        var counts = Array(repeating: 0, count: k)
                        let c = (worker + round) % k
                        partial[c] = Array(repeating: Double(worker + 1), count: dims)
                        counts[c] = 1
                        try await centroids.update(partial, counts: counts)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await centroids.updateCount() == 16 * rounds)
        // The same updates applied locally give the expected state.
        let local = TestCentroids(k: k, dims: dims)
        for worker in 0..<16 {
            for round in 0..<rounds {
                var partial = Array(repeating: Array(repeating: 0.0, count: dims), count: k)
                var counts = Array(repeating: 0, count: k)
                partial[(worker + round) % k] = Array(repeating: Double(worker + 1), count: dims)
                counts[(worker + round) % k] = 1
                try local.update(partial, counts: counts)
            }
        }
        #expect(try await centroids.centroids() == local.centroids())
    }

    @Test("A method that throws on the server comes back as USER_ERROR with its type and message")
    func remoteErrors() async throws {
        let server = InProcessServer(sharedTypes: [TestCentroids.self, Tally.self])
        let client = server.client()
        defer { client.close() }
        let centroids = TestCentroids.Shared("bad", TestCentroids(k: 2, dims: 2), client: client)
        do {
            try await centroids.update([[1, 2]], counts: [1])
            Issue.record("a shape mismatch must throw")
        } catch let e as CrucialError {
            #expect(e.code == .userError)
            #expect(e.message.contains("TestCentroids.update threw CrucialTestFunctions.CentroidError"))
            #expect(e.message.contains("partial has 1 rows or columns where 2 were expected"))
        }
        // The object is intact and still serves.
        #expect(try await centroids.updateCount() == 0)
    }

    @Test("Struct types: mutating methods write, default arguments and @Shared(name:) work")
    func structTypes() async throws {
        let server = InProcessServer(sharedTypes: [TestCentroids.self, Tally.self])
        let client = server.client()
        defer { client.close() }
        let tally = Tally.Shared("t", Tally(), client: client)
        #expect(tally.ref == ObjectRef(type: "test.Tally", key: "t"))
        #expect(try await tally.add(5) == 5)
        #expect(try await tally.add(2, note: "two") == 7)
        #expect(try await tally.current() == 7)
        #expect(try await tally.notes(last: 3) == ["two"])
        var expected = Tally()
        expected.add(5)
        expected.add(2, note: "two")
        #expect(try await tally.snapshot() == expected)
        #expect(Tally.crucialMethods == ["add": .write, "current": .read, "notes": .read, "snapshot": .read])
        #expect(TestCentroids.crucialMethods.keys.sorted() == ["centroids", "update", "updateCount"])
    }

    @Test("Calls with a wrong shape get precise errors; a server without the type names it")
    func badCalls() async throws {
        let server = InProcessServer(sharedTypes: [TestCentroids.self, Tally.self])
        let client = server.client(retries: 0)
        defer { client.close() }
        let ref = ObjectRef(type: "TestCentroids", key: "raw")
        let initial = try TestCentroids(k: 1, dims: 1).crucialEncode()
        await #expect(throws: CrucialError.self) { try await client.invoke(ref, "update", [.string("x")], create: Create(initial: initial)) }
        do {
            _ = try await client.invoke(ref, "update", [.string("x"), .list([])], create: Create(initial: initial))
            Issue.record("a string is not a matrix")
        } catch let e as CrucialError {
            #expect(e.code == .badArguments)
            #expect(e.message.contains("TestCentroids.update: argument 1 (partial) is not a Array<Array<Double>>"))
        }
        do {
            _ = try await client.invoke(ref, "reset", [], create: Create(initial: initial))
            Issue.record("private methods are not shipped")
        } catch let e as CrucialError {
            #expect(e.code == .unknownMethod)
            #expect(e.message.contains("TestCentroids has no shipped method \"reset\"; it has: centroids, update, updateCount"))
        }
        do {
            _ = try await client.invoke(ObjectRef(type: "TestCentroids", key: "junk"), "updateCount", [], create: Create(initial: .int(3)))
            Issue.record("an int is not a TestCentroids state")
        } catch let e as CrucialError {
            #expect(e.code == .badInitialState)
        }

        let plain = InProcessServer()
        let plainClient = plain.client(retries: 0)
        defer { plainClient.close() }
        do {
            _ = try await TestCentroids.Shared("c", TestCentroids(k: 1, dims: 1), client: plainClient).updateCount()
            Issue.record("a server without the type must refuse it")
        } catch let e as CrucialError {
            #expect(e.code == .unknownType)
            #expect(e.message.contains("no object type \"TestCentroids\" on this server: a @Shared type must be linked"))
        }
        try await plain.shutdown()
    }

    @Test("@SharedKey names an object after its property, user-defined or built-in; proxies travel inside a cloud thread")
    func keysAndCloudThreads() async throws {
        let server = InProcessServer(sharedTypes: [TestCentroids.self, Tally.self])
        let client = server.client()
        defer { client.close() }
        let worker = CentroidWorker(id: 3)
        #expect(worker.centroids.ref == ObjectRef(type: "TestCentroids", key: "centroids"))
        #expect(worker.tally.ref == ObjectRef(type: "test.Tally", key: "tally-explicit"))
        #expect(worker.runs.ref.key == "runs")

        // A Runnable's proxies survive its JSON encoding, key, lifetime and initial state included.
        let decoded = try JSONDecoder().decode(CentroidWorker.self, from: JSONEncoder().encode(worker))
        #expect(decoded.centroids.ref == worker.centroids.ref)

        let executor = CloudExecutor(invoker: server.invoker, client: client)
        try await executor.invokeAll((1...4).map { CentroidWorker(id: $0) })
        let centroids = TestCentroids.Shared("centroids", TestCentroids(k: 2, dims: 2), client: client)
        #expect(try await centroids.centroids() == [[2.5, 0], [0, 1]])
        #expect(try await Tally.Shared("tally-explicit", Tally(), client: client).current() == 4)
        #expect(try await AtomicLong("runs", client: client).get() == 4)

        // Without a key, a proxy is a new object of its own, as a constructor makes one; it
        // keeps its unique key inside a cloud thread.
        let mine = AtomicLong(initial: 5, client: client), other = AtomicLong(initial: 5, client: client)
        #expect(mine.ref.key.hasPrefix("~") && mine.ref != other.ref && mine.handle.isAnonymous)
        #expect(try await mine.addAndGet(1) == 6)
        #expect(try await other.get() == 5)
        let carried = try JSONDecoder().decode(AtomicLong.self, from: JSONEncoder().encode(mine))
        #expect(carried.ref == mine.ref && !carried.handle.isAnonymous)
        #expect(try await TestCentroids.Shared(TestCentroids(k: 1, dims: 1), client: client).updateCount() == 0)
        // A persistent one must be named: nobody could find it again.
        do {
            _ = try await AtomicLong(persistent: true, client: client).get()
            Issue.record("an anonymous persistent object must be refused")
        } catch let e as CrucialError {
            #expect(e.code == .invalidArgument && e.message.contains("@SharedKey"))
        }
    }
}
