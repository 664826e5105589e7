import ArgumentParser
import CrucialClient
import Foundation

/// `crucial-bench codec`: our binary argument/state format against JSON.
struct CodecBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec",
        abstract: "Size and encode/decode time of a 1,000-double array (and a k-means model): Crucial's binary format vs JSON.")

    @Option(help: "Timed repetitions of each encode and decode (after 1,000 warm-up ones).")
    var repetitions = 20_000

    @Option(help: "Append the results as Markdown to this file.")
    var markdown: String?

    /// k = 25 centroids of 100 dimensions, as in the paper's k-means.
    struct Centroids: Codable, Equatable {
        var sums: [[Double]]
        var counts: [Int]
    }

    func run() async throws {
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        var rng = SystemRandomNumberGenerator()
        let doubles = (0..<1000).map { _ in Double.random(in: -1...1, using: &rng) }
        let model = Centroids(
            sums: (0..<25).map { _ in (0..<100).map { _ in Double.random(in: 0...1000, using: &rng) } },
            counts: (0..<25).map { _ in Int.random(in: 0...100_000, using: &rng) })
        var report = "Crucial binary (ValueEncoder + protobuf) vs JSON (Foundation JSONEncoder/JSONDecoder), \(repetitions) runs each\n"
        report += "payload                      format     bytes   encode µs   decode µs\n"
        report += try rows(doubles, "1,000 doubles")
        report += try rows(model, "k-means model 25×100")
        print(report, terminator: "")
        if let markdown {
            let date = ISO8601DateFormatter().string(from: Date()).prefix(10)
            try appendMarkdown("\n### Argument format (\(date), `tools/bench.sh codec`)\n\n```\n\(report)```\n", to: markdown)
        }
    }

    private func rows<T: Codable & Equatable>(_ value: T, _ name: String) throws -> String {
        // Both directions check the round trip once, so a broken codec cannot look fast.
        let binary = WireCodec.encode(value: try ValueEncoder().encode(value))
        guard try ValueDecoder().decode(T.self, from: WireCodec.decodeValue(binary)) == value else {
            throw BenchFailure("binary round trip of \(name) changed the value")
        }
        let json = try JSONEncoder().encode(value)
        guard try JSONDecoder().decode(T.self, from: json) == value else { throw BenchFailure("JSON round trip of \(name) changed it") }

        let binEncode = try time { _ = WireCodec.encode(value: try ValueEncoder().encode(value)) }
        let binDecode = try time { _ = try ValueDecoder().decode(T.self, from: WireCodec.decodeValue(binary)) }
        let jsonEncode = try time { _ = try JSONEncoder().encode(value) }
        let jsonDecode = try time { _ = try JSONDecoder().decode(T.self, from: json) }
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: n, withPad: " ", startingAt: 0) }
        func line(_ format: String, _ bytes: String, _ e: Double, _ d: Double) -> String {
            pad(name, 29) + pad(format, 9) + String(repeating: " ", count: max(0, 7 - bytes.count)) + bytes
                + String(format: "   %9.2f   %9.2f\n", e, d)
        }
        return line("binary", String(binary.count), binEncode, binDecode) + line("JSON", String(json.count), jsonEncode, jsonDecode)
            + line("JSON/bin", String(format: "%.2fx", Double(json.count) / Double(binary.count)), jsonEncode / binEncode, jsonDecode / binDecode)
    }

    /// The median time of `body` in µs.
    private func time(_ body: () throws -> Void) throws -> Double {
        for _ in 0..<1000 { try body() }
        var samples: [Double] = []
        samples.reserveCapacity(repetitions)
        for _ in 0..<repetitions {
            let start = ContinuousClock.now
            try body()
            let (s, a) = (ContinuousClock.now - start).components
            samples.append(Double(s) * 1e6 + Double(a) / 1e12)
        }
        samples.sort()
        return samples[samples.count / 2]
    }
}

/// Appends `text` to the file at `path`, creating it if needed.
func appendMarkdown(_ text: String, to path: String) throws {
    if let h = FileHandle(forWritingAtPath: path) {
        h.seekToEndOfFile()
        h.write(Data(text.utf8))
        try h.close()
    } else {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
