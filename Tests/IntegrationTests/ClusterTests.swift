import CrucialTransport
import CrucialProcess
import CrucialClient
import CrucialTestFunctions
import CrucialExamples
import Foundation
import NIOPosix
import Synchronization
import Testing

/// Real `crucial-server` processes forming a cluster through a real etcd.
final class TestCluster: Sendable {
    let etcd: TestEtcd
    let rf: Int
    let leaseTTL: Int
    private let members = Mutex<[String: TestServer]>([:])
    /// Each member's port, kept for a restart in place.
    private let ports = Mutex<[String: Int]>([:])

    /// Set for every member (they run crucial-test-server then): see ClusterFaults in ClusterConfiguration.swift.
    let fault: String?

    /// Passed to every member.
    let extraArguments: [String]
    /// With `--data-dir` (one per member, under this folder) and this `--fsync` policy; nil: in memory.
    let fsync: String?
    let dataRoot = ScratchFolders.path("cluster")

    init(rf: Int = 2, leaseTTL: Int = 2, fault: String? = nil, arguments: [String] = [], fsync: String? = nil) async throws {
        etcd = try await TestEtcd()
        self.fault = fault
        self.extraArguments = arguments
        self.rf = rf
        self.leaseTTL = leaseTTL
        self.fsync = fsync
    }

    deinit {
        for server in members.withLock({ Array($0.values) }) where server.isRunning { server.kill9() }
        if ProcessInfo.processInfo.environment["CRUCIAL_KEEP_DATA"] == nil { try? FileManager.default.removeItem(atPath: dataRoot) } else { print("KEPT \(dataRoot)") }
    }

    /// Member `id`'s data directory (when the cluster keeps them).
    func dataDirectory(_ id: String) -> String { "\(dataRoot)/\(id)" }

    /// Starts member `id` (on the port it had before, if it ran before: a restart in place);
    /// returns once it has joined the cluster.
    @discardableResult
    func start(_ id: String) async throws -> TestServer {
        var attempt = 0
        while true {
            attempt += 1
            let (port, fresh) = try ports.withLock { p in
                if let known = p[id] { return (known, false) }
                let fresh = try ServerProcess.freePort()
                p[id] = fresh
                return (fresh, true)
            }
            let durable = fsync.map { ["--data-dir", dataDirectory(id), "--fsync", $0] } ?? []
            do {
                let server = try await TestServer(
                    port: port,
                    arguments: [
                        "--etcd", etcd.endpoint, "--node-id", id, "--advertise", "127.0.0.1:\(port)", "--rf", String(rf), "--lease-ttl",
                        String(leaseTTL), "--log-level", ProcessInfo.processInfo.environment["CRUCIAL_MEMBER_LOG"] ?? "notice",
                    ] + durable + extraArguments, executable: fault == nil ? nil : builtExecutable("crucial-test-server"),
                    environment: fault.map { ["CRUCIAL_TEST_FAULT": $0] } ?? [:])
                members.withLock { $0[id] = server }
                return server
            } catch where fresh && attempt < 5 {
                // A port found free can be taken before the member binds it (a client's
                // ephemeral port on a busy machine): a first start tries another one.
                ports.withLock { _ = $0.removeValue(forKey: id) }
            }
        }
    }

    subscript(id: String) -> TestServer? { members.withLock { $0[id] } }

    /// A client that knows one member to start from; it learns the others.
    func client(via id: String) -> CrucialClient {
        CrucialClient(configuration: .init(servers: [self[id]!.address], connections: 4, failoverTimeout: .seconds(60)))
    }

