import CrucialClient
import CrucialTesting
import Testing

@Suite("Collections and arrays on a real server")
struct CollectionTests {
    @Test("List, set and map operations from concurrent tasks")
    func concurrentCollections() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let list = SharedList<Int>("list", client: client)
        let set = SharedSet<String>("set", client: client)
        let map = SharedMap<String, Int>("map", client: client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<200 {
                        try await list.add(t * 1000 + i)
                        try await set.add("k\(i % 50)")
                        try await map.merge("word\(i % 10)", 1, .sum)
                        _ = try await map.putIfAbsent("first", t)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await list.size() == 1600)
        let all = try await list.elements()
        #expect(Set(all).count == 1600)
        for t in 0..<8 {
            // Each task's own additions keep their order.
            let mine = all.filter { $0 / 1000 == t }
            #expect(mine == mine.sorted())
        }
        #expect(try await set.size() == 50)
        #expect(try await map.get("word3") == 160)
        #expect(try await map.size() == 11)
        #expect((0..<8).contains(try await map.get("first") ?? -1))
    }

    @Test("List and map methods")
    func methods() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let list = SharedList<String>("l", client: client)
        try await list.addAll(["a", "b", "c"])
        try await list.insert("z", at: 0)
        #expect(try await list.elements() == ["z", "a", "b", "c"])
        #expect(try await list.set(1, "A") == "a")
        #expect(try await list.remove(at: 0) == "z")
        #expect(try await list.remove("b"))
        #expect(try await list.firstIndex(of: "c") == 1)
        #expect(try await list.subList(0..<1) == ["A"])
        await #expect(throws: CrucialError.self) { try await list.get(99) }

        let map = SharedMap<String, [Double]>("grads", client: client)
        try await map.merge("w", [1, 2], .sum)
        try await map.merge("w", [0.5, 0.5], .sum)
        #expect(try await map.get("w") == [1.5, 2.5])
        #expect(try await map.put("w", [0]) == [1.5, 2.5])
        #expect(try await map.replace("w", expect: [0], update: [9]))
        #expect(try await map.get("absent") == nil)
        #expect(try await map.get("absent", default: [7]) == [7])
        try await map.putAll(["a": [1], "b": [2]])
        #expect(Set(try await map.keys()) == ["w", "a", "b"])
        // A mergeAll with one bad entry changes nothing.
        let counts = SharedMap<String, Value>("mixed", client: client)
        try await counts.put("n", .int(1))
        try await counts.put("s", .string("x"))
        await #expect(throws: CrucialError.self) { try await counts.mergeAll(["n": .int(1), "s": .int(1)], .sum) }
        #expect(try await counts.get("n") == .int(1))

        let scores = SharedSortedMap<Int, String>("scores", client: client)
        for (k, v) in [(5, "e"), (1, "a"), (9, "i"), (3, "c")] { try await scores.put(k, v) }
        #expect(try await scores.top(2).map(\.key) == [9, 5])
        #expect(try await scores.head(2).map(\.value) == ["a", "c"])
        #expect(try await scores.range(from: 2, to: 9).map(\.key) == [3, 5])
        #expect(try await scores.firstKey() == 1)
        #expect(try await scores.lastKey() == 9)
        #expect(try await scores.floorKey(4) == 3)
        #expect(try await scores.ceilingKey(6) == 9)
    }

    @Test("Arrays and matrices")
    func arrays() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let gradient = AtomicDoubleArray("gradient", length: 100, client: client)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for _ in 0..<25 { try await gradient.add([Double](repeating: Double(t), count: 100)) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await gradient.elements() == [Double](repeating: 25 * 28, count: 100))
        await #expect(throws: CrucialError.self) { try await gradient.add([1, 2]) }

        let bytes = AtomicByteArray("bytes", length: 4, client: client)
        #expect(try await bytes.addAndGet(0, 300) == 44)  // wraps
        #expect(try await bytes.compareAndSet(0, 44, 1))
        #expect(try await bytes.elements() == [1, 0, 0, 0])

        let votes = AtomicMatrix("votes", rows: 2, cols: 3, client: client)
        try await votes.merge([[1, 0, 0], [0, 1, 0]])
        try await votes.merge([[1, 0, 0], [0, 0, 1]])
        #expect(try await votes.elements() == [[2, 0, 0], [0, 1, 1]])
        #expect(try await votes.row(1) == [0, 1, 1])
        #expect(try await votes.addAndGet(1, 2, 0.5) == 1.5)
        #expect(try await votes.shape() == (2, 3))
        await #expect(throws: CrucialError.self) { try await votes.merge([[1, 2]]) }
    }

    @Test("Removal, listing and create-on-first-use")
    func lifecycle() async throws {
        let server = InProcessServer()
        let client = server.client()
        defer { client.close() }
        let counter = AtomicLong("c", initial: 10, client: client)
        #expect(try await counter.incrementAndGet() == 11)
        #expect(try await client.listObjects().map(\.ref) == [ObjectRef(type: "AtomicLong", key: "c")])
        #expect(try await counter.remove())
        #expect(try await !counter.remove())
        // The proxy already created its object; it does not resurrect it silently.
        do {
            _ = try await counter.get()
            Issue.record("a removed object must not be found")
        } catch let e as CrucialError {
            #expect(e.code == .notFound)
        }
        // A new proxy creates it again from its initial state.
        #expect(try await AtomicLong("c", initial: 3, client: client).get() == 3)
    }
}
