import CrucialProcess
import ArgumentParser
import CrucialClient
import CrucialLambda
import CrucialExamples
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Does nothing: the cost of a cloud thread itself.
struct Noop: Runnable {
    func run() async throws {}
}

/// Does nothing, then ends its process once the answer is out: the next invocation starts cold.
struct NoopThenExit: Runnable {
    func run() async throws {
        Task.detached {
            try await Task.sleep(for: .milliseconds(20))
            exit(0)
        }
    }
}

/// `crucial-bench lambda`: cloud-thread invocation overhead and Monte Carlo π scale-up on
/// crucial-lambda-emulator, each next to its peer measured in the same run.
struct LambdaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lambda",
        abstract: "Cloud-thread overhead (warm, cold) and Monte Carlo π scale-up on the local Lambda emulator.")

    @Option(help: "Warm invocations measured (after 20 unmeasured).")
    var warm = 300

    @Option(help: "Cold invocations measured.")
    var cold = 30

    @Option(help: "Random points per thread in the Monte Carlo runs.")
    var points = 100_000_000

    @Option(help: "Thread counts for the Monte Carlo runs, comma-separated.")
    var threads = "1,2,4,8"

    @Option(help: "Append the results as Markdown to this file.")
    var markdown: String?

    func run() async throws {
        let counts = threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ (1...256).contains($0) }) else { throw ValidationError("--threads: numbers 1...256") }
        guard let serverBinary = ServerProcess.siblingExecutable("crucial-server"),
            let emulatorBinary = ServerProcess.siblingExecutable("crucial-lambda-emulator"),
            let me = ServerProcess.siblingExecutable("crucial-bench")
        else { throw BenchFailure("crucial-server and crucial-lambda-emulator must be built next to crucial-bench") }
        let server = try await ServerProcess.start(executable: serverBinary, arguments: ["--port", "0", "--log-level", "warning"])
        defer { server.stop() }
        let emulator = try await ServerProcess.start(
            executable: emulatorBinary,
            arguments: ["--port", "0", "--function", "crucial=\(me)", "--concurrency", String(counts.max() ?? 8), "--log-level", "warning"])
        defer { emulator.stop() }
        let client = CrucialClient(servers: [server.address])
        defer { client.close() }
        let lambda = LambdaInvoker(configuration: .init(endpoint: "http://\(emulator.address)", logTail: false))
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        say("crucial-bench lambda: \(cpus) cores; crucial-server \(server.address), crucial-lambda-emulator \(emulator.address)")

        // Invocation overhead: a cloud thread that does nothing.
        say("warm: \(warm) sequential Noop cloud threads (each after the previous joined)")
        for _ in 0..<20 { try await CloudThread(Noop(), invoker: lambda, client: client).run() }
        let warmEmulator = try await Self.sample(warm) { try await CloudThread(Noop(), invoker: lambda, client: client).run() }
        let warmInProcess = try await Self.sample(warm) { try await CloudThread(Noop(), invoker: InProcessInvoker(), client: client).run() }
        say("cold: \(cold) Noop cloud threads, each in a fresh bootstrap process")
        let coldEmulator = try await Self.sample(cold) {
            try await CloudThread(NoopThenExit(), invoker: lambda, client: client).run()
        } between: {
            try await Task.sleep(for: .milliseconds(150))  // the process exits 20 ms after answering
        }
        try await Task.sleep(for: .milliseconds(150))  // the last one too, before anything else runs
        // posix_spawn + waitpid: Foundation's Process.waitUntilExit polls every 50 ms.
        let spawn = try await Self.sample(cold) {
            var pid: pid_t = 0
            let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
            defer { free(argv[0]) }
            let rc = posix_spawn(&pid, "/bin/true", nil, nil, argv, environ)
            guard rc == 0 else { throw BenchFailure("posix_spawn /bin/true: error \(rc)") }
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
        var report = """
            Invocation overhead of one cloud thread, µs (driver's start() to join() returning)
            what                                         p50        p99
            warm, on the emulator                   \(pad(warmEmulator.p50))  \(pad(warmEmulator.p99))
            warm, in-process invoker (peer)         \(pad(warmInProcess.p50))  \(pad(warmInProcess.p99))
            cold, on the emulator (new process)     \(pad(coldEmulator.p50))  \(pad(coldEmulator.p99))
            spawn + wait of /bin/true (peer)        \(pad(spawn.p50))  \(pad(spawn.p99))

            """
        say(report)

        // Monte Carlo π: N cloud threads vs N local tasks doing the same work.
        var rows: [(n: Int, cloud: Double, local: Double)] = []
        let counter = AtomicLong("counter", initial: 0, client: client)
        for n in counts {
            // Warm the environments first, so the run measures computing, not process start.
            try await CloudExecutor(invoker: lambda, client: client).invokeAll((0..<n).map { _ in Noop() })
            try await counter.set(0)
            let start = ContinuousClock.now
            try await CloudExecutor(invoker: lambda, client: client)
                .invokeAll((0..<n).map { PiEstimator(iterations: points, seed: UInt64($0 + 1) &* 0x9E37_79B9_7F4A_7C15) })
            let cloudSeconds = seconds(ContinuousClock.now - start)
            let inside = try await counter.get()
            let pi = 4 * Double(inside) / Double(n * points)
            guard abs(pi - Double.pi) < 0.01 else { throw BenchFailure("π estimate \(pi) is off: the counter lost updates") }

            let localStart = ContinuousClock.now
            let localInside = await withTaskGroup(of: Int64.self) { group in
                for t in 0..<n {
                    group.addTask {
                        var rng = SplitMix64(seed: UInt64(t + 1) &* 0x9E37_79B9_7F4A_7C15)
                        return PiEstimator.inside(points, &rng)
                    }
                }
                return await group.reduce(0, +)
            }
            let localSeconds = seconds(ContinuousClock.now - localStart)
            guard localInside == inside else { throw BenchFailure("local and cloud runs disagree: \(localInside) vs \(inside)") }
            let row = (n, Double(n * points) / cloudSeconds, Double(n * points) / localSeconds)
            say(String(format: "  %3d threads: cloud %.1f M points/s, local %.1f M points/s", n, row.1 / 1e6, row.2 / 1e6))
            rows.append(row)
        }
        let base = rows.first
        report += "Monte Carlo π (\(points) points per thread; \(cpus) cores), points/s\n"
        report += "threads   cloud threads   scale-up    local tasks (peer)   scale-up   cloud/local\n"
        for r in rows {
            report += String(
                format: "%7d   %13.1fM   %7.2fx   %17.1fM   %7.2fx   %10.2f\n", r.n, r.cloud / 1e6, r.cloud / (base?.cloud ?? r.cloud),
                r.local / 1e6, r.local / (base?.local ?? r.local), r.cloud / r.local)
        }
        say("")
        say(report)
        if let markdown {
            let date = ISO8601DateFormatter().string(from: Date()).prefix(10)
            let text = "\n### Cloud threads on crucial-lambda-emulator (\(date), `tools/bench.sh lambda`)\n\n```\n\(report)```\n"
            try appendMarkdown(text, to: markdown)
        }
    }

    struct Percentiles {
        var p50: Double
        var p99: Double
    }

    /// Runs `body` `n` times; percentiles of its duration in µs.
    static func sample(
        _ n: Int, _ body: () async throws -> Void, between: () async throws -> Void = {}
    ) async throws -> Percentiles {
        var times: [Double] = []
        for _ in 0..<n {
            try await between()
            let start = ContinuousClock.now
            try await body()
            times.append(micros(ContinuousClock.now - start))
        }
        times.sort()
        func at(_ q: Double) -> Double { times.isEmpty ? 0 : times[min(times.count - 1, Int(q * Double(times.count)))] }
        return Percentiles(p50: at(0.5), p99: at(0.99))
    }
}

private func pad(_ x: Double) -> String { String(format: "%9.0f", x) }

private func seconds(_ d: Duration) -> Double { micros(d) / 1e6 }
