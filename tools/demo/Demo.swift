import ArgumentParser
import CrucialClient
import CrucialExamples
import CrucialLambda
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

@main
enum Entry {
    static func main() async {
        // Started by a Lambda runtime (the emulator, or AWS): serve PiEstimator and never return.
        await CrucialLambda.serveIfLambda(registering: PiEstimator.self)
        await Demo.main()
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crucial-demo",
        abstract: "Estimates π with cloud threads sharing one AtomicLong on the Crucial DSO layer (the paper's Listing 1).",
        discussion: """
            Each thread is a cloud function. With CRUCIAL_SERVERS unset, a local crucial-server is \
            started; with CRUCIAL_LAMBDA_ENDPOINT unset, a local crucial-lambda-emulator that runs this \
            same executable as its bootstrap. Both are stopped at the end.
            """,
        version: CrucialVersion.description)

    @Option(help: "Number of cloud threads.")
    var threads = 8

    @Option(help: "Random points drawn by each thread.")
    var iterations = 20_000_000

    @Option(help: "Each thread reports its progress this many times.")
    var reports = 10

    func validate() throws {
        guard (1...1000).contains(threads) else { throw ValidationError("--threads must be 1...1000") }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        guard reports >= 1 else { throw ValidationError("--reports must be at least 1") }
    }

    func run() async throws {
        let local = try await LocalStack.start(concurrency: threads, bootstrap: "crucial-demo")
        defer { local.stop() }
        let client = CrucialClient.shared
        defer { client.close() }

        let counter = AtomicLong("counter", initial: 0)
        let progress = AtomicLong("points-drawn", initial: 0)
        try await counter.set(0)
        try await progress.set(0)
        let total = Int64(threads) * Int64(iterations)
        print("estimating π with \(threads) cloud threads × \(iterations) points")
        let start = ContinuousClock.now

        let cloudThreads = (0..<threads).map { t in
            CloudThread(PiEstimator(iterations: iterations, seed: UInt64(t + 1) &* 0x9E37_79B9_7F4A_7C15, reports: reports))
        }
        for thread in cloudThreads { thread.start() }
        let reporter = Task {
            var last: Int64 = -1
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(500))
                let drawn = try await progress.get()
                if drawn != last {
                    print(cFormat("  %5.1f%% of points drawn", 100 * Double(drawn) / Double(total)))
                    last = drawn
                }
            }
        }
        defer { reporter.cancel() }
        for thread in cloudThreads { try await thread.join() }

        let pi = 4 * Double(try await counter.get()) / Double(total)
        let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        print(cFormat("π ≈ %.6f (error %.2e) from %lld points in %.2f s (%.1f M points/s)",
                     pi, abs(pi - Double.pi), total, seconds, Double(total) / seconds / 1e6))
        #if DEBUG
        print("(a debug build, unoptimised: tools/demo.sh --release draws the points about 5 times faster)")
        #endif
        // The counters of this run were ephemeral: the application is done with them.
        try await CrucialClient.shared.endSession()
        guard abs(pi - Double.pi) < 0.01 else { throw ExitCode.failure }
    }
}

/// `format` filled as C's printf does: Foundation's `String(format:)` would link Foundation
/// proper and its ICU data (30 MB) into the Lambda bootstrap this program also is.
func cFormat(_ format: String, _ arguments: any CVarArg...) -> String {
    var buffer = [CChar](repeating: 0, count: 512)
    let count = withVaList(arguments) { vsnprintf(&buffer, buffer.count, format, $0) }
    return String(decoding: buffer.prefix(max(0, min(Int(count), buffer.count - 1))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
