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
}
