// The README's first program ("Use Crucial in your own package"), compiled with the package
// so that the README's code builds: keep the two the same.
import Crucial

@Shared final class TopWords: Codable {                // runs on the DSO servers
    var counts: [String: Int] = [:]
    init() {}
    func add(_ words: [String: Int]) { for (w, n) in words { counts[w, default: 0] += n } }
    func top(_ k: Int) -> [String] { counts.sorted { $0.value > $1.value }.prefix(k).map(\.key) }
}

struct Count: Runnable {
    var lines: [String]
    var top: TopWords.Shared
    func run() async throws {
        var words: [String: Int] = [:]
        for line in lines { for w in line.split(separator: " ") { words[String(w), default: 0] += 1 } }
        try await top.add(words)
    }
}

@main struct WordFreq: AsyncParsableCommand, CrucialProgram {
    static var sharedTypes: [any SharedType.Type] { [TopWords.self] }
    @Option var threads = 8
    @Argument var file: String

    func run() async throws {
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        let top = TopWords.Shared(TopWords())
        try await CloudExecutor().invokeAll(
            CloudExecutor.split(0..<lines.count, into: threads).map { Count(lines: Array(lines[$0]), top: top) })
        print(try await top.top(10))                   // the first failed thread, if any, is thrown above
    }
}
