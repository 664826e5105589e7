import ArgumentParser
import CrucialClient
import Foundation

/// §6.1.2's object as a user writes it: `@Shared`, its methods run on the server.
@Shared
struct ComplexCounter {
    var value: Int64 = 1

    mutating func complex() -> Int64 {
        value = BenchCounter.complex(value)
        return value
    }
}

/// k-means centroids (Listing 2 of the paper), with both ways to update them: the
/// method shipped to the server, and a versioned read / compare-and-replace for
/// clients that fetch, merge and write back.
@Shared
struct BenchCentroids {
    var sums: [[Double]]
    var counts: [Int]
    var version: Int = 0

    init(k: Int, dims: Int) {
        sums = Array(repeating: Array(repeating: 0, count: dims), count: k)
        counts = Array(repeating: 0, count: k)
    }

    /// Merges one worker's partial sums on the server.
    mutating func update(_ partial: [[Double]], counts partialCounts: [Int]) {
        for c in sums.indices {
            for d in sums[c].indices { sums[c][d] += partial[c][d] }
            counts[c] += partialCounts[c]
        }
        version += 1
    }

    func state() -> BenchCentroids { self }

    /// Installs `new` if nobody wrote since `version` was read.
    mutating func replace(_ new: BenchCentroids, ifVersion expected: Int) -> Bool {
        guard version == expected else { return false }
        self = new
        version = expected + 1
        return true
    }

    func totalCount() -> Int { counts.reduce(0, +) }

    /// An inference: the centroid (mean of its points) nearest to `point`.
    func nearest(_ point: [Double]) -> Int {
        var best = 0, bestDistance = Double.infinity
        for c in sums.indices where counts[c] > 0 {
            var d = 0.0
            for i in point.indices where i < sums[c].count {
                let x = sums[c][i] / Double(counts[c]) - point[i]
                d += x * x
            }
            if d < bestDistance { (best, bestDistance) = (c, d) }
        }
        return best
    }
}

