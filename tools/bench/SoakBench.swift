import CrucialProcess
import ArgumentParser
import CrucialClient
import Foundation
import Synchronization

/// `crucial-bench soak`: N clients mixing every object type for T seconds against one
/// server or a 3-member cluster, printing throughput, latency percentiles and each server's
/// memory every interval; fails when memory keeps growing once warm.
struct SoakBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Load and soak: N clients mixing all object types for T seconds; throughput, p50/p99/p999, server RSS.",
        discussion: """
            Each client runs the same cycle of 24 calls: counters, a double, a reference, a map, a \
            list and a set (bounded key spaces: their size stays flat), a sorted map, a double \
            array, a semaphore, a latch, a future and a barrier shared with one other client, \
            and creates and removes objects as it goes. Every --interval seconds it prints calls/s, \
            latency percentiles and the RSS of each server; at the end, the RSS growth from the \
            end of the warm-up (the first third) to the end, and fails above --max-growth.
            """)

    @Option(help: "Concurrent clients, each with its own connection.")
    var clients = 200

    @Option(help: "How long to run, in seconds.")
    var seconds = 60

    @Option(help: "Seconds between two reports.")
    var interval = 10

    @Option(help: "Run against a 3-member cluster (rf 2, on etcd) instead of one server.")
    var cluster = false

    @Option(help: "An already running server (host:port) instead of starting one; give --server-pid to follow its memory.")
    var servers: String?

    @Option(help: "The process id of --servers, for its RSS.")
    var serverPid: [Int32] = []

    @Option(help: "Fail when RSS grows more than this fraction after the warm-up.")
    var maxGrowth = 0.10

    @Option(help: "Append the series as Markdown to this file.")
    var markdown: String?

    func validate() throws {
        guard clients >= 2, clients % 2 == 0 else { throw ValidationError("--clients must be an even number ≥ 2 (barriers pair them)") }
        guard seconds >= 1, interval >= 1 else { throw ValidationError("--seconds and --interval must be at least 1") }
        if servers != nil, cluster { throw ValidationError("--servers and --cluster exclude each other") }
    }

    func run() async throws {
        let (addresses, pids, stop) = try await startServers()
        defer { stop() }
        say("soak: \(clients) clients for \(seconds) s against \(addresses.joined(separator: ", "))\(cluster ? " (3 members, rf 2)" : "")")
        let stats = SoakStats()
        let deadline = ContinuousClock.now + .seconds(seconds)
        let reporter = Task { try await report(stats, pids: pids, until: deadline) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<clients {
                group.addTask {
                    let client = CrucialClient(configuration: .init(servers: addresses, connections: 1, name: "soak-\(n)"))
                    defer { client.close() }
                    try await soakClient(n, client, stats, until: deadline)
                }
            }
            for try await _ in group {}
        }
        let series = try await reporter.value
        try summarise(series, stats)
    }

    /// One client's cycle, until the deadline.
    private func soakClient(_ n: Int, _ client: CrucialClient, _ stats: SoakStats, until deadline: ContinuousClock.Instant) async throws {
        let counter = AtomicLong("soak-counter", client: client)
        let double = AtomicDouble("soak-double", client: client)
        let reference = try AtomicReference<[String]>("soak-ref-\(n % 16)", initial: [], client: client)
        let map = SharedMap<Int, String>("soak-map-\(n % 8)", client: client)
        let list = SharedList<Int>("soak-list-\(n)", client: client)
        let set = SharedSet<Int>("soak-set-\(n % 8)", client: client)
        let sorted = SharedSortedMap<Int, Double>("soak-top", client: client)
        let array = AtomicDoubleArray("soak-array", length: 16, client: client)
        let semaphore = Semaphore("soak-semaphore", permits: 8, client: client)
        let barrier = CyclicBarrier("soak-barrier-\(n / 2)", parties: 2, client: client)
        var round = 0
        while ContinuousClock.now < deadline {
            round += 1
            let key = (n * 7919 + round) % 1000
            let latch = CountDownLatch("soak-latch-\(n)-\(round % 2)", count: 1, client: client)
            let future = SharedFuture<Int>("soak-future-\(n)-\(round % 2)", client: client)
            let calls: [@Sendable () async throws -> Void] = [
                { _ = try await counter.incrementAndGet() },
                { _ = try await counter.get() },
                { _ = try await double.addAndGet(0.5) },
                { try await reference.set(["a", "b", String(key)]) },
                { _ = try await reference.get() },
                { _ = try await map.put(key, String(repeating: "v", count: 64)) },
                { _ = try await map.get(key) },
                { _ = try await map.remove((key + 500) % 1000) },
                { try await list.add(key) },
                { if try await list.size() > 32 { _ = try await list.remove(at: 0) } },
                { _ = try await set.add(key % 100) },
                { _ = try await set.remove((key + 50) % 100) },
                { _ = try await sorted.put(key % 200, Double(key)) },
                { _ = try await sorted.top(5) },
                { try await array.add([Double](repeating: 1, count: 16)) },
                { _ = try await array.get(key % 16) },
                { try await semaphore.acquire() },
                { try await semaphore.release() },
                { try await latch.countDown() },
                { try await latch.await() },
                { try await future.set(key) },
                { _ = try await future.get() },
                { _ = try await barrier.await(timeout: .seconds(5)) },
                {
                    _ = try await client.remove(latch.handle.ref)
                    _ = try await client.remove(future.handle.ref)
                },
            ]
            for call in calls {
                let started = ContinuousClock.now
                do {
                    try await call()
                    stats.record(ContinuousClock.now - started)
                } catch let e as CrucialError where [.timeout, .brokenBarrier].contains(e.code) && ContinuousClock.now > deadline - .seconds(1) {
                    // The barrier partner stopped at the deadline: not a failure.
                } catch {
                    stats.failed(error)
                }
            }
        }
        // The partner may still wait at the barrier: let it go.
        try? await barrier.reset()
    }

    /// Prints one line per interval; returns the RSS series (MB, summed over the servers).
    private func report(_ stats: SoakStats, pids: [Int32], until deadline: ContinuousClock.Instant) async throws -> [(Int, Double)] {
        var series: [(Int, Double)] = []
        let start = ContinuousClock.now
        say("   t(s)     calls/s    p50(µs)    p99(µs)   p999(µs)   errors   RSS(MB)")
        while ContinuousClock.now < deadline {
            try await Task.sleep(until: min(deadline, ContinuousClock.now + .seconds(interval)), clock: .continuous)
            let (samples, errors) = stats.drain()
            let t = Int((ContinuousClock.now - start).components.seconds)
            let rss = pids.map(residentMegabytes).reduce(0, +)
            series.append((t, rss))
            let sorted = samples.sorted()
            func p(_ q: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
            let rate = Double(samples.count) / Double(interval)
            say(
                String(format: "%7d %11.0f %10.0f %10.0f %10.0f %8d %9.1f", t, rate, p(0.5), p(0.99), p(0.999), errors, rss))
        }
        return series
    }

    private func summarise(_ series: [(Int, Double)], _ stats: SoakStats) throws {
        let warm = series.dropFirst(max(1, series.count / 3))
        guard let first = warm.first, let last = warm.last else { return }
        let growth = first.1 > 0 ? (last.1 - first.1) / first.1 : 0
        let errors = stats.errorSamples()
        let verdict = growth <= maxGrowth ? "flat" : "GROWING"
        say(String(format: "RSS after warm-up: %.1f MB at %d s → %.1f MB at %d s (%+.1f %%): %@", first.1, first.0, last.1, last.0, growth * 100, verdict))
        say("calls: \(stats.totalCalls()), errors: \(stats.totalErrors())\(errors.isEmpty ? "" : "; e.g. \(errors.joined(separator: " | "))")")
        if let markdown {
            var s = "\n### soak \(ISO8601DateFormatter().string(from: Date()))\n\n`crucial-bench soak --clients \(clients) --seconds \(seconds)\(cluster ? " --cluster" : "")`\n\n"
            s += "| t (s) | RSS (MB) |\n| ---: | ---: |\n" + series.map { "| \($0.0) | \(String(format: "%.1f", $0.1)) |\n" }.joined()
            try appendMarkdown(s, to: markdown)
        }
        guard growth <= maxGrowth else { throw ExitCode(1) }
        guard stats.totalErrors() == 0 else { throw ExitCode(1) }
    }

    /// The servers to load: the given one, or a `crucial-bench serve` (three on etcd with --cluster).
    private func startServers() async throws -> ([String], [Int32], () -> Void) {
        if let servers { return (servers.split(separator: ",").map(String.init), serverPid, {}) }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        guard cluster else {
            let server = try await ServerProcess.start(executable: me, arguments: ["serve"])
            return ([server.address], [server.processIdentifier], { server.stop() })
        }
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-soak-etcd-\(UUID())").path
        let (etcd, endpoint) = try await ServerProcess.startEtcd(dataDirectory: dataDir)
        let members = try Members(etcd: endpoint, rf: 2, leaseTTL: 5, cluster: "soak")
        for id in ["a", "b", "c"] { try await members.start(id) }
        return (
            ["a", "b", "c"].map(members.address), members.pids,
            {
                members.stopAll()
                etcd.stop()
                try? FileManager.default.removeItem(atPath: dataDir)
            }
        )
    }
}

/// Latencies (µs) and errors of the current interval, from every client.
final class SoakStats: Sendable {
    private let state = Mutex<(samples: [Double], errors: Int, total: Int, totalErrors: Int, examples: [String])>(([], 0, 0, 0, []))

    func record(_ d: Duration) {
        let us = micros(d)
        state.withLock {
            $0.samples.append(us)
            $0.total += 1
        }
    }

    func failed(_ error: any Error) {
        state.withLock {
            $0.errors += 1
            $0.totalErrors += 1
            if $0.examples.count < 3 { $0.examples.append("\(error)") }
        }
    }

    func drain() -> ([Double], Int) {
        state.withLock { s in
            defer {
                s.samples.removeAll(keepingCapacity: true)
                s.errors = 0
            }
            return (s.samples, s.errors)
        }
    }

    func totalCalls() -> Int { state.withLock { $0.total } }
    func totalErrors() -> Int { state.withLock { $0.totalErrors } }
    func errorSamples() -> [String] { state.withLock { $0.examples } }
}

/// The resident memory of process `pid` in MB (0 when it is gone).
func residentMegabytes(_ pid: Int32) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kb = Double(line.split(separator: " ").dropFirst().first ?? "")
    else { return 0 }
    return kb / 1024
}
