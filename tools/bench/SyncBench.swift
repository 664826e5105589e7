import ArgumentParser
import CrucialClient
import CrucialLambda
import CrucialTesting
import CrucialExamples
import Foundation
import NIOPosix

/// How a map phase tells the driver it is done (Figure 6 of the paper).
enum MapSync: String, Codable, CaseIterable {
    /// Each thread adds its result to a shared list; the driver polls its size.
    case dsoPolling = "dso-polling"
    /// Each thread pushes its result to a Redis list; the driver polls its length.
    case redisPolling = "redis-polling"
    /// Each thread sets its own SharedFuture; the driver gets each (the reduce phase).
    case futures
    /// Each thread adds its result into one shared counter and counts a latch down; the
    /// driver awaits the latch and reads the sum: the reduction happens in the DSO layer.
    case autoReduce = "auto-reduce"

    var title: String {
        switch self {
        case .dsoPolling: "polling a DSO list"
        case .redisPolling: "polling a Redis list"
        case .futures: "a SharedFuture per thread"
        case .autoReduce: "auto-reduce (one shared counter)"
        }
    }
}

/// One map task: Monte Carlo π on `iterations` points, then its result published as
/// `technique` says. Returns the wall-clock time at which its computation ended.
struct MapTask: Callable {
    var id: Int
    var run: Int
    var threads: Int
    var iterations: Int
    var technique: MapSync
    var redisPort: Int

    func call() async throws -> Double {
        var rng = SplitMix64(seed: UInt64(run * 100_003 + id))
        let inside = PiEstimator.inside(iterations, &rng)
        let finished = Date().timeIntervalSince1970
        switch technique {
        case .dsoPolling:
            try await SharedList<Int64>("map-\(run)-results").add(inside)
        case .redisPolling:
            let redis = try await RedisConnection(port: redisPort, group: MultiThreadedEventLoopGroup.singleton)
            defer { redis.close() }
            _ = try await redis.command([Array("RPUSH".utf8), Array("map:\(run):results".utf8), Array("\(inside)".utf8)])
        case .futures:
            try await SharedFuture<Int64>("map-\(run)-future-\(id)").set(inside)
        case .autoReduce:
            try await AtomicLong("map-\(run)-sum").addAndGet(inside)
            try await CountDownLatch("map-\(run)-done", count: threads).countDown()
        }
        return finished
    }
}