    /// A client that knows every member started so far (for runs where any may be down).
    func client() -> CrucialClient {
        let addresses = ports.withLock { $0.values.sorted().map { "127.0.0.1:\($0)" } }
        return CrucialClient(configuration: .init(servers: addresses, connections: 4, failoverTimeout: .seconds(60)))
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
    /// runs with a way to wait until a number of increments were acknowledged. `pipelined`:
    /// increments each task sends at once (``CrucialClient/pipeline(_:)``), 1 for one by one.
    func run(
        tasks: Int, perTask: Int, pipelined: Int = 1,
        meanwhile: @escaping @Sendable (_ waitFor: @Sendable (Int) async throws -> Void) async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask { [self] in
                    var rng = SplitMix64(seed: UInt64(t + 1))
                    for _ in 0..<perTask / pipelined {
                        let keys = (0..<pipelined).map { _ in Int(rng.next() % UInt64(counters.count)) }
                        if pipelined == 1 {
                            try await counters[keys[0]].incrementAndGet()
                        } else {
                            let client = counters[0].handle.client
                            _ = try await client.pipeline(keys.map { .init(counters[$0], "incrementAndGet") })
                        }
                        acked.withLock { for k in keys { $0[k] += 1 } }
                        done.add(keys.count, ordering: .relaxed)
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

@Suite("A cluster: etcd membership, replication, re-balancing", .serialized, .timeLimit(.minutes(3)))
struct ClusterTests {
    @Test("3 servers, rf=2: one SIGKILLed and later a new one joining lose and double no acknowledged increment")
    func crashAndJoin() async throws {
        let cluster = try await TestCluster()
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let client = cluster.client(via: "a")
        // Objects only ever read: their creation is replicated too.
        for i in 0..<30 { _ = try await AtomicLong("read-only-\(i)", initial: Int64(i), persistent: true, client: client).get() }
        let work = IncrementWorkload(client: client, count: 200)
        try await work.run(tasks: 20, perTask: 150) { waitFor in
            try await waitFor(1000)
            await cluster["b"]!.kill9()
            try await waitFor(2000)
            try await cluster.start("d")
        }
        try await work.check()
        for i in 0..<30 {
            // No Create: a lost object would be NOT_FOUND.
            let value = try await client.invoke(ObjectRef(type: "AtomicLong", key: "read-only-\(i)"), "get", readOnly: true)
            #expect(value == .int(Int64(i)))
        }
        let view = try #require(client.view)
        #expect(view.members.map(\.id) == ["a", "c", "d"])
    }

    @Test("3 servers, rf=2: pipelines of 8 increments across a member's SIGKILL and a join lose and double none")
    func pipelinesAcrossCrashAndJoin() async throws {
        let cluster = try await TestCluster()
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let client = cluster.client(via: "a")
        let work = IncrementWorkload(client: client, count: 200)
        // Calls routed to the killed member fail with their connection and are sent again to
        // the new primary; those routed in the old view come back WRONG_VIEW and go again too.
        try await work.run(tasks: 10, perTask: 240, pipelined: 8) { waitFor in
            try await waitFor(800)
            await cluster["b"]!.kill9()
            try await waitFor(1600)
            try await cluster.start("d")
        }
        try await work.check()
        #expect(client.pipelinedResent > 0, "no pipelined call had to be sent again")
        #expect(try #require(client.view).members.map(\.id) == ["a", "c", "d"])
    }

    @Test("3 servers, rf=2: one leaving gracefully (SIGTERM) loses and doubles no acknowledged increment")
    func gracefulLeave() async throws {
        let cluster = try await TestCluster()
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let client = cluster.client(via: "a")
        let work = IncrementWorkload(client: client, count: 200)
        try await work.run(tasks: 20, perTask: 100) { waitFor in
            try await waitFor(700)
            expectCleanExit(await cluster["b"]!.stop())
        }
        try await work.check()
        #expect(client.view?.members.map(\.id) == ["a", "c"])
    }

    @Test("Bad cluster flags and a second member with a taken node id are refused with the reason")
    func refusals() async throws {
        func server(_ arguments: [String]) async throws -> (status: Int32, err: String) {
            let r = try await runCLI(arguments, executable: "crucial-server")
            return (r.status, r.err)
        }
        let noEtcd = try await server(["--port", "0", "--node-id", "x"])
        #expect(noEtcd.status != 0 && noEtcd.err.contains("need --etcd"), "\(noEtcd.err)")
        let badURL = try await server(["--port", "7999", "--etcd", "127.0.0.1:2379"])
        #expect(badURL.status != 0 && badURL.err.contains("http://"), "\(badURL.err)")
        let rf = try await server(["--port", "7999", "--etcd", "http://127.0.0.1:1", "--rf", "0"])
        #expect(rf.status != 0 && rf.err.contains("--rf"), "\(rf.err)")
        let unreachable = try await server(["--port", String(try ServerProcess.freePort()), "--etcd", "http://127.0.0.1:1"])
        #expect(unreachable.status != 0 && unreachable.err.contains("unreachable"), "\(unreachable.err)")

        let cluster = try await TestCluster()
        try await cluster.start("a")
        let port = try ServerProcess.freePort()
        let twin = try await server(["--port", String(port), "--etcd", cluster.etcd.endpoint, "--node-id", "a", "--advertise", "127.0.0.1:\(port)"])
        #expect(twin.status != 0 && twin.err.contains("already registered"), "\(twin.err)")
    }

    @Test("Over TLS and with secrets, members replicate to each other with the admin secret; a plain client cannot write replicas")
    func memberAuthentication() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try await selfSignedCertificate(in: dir, name: "cluster")
        let cluster = try await TestCluster(
            arguments: ["--auth-token", "user-secret", "--admin-token", "admin-secret", "--tls-cert", cert, "--tls-key", key])
        for id in ["a", "b"] { try await cluster.start(id) }
        let client = CrucialClient(
            configuration: .init(servers: [cluster["a"]!.address], authToken: "user-secret", tls: try ClientTLS(trustingFile: cert)))
        defer { client.close() }
        for i in 0..<10 { try await AtomicLong("p\(i)", initial: 0, persistent: true, client: client).incrementAndGet() }
        let status = try await runCLI([
            "cluster", "status", "--servers", cluster["a"]!.address, "--auth-token", "admin-secret", "--tls-ca", cert, "--json",
        ])
        #expect(status.out.split(separator: "\n").count == 2 && !status.out.contains("unreachable"), "\(status.out)\(status.err)")
        #expect(status.out.components(separatedBy: "\"persistent\":10").count == 3, "both members hold all 10: \(status.out)")

        // A plain client's Replicate is refused.
        let plain = try await ClientConnection.connect(
            host: "127.0.0.1", port: cluster["b"]!.port, group: MultiThreadedEventLoopGroup.singleton,
            identity: ConnectionIdentity(name: "raw", secret: "user-secret", tls: try ClientTLS(trustingFile: cert).makeContext()),
            timeout: .seconds(5))
        defer { plain.close() }
        let ref = ObjectRef(type: "AtomicLong", key: "p0")
        let install = Replicate(
            id: 7, viewID: .max, ref: ref, version: ObjectVersion(view: .max, index: 1),
            operation: .install(ObjectState(state: .int(666), persistent: true)))
        guard case .result(let reply) = try await plain.send(.replicate(install), id: 7).get(), case .error(let e) = reply.outcome else {
            Issue.record("a plain client's Replicate was not refused")
            return
        }
        #expect(e.code == .unauthenticated)
        #expect(try await AtomicLong("p0", initial: 0, persistent: true, client: client).get() == 1)
    }

    @Test("crucial cluster status shows the view and each member's objects; a lone server says so")
    func status() async throws {
        let cluster = try await TestCluster()
        for id in ["a", "b"] { try await cluster.start(id) }
        let client = cluster.client(via: "b")
        defer { client.close() }
        for i in 0..<10 { try await AtomicLong("p\(i)", initial: 0, persistent: true, client: client).incrementAndGet() }
        try await AtomicLong("e", initial: 0, client: client).incrementAndGet()
        let result = try await runCLI(["cluster", "status", "--servers", cluster["a"]!.address, "--json"])
        #expect(result.status == 0, "\(result.err)")
        let rows = result.out.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(rows.map { $0["node"] as? String } == ["a", "b"])
        // rf = 2 over two members: both hold every persistent counter; the ephemeral one lives once.
        #expect(rows.map { $0["persistent"] as? Int } == [10, 10])
        #expect(rows.compactMap { $0["objects"] as? Int }.reduce(0, +) == 21)
        #expect(rows.compactMap { $0["primary"] as? Int }.reduce(0, +) == 11)
        // objects ls lists the whole cluster's objects, each once.
        let ls = try await runCLI(["objects", "ls", "--servers", cluster["a"]!.address, "--json"])
        #expect(ls.out.split(separator: "\n").count == 11, "\(ls.out)")
        let table = try await runCLI(["cluster", "status", "--servers", cluster["a"]!.address])
        #expect(table.out.hasPrefix("view "), "\(table.out)")

        let lone = try await TestServer()
        let alone = try await runCLI(["cluster", "status", "--servers", lone.address])
        #expect(alone.out.contains("is a server on its own"), "\(alone.out)")
    }

    /// Runs 16 clients on 8 registers and 8 counters for `seconds`, SIGKILLs member b a
    /// third of the way in, and returns what every call did and when.
    static func recordHistory(_ cluster: TestCluster, seconds: Double) async throws -> History<RegisterInput, Int64> {
        try await recordHistory(cluster, seconds: seconds) { waitFor in
            try await Task.sleep(for: .seconds(seconds / 3))
            try await waitFor(300)  // b has acknowledged changes
            await cluster["b"]!.kill9()
        }
    }

    /// Runs 16 clients on 8 registers and 8 counters while `fault` runs, for at least
    /// `seconds`, and then until `answeredAfterFault` calls made after the fault ended
    /// were answered (a loaded machine answers fewer per second; the test asks that the
    /// cluster serves again, not how fast), at most `limit` in all. Returns what every
    /// call did and when. `fault` gets `waitFor(n)`, which returns once `n` calls were
    /// answered in all.
    static func recordHistory(
        _ cluster: TestCluster, seconds: Double, client: CrucialClient? = nil, answeredAfterFault: Int = 200,
        limit: Duration = .seconds(75),
        fault: @escaping @Sendable (_ waitFor: @escaping @Sendable (Int) async throws -> Void) async throws -> Void
    ) async throws -> History<RegisterInput, Int64> {
        let client = client ?? cluster.client(via: "a")
        defer { client.close() }
        let history = Recorder()
        let minimumEnd = history.origin + .seconds(seconds)
        let end = history.origin + limit
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await RegisterWorkload.run(
                    client: client,
                    while: {
                        let now = ContinuousClock.now
                        guard now < end else { return false }
                        return now < minimumEnd || history.answeredAfterFault < answeredAfterFault
                    }, now: { history.now() }
                ) { call in
                    history.record(.init(object: call.object, input: call.input, output: call.output, call: call.call, response: call.response))
                }
            }
            group.addTask {
                try await fault { n in
                    while history.answered < n {
                        guard ContinuousClock.now < end else { throw CancellationError() }
                        try await Task.sleep(for: .milliseconds(10))
                    }
                }
                history.faultEnded()
            }
            for try await _ in group {}
        }
        let recorded = history.history
        #expect(
            history.answeredAfterFault >= answeredAfterFault,
            "only \(history.answeredAfterFault) calls made after the fault were answered in \(limit) (answered/failed by second made: \(Self.timeline(recorded)))")
        return recorded
    }

    /// Answered and failed calls by the second of the run they were made in: "0s:1409/0 1s:…".
    static func timeline(_ history: History<RegisterInput, Int64>) -> String {
        let seconds = Int((history.operations.map(\.call).max() ?? 0) / 1_000_000_000) + 1
        var perSecond = [(answered: Int, failed: Int)](repeating: (0, 0), count: seconds)
        for op in history.operations {
            let s = Int(op.call / 1_000_000_000)
            if op.output != nil { perSecond[s].answered += 1 } else { perSecond[s].failed += 1 }
        }
        return perSecond.enumerated().map { "\($0.offset)s:\($0.element.answered)/\($0.element.failed)" }.joined(separator: " ")
    }

    /// Checks `history` and prints the history of the first violating object.
    static func expectLinearizable(_ history: History<RegisterInput, Int64>, minimumAnswered: Int = 200) {
        let answered = history.operations.filter { $0.output != nil }.count
        #expect(answered > minimumAnswered, "only \(answered) calls were answered (answered/failed by second made: \(timeline(history)))")
        let violations = Linearizability.violations(history, .register)
        #expect(violations == [])
        if let first = violations.first {  // the history to look at, in call order (ms)
            let ops = history.operations.filter { $0.object == first }.sorted { $0.call < $1.call }
            print("history of \(first):\n" + ops.map { op in
                "\(op.call / 1_000_000)–\(op.response == .max ? "∞" : String(op.response / 1_000_000)) \(op.input) → \(op.output.map(String.init) ?? "?")"
            }.joined(separator: "\n"))
        }
    }

    @Test("Registers and counters stay linearizable across a member's crash (Wing & Gong checker)")
    func linearizable() async throws {
        let cluster = try await TestCluster()
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        Self.expectLinearizable(try await Self.recordHistory(cluster, seconds: 6))
    }

    @Test("The checker catches a cluster that acknowledges changes it did not replicate")
    func brokenReplicationIsCaught() async throws {
        let cluster = try await TestCluster(fault: "skip-replication")
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let history = try await Self.recordHistory(cluster, seconds: 6)
        // Whatever b was primary of restarts from 0 elsewhere: reads and increments go back in time.
        #expect(!Linearizability.violations(history, .register).isEmpty)
    }
}

/// Collects the operations of concurrent clients, timed from one origin.
final class Recorder: Sendable {
    private struct State {
        var history = History<RegisterInput, Int64>()
        var answered = 0
        /// When the fault ended (ns since `origin`), and the calls made since then that were answered.
        var faultEnd: UInt64?
        var answeredAfterFault = 0
    }
    let origin = ContinuousClock.now
    private let state = Mutex(State())
    func now() -> UInt64 { UInt64((ContinuousClock.now - origin) / .nanoseconds(1)) }
    func record(_ op: History<RegisterInput, Int64>.Operation) {
        state.withLock {
            $0.history.operations.append(op)
            guard op.output != nil else { return }
            $0.answered += 1
            if let end = $0.faultEnd, op.call >= end { $0.answeredAfterFault += 1 }
        }
    }
    func faultEnded() {
        let now = now()
        state.withLock { $0.faultEnd = now }
    }
    var history: History<RegisterInput, Int64> { state.withLock { $0.history } }
    var answered: Int { state.withLock { $0.answered } }
    var answeredAfterFault: Int { state.withLock { $0.answeredAfterFault } }
}

@Suite("The linearizability checker itself")
struct LinearizabilityCheckerTests {
    typealias Op = History<RegisterInput, Int64>.Operation

