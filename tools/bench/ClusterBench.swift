import CrucialProcess
import ArgumentParser
import CrucialClient
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `crucial-bench cluster`: what replication and durability cost, and what a crash, a join
/// and a full-cluster restart do to a running application (Table 2 and Figure 8 of the paper).
struct ClusterBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "3-member clusters on a real etcd: 1 KB get/put latency with rf=1 and rf=2 (Redis in the same run), and "
            + "the same with data dirs under each fsync policy beside Redis AOF, persistent barrier rounds and semaphore "
            + "acquire/release with rf=1 and rf=2 (a Redis list as a semaphore in the same run), and the k-means inference "
            + "throughput timeline across a member's crash, a join and a full-cluster restart (per-second series and a PNG).")

    @Option(help: "Sequential calls per latency measurement.")
    var latencyOps = 5000

    @Option(help: "Seconds of the timeline; a member crashes at a quarter, another joins at a half, every member is killed and restarted at three quarters.")
    var duration = 30.0

    @Option(help: "Concurrent inference clients.")
    var clients = 16

    @Option(help: "k-means models (25 centroids × 100 dimensions each) the clients pick from.")
    var models = 8

    @Option(help: "etcd lease TTL of the members, in seconds (how fast a crash is noticed).")
    var leaseTtl = 2

    @Option(help: "The redis-server executable.")
    var redisServer = "/usr/bin/redis-server"

    @Option(help: "Where to draw the timeline (needs gnuplot; tools/bench.sh installs gnuplot-nox).")
    var plot = "docs/figure8.png"

    @Option(help: "Append the results as Markdown to this file.")
    var markdown: String?

    @Option(help: "Which parts to run, comma-separated: latency (rf 1 / rf 2), durability (data dirs under each fsync policy beside Redis AOF), synchronizers (persistent barrier and semaphore, rf 1 / rf 2), timeline.")
    var parts = "latency,durability,synchronizers,timeline"

    func run() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-bench-etcd-\(UUID())").path
        let (etcd, endpoint) = try await ServerProcess.startEtcd(dataDirectory: dataDir)
        defer {
            etcd.stop()
            try? FileManager.default.removeItem(atPath: dataDir)
        }
        say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; etcd at \(endpoint)")
        let date = ISO8601DateFormatter().string(from: Date())
        let wanted = Set(parts.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        var report = ""
        if wanted.contains("latency") { report += try await replicationLatency(endpoint) + "\n" }
        if wanted.contains("durability") { report += try await durabilityLatency(endpoint) + "\n" }
        if wanted.contains("synchronizers") { report += try await synchronizerLatency(endpoint) + "\n" }
        if wanted.contains("timeline") { report += try await timeline(endpoint) }
        print(report)
        if let markdown {
            let command = "crucial-bench cluster --latency-ops \(latencyOps) --duration \(duration) --clients \(clients) --models \(models) --lease-ttl \(leaseTtl) --parts \(parts)"
            try appendMarkdown("\n### \(date)\n\n`\(command)`\n\n```\n\(report)```\n\n![timeline](\(URL(fileURLWithPath: plot).lastPathComponent))\n", to: markdown)
            say("appended to \(markdown)")
        }
    }

    // MARK: Table 2: the price of a replica

    private func replicationLatency(_ endpoint: String) async throws -> String {
        var results: [Int: (put: Latency, get: Latency)] = [:]
        for rf in [1, 2] { results[rf] = try await crucialLatency(endpoint, rf: rf, fsync: nil) }
        let (rPut, rGet) = try await redisLatency([])
        guard let one = results[1], let two = results[2] else { throw BenchFailure("missing latency results") }
        var text = "1 KB latency, 3 members, one client, µs (Table 2 of the paper: rf=2 costs about one more round trip)\n"
        text += "op     rf=1 p50  rf=1 p99  rf=2 p50  rf=2 p99  rf=2 - rf=1 (p50)  Redis p50 (peer)\n"
        text += String(
            format: "put   %9.0f %9.0f %9.0f %9.0f %18.0f %17.0f\n", one.put.p50, one.put.p99, two.put.p50, two.put.p99,
            two.put.p50 - one.put.p50, rPut.p50)
        text += String(
            format: "get   %9.0f %9.0f %9.0f %9.0f %18.0f %17.0f\n", one.get.p50, one.get.p99, two.get.p50, two.get.p99,
            two.get.p50 - one.get.p50, rGet.p50)
        return text
    }

    // MARK: Durability: data directories under each fsync policy, beside Redis AOF

    /// 1 KB put and get on a persistent object of a 3-member cluster configured thus.
    private func crucialLatency(_ endpoint: String, rf: Int, fsync: String?) async throws -> (put: Latency, get: Latency) {
        let kb = [UInt8](repeating: 0x61, count: 1024)
        let members = try Members(etcd: endpoint, rf: rf, leaseTTL: leaseTtl, cluster: "durable-rf\(rf)-\(fsync ?? "memory")", fsync: fsync)
        defer { members.stopAll() }
        for id in ["n1", "n2", "n3"] { try await members.start(id) }
        let client = CrucialClient(configuration: .init(servers: [members.address("n1")], connections: 1))
        defer { client.close() }
        let blob = ObjectRef(type: "AtomicReference", key: "blob")
        _ = try await client.invoke(blob, "get", create: Create(initial: .bytes(kb), persistent: true), readOnly: true)
        say("durability, rf=\(rf), \(fsync.map { "--data-dir, --fsync \($0)" } ?? "memory only"): \(latencyOps) sequential 1 KB puts, then gets ...")
        let put = try await latency(latencyOps) { _ = try await client.invoke(blob, "set", [.bytes(kb)]) }
        let get = try await latency(latencyOps) {
            guard try await client.invoke(blob, "get", readOnly: true) == .bytes(kb) else { throw BenchFailure("wrong 1 KB value") }
        }
        return (put, get)
    }

    /// 1 KB SET and GET on a redis-server with these persistence flags.
    private func redisLatency(_ persistence: [String]) async throws -> (put: Latency, get: Latency) {
        let kb = [UInt8](repeating: 0x61, count: 1024)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-bench-redis-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (redis, port) = try await startRedis(redisServer, extraArguments: ["--dir", dir] + persistence)
        defer { redis.stop() }
        say("durability, Redis \(persistence.isEmpty ? "without persistence" : persistence.joined(separator: " ")): \(latencyOps) sequential 1 KB SETs, then GETs ...")
        let pool = try await RedisPool(port: port, connections: 1)
        defer { pool.close() }
        let put = try await latency(latencyOps) { _ = try await pool.command([Array("SET".utf8), Array("blob".utf8), kb]) }
        let get = try await latency(latencyOps) {
            guard try await pool.command("GET", "blob") == .bulk(kb) else { throw BenchFailure("wrong 1 KB value from redis") }
        }
        return (put, get)
    }

    private func durabilityLatency(_ endpoint: String) async throws -> String {
        let rf1 = try await crucialLatency(endpoint, rf: 1, fsync: nil)
        let rf2 = try await crucialLatency(endpoint, rf: 2, fsync: nil)
        var disk: [String: (put: Latency, get: Latency)] = [:]
        for policy in ["never", "everysec", "always"] { disk[policy] = try await crucialLatency(endpoint, rf: 2, fsync: policy) }
        let redis = try await redisLatency([])
        let aofEverysec = try await redisLatency(["--appendonly", "yes", "--appendfsync", "everysec"])
        let aofAlways = try await redisLatency(["--appendonly", "yes", "--appendfsync", "always"])
        guard let never = disk["never"], let everysec = disk["everysec"], let always = disk["always"] else { throw BenchFailure("missing results") }
        var text = "1 KB put/get latency of a persistent object, 3 members, one client, µs; Redis (AOF) in the same run\n"
        text += "configuration                      put p50  put p99  get p50  get p99\n"
        for (name, r) in [
            ("crucial rf=1, memory", rf1), ("crucial rf=2, memory", rf2), ("crucial rf=2, --fsync never", never),
            ("crucial rf=2, --fsync everysec", everysec), ("crucial rf=2, --fsync always", always), ("redis, no persistence", redis),
            ("redis, appendfsync everysec", aofEverysec), ("redis, appendfsync always", aofAlways),
        ] {
            text += name.padding(toLength: 32, withPad: " ", startingAt: 0)
                + String(format: " %8.0f %8.0f %8.0f %8.0f\n", r.put.p50, r.put.p99, r.get.p50, r.get.p99)
        }
        text += String(
            format: "ratios (put p50): rf=2 everysec / rf=1 = %.2fx (target <= 2.0x); rf=2 everysec / Redis AOF everysec = %.2fx (target <= 1.5x); "
                + "rf=2 always / Redis AOF always = %.2fx\n", everysec.put.p50 / rf1.put.p50, everysec.put.p50 / aofEverysec.put.p50,
            always.put.p50 / aofAlways.put.p50)
        return text
    }

    // MARK: Persistent synchronizers: what their replicas cost

    /// Barrier rounds of two parties and acquire/release pairs of one client, on persistent
    /// objects of a 3-member cluster with `rf` copies (ephemeral ones when `rf` is nil: one
    /// copy, nothing replicated).
    private func synchronizerLatency(_ endpoint: String, rf: Int?) async throws -> (round: Latency, pair: Latency) {
        let members = try Members(etcd: endpoint, rf: rf ?? 2, leaseTTL: leaseTtl, cluster: "sync-\(rf.map { "rf\($0)" } ?? "ephemeral")")
        defer { members.stopAll() }
        for id in ["n1", "n2", "n3"] { try await members.start(id) }
        let clients = (0..<2).map { _ in CrucialClient(configuration: .init(servers: [members.address("n1")], connections: 1)) }
        defer { for c in clients { c.close() } }
        let persistent = rf != nil
        let barriers = clients.map { CyclicBarrier("round", parties: 2, persistent: persistent, client: $0) }
        let semaphore = Semaphore("permit", permits: 1, persistent: persistent, client: clients[0])
        say("synchronizers, \(rf.map { "persistent, rf=\($0)" } ?? "ephemeral"): \(latencyOps) barrier rounds of two parties, then acquire/release pairs ...")
        // The other party meets the first at every round; the first's await is the round's time.
        let partner = Task {
            for _ in 0..<(min(1000, latencyOps) + latencyOps) { try await barriers[1].await() }
        }
        let round = try await latency(latencyOps) { try await barriers[0].await() }
        try await partner.value
        let pair = try await latency(latencyOps) {
            try await semaphore.acquire()
            try await semaphore.release()
        }
        return (round, pair)
    }

    /// A Redis list as a semaphore (BLPOP takes a permit, RPUSH gives it back): the usual
    /// pattern, for the acquire/release pairs of the same run.
    private func redisSemaphoreLatency() async throws -> Latency {
        let (redis, port) = try await startRedis(redisServer, extraArguments: ["--save", ""])
        defer { redis.stop() }
        let pool = try await RedisPool(port: port, connections: 1)
        defer { pool.close() }
        _ = try await pool.command("RPUSH", "permit", "1")
        say("synchronizers, Redis: \(latencyOps) BLPOP/RPUSH pairs ...")
        return try await latency(latencyOps) {
            _ = try await pool.command("BLPOP", "permit", "0")
            _ = try await pool.command("RPUSH", "permit", "1")
        }
    }

    private func synchronizerLatency(_ endpoint: String) async throws -> String {
        let ephemeral = try await synchronizerLatency(endpoint, rf: nil)
        let rf1 = try await synchronizerLatency(endpoint, rf: 1)
        let rf2 = try await synchronizerLatency(endpoint, rf: 2)
        let redis = try await redisSemaphoreLatency()
        var text = "Synchronizers on a 3-member cluster, one client per party, µs: a barrier round of two parties (an await "
        text += "each), a semaphore acquire+release pair (two calls); a Redis list as a semaphore (BLPOP+RPUSH) in the same run\n"
        text += "configuration              round p50  round p99   pair p50   pair p99\n"
        for (name, r) in [("ephemeral (one copy)", ephemeral), ("persistent, rf=1", rf1), ("persistent, rf=2", rf2)] {
            text += name.padding(toLength: 26, withPad: " ", startingAt: 0)
                + String(format: " %10.0f %10.0f %10.0f %10.0f\n", r.round.p50, r.round.p99, r.pair.p50, r.pair.p99)
        }
        text += "redis BLPOP+RPUSH (peer)          -          -" + String(format: " %10.0f %10.0f\n", redis.p50, redis.p99)
        text += String(
            format: "ratios (p50): rf=2 / rf=1: round %.2fx, pair %.2fx; rf=2 pair / Redis pair %.2fx\n", rf2.round.p50 / rf1.round.p50,
            rf2.pair.p50 / rf1.pair.p50, rf2.pair.p50 / redis.p50)
        return text
    }

    // MARK: Figure 8: a crash, a join and a full-cluster restart under load

    private func timeline(_ endpoint: String) async throws -> String {
        let members = try Members(etcd: endpoint, rf: 2, leaseTTL: leaseTtl, cluster: "figure8", fsync: "everysec")
        defer { members.stopAll() }
        for id in ["n1", "n2", "n3"] { try await members.start(id) }
        let client = CrucialClient(configuration: .init(servers: members.addresses, connections: 4, failoverTimeout: .seconds(60)))
        defer { client.close() }
        var rng = SystemRandomNumberGenerator()
        var model = BenchCentroids(k: 25, dims: 100)
        model.sums = model.sums.map { $0.map { _ in Double.random(in: 0...10, using: &rng) } }
        model.counts = model.counts.map { _ in 1 }
        let proxies = (0..<models).map { BenchCentroids.Shared("model-\($0)", model, persistent: true, client: client) }
        for p in proxies { _ = try await p.totalCount() }  // created and replicated before the clock starts
        let seconds = Int(duration.rounded(.up))
        let buckets = Buckets(seconds: seconds + 1)
        let clock = ContinuousClock(), start = clock.now
        let end = start + .milliseconds(Int64(duration * 1000))
        let point = (0..<100).map { _ in Double.random(in: 0...10, using: &rng) }
        let (crashAt, joinAt, restartAt) = (duration / 4, duration / 2, 3 * duration / 4)
        say("timeline: \(clients) clients × \(duration) s of inferences on \(models) models, 3 members with data dirs, rf=2; crash at \(crashAt) s, join at \(joinAt) s, every member killed and restarted at \(restartAt) s ...")
        let events = Events()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<clients {
                group.addTask {
                    var k = c
                    while clock.now < end {
                        _ = try await proxies[k % proxies.count].nearest(point)
                        buckets.add(Int((clock.now - start) / .seconds(1)))
                        k += 1
                    }
                }
            }
            group.addTask {
                try await Task.sleep(until: start + .milliseconds(Int64(crashAt * 1000)), clock: clock)
                members.kill("n2")
                events.note(String(format: "%.1f s: n2 SIGKILLed", micros(clock.now - start) / 1e6))
                try await Task.sleep(until: start + .milliseconds(Int64(joinAt * 1000)), clock: clock)
                try await members.start("n4")
                events.note(String(format: "%.1f s: n4 joined", micros(clock.now - start) / 1e6))
                try await Task.sleep(until: start + .milliseconds(Int64(restartAt * 1000)), clock: clock)
                for id in ["n1", "n3", "n4"] { members.kill(id) }
                for id in ["n1", "n3", "n4"] { try await members.start(id) }
                events.note(String(format: "%.1f s: n1, n3, n4 SIGKILLed and restarted with their data dirs", micros(clock.now - start) / 1e6))
            }
            for try await _ in group {}
        }
        let series = buckets.values.prefix(seconds)
        let third = max(1, seconds / 3)
        func mean(_ s: ArraySlice<Int>) -> Double { s.isEmpty ? 0 : Double(s.reduce(0, +)) / Double(s.count) }
        var text = "k-means inferences/s per second (Figure 8 of the paper), \(clients) clients, \(models) models, 3 members with data dirs (everysec), rf=2\n"
        text += events.all.joined(separator: "; ") + "\n"
        text += "second  inferences/s\n"
        for (t, n) in series.enumerated() { text += String(format: "%6d  %12d\n", t, n) }
        let quarter = max(1, seconds / 4)
        let restartSecond = Int(restartAt)
        let back = series.dropFirst(restartSecond).firstIndex { $0 > 0 && Double($0) >= 0.5 * mean(series.prefix(quarter)) }
        text += String(
            format: "mean before the crash %.0f/s; lowest second after it %d/s; mean between the join and the full restart %.0f/s; "
                + "back to half the first rate %@ after the full restart\n",
            mean(series.prefix(quarter)), series.dropFirst(quarter).prefix(quarter).min() ?? 0,
            mean(series.dropFirst(2 * quarter + 1).prefix(quarter - 1)), back.map { "\($0 - restartSecond) s" } ?? "never")
        _ = third
        try draw(series: Array(series), marks: [(crashAt, "crash", "red"), (joinAt, "join", "dark-green"), (restartAt, "full restart", "blue")])
        return text
    }

    /// Draws the series with gnuplot, the events as vertical lines.
    private func draw(series: [Int], marks: [(at: Double, label: String, color: String)]) throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-figure8-\(UUID()).dat").path
        // Each count covers one second: drawn at its middle.
        try series.enumerated().map { "\(Double($0.offset) + 0.5) \($0.element)" }.joined(separator: "\n").write(toFile: data, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let script = """
            set terminal png size 900,420
            set output '\(plot)'
            set title 'k-means inferences per second: 3 members with data dirs, rf=2; a crash, a join, a full-cluster restart'
            set xlabel 'time (s)'
            set ylabel 'inferences/s'
            set yrange [0:*]
            set grid
            \(marks.map { "set arrow from \($0.at),graph 0 to \($0.at),graph 1 nohead lc rgb '\($0.color)'\nset label '\($0.label)' at \($0.at),graph 0.95 offset 0.5,0 tc rgb '\($0.color)'" }.joined(separator: "\n"))
            plot '\(data)' using 1:2 with linespoints lw 2 pt 7 ps 0.6 title 'inferences/s'
            """
        try gnuplot(script)
        say("plot: \(plot)")
    }
}