/// `crucial-bench mapsync`: Figure 6 of the paper, the time between the end of the last
/// map task and the driver holding the reduced result, for each way of synchronising.
struct MapSyncBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mapsync",
        abstract: "Synchronising the end of a map phase of n cloud threads: polling the DSO layer, polling Redis, futures, auto-reduce.")

    @Option(help: "Cloud threads in the map phase.")
    var threads = 100

    @Option(help: "Monte Carlo points per thread.")
    var iterations = 2_000_000

    @Option(help: "Measured map phases per technique (after one unmeasured).")
    var repeats = 10

    @Option(help: "Polling interval of the polling techniques, ms.")
    var poll = 10

    @Option(help: "The redis-server executable.")
    var redisServer = "/usr/bin/redis-server"

    @Option(help: "Where to draw the plot (needs gnuplot).")
    var plot = "docs/experiments-mapsync.png"

    @Option(help: "Append the results as Markdown to this file.")
    var markdown: String?

    func validate() throws {
        guard (1...1000).contains(threads), iterations >= 1, repeats >= 1, poll >= 1 else {
            throw ValidationError("--threads 1...1000, --iterations, --repeats and --poll at least 1")
        }
    }

    func run() async throws {
        let (redis, redisPort) = try await startRedis(redisServer)
        defer { redis.stop() }
        let pool = try await RedisPool(port: redisPort, connections: 1)
        defer { pool.close() }
        let local = try await LocalStack.start(concurrency: threads, bootstrap: "crucial-bench")
        defer { local.stop() }
        say("warming \(threads) cloud-thread environments ...")
        try await CloudExecutor().invokeAll((0..<threads).map { _ in Noop() })

        var rows: [(technique: MapSync, sync: [Double], total: [Double])] = []
        var run = 0
        for technique in MapSync.allCases {
            var sync: [Double] = [], total: [Double] = []
            for round in -1..<repeats {  // round -1 is unmeasured: each process's first use of the technique's code
                run += 1
                let tasks = (0..<threads).map { MapTask(id: $0, run: run, threads: threads, iterations: iterations, technique: technique, redisPort: redisPort) }
                let started = Date().timeIntervalSince1970
                let phase = Task { try await CloudExecutor().invokeAll(tasks) }
                let inside: Int64
                do {
                    inside = try await reduce(technique, run: run, pool: pool)
                } catch {
                    phase.cancel()
                    throw error
                }
                let synced = Date().timeIntervalSince1970
                let lastFinished = try await phase.value.max() ?? synced
                let pi = 4 * Double(inside) / Double(threads * iterations)
                guard abs(pi - Double.pi) < 0.01 else { throw BenchFailure("\(technique.rawValue): π = \(pi) from the reduced result") }
                guard round >= 0 else { continue }
                sync.append((synced - lastFinished) * 1000)
                total.append((synced - started) * 1000)
            }
            say(String(format: "%@: synchronisation %@ ms", technique.title, sync.map { String(format: "%.1f", $0) }.joined(separator: ", ")))
            rows.append((technique, sync, total))
        }

        let baseline = median(rows[0].sync)
        var report = "Synchronising a map phase of \(threads) cloud threads (Monte Carlo, \(iterations) points each), \(repeats) phases per technique, polling every \(poll) ms\n"
        report += "technique                            sync median ms   mean ms   max ms   phase total ms   median vs DSO polling\n"
        for r in rows {
            report += String(
                format: "%@ %14.1f %9.1f %8.1f %16.1f %22.2f×\n", r.technique.title.padding(toLength: 36, withPad: " ", startingAt: 0), median(r.sync),
                mean(r.sync), r.sync.max() ?? 0, mean(r.total), median(r.sync) / max(baseline, 1e-9))
        }
        report += "paper (AWS, 100 threads): SQS slowest, S3 slow and variable, Infinispan polling faster, futures faster, auto-reduce fastest (2× faster than S3 polling)\n"
        print(report)
        let data = rows.enumerated().map { "\($0.offset) \"\($0.element.technique.rawValue)\" \(median($0.element.sync)) \($0.element.sync.min() ?? 0) \($0.element.sync.max() ?? 0)" }
            .joined(separator: "\n")
        try gnuplot(
            """
            set terminal png size 800,420
            set output '\(plot)'
            set title 'Synchronising a map phase of \(threads) cloud threads (local emulator)'
            set ylabel 'last map task to result, ms (median, min-max)'
            set style fill solid 0.6
            set boxwidth 0.6
            set grid ytics
            set yrange [0:*]
            set xrange [-0.6:\(Double(rows.count) - 0.4)]
            plot '-' using 1:3:xtic(2) with boxes notitle, '' using 1:3:4:5 with yerrorbars lc rgb 'black' notitle
            \(data)
            e
            \(data)
            e
            """)
        say("plot: \(plot)")
        if let markdown {
            try appendMarkdown(
                "\n### \(ISO8601DateFormatter().string(from: Date())): synchronising a map phase (Figure 6)\n\n`tools/experiments.sh mapsync --threads \(threads) --iterations \(iterations) --repeats \(repeats) --poll \(poll)`\n\n```\n\(report)```\n\n![mapsync](\(URL(fileURLWithPath: plot).lastPathComponent))\n",
                to: markdown)
        }
    }

    /// Waits, as `technique` does, until every map task has published; returns the sum.
    private func reduce(_ technique: MapSync, run: Int, pool: RedisPool) async throws -> Int64 {
        let deadline = ContinuousClock.now + .seconds(600)
        func tick() async throws {
            guard ContinuousClock.now < deadline else { throw BenchFailure("\(technique.rawValue): the map phase did not end in 600 s") }
            try await Task.sleep(for: .milliseconds(poll))
        }
        switch technique {
        case .dsoPolling:
            let results = SharedList<Int64>("map-\(run)-results")
            while try await results.size() < threads { try await tick() }
            return try await results.elements().reduce(0, +)
        case .redisPolling:
            let key = "map:\(run):results"
            while case .integer(let n) = try await pool.command("LLEN", key), n < threads { try await tick() }
            guard case .array(let items?) = try await pool.command("LRANGE", key, "0", "-1") else { throw BenchFailure("LRANGE: no list") }
            return items.reduce(0) { sum, item in
                guard case .bulk(let bytes?) = item else { return sum }
                return sum + (Int64(String(decoding: bytes, as: UTF8.self)) ?? 0)
            }
        case .futures:
            return try await withThrowingTaskGroup(of: Int64.self) { group in
                for id in 0..<threads { group.addTask { try await SharedFuture<Int64>("map-\(run)-future-\(id)").get() } }
                var sum: Int64 = 0
                for try await part in group { sum += part }
                return sum
            }
        case .autoReduce:
            try await CountDownLatch("map-\(run)-done", count: threads).await()
            return try await AtomicLong("map-\(run)-sum").get()
        }
    }
}

