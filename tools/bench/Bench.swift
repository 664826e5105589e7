import CrucialProcess
import ArgumentParser
import CrucialClient
import CrucialExamples
import CrucialLambda
import CrucialServer
import Foundation
import Histogram
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

@main
enum BenchMain {
    static func main() async {
        // Under crucial-lambda-emulator this executable is the bootstrap of the Lambda benchmark.
        await CrucialLambda.serveIfLambda(registering: PiEstimator.self, Noop.self, NoopThenExit.self, MapTask.self, BarrierTask.self)
        await Bench.main()
    }
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crucial-bench",
        abstract: "Benchmarks Crucial against its peers on this machine, in one run.",
        version: CrucialVersion.description,
        subcommands: [Run.self, Serve.self, LambdaBench.self, CodecBench.self, SharedBench.self, ClusterBench.self, FailoverBench.self, OrchestrationBench.self, MapSyncBench.self, BarrierBench.self, SoakBench.self, HandshakeBench.self],
        defaultSubcommand: Run.self)
}

/// `crucial-bench serve`: a crucial-server with the benchmark's object type linked in.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Runs a crucial-server that also knows BenchCounter.")

    @Option var port = 0
    @Option var threads: Int?
    @Option(help: "Join the cluster registered in this etcd (as crucial-server --etcd).") var etcd: String?
    @Option var nodeId = "bench"
    @Option var rf = 2
    @Option var leaseTtl = 2
    @Flag(inversion: .prefixedNo, help: "As crucial-server --fast-failover.") var fastFailover = true
    @Option(help: "As crucial-server --data-dir.") var dataDir: String?
    @Option(help: "As crucial-server --fsync.") var fsync = FsyncPolicy.everysec

    func run() async throws {
        var registry = TypeRegistry.builtins
        registry.register(BenchCounter.self)
        registry.register(shared: ComplexCounter.self)
        registry.register(shared: BenchCentroids.self)
        var logger = Logger(label: "crucial.bench.server")
        logger.logLevel = .warning
        let cluster = etcd.map {
            ClusterConfiguration(
                etcd: $0, nodeID: nodeId, advertise: "127.0.0.1:\(port)", rf: rf, leaseTTL: leaseTtl, clusterName: "bench",
                fastFailover: fastFailover)
        }
        let server = CrucialServer(
            configuration: .init(
                port: port, threads: threads, persistence: dataDir.map { PersistenceConfiguration(directory: $0, fsync: fsync) }, cluster: cluster),
            registry: registry, logger: logger, metrics: .prometheus(), coordination: EtcdClient.factory)  // as crucial-server
        let address = try await server.start()
        say("crucial-server listening on 127.0.0.1:\(address.port ?? port)")
        fflush(nil)
        try await ServiceGroup(
            configuration: .init(services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        ).run()
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measures 1 KB latency, simple-op and complex-op throughput against redis-server.")

    @Option(help: "Seconds per throughput measurement.")
    var duration = 10.0

    @Option(help: "Concurrent closed-loop clients.")
    var clients = 50

    @Option(help: "Distinct keys (objects) the clients pick from at random.")
    var keys = 800

    @Option(help: "Sequential operations per latency measurement (each of put and get).")
    var latencyOps = 20_000

    @Option(help: "Connections per client pool (both systems).")
    var connections = 2

    @Option(help: "Event-loop threads of the Crucial server (default: one per core).")
    var serverThreads: Int?

    @Option(help: "The redis-server executable.")
    var redisServer = "/usr/bin/redis-server"

    @Option(help: "Also append the results as a Markdown table to this file.")
    var markdown: String?

    @Flag(
        inversion: .prefixedNo,
        help: "Pin the server under test (one event-loop thread) to core 0 and the load to core 1; --no-pin leaves it to the scheduler.")
    var pin = true

    func validate() throws {
        guard duration > 0, clients > 0, keys > 0, latencyOps > 0, connections > 0 else {
            throw ValidationError("every size must be positive")
        }
        if pin {
            guard ProcessInfo.processInfo.activeProcessorCount >= 2 else {
                throw ValidationError("pinning needs two cores (this machine has one): pass --no-pin")
            }
            guard FileManager.default.isExecutableFile(atPath: Placement.taskset) else {
                throw ValidationError("\(Placement.taskset) not found (util-linux): install it, or pass --no-pin")
            }
        }
        guard FileManager.default.isExecutableFile(atPath: redisServer) else {
            throw ValidationError("\(redisServer) not found: apt-get install redis-server (tools/bench.sh does it)")
        }
    }

    func run() async throws {
        let placement = Placement(pinned: pin)
        try placement.pinThisProcess()
        let threads = serverThreads ?? (pin ? 1 : nil)
        let peers = try await Peers(redisServer: redisServer, serverThreads: threads, placement: placement)
        defer { peers.stop() }
        let (redisPort, crucialPort) = (peers.redisPort, peers.crucialPort)
        let (redisPID, crucialPID) = (peers.redis.processIdentifier, peers.crucial.processIdentifier)

        let crucial = CrucialClient(configuration: .init(servers: ["127.0.0.1:\(crucialPort)"], connections: connections))
        defer { crucial.close() }
        let pool = try await RedisPool(port: redisPort, connections: connections)
        defer { pool.close() }
        try await crucial.ping()
        _ = try await pool.command("PING")

        say("crucial-bench: \(clients) clients, \(keys) keys, \(duration) s per throughput run, \(connections) connections each")
        say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; redis \(redisVersion()); crucial server threads: \(threads.map(String.init) ?? "one per core")")
        say("placement: \(placement.description)")
        var rows: [Row] = []

        // 1 KB sequential latency.
        let kb = [UInt8](repeating: 0x61, count: 1024)
        let blob = ObjectRef(type: "AtomicReference", key: "blob")
        let create = Create(initial: .bytes(kb))
        say("latency: \(latencyOps) sequential 1 KB puts, then gets ...")
        // As a proxy does: the initial state travels with the first call only.
        _ = try await crucial.invoke(blob, "get", create: create, readOnly: true)
        let crucialPut: @Sendable () async throws -> Void = { _ = try await crucial.invoke(blob, "set", [.bytes(kb)]) }
        let crucialGet: @Sendable () async throws -> Void = {
            guard try await crucial.invoke(blob, "get", readOnly: true) == .bytes(kb) else { throw BenchFailure("wrong 1 KB value") }
        }
        let redisPut: @Sendable () async throws -> Void = { _ = try await pool.command([Array("SET".utf8), Array("blob".utf8), kb]) }
        let redisGet: @Sendable () async throws -> Void = {
            guard try await pool.command("GET", "blob") == .bulk(kb) else { throw BenchFailure("wrong 1 KB value from redis") }
        }
        let cPut = try await latency(latencyOps, crucialPut)
        let cGet = try await latency(latencyOps, crucialGet)
        let rPut = try await latency(latencyOps, redisPut)
        let rGet = try await latency(latencyOps, redisGet)
        // The same, with the calling task on its connection's event loop (no thread switch).
        let cx = crucial.taskExecutor, rx = pool.executors[0], n = latencyOps
        let cPutL = try await withTaskExecutorPreference(cx) { try await latency(n, crucialPut) }
        let cGetL = try await withTaskExecutorPreference(cx) { try await latency(n, crucialGet) }
        let rPutL = try await withTaskExecutorPreference(rx) { try await latency(n, redisPut) }
        let rGetL = try await withTaskExecutorPreference(rx) { try await latency(n, redisGet) }
        rows.append(Row("1 KB put p50 (µs)", cPut.p50, rPut.p50, lowerIsBetter: true, target: "≤ 1.0"))
        rows.append(Row("1 KB put p99 (µs)", cPut.p99, rPut.p99, lowerIsBetter: true, target: "≤ 1.0"))
        rows.append(Row("1 KB put p999 (µs)", cPut.p999, rPut.p999, lowerIsBetter: true, target: ""))
        rows.append(Row("1 KB get p50 (µs)", cGet.p50, rGet.p50, lowerIsBetter: true, target: "≤ 1.0"))
        rows.append(Row("1 KB get p99 (µs)", cGet.p99, rGet.p99, lowerIsBetter: true, target: "≤ 1.0"))
        rows.append(Row("1 KB get p999 (µs)", cGet.p999, rGet.p999, lowerIsBetter: true, target: ""))
        rows.append(Row("1 KB put p50, on the loop (µs)", cPutL.p50, rPutL.p50, lowerIsBetter: true, target: "≤ 1.0"))
        rows.append(Row("1 KB put p99, on the loop (µs)", cPutL.p99, rPutL.p99, lowerIsBetter: true, target: ""))
        rows.append(Row("1 KB get p50, on the loop (µs)", cGetL.p50, rGetL.p50, lowerIsBetter: true, target: "≤ 1.0"))
        rows.append(Row("1 KB get p99, on the loop (µs)", cGetL.p99, rGetL.p99, lowerIsBetter: true, target: ""))

        // Simple op: increment a random counter.
        say("throughput: increment, \(clients) clients × \(duration) s, each system ...")
        let crucialIncrement: @Sendable (Int) async throws -> Void = { k in
            _ = try await crucial.invoke(ObjectRef(type: "AtomicLong", key: "counter:\(k)"), "incrementAndGet", create: Create(initial: .int(0)))
        }
        let redisIncrement: @Sendable (Int) async throws -> Void = { k in _ = try await pool.command("INCR", "counter:\(k)") }
        let cIncr = try await throughput(server: crucialPID, crucialIncrement)
        let rIncr = try await throughput(server: redisPID, redisIncrement)
        try await check(crucialTotal: crucial, redis: pool, expectedCrucial: cIncr.ops, expectedRedis: rIncr.ops)
        rows.append(Row("increment (ops/s)", cIncr.rate, rIncr.rate, lowerIsBetter: false, target: "≥ 1.0"))
        let cIncrL = try await throughput(on: crucial.executors, server: crucialPID, crucialIncrement)
        let rIncrL = try await throughput(on: pool.executors, server: redisPID, redisIncrement)
        try await check(crucialTotal: crucial, redis: pool, expectedCrucial: cIncr.ops + cIncrL.ops, expectedRedis: rIncr.ops + rIncrL.ops)
        rows.append(Row("increment, on the loops (ops/s)", cIncrL.rate, rIncrL.rate, lowerIsBetter: false, target: "≥ 1.0"))

        // Batched increments: each client sends 16 at a time (CrucialClient.batch; the same
        // for Redis through the harness), against redis-benchmark -P 16 below.
        let batchSize = 16
        say("throughput: increments in batches of \(batchSize) (client.batch, then client.pipeline), \(clients) clients × \(duration) s, each system ...")
        let keys = self.keys
        let cBatch = try await throughput(opsPerCall: batchSize, server: crucialPID) { k in
            _ = try await crucial.batch(0..<batchSize) { j in try await crucialIncrement((k + j) % keys) }
        }
        let rBatch = try await throughput(opsPerCall: batchSize, server: redisPID) { k in
            _ = try await pool.batch((0..<batchSize).map { j in [Array("INCR".utf8), Array("counter:\((k + j) % keys)".utf8)] })
        }
        // The same as a pipeline: 16 calls written at once, one wait (CrucialClient.pipeline).
        let proxies = (0..<keys).map { AtomicLong("counter:\($0)", initial: 0, client: crucial) }
        let cPipe = try await throughput(opsPerCall: batchSize, server: crucialPID) { k in
            _ = try await crucial.pipeline((0..<batchSize).map { j in .init(proxies[(k + j) % keys], "incrementAndGet") })
        }
        try await check(
            crucialTotal: crucial, redis: pool, expectedCrucial: cIncr.ops + cIncrL.ops + cBatch.ops + cPipe.ops,
            expectedRedis: rIncr.ops + rIncrL.ops + rBatch.ops)
        rows.append(Row("increments in batches of 16 (ops/s)", cBatch.rate, rBatch.rate, lowerIsBetter: false, target: ""))
        rows.append(Row("increments pipelined 16 at a time (ops/s)", cPipe.rate, rBatch.rate, lowerIsBetter: false, target: ""))

        // Complex op: 10,000 multiplications on the server.
        let sha: String
        guard case .bulk(let shaBytes?) = try await pool.command("SCRIPT", "LOAD", complexLua) else { throw BenchFailure("SCRIPT LOAD") }
        sha = String(decoding: shaBytes, as: UTF8.self)
        // Both sides compute the same function.
        let expected = BenchCounter.complex(1)
        let cOne = try await crucial.invoke(ObjectRef(type: "BenchCounter", key: "check"), "complex", create: Create(initial: .int(1)))
        let rOne = try await pool.command("EVALSHA", sha, "1", "check")
        guard cOne == .int(expected), rOne == .integer(expected) else {
            throw BenchFailure("complex op disagrees: local \(expected), crucial \(cOne), redis \(rOne)")
        }
        say("throughput: complex op (10,000 multiplications), \(clients) clients × \(duration) s, each system ...")
        let cComplex = try await throughput(server: crucialPID) { k in
            _ = try await crucial.invoke(ObjectRef(type: "BenchCounter", key: "obj:\(k)"), "complex", create: Create(initial: .int(1)))
        }
        let rComplex = try await throughput(server: redisPID) { k in _ = try await pool.command("EVALSHA", sha, "1", "obj:\(k)") }
        rows.append(Row("complex op (ops/s)", cComplex.rate, rComplex.rate, lowerIsBetter: false, target: "≥ 5.0"))
        // Where the time goes: CPU per operation of each server and of the load.
        for (name, c, r) in [
            ("increment", cIncr, rIncr), ("increment, on the loops", cIncrL, rIncrL), ("increments pipelined 16", cPipe, rBatch),
            ("complex op", cComplex, rComplex),
        ] {
            rows.append(Row("\(name): server CPU per op (µs)", c.serverCPU, r.serverCPU, lowerIsBetter: true, target: ""))
            rows.append(Row("\(name): load CPU per op (µs)", c.loadCPU, r.loadCPU, lowerIsBetter: true, target: ""))
        }

        // Redis's own C client against the same redis-server, in the same run.
        say("reference: redis-benchmark, sequential 1 KB, \(clients) clients, and -P 16 ...")
        let seq = ["-c", "1", "-n", "\(latencyOps)", "-d", "1024"]
        let many = ["-c", "\(clients)", "-r", "\(keys)", "-n", "200000"]
        let bmSet = redisBenchmark(port: redisPort, placement: placement, label: "SET", test: "set", arguments: seq)
        let bmGet = redisBenchmark(port: redisPort, placement: placement, label: "GET", test: "get", arguments: seq)
        let bmIncr = redisBenchmark(port: redisPort, placement: placement, label: "INCR", test: "incr", arguments: many)
        let pipelined = redisBenchmark(
            port: redisPort, placement: placement, label: "INCR -P 16", test: "incr",
            arguments: ["-c", "\(clients)", "-r", "\(keys)", "-n", "1000000", "-P", "16"])
        let c: [(String, Double, RedisBenchmarkFigure?, Bool, String)] = [
            ("1 KB put p50 (µs)", cPut.p50, bmSet, true, "≤ 1.5"),
            ("1 KB get p50 (µs)", cGet.p50, bmGet, true, "≤ 1.5"),
            ("1 KB put p50, on the loop (µs)", cPutL.p50, bmSet, true, "≤ 1.5"),
            ("1 KB get p50, on the loop (µs)", cGetL.p50, bmGet, true, "≤ 1.5"),
            ("increment (ops/s)", cIncr.rate, bmIncr, false, "≥ 1.0"),
            ("increment, on the loops (ops/s)", cIncrL.rate, bmIncr, false, "≥ 1.0"),
            ("increments in batches of 16 vs -P 16 (ops/s)", cBatch.rate, pipelined, false, "≥ 0.8"),
            ("increments pipelined 16 at a time vs -P 16 (ops/s)", cPipe.rate, pipelined, false, "≥ 0.8"),
        ]
        var referenceRows: [Row] = []
        for (name, crucialFigure, figure, lower, target) in c {
            guard let figure else { continue }
            referenceRows.append(Row(name, crucialFigure, lower ? figure.p50Micros : figure.requestsPerSecond, lowerIsBetter: lower, target: target))
        }
        say("")
        say(Row.table(rows))
        if !referenceRows.isEmpty {
            say("against redis-benchmark (Redis's C client), same redis-server:")
            say(Row.table(referenceRows, peer: "redis-bm"))
        }
        if let pipelined {
            say("\(pipelined.command): \(Row.fmt(pipelined.requestsPerSecond)) ops/s")
        }
        if let markdown {
            let date = ISO8601DateFormatter().string(from: Date())
            var text = "\n### \(date)\n\n`crucial-bench run --duration \(duration) --clients \(clients) --keys \(keys) --latency-ops \(latencyOps) --connections \(connections)\(pin ? "" : " --no-pin")`; \(placement.description)\n\n"
            text += Row.markdown(rows)
            if !referenceRows.isEmpty { text += "\nAgainst redis-benchmark, same redis-server:\n\n" + Row.markdown(referenceRows, peer: "redis-benchmark") }
            if let pipelined { text += "\n`\(pipelined.command)`: \(Row.fmt(pipelined.requestsPerSecond)) ops/s\n" }
            try appendMarkdown(text, to: markdown)
            say("appended to \(markdown)")
        }
    }

    // MARK: Measurements

    struct Throughput {
        var ops: Int
        var rate: Double
        /// CPU time per operation, in µs, of the server under test (user + system, all its
        /// threads) and of this process (the load: client library and harness).
        var serverCPU: Double
        var loadCPU: Double
    }

    /// `clients` closed loops on random keys for `duration` seconds.
    /// `executors`: client `c` runs on `executors[c % count]` (nil: Swift's default executor).
    /// `opsPerCall`: operations one call of `op` makes (a batch).
    func throughput(
        on executors: [any TaskExecutor]? = nil, opsPerCall: Int = 1, server: Int32, _ op: @escaping @Sendable (Int) async throws -> Void
    ) async throws -> Throughput {
        let keys = self.keys, clients = self.clients
        func executor(_ c: Int) -> (any TaskExecutor)? { executors.map { $0[c % $0.count] } }
        // Warm-up: every key once, so object creation is not measured.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<clients {
                group.addTask(executorPreference: executor(c)) { for k in stride(from: c, to: keys, by: clients) { try await op(k) } }
            }
            try await group.waitForAll()
        }
        let warm = keys
        let clock = ContinuousClock()
        let start = clock.now
        let (serverBefore, loadBefore) = (CPUTime.of(server), CPUTime.ofThisProcess())
        let deadline = start + .milliseconds(Int64(duration * 1000))
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for c in 0..<clients {
                group.addTask(executorPreference: executor(c)) {
                    // A generator of its own per client: SystemRandomNumberGenerator makes a
                    // getrandom system call per key, 5 % of the load core's time (perf).
                    var rng = SplitMix64(seed: UInt64(c) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
                    var n = 0
                    while clock.now < deadline {
                        try await op(Int.random(in: 0..<keys, using: &rng))
                        n += 1
                    }
                    return n
                }
            }
            return try await group.reduce(0, +)
        }
        let seconds = micros(clock.now - start) / 1e6
        let (serverAfter, loadAfter) = (CPUTime.of(server), CPUTime.ofThisProcess())
        let done = Double(max(1, counts * opsPerCall))
        return Throughput(
            ops: (counts + warm) * opsPerCall, rate: Double(counts * opsPerCall) / seconds,
            serverCPU: (serverAfter - serverBefore) * 1e6 / done, loadCPU: (loadAfter - loadBefore) * 1e6 / done)
    }

    /// Every acknowledged increment is in the counters: none lost, none doubled.
    func check(crucialTotal crucial: CrucialClient, redis: RedisPool, expectedCrucial: Int, expectedRedis: Int) async throws {
        var cSum: Int64 = 0, rSum: Int64 = 0
        for k in 0..<keys {
            cSum += try await crucial.invoke(ObjectRef(type: "AtomicLong", key: "counter:\(k)"), "get", readOnly: true).intValue ?? 0
            if case .bulk(let b?) = try await redis.command("GET", "counter:\(k)") { rSum += Int64(String(decoding: b, as: UTF8.self)) ?? 0 }
        }
        guard cSum == Int64(expectedCrucial), rSum == Int64(expectedRedis) else {
            throw BenchFailure("counters disagree with acknowledged increments: crucial \(cSum) vs \(expectedCrucial), redis \(rSum) vs \(expectedRedis)")
        }
        say("  checked: crucial counters sum to its \(expectedCrucial) acknowledged increments, redis to its \(expectedRedis)")
    }

    func redisVersion() -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: redisServer)
        p.arguments = ["--version"]
        let out = Pipe()
        p.standardOutput = out
        guard (try? p.run()) != nil else { return "?" }
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text.split(separator: " ").first(where: { $0.hasPrefix("v=") }).map { String($0.dropFirst(2)) } ?? text
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func micros(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
}