/// Counts per second, from many tasks.
final class Buckets: Sendable {
    private let counts: Mutex<[Int]>
    init(seconds: Int) { counts = Mutex(Array(repeating: 0, count: seconds)) }
    func add(_ second: Int) { counts.withLock { if second < $0.count { $0[second] += 1 } } }
    var values: [Int] { counts.withLock { $0 } }
}

/// What happened when, for the report.
final class Events: Sendable {
    private let list = Mutex<[String]>([])
    func note(_ s: String) {
        list.withLock { $0.append(s) }
        say("  " + s)
    }
    var all: [String] { list.withLock { $0 } }
}

/// Members of one benchmark cluster: `crucial-bench serve` processes registered in etcd.
final class Members: Sendable {
    private let etcd: String, rf: Int, leaseTTL: Int, cluster: String
    /// More `serve` flags for every member (`--data-dir` is added per member with `durable`).
    private let extra: [String]
    /// With a data directory per member under this folder, and this --fsync policy.
    private let durable: (root: String, fsync: String)?
    private let running = Mutex<[String: (process: ServerProcess, address: String)]>([:])
    /// Each member's port, kept for a restart in place.
    private let ports = Mutex<[String: Int]>([:])

    init(etcd: String, rf: Int, leaseTTL: Int, cluster: String, extra: [String] = [], fsync: String? = nil) throws {
        (self.etcd, self.rf, self.leaseTTL, self.cluster, self.extra) = (etcd, rf, leaseTTL, cluster, extra)
        durable = fsync.map { (FileManager.default.temporaryDirectory.appendingPathComponent("crucial-bench-\(cluster)-\(UUID())").path, $0) }
    }

