import ArgumentParser
import CrucialClient
import CrucialLambda
import CrucialTesting
import CrucialExamples
import Foundation

/// `crucial-bench orchestration`: what running n cloud threads costs beyond their own
/// work, as the serverless-orchestration comparison the paper cites measured it for
/// Step Functions, Durable Functions and Composer: a sequential chain of n no-op
/// functions and a parallel fan-out/fan-in of n.
struct OrchestrationBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchestration",
        abstract: "Overhead of a sequential chain and a parallel fan-out/fan-in of n no-op cloud threads on the local emulator.")

    @Option(help: "Numbers of functions, comma-separated.")
    var sizes = "5,10,20,40,80"

    @Option(help: "Runs per size; the median is reported.")
    var repeats = 5

    @Option(help: "Where to draw the plot (needs gnuplot).")
    var plot = "docs/orchestration.png"

    @Option(help: "Append the results as Markdown to this file.")
    var markdown: String?

    func run() async throws {
        let ns = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ns.isEmpty, ns.allSatisfy({ (1...256).contains($0) }) else { throw ValidationError("--sizes: numbers 1...256") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        let local = try await LocalStack.start(concurrency: ns.max() ?? 1, bootstrap: "crucial-bench")
        defer { local.stop() }
        // Every environment warm first: the runs measure orchestration, not process start.
        try await CloudExecutor().invokeAll((0..<(ns.max() ?? 1)).map { _ in Noop() })
        var rows: [(n: Int, chain: Double, fan: Double)] = []
        for n in ns {
            say("n = \(n): \(repeats) chains of \(n) sequential no-op cloud threads, \(repeats) fan-outs of \(n) ...")
            var chain: [Double] = [], fan: [Double] = []
            for _ in 0..<repeats {
                let start = ContinuousClock.now
                for _ in 0..<n { try await CloudThread(Noop()).run() }
                chain.append(micros(ContinuousClock.now - start) / 1000)
                let fanStart = ContinuousClock.now
                try await CloudExecutor().invokeAll((0..<n).map { _ in Noop() })
                fan.append(micros(ContinuousClock.now - fanStart) / 1000)
            }
            rows.append((n, chain.sorted()[repeats / 2], fan.sorted()[repeats / 2]))
        }
        var report = "Orchestration overhead, no-op cloud threads on crucial-lambda-emulator (warm), median of \(repeats) runs, ms\n"
        report += "    n   chain total   chain per function   fan-out/in total   fan-out/in per function\n"
        for r in rows {
            report += String(format: "%5d %13.1f %20.2f %18.1f %25.2f\n", r.n, r.chain, r.chain / Double(r.n), r.fan, r.fan / Double(r.n))
        }
        print(report)
        try drawOrchestration(rows)
        if let markdown {
            let date = ISO8601DateFormatter().string(from: Date())
            try appendMarkdown(
                "\n### \(date)\n\n`crucial-bench orchestration --sizes \(sizes) --repeats \(repeats)`\n\n```\n\(report)```\n\n![orchestration](\(URL(fileURLWithPath: plot).lastPathComponent))\n",
                to: markdown)
        }
    }

    private func drawOrchestration(_ rows: [(n: Int, chain: Double, fan: Double)]) throws {
        let data = rows.map { "\($0.n) \($0.chain) \($0.fan)" }.joined(separator: "\n")
        try gnuplot(
            """
            set terminal png size 800,420
            set output '\(plot)'
            set title 'Orchestration overhead of n no-op cloud threads (local emulator, warm)'
            set xlabel 'functions (n)'
            set ylabel 'total time (ms)'
            set grid
            set key top left
            plot '-' using 1:2 with linespoints lw 2 pt 7 title 'sequential chain', '' using 1:3 with linespoints lw 2 pt 5 title 'parallel fan-out/fan-in'
            \(data)
            e
            \(data)
            e
            """)
        say("plot: \(plot)")
    }
}

/// Runs gnuplot on `script`; says so and draws nothing when gnuplot is missing.
func gnuplot(_ script: String) throws {
    guard let binary = ["/usr/bin/gnuplot", "/usr/local/bin/gnuplot"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        say("gnuplot not found: no plot drawn (apt-get install gnuplot-nox)")
        return
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: binary)
    let input = Pipe()
    p.standardInput = input
    try p.run()
    input.fileHandleForWriting.write(Data(script.utf8))
    try input.fileHandleForWriting.close()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw BenchFailure("gnuplot failed (\(p.terminationStatus))") }
}
