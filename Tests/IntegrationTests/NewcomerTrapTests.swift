import Foundation
import Testing

/// A newcomer's mistakes in a CrucialProgram stop it at once, saying how to fix them.
/// Processes: what is checked is what a program's own process prints and how it exits.
@Suite("A newcomer's mistakes stop a program at once, naming the fix (real processes)", .timeLimit(.minutes(3)))
struct NewcomerTrapTests {
    @Test("@Option on a CrucialProgram that is not a command: refused at start, naming AsyncParsableCommand (not ArgumentParser's crash)")
    func optionWithoutCommand() async throws {
        let run = try await runCLI([], executable: "crucial-newcomer-traps", environment: ["NEWCOMER_TRAP": "option"])
        #expect(run.status == 64, "\(run)")
        #expect(run.err.contains("declares command-line options (@Option var threads)"), "\(run.err)")
        #expect(run.err.contains("struct OptionWithoutCommand: AsyncParsableCommand, CrucialProgram"), "\(run.err)")
        #expect(!run.out.contains("threads"), "run() never ran")
    }

    @Test("A @Shared type missing from sharedTypes: UNKNOWN_TYPE on the local stack says to list it there")
    func forgotSharedTypes() async throws {
        let run = try await runCLI([], executable: "crucial-newcomer-traps", environment: ["NEWCOMER_TRAP": "unknown-type"])
        #expect(run.status == 1, "\(run)")
        #expect(run.err.contains("UNKNOWN_TYPE"), "\(run.err)")
        #expect(run.err.contains("local stack of the program crucial-newcomer-traps"), "\(run.err)")
        #expect(run.err.contains("static var sharedTypes: [any SharedType.Type] { [TopWords.self] }"), "\(run.err)")
    }

    @Test("A run that fails ends its session with it: its ephemeral objects are gone when the program exits, not 30 s later")
    func failedRunEndsSession() async throws {
        // A process: what is checked is what the program's exit leaves on the servers (its
        // entry point ends the session, then exits), which only a program of its own shows.
        let server = try await TestServer()
        defer { server.stop() }
        let run = try await runCLI(
            [], executable: "crucial-newcomer-traps",
            environment: ["NEWCOMER_TRAP": "failing-run", "CRUCIAL_SERVERS": server.address, "CRUCIAL_INVOKER": "in-process"])
        #expect(run.status == 1, "\(run)")
        #expect(run.err.contains("gave up on purpose"), "\(run.err)")
        let client = server.client()
        defer { client.close() }
        // The session lease is 30 s: an object still listed now was left to it.
        let left = try await client.listObjects()
        #expect(left.isEmpty, "\(left)")
    }

    @Test("The README's first program (options, a @Shared type in sharedTypes, CloudExecutor) counts a corpus right on its own local stack")
    func readmeProgram() async throws {
        let words = ["the", "a", "of", "crucial", "swift", "cloud", "thread", "object", "shared", "server"]
        var counts: [String: Int] = [:]
        var lines: [String] = []
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let line = (0..<8).map { _ in words.randomElement(using: &generator)! }
            for w in line { counts[w, default: 0] += 1 }
            lines.append(line.joined(separator: " "))
        }
        let corpus = FileManager.default.temporaryDirectory.appendingPathComponent("corpus-\(UUID()).txt").path
        try lines.joined(separator: "\n").write(toFile: corpus, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: corpus) }
        let run = try await runCLI(["--threads", "4", corpus], executable: "wordfreq-example")
        #expect(run.status == 0, "\(run.err)")
        // Ties make the order of equal counts free: compare the counts in order.
        let printed = run.out.split(separator: "\n").last.map(String.init) ?? ""
        let top = printed.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",").map {
            $0.trimmingCharacters(in: CharacterSet(charactersIn: " \""))
        }
        #expect(top.count == 10, "\(run.out)")
        #expect(top.map { counts[$0] ?? -1 } == counts.values.sorted(by: >), "\(printed) for \(counts)")
    }
}