    /// Starts member `id` (on its old port and data dir, if it ran before).
    func start(_ id: String) async throws {
        let port = try ports.withLock { p in
            if let known = p[id] { return known }
            let fresh = try ServerProcess.freePort()
            p[id] = fresh
            return fresh
        }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let disk = durable.map { ["--data-dir", "\($0.root)/\(id)", "--fsync", $0.fsync] } ?? []
        let process = try await ServerProcess.start(
            executable: me,
            arguments: ["serve", "--port", "\(port)", "--etcd", etcd, "--node-id", "\(cluster)-\(id)", "--rf", "\(rf)", "--lease-ttl", "\(leaseTTL)"]
                + disk + extra)
        running.withLock { $0[id] = (process, "127.0.0.1:\(port)") }
    }

    func address(_ id: String) -> String { running.withLock { $0[id]?.address ?? "" } }
    var addresses: [String] { running.withLock { $0.values.map(\.address).sorted() } }

    var pids: [Int32] { running.withLock { $0.values.map(\.process.processIdentifier) } }
    func pid(_ id: String) -> Int32? { running.withLock { $0[id]?.process.processIdentifier } }

    func kill(_ id: String) { running.withLock { $0[id]?.process }?.kill9() }

    /// SIGTERM: the member hands its objects over and leaves; returns its exit status.
    @discardableResult
    func stop(_ id: String) -> Int32? { running.withLock { $0[id]?.process }?.stop(grace: .seconds(30)) }

    func stopAll() {
        for (_, member) in running.withLock({ $0 }) {
            Glibc.kill(member.process.processIdentifier, SIGCONT)
            member.process.stop()
        }
        if let durable { try? FileManager.default.removeItem(atPath: durable.root) }
    }
}