/// One round of one thread at a barrier: when it arrived and when it was let go, in ns of
/// CLOCK_MONOTONIC (one clock for every process of the machine, so that the driver can
/// compare the threads' times).
struct BarrierPass: Codable, Sendable {
    var arrived: UInt64
    var released: UInt64
    var waitMilliseconds: Double { Double(released &- arrived) / 1e6 }
}

/// Now by CLOCK_MONOTONIC, ns.
func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// One cloud thread of the barrier benchmark: `rounds` times, `work` ms of work (a
/// sleep: the threads stand for functions on their own machines) then the barrier.
/// Returns when it arrived at the barrier and when it was released, each round.
struct BarrierTask: Callable {
    var run: Int
    var parties: Int
    var rounds: Int
    var workMilliseconds: Int
    var redisPort: Int?

    func call() async throws -> [BarrierPass] {
        let barrier = CyclicBarrier("barrier-\(run)", parties: parties)
        let redis: RedisConnection?
        if let redisPort { redis = try await RedisConnection(port: redisPort, group: MultiThreadedEventLoopGroup.singleton) } else { redis = nil }
        defer { redis?.close() }
        var passes: [BarrierPass] = []
        for round in 0..<rounds {
            try await Task.sleep(for: .milliseconds(workMilliseconds))
            let arrived = monotonicNanoseconds()
            if let redis {
                try await Self.redisBarrier(redis, key: "barrier:\(run):\(round)", parties: parties)
            } else {
                _ = try await barrier.await()
            }
            passes.append(BarrierPass(arrived: arrived, released: monotonicNanoseconds()))
        }
        return passes
    }

    /// The peer: a counter and a list; the last to arrive pushes a token for each waiter,
    /// which each takes with a blocking pop.
    static func redisBarrier(_ redis: RedisConnection, key: String, parties: Int) async throws {
        func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
        guard case .integer(let arrived) = try await redis.command([bytes("INCR"), bytes(key)]) else { throw BenchFailure("INCR: no integer") }
        if arrived == parties {
            if parties > 1 {
                _ = try await redis.command([bytes("RPUSH"), bytes(key + ":go")] + Array(repeating: bytes("1"), count: parties - 1))
            }
        } else {
            _ = try await redis.command([bytes("BLPOP"), bytes(key + ":go"), bytes("0")])
        }
    }
}

