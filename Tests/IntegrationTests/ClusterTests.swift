import CrucialClient
import Foundation
import Synchronization
import Testing

/// Real `crucial-server` processes forming a cluster through a real etcd.
final class TestCluster: Sendable {
    let etcd: TestEtcd
    let rf: Int
    let leaseTTL: Int
    private let members = Mutex<[String: TestServer]>([:])

    init(rf: Int = 2, leaseTTL: Int = 2) throws {
        etcd = try TestEtcd()
        self.rf = rf
        self.leaseTTL = leaseTTL
    }

    /// Starts member `id` on a free port; returns once it has joined the cluster.
    @discardableResult
    func start(_ id: String) throws -> TestServer {
        let port = try ServerProcess.freePort()
        let server = try TestServer(
            port: port,
            arguments: [
                "--etcd", etcd.endpoint, "--node-id", id, "--advertise", "127.0.0.1:\(port)", "--rf", String(rf), "--lease-ttl",
                String(leaseTTL), "--log-level", "notice",
            ])
        members.withLock { $0[id] = server }
        return server
    }

    subscript(id: String) -> TestServer? { members.withLock { $0[id] } }

    /// A client that knows one member to start from; it learns the others.
    func client(via id: String) -> CrucialClient {
        CrucialClient(configuration: .init(servers: [self[id]!.address], connections: 4, failoverTimeout: .seconds(60)))
    }
}

/// Increments counters from many tasks and remembers which increments were acknowledged.
final class IncrementWorkload: Sendable {
    let counters: [AtomicLong]
    let acked: Mutex<[Int64]>
    let done = Atomic<Int>(0)

    init(client: CrucialClient, count: Int) {
        counters = (0..<count).map { AtomicLong("counter-\($0)", initial: 0, persistent: true, client: client) }
        acked = Mutex([Int64](repeating: 0, count: count))
    }

    /// `tasks` tasks each make `perTask` increments on random counters, while `meanwhile`
    /// runs with a way to wait until a number of increments were acknowledged.
    func run(tasks: Int, perTask: Int, meanwhile: @escaping @Sendable (_ waitFor: @Sendable (Int) async throws -> Void) async throws -> Void)
        async throws
    {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask { [self] in
                    var rng = SplitMix(seed: UInt64(t + 1))
                    for _ in 0..<perTask {
                        let k = Int(rng.next() % UInt64(counters.count))
                        try await counters[k].incrementAndGet()
                        acked.withLock { $0[k] += 1 }
                        done.add(1, ordering: .relaxed)
                    }
                }
            }
            group.addTask { [self] in
                try await meanwhile { target in
                    // A failed increment cancels the group: stop waiting then.
                    while done.load(ordering: .relaxed) < target { try await Task.sleep(for: .milliseconds(20)) }
                }
            }
            // The first failure ends the run (waitForAll would wait for `meanwhile` first).
            for try await _ in group {}
        }
    }

    /// Every counter against the increments acknowledged on it.
    func check() async throws {
        let expected = acked.withLock { $0 }
        var wrong: [String] = []
        for (k, counter) in counters.enumerated() {
            let value = try await counter.get()
            if value != expected[k] { wrong.append("counter-\(k) = \(value), acknowledged \(expected[k])") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) counters differ: \(wrong.prefix(10).joined(separator: "; "))")
        #expect(expected.reduce(0, +) == Int64(done.load(ordering: .relaxed)))
    }
}

/// A small deterministic generator, so that each task's choice of counters is reproducible.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("A cluster: etcd membership, replication, re-balancing", .serialized)
struct ClusterTests {
    @Test("3 servers, rf=2: one SIGKILLed and later a new one joining lose and double no acknowledged increment")
    func crashAndJoin() async throws {
        let cluster = try TestCluster()
        for id in ["a", "b", "c"] { try cluster.start(id) }
        let client = cluster.client(via: "a")
        let work = IncrementWorkload(client: client, count: 200)
        try await work.run(tasks: 20, perTask: 150) { waitFor in
            try await waitFor(1000)
            cluster["b"]!.kill9()
            try await waitFor(2000)
            try cluster.start("d")
        }
        try await work.check()
        let view = try #require(client.view)
        #expect(view.members.map(\.id) == ["a", "c", "d"])
    }

    @Test("3 servers, rf=2: one leaving gracefully (SIGTERM) loses and doubles no acknowledged increment")
    func gracefulLeave() async throws {
        let cluster = try TestCluster()
        for id in ["a", "b", "c"] { try cluster.start(id) }
        let client = cluster.client(via: "a")
        let work = IncrementWorkload(client: client, count: 200)
        try await work.run(tasks: 20, perTask: 100) { waitFor in
            try await waitFor(700)
            #expect(cluster["b"]!.stop() == 0)
        }
        try await work.check()
        #expect(client.view?.members.map(\.id) == ["a", "c"])
    }

    @Test("crucial cluster status shows the view and each member's objects; a lone server says so")
    func status() async throws {
        let cluster = try TestCluster()
        for id in ["a", "b"] { try cluster.start(id) }
        let client = cluster.client(via: "b")
        defer { client.close() }
        for i in 0..<10 { try await AtomicLong("p\(i)", initial: 0, persistent: true, client: client).incrementAndGet() }
        try await AtomicLong("e", initial: 0, client: client).incrementAndGet()
        let result = try runCLI(["cluster", "status", "--servers", cluster["a"]!.address, "--json"])
        #expect(result.status == 0, "\(result.err)")
        let rows = result.out.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(rows.map { $0["node"] as? String } == ["a", "b"])
        // rf = 2 over two members: both hold every persistent counter; the ephemeral one lives once.
        #expect(rows.map { $0["persistent"] as? Int } == [10, 10])
        #expect(rows.compactMap { $0["objects"] as? Int }.reduce(0, +) == 21)
        #expect(rows.compactMap { $0["primary"] as? Int }.reduce(0, +) == 11)
        let table = try runCLI(["cluster", "status", "--servers", cluster["a"]!.address])
        #expect(table.out.hasPrefix("view "), "\(table.out)")

        let lone = try TestServer()
        let alone = try runCLI(["cluster", "status", "--servers", lone.address])
        #expect(alone.out.contains("is a server on its own"), "\(alone.out)")
    }
}