/// `crucial-bench shared`: user-defined objects against their peers.
struct SharedBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shared",
        abstract: "User-defined objects: §6.1.2's complex method vs a Redis Lua script, and the k-means update shipped vs fetched-merged-written-back.")

    @Option(help: "Seconds per throughput measurement.")
    var duration = 10.0

    @Option(help: "Concurrent clients of the complex-method run.")
    var clients = 50

    @Option(help: "Objects the complex-method clients pick from at random.")
    var objects = 800

    @Option(help: "Worker counts of the k-means update runs, comma-separated.")
    var workers = "1,8,50"

    @Option(help: "Connections per client pool (both systems).")
    var connections = 2

    @Option(help: "The redis-server executable.")
    var redisServer = "/usr/bin/redis-server"

    @Option(help: "Append the results as Markdown to this file.")
    var markdown: String?

    func run() async throws {
        let workerCounts = workers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard duration > 0, clients > 0, objects > 0, !workerCounts.isEmpty, workerCounts.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("sizes must be positive")
        }
        guard FileManager.default.isExecutableFile(atPath: redisServer) else {
            throw ValidationError("\(redisServer) not found: apt-get install redis-server (tools/bench.sh does it)")
        }
        let peers = try await Peers(redisServer: redisServer)
        defer { peers.stop() }
        let crucial = CrucialClient(configuration: .init(servers: ["127.0.0.1:\(peers.crucialPort)"], connections: connections))
        defer { crucial.close() }
        let pool = try await RedisPool(port: peers.redisPort, connections: connections)
        defer { pool.close() }
        let run = Run.parseOrExit(["--duration", String(duration), "--clients", String(clients), "--keys", String(objects)])
        say("crucial-bench shared: \(ProcessInfo.processInfo.activeProcessorCount) cores; redis \(run.redisVersion())")

        // §6.1.2: 10,000 multiplications per call, 50 clients, 800 objects.
        guard case .bulk(let shaBytes?) = try await pool.command("SCRIPT", "LOAD", complexLua) else { throw BenchFailure("SCRIPT LOAD") }
        let sha = String(decoding: shaBytes, as: UTF8.self)
        let expected = BenchCounter.complex(1)
        let one = try await ComplexCounter.Shared("check", ComplexCounter(), client: crucial).complex()
        guard one == expected, try await pool.command("EVALSHA", sha, "1", "check") == .integer(expected) else {
            throw BenchFailure("the complex method disagrees between Crucial, Redis and a local run")
        }
        let proxies = (0..<objects).map { ComplexCounter.Shared("complex:\($0)", ComplexCounter(), client: crucial) }
        say("complex method: \(clients) clients × \(duration) s on \(objects) objects, @Shared type ...")
        let shipped = try await run.throughput(server: peers.crucial.processIdentifier) { k in _ = try await proxies[k].complex() }
        say("complex method: the same as a hand-written server object (SharedObject) ...")
        let handWritten = try await run.throughput(server: peers.crucial.processIdentifier) { k in
            _ = try await crucial.invoke(ObjectRef(type: "BenchCounter", key: "obj:\(k)"), "complex", create: Create(initial: .int(1)))
        }
        say("complex method: Redis EVALSHA of the same computation in Lua ...")
        let lua = try await run.throughput(server: peers.redis.processIdentifier) { k in _ = try await pool.command("EVALSHA", sha, "1", "obj:\(k)") }
        var report = "User-defined object, complex method (10,000 multiplications), \(clients) clients, \(objects) objects, \(duration) s\n"
        report += "what                                     ops/s     vs Redis\n"
        report += String(format: "@Shared struct (ComplexCounter)     %10.0f   %8.2fx\n", shipped.rate, shipped.rate / lua.rate)
        report += String(format: "hand-written SharedObject           %10.0f   %8.2fx\n", handWritten.rate, handWritten.rate / lua.rate)
        report += String(format: "Redis Lua script (peer)             %10.0f   %8.2fx\n", lua.rate, 1.0)

        // k-means: 25 centroids × 100 dimensions.
        report += "\nk-means centroid update (k = 25, 100 dimensions), updates/s, \(duration) s per run\n"
        report += "workers   shipped method   fetch+merge+write back   conflicts   shipped / fetched\n"
        var rng = SystemRandomNumberGenerator()
        let partial = (0..<25).map { _ in (0..<100).map { _ in Double.random(in: 0...1, using: &rng) } }
        let counts = (0..<25).map { _ in Int.random(in: 1...40, using: &rng) }
        let perUpdate = counts.reduce(0, +)
        for n in workerCounts {
            let shippedKey = "centroids-shipped-\(n)", fetchedKey = "centroids-fetched-\(n)"
            say("k-means update: \(n) workers, shipped method ...")
            let a = try await timed(n) {
                try await BenchCentroids.Shared(shippedKey, BenchCentroids(k: 25, dims: 100), client: crucial).update(partial, counts: counts)
                return 0
            }
            say("k-means update: \(n) workers, fetch, merge locally, write back if unchanged ...")
            let b = try await timed(n) {
                let object = BenchCentroids.Shared(fetchedKey, BenchCentroids(k: 25, dims: 100), client: crucial)
                var conflicts = 0
                while true {
                    var state = try await object.state()
                    let read = state.version
                    state.update(partial, counts: counts)
                    if try await object.replace(state, ifVersion: read) { return conflicts }
                    conflicts += 1
                }
            }
            // Every update is in the counts, none lost.
            let shippedTotal = try await BenchCentroids.Shared(shippedKey, BenchCentroids(k: 25, dims: 100), client: crucial).totalCount()
            let fetchedTotal = try await BenchCentroids.Shared(fetchedKey, BenchCentroids(k: 25, dims: 100), client: crucial).totalCount()
            guard shippedTotal == a.done * perUpdate, fetchedTotal == b.done * perUpdate else {
                throw BenchFailure("centroid counts disagree with the updates made: \(shippedTotal) vs \(a.done * perUpdate), \(fetchedTotal) vs \(b.done * perUpdate)")
            }
            report += String(format: "%7d   %14.0f   %22.0f   %9d   %16.2fx\n", n, a.rate, b.rate, b.extra, a.rate / b.rate)
        }
        say("")
        say(report)
        if let markdown {
            let date = ISO8601DateFormatter().string(from: Date()).prefix(10)
            try appendMarkdown("\n### User-defined objects (\(date), `tools/bench.sh shared`)\n\n```\n\(report)```\n", to: markdown)
        }
    }

    /// `n` closed loops of `op` for the duration; each returns extra work done (conflicts).
    private func timed(_ n: Int, _ op: @escaping @Sendable () async throws -> Int) async throws -> (done: Int, rate: Double, extra: Int) {
        for _ in 0..<3 { _ = try await op() }  // warm-up, creates the object
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + .milliseconds(Int64(duration * 1000))
        let (done, extra) = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for _ in 0..<n {
                group.addTask {
                    var done = 0, extra = 0
                    while clock.now < deadline {
                        extra += try await op()
                        done += 1
                    }
                    return (done, extra)
                }
            }
            return try await group.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
        }
        let (s, atto) = (clock.now - start).components
        return (done + 3, Double(done) / (Double(s) + Double(atto) / 1e18), extra)
    }
}
