import ArgumentParser
import CrucialClient
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `crucial-bench cluster`: what replication costs, and what a crash and a join do to a
/// running application (Table 2 and Figure 8 of the paper).
struct ClusterBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "3-member clusters on a real etcd: 1 KB get/put latency with rf=1 and rf=2 (Redis in the same run), and "
            + "the k-means inference throughput timeline across a member's crash and a join (per-second series and a PNG).")

    @Option(help: "Sequential calls per latency measurement.")
    var latencyOps = 5000

    @Option(help: "Seconds of the timeline; the crash comes at a third, the join at two thirds.")
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

    func run() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-bench-etcd-\(UUID())").path
        let (etcd, endpoint) = try ServerProcess.startEtcd(dataDirectory: dataDir)
        defer {
            etcd.stop()
            try? FileManager.default.removeItem(atPath: dataDir)
        }
        say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; etcd at \(endpoint)")
        let date = ISO8601DateFormatter().string(from: Date())
        var report = try await replicationLatency(endpoint)
        report += "\n" + (try await timeline(endpoint))
        print(report)
        if let markdown {
            let command = "crucial-bench cluster --latency-ops \(latencyOps) --duration \(duration) --clients \(clients) --models \(models) --lease-ttl \(leaseTtl)"
            try appendMarkdown("\n### \(date)\n\n`\(command)`\n\n```\n\(report)```\n\n![timeline](\(URL(fileURLWithPath: plot).lastPathComponent))\n", to: markdown)
            say("appended to \(markdown)")
        }
    }

    // MARK: Table 2: the price of a replica

    private func replicationLatency(_ endpoint: String) async throws -> String {
        let kb = [UInt8](repeating: 0x61, count: 1024)
        var results: [Int: (put: Latency, get: Latency)] = [:]
        for rf in [1, 2] {
            let members = try Members(etcd: endpoint, rf: rf, leaseTTL: leaseTtl, cluster: "latency-rf\(rf)")
            defer { members.stopAll() }
            for id in ["n1", "n2", "n3"] { try members.start(id) }
            let client = CrucialClient(configuration: .init(servers: [members.address("n1")], connections: 1))
            defer { client.close() }
            let blob = ObjectRef(type: "AtomicReference", key: "blob")
            _ = try await client.invoke(blob, "get", create: Create(initial: .bytes(kb), persistent: true), readOnly: true)
            say("latency, rf=\(rf): \(latencyOps) sequential 1 KB puts, then gets, on a persistent object ...")
            let put = try await latency(latencyOps) { _ = try await client.invoke(blob, "set", [.bytes(kb)]) }
            let get = try await latency(latencyOps) {
                guard try await client.invoke(blob, "get", readOnly: true) == .bytes(kb) else { throw BenchFailure("wrong 1 KB value") }
            }
            results[rf] = (put, get)
        }
        say("latency, Redis: \(latencyOps) sequential 1 KB SETs, then GETs ...")
        let peers = try Peers(redisServer: redisServer)
        defer { peers.stop() }
        let pool = try await RedisPool(port: peers.redisPort, connections: 1)
        defer { pool.close() }
        let rPut = try await latency(latencyOps) { _ = try await pool.command([Array("SET".utf8), Array("blob".utf8), kb]) }
        let rGet = try await latency(latencyOps) {
            guard try await pool.command("GET", "blob") == .bulk(kb) else { throw BenchFailure("wrong 1 KB value from redis") }
        }
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

    // MARK: Figure 8: a crash and a join under load

    private func timeline(_ endpoint: String) async throws -> String {
        let members = try Members(etcd: endpoint, rf: 2, leaseTTL: leaseTtl, cluster: "figure8")
        defer { members.stopAll() }
        for id in ["n1", "n2", "n3"] { try members.start(id) }
        let client = CrucialClient(configuration: .init(servers: [members.address("n1")], connections: 4, failoverTimeout: .seconds(60)))
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
        say("timeline: \(clients) clients × \(duration) s of inferences on \(models) models, 3 members, rf=2; crash at \(duration / 3) s, join at \(2 * duration / 3) s ...")
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
                try await Task.sleep(until: start + .milliseconds(Int64(duration * 1000 / 3)), clock: clock)
                members.kill("n2")
                events.note(String(format: "%.1f s: n2 SIGKILLed", micros(clock.now - start) / 1e6))
                try await Task.sleep(until: start + .milliseconds(Int64(duration * 2000 / 3)), clock: clock)
                try members.start("n4")
                events.note(String(format: "%.1f s: n4 joined", micros(clock.now - start) / 1e6))
            }
            for try await _ in group {}
        }
        let series = buckets.values.prefix(seconds)
        let third = max(1, seconds / 3)
        func mean(_ s: ArraySlice<Int>) -> Double { s.isEmpty ? 0 : Double(s.reduce(0, +)) / Double(s.count) }
        var text = "k-means inferences/s per second (Figure 8 of the paper), \(clients) clients, \(models) models, 3 members, rf=2\n"
        text += events.all.joined(separator: "; ") + "\n"
        text += "second  inferences/s\n"
        for (t, n) in series.enumerated() { text += String(format: "%6d  %12d\n", t, n) }
        text += String(
            format: "mean before the crash %.0f/s; lowest second after it %d/s; mean of the last third (after the join) %.0f/s\n",
            mean(series.prefix(third)), series.dropFirst(third).prefix(third).min() ?? 0, mean(series.suffix(third)))
        try draw(series: Array(series), crash: duration / 3, join: 2 * duration / 3)
        return text
    }

    /// Draws the series with gnuplot, the crash and the join as vertical lines.
    private func draw(series: [Int], crash: Double, join: Double) throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-figure8-\(UUID()).dat").path
        // Each count covers one second: drawn at its middle.
        try series.enumerated().map { "\(Double($0.offset) + 0.5) \($0.element)" }.joined(separator: "\n").write(toFile: data, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let script = """
            set terminal png size 900,420
            set output '\(plot)'
            set title 'k-means inferences per second: 3 members, rf=2; a member crashes, another joins'
            set xlabel 'time (s)'
            set ylabel 'inferences/s'
            set yrange [0:*]
            set grid
            set arrow from \(crash),graph 0 to \(crash),graph 1 nohead lc rgb 'red'
            set label 'crash' at \(crash),graph 0.95 offset 0.5,0 tc rgb 'red'
            set arrow from \(join),graph 0 to \(join),graph 1 nohead lc rgb 'dark-green'
            set label 'join' at \(join),graph 0.95 offset 0.5,0 tc rgb 'dark-green'
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

    init(etcd: String, rf: Int, leaseTTL: Int, cluster: String, extra: [String] = [], fsync: String? = nil) throws {
        (self.etcd, self.rf, self.leaseTTL, self.cluster, self.extra) = (etcd, rf, leaseTTL, cluster, extra)
        durable = fsync.map { (FileManager.default.temporaryDirectory.appendingPathComponent("crucial-bench-\(cluster)-\(UUID())").path, $0) }
    }

    func start(_ id: String) throws {
        let port = try ServerProcess.freePort()
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let disk = durable.map { ["--data-dir", "\($0.root)/\(id)", "--fsync", $0.fsync] } ?? []
        let process = try ServerProcess.start(
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

    func stopAll() {
        for (_, member) in running.withLock({ $0 }) {
            Glibc.kill(member.process.processIdentifier, SIGCONT)
            member.process.stop()
        }
        if let durable { try? FileManager.default.removeItem(atPath: durable.root) }
    }
}