/// A free loopback port (bound, then released for the child to take).
/// A redis-server and a `crucial-bench serve` (a crucial-server with the benchmark's
/// types linked in), each on a free loopback port, for one run.
struct Peers {
    let redis: ServerProcess
    let redisPort: Int
    let crucial: ServerProcess
    let crucialPort: Int

    init(redisServer: String, serverThreads: Int? = nil, placement: Placement = Placement(pinned: false)) async throws {
        (redis, redisPort) = try await startRedis(redisServer, placement: placement)
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        do {
            let (executable, arguments) = placement.command(me, ["serve"] + (serverThreads.map { ["--threads", "\($0)"] } ?? []))
            crucial = try await ServerProcess.start(executable: executable, arguments: arguments)
        } catch {
            await redis.stop()
            throw error
        }
        guard let port = crucial.port else {
            await redis.stop()
            await crucial.stop()
            throw CrucialError(.connectionFailed, "no port from crucial-bench serve: \(crucial.readyLine)")
        }
        crucialPort = port
    }

    func stop() {
        crucial.stop()
        redis.stop()
    }
}

/// A redis-server on a free loopback port, without persistence: the peer of most benchmarks.
func startRedis(
    _ executable: String, extraArguments: [String] = [], placement: Placement = Placement(pinned: false)
) async throws -> (process: ServerProcess, port: Int) {
    guard FileManager.default.isExecutableFile(atPath: executable) else {
        throw ValidationError("\(executable) not found: apt-get install redis-server (tools/bench.sh and tools/experiments.sh do it)")
    }
    let port = try ServerProcess.freePort()
    let (command, arguments) = placement.command(
        executable, ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"] + extraArguments)
    let process = try await ServerProcess.start(executable: command, arguments: arguments, readyText: "Ready to accept connections")
    return (process, port)
}

struct Latency {
    var p50: Double
    var p99: Double
    var p999: Double
}

/// p50, p99 and p999 of `n` sequential calls of `op`, after a warm-up, in µs, from an
/// HdrHistogram of the calls' times in ns (3 significant digits).
func latency(_ n: Int, _ op: () async throws -> Void) async throws -> Latency {
    for _ in 0..<min(1000, n) { try await op() }  // warm-up
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    let clock = ContinuousClock()
    for _ in 0..<n {
        let t = clock.now
        try await op()
        _ = histogram.record(UInt64((clock.now - t) / .nanoseconds(1)))
    }
    func micros(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }
    return Latency(p50: micros(50), p99: micros(99), p999: micros(99.9))
}

/// Prints and flushes: progress lines must show up when stdout is a pipe.
func say(_ s: String) {
    print(s)
    fflush(nil)
}

/// CPU time (user + system, every thread) a process has used so far, in seconds.
enum CPUTime {
    /// Another process, from /proc/PID/stat (clock ticks: 10 ms on Linux; a 5 s phase
    /// has an error under 1 %); 0 when it cannot be read.
    static func of(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
        // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// This process, from getrusage (µs resolution).
    static func ofThisProcess() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