    @Test("Sequential and overlapping histories that have a linearization pass")
    func accepts() {
        let sequential: [Op] = [
            .init(object: "r", input: .write(1), output: 0, call: 0, response: 10),
            .init(object: "r", input: .read, output: 1, call: 20, response: 30),
            .init(object: "c", input: .increment, output: 1, call: 0, response: 5),
        ]
        #expect(Linearizability.violations(History(operations: sequential), .register).isEmpty)
        // A read overlapping a write may see either value; two overlapping increments either order.
        let overlapping: [Op] = [
            .init(object: "r", input: .write(7), output: 0, call: 0, response: 100),
            .init(object: "r", input: .read, output: 0, call: 10, response: 20),
            .init(object: "r", input: .read, output: 7, call: 30, response: 40),
            .init(object: "c", input: .increment, output: 2, call: 0, response: 50),
            .init(object: "c", input: .increment, output: 1, call: 10, response: 60),
            .init(object: "c", input: .increment, output: nil, call: 70, response: .max),
        ]
        #expect(Linearizability.violations(History(operations: overlapping), .register).isEmpty)
    }

    @Test("A stale read after a completed write, and a value going back, are violations")
    func rejects() {
        let stale: [Op] = [
            .init(object: "r", input: .write(1), output: 0, call: 0, response: 10),
            .init(object: "r", input: .read, output: 0, call: 20, response: 30),
        ]
        #expect(Linearizability.violations(History(operations: stale), .register) == ["r"])
        let backwards: [Op] = [
            .init(object: "c", input: .increment, output: 1, call: 0, response: 10),
            .init(object: "c", input: .increment, output: 2, call: 20, response: 30),
            .init(object: "c", input: .read, output: 1, call: 40, response: 50),
        ]
        #expect(Linearizability.violations(History(operations: backwards), .register) == ["c"])
        // Two reads that each saw the other's future: 1 then 2 then 1 is impossible.
        let flip: [Op] = [
            .init(object: "r", input: .write(1), output: 0, call: 0, response: 100),
            .init(object: "r", input: .write(2), output: 0, call: 0, response: 100),
            .init(object: "r", input: .read, output: 1, call: 10, response: 20),
            .init(object: "r", input: .read, output: 2, call: 30, response: 40),
            .init(object: "r", input: .read, output: 1, call: 50, response: 60),
        ]
        #expect(Linearizability.violations(History(operations: flip), .register) == ["r"])
    }
}
