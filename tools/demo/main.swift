import ArgumentParser
import CrucialClient
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The Monte Carlo estimation of π from Listing 1 of the Crucial paper: threads
/// draw random points and add their hits to one shared AtomicLong.
@main
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crucial-demo",
        abstract: "Estimates π with threads sharing one AtomicLong on the Crucial DSO layer (the paper's Listing 1).",
        discussion: """
            With CRUCIAL_SERVERS unset, starts a local crucial-server (next to this executable) on a free \
            port and stops it at the end.
            """)

    @Option(help: "Number of threads.")
    var threads = 8

    @Option(help: "Random points drawn by each thread.")
    var iterations = 10_000_000

    @Option(help: "Each thread reports progress this many times.")
    var reports = 4

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        guard reports >= 1 else { throw ValidationError("--reports must be at least 1") }
    }

    func run() async throws {
        let server = try LocalServer.startIfNeeded()
        defer { server?.stop() }
        if let server { print("started a local crucial-server at \(server.address)") }
        let client = server.map { CrucialClient(servers: [$0.address]) } ?? CrucialClient.shared
        defer { client.close() }

        let counter = AtomicLong("counter", initial: 0, client: client)
        let progress = AtomicLong("points-drawn", initial: 0, client: client)
        try await counter.set(0)
        try await progress.set(0)
        let total = Int64(threads) * Int64(iterations)
        let start = ContinuousClock.now
        print("estimating π with \(threads) threads × \(iterations) points")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<threads {
                group.addTask {
                    var rng = SplitMix64(seed: UInt64(t + 1) &* 0x9E37_79B9_7F4A_7C15)
                    let chunk = max(1, iterations / reports)
                    var done = 0
                    while done < iterations {
                        let n = min(chunk, iterations - done)
                        var inside: Int64 = 0
                        for _ in 0..<n {
                            let x = rng.nextUnitDouble(), y = rng.nextUnitDouble()
                            if x * x + y * y <= 1 { inside += 1 }
                        }
                        try await counter.addAndGet(inside)
                        let drawn = try await progress.addAndGet(Int64(n))
                        done += n
                        if t == 0 {
                            print(String(format: "  %5.1f%% of points drawn", 100 * Double(drawn) / Double(total)))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let pi = 4 * Double(try await counter.get()) / Double(total)
        let seconds = Double((ContinuousClock.now - start).components.attoseconds) / 1e18
            + Double((ContinuousClock.now - start).components.seconds)
        print(String(format: "π ≈ %.6f (error %.2e) from %lld points in %.2f s", pi, abs(pi - Double.pi), total, seconds))
        guard abs(pi - Double.pi) < 0.01 else { throw ExitCode.failure }
    }
}

/// A fast, seedable generator, so each thread draws its own reproducible stream.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextUnitDouble() -> Double { Double(next() >> 11) * 0x1p-53 }
}

/// Starts a local crucial-server (next to this executable) when CRUCIAL_SERVERS is unset.
enum LocalServer {
    static func startIfNeeded() throws -> ServerProcess? {
        if let servers = ProcessInfo.processInfo.environment["CRUCIAL_SERVERS"], !servers.isEmpty { return nil }
        guard let binary = ServerProcess.siblingExecutable() else {
            throw ValidationError("no crucial-server next to crucial-demo; build it, or set CRUCIAL_SERVERS")
        }
        return try ServerProcess.start(executable: binary, arguments: ["--port", "0", "--log-level", "warning"])
    }
}