/// `crucial-bench barrier`: Figure 7a of the paper, the mean time a cloud thread waits at
/// a barrier against the number of threads; the peer is a barrier built on Redis.
struct BarrierBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "barrier",
        abstract: "Mean time n cloud threads wait at a CyclicBarrier each round, against a Redis barrier.")

    @Option(help: "Numbers of cloud threads, comma-separated.")
    var sizes = "2,10,25,50,100,200,300"

    @Option(help: "Measured rounds of work then barrier per thread (after one unmeasured first round).")
    var rounds = 5

    @Option(help: "Work before each barrier, ms (a sleep).")
    var work = 200

    @Option(help: "The redis-server executable.")
    var redisServer = "/usr/bin/redis-server"

    @Option(help: "Where to draw the plot (needs gnuplot).")
    var plot = "docs/experiments-barrier.png"

    @Option(help: "Append the results as Markdown to this file.")
    var markdown: String?

    func run() async throws {
        let ns = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ns.isEmpty, ns.allSatisfy({ (1...1000).contains($0) }) else { throw ValidationError("--sizes: numbers 1...1000") }
        guard rounds >= 1, work >= 0 else { throw ValidationError("--rounds at least 1, --work at least 0") }
        let (redis, redisPort) = try await startRedis(redisServer, extraArguments: ["--maxclients", "4000"])
        defer { redis.stop() }
        let most = ns.max() ?? 1
        let local = try await LocalStack.start(concurrency: most, bootstrap: "crucial-bench")
        defer { local.stop() }
        say("warming \(most) cloud-thread environments ...")
        try await CloudExecutor().invokeAll((0..<most).map { _ in Noop() })
        // Each environment's first barrier of either kind pays for its process's first use
        // of that code (hundreds of processes on two cores): done once, unmeasured.
        for (run, peer) in [(-1, nil), (-2, redisPort)] as [(Int, Int?)] {
            _ = try await CloudExecutor().invokeAll((0..<most).map { _ in
                BarrierTask(run: run, parties: most, rounds: 1, workMilliseconds: 0, redisPort: peer)
            })
        }

        /// The paper's figure (the mean wait per thread and round), and the barrier's own
        /// part of it: from the round's last arrival until each thread was released (the rest
        /// is the spread of the arrivals, which the machine's scheduler sets, not the barrier).
        struct Figures {
            var meanWait: Double
            var release: Double
            var lastRelease: Double
        }
        func figures(_ threads: [[BarrierPass]]) -> Figures {
            var waits: [Double] = [], releases: [Double] = [], lasts: [Double] = []
            // Round 0 is the global barrier before measurement, as in the paper: every thread
            // makes its connections there.
            for round in 1..<(rounds + 1) {
                let passes = threads.map { $0[round] }
                let lastArrival = passes.map(\.arrived).max() ?? 0
                waits += passes.map(\.waitMilliseconds)
                let after = passes.map { Double($0.released &- lastArrival) / 1e6 }
                releases += after
                lasts.append(after.max() ?? 0)
            }
            return Figures(meanWait: mean(waits), release: mean(releases), lastRelease: mean(lasts))
        }
        var rows: [(n: Int, crucial: Figures, redis: Figures)] = []
        var run = 0
        for n in ns {
            var result: [Figures] = []
            for peer in [nil, redisPort] as [Int?] {
                run += 1
                let passes = try await CloudExecutor().invokeAll((0..<n).map { _ in
                    BarrierTask(run: run, parties: n, rounds: rounds + 1, workMilliseconds: work, redisPort: peer)
                })
                guard passes.count == n, passes.allSatisfy({ $0.count == rounds + 1 }) else {
                    throw BenchFailure("\(passes.count) of \(n) threads answered")
                }
                result.append(figures(passes))
            }
            say(
                String(
                    format: "n = %d: mean wait %.1f ms on a Crucial CyclicBarrier (released %.2f ms after the last arrival), %.1f ms on the Redis barrier (%.2f ms)",
                    n, result[0].meanWait, result[0].release, result[1].meanWait, result[1].release))
            rows.append((n, result[0], result[1]))
        }
        var report = "Mean wait at a barrier per thread and round, \(rounds) rounds of \(work) ms work after a first round that makes the connections, cloud threads on crucial-lambda-emulator (warm);\n"
        report += "release: from the round's last arrival to a thread's release, mean over threads (all: until the last thread is released), ms\n"
        report += "threads   Crucial wait   Redis wait   Redis/Crucial   Crucial release (all)   Redis release (all)\n"
        for r in rows {
            report += String(
                format: "%7d %14.2f %12.2f %14.2f× %14.2f (%6.2f) %13.2f (%6.2f)\n", r.n, r.crucial.meanWait, r.redis.meanWait,
                r.redis.meanWait / max(r.crucial.meanWait, 1e-9), r.crucial.release, r.crucial.lastRelease, r.redis.release, r.redis.lastRelease)
        }
        report += "paper (AWS Lambda): one order of magnitude faster than SNS+SQS at 320 threads; 68 ms at 1800 threads\n"
        print(report)
        let data = rows.map { "\($0.n) \($0.crucial.meanWait) \($0.redis.meanWait)" }.joined(separator: "\n")
        try gnuplot(
            """
            set terminal png size 800,420
            set output '\(plot)'
            set title 'Mean wait at a barrier (\(work) ms of work per round, local emulator)'
            set xlabel 'cloud threads'
            set ylabel 'wait per thread and round (ms)'
            set grid
            set key top left
            plot '-' using 1:2 with linespoints lw 2 pt 7 title 'Crucial CyclicBarrier', '' using 1:3 with linespoints lw 2 pt 5 title 'Redis barrier (INCR + BLPOP)'
            \(data)
            e
            \(data)
            e
            """)
        say("plot: \(plot)")
        if let markdown {
            try appendMarkdown(
                "\n### \(ISO8601DateFormatter().string(from: Date())): barrier wait (Figure 7a)\n\n`tools/experiments.sh barrier --sizes \(sizes) --rounds \(rounds) --work \(work)`\n\n```\n\(report)```\n\n![barrier](\(URL(fileURLWithPath: plot).lastPathComponent))\n",
                to: markdown)
        }
    }
}

func mean(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.reduce(0, +) / Double(xs.count) }

func median(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.sorted()[xs.count / 2] }
