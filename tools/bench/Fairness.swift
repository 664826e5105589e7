import Foundation

/// Where each side of a run executes. Pinned (the default on a machine with two cores or
/// more): the server under test, Crucial's or Redis's, on core 0 with one event-loop thread
/// (Redis serves from one thread), and the load (this process, redis-benchmark) on core 1,
/// so that neither steals the other's core and both servers get the same one.
struct Placement {
    let pinned: Bool
    static let serverCore = 0
    static let loadCore = 1
    static let taskset = "/usr/bin/taskset"

    /// How a process of this run is started: through `taskset -c core` when pinned (a
    /// server on the server core, unless told otherwise).
    func command(_ executable: String, _ arguments: [String], on core: Int = serverCore) -> (String, [String]) {
        pinned ? (Self.taskset, ["-c", "\(core)", executable] + arguments) : (executable, arguments)
    }

    /// Moves every thread of this process to the load core (threads made later inherit it).
    func pinThisProcess() throws {
        guard pinned else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.taskset)
        p.arguments = ["-a", "-p", "-c", "\(Self.loadCore)", "\(getpid())"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw BenchFailure("taskset could not pin crucial-bench to core \(Self.loadCore)") }
    }

    var description: String {
        pinned
            ? "pinned: servers on core \(Self.serverCore) (one event-loop thread), load on core \(Self.loadCore)"
            : "unpinned: the scheduler places every thread"
    }
}

/// One figure of redis-benchmark, Redis's own C client, against the run's redis-server.
struct RedisBenchmarkFigure {
    let label: String
    let command: String
    let requestsPerSecond: Double
    let p50Micros: Double
}

/// Runs redis-benchmark (on the load core when pinned) and reads its `-q` line for `test`:
/// "INCR: 104004.16 requests per second, p50=0.239 msec".
func redisBenchmark(
    port: Int, placement: Placement, label: String, test: String, arguments: [String]
) -> RedisBenchmarkFigure? {
    let binary = "/usr/bin/redis-benchmark"
    guard FileManager.default.isExecutableFile(atPath: binary) else { return nil }
    let all = ["-p", "\(port)", "-q", "-t", test] + arguments
    let (command, pinnedArguments) = placement.command(binary, all, on: Placement.loadCore)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: command)
    p.arguments = pinnedArguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    // -q rewrites a progress line with \r; the last segment is the result.
    guard let line = text.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).last(where: { $0.contains("requests per second") }) else {
        return nil
    }
    let words = line.split(whereSeparator: { $0 == " " || $0 == "," })
    guard let rpsIndex = words.firstIndex(of: "requests"), rpsIndex > 0, let rps = Double(words[rpsIndex - 1]) else { return nil }
    let p50 = words.first { $0.hasPrefix("p50=") }.flatMap { Double($0.dropFirst(4)) }.map { $0 * 1000 } ?? .nan
    return RedisBenchmarkFigure(
        label: label, command: "redis-benchmark " + all.dropFirst(2).joined(separator: " "), requestsPerSecond: rps, p50Micros: p50)
}
