// Programs with a newcomer's mistakes (issue 30), each of which must stop at once saying
// how to fix it. NEWCOMER_TRAP picks one: `option`, `unknown-type` or `failing-run`.
import Crucial
import Foundation

/// `@Option` on a CrucialProgram that is not a command: compiles, and must be refused at
/// start naming the fix (ArgumentParser alone crashes when the option is read).
struct OptionWithoutCommand: CrucialProgram {
    @Option var threads = 8
    func run() async throws { print("threads", threads) }
}

/// A @Shared type the program uses but does not list in `sharedTypes`.
@Shared(name: "TopWords")
final class TopWords: Codable {
    var words: [String: Int] = [:]
    init() {}
    func add(_ word: String) -> Int {
        words[word, default: 0] += 1
        return words[word]!
    }
}

/// Uses `TopWords` on its local stack without listing it.
struct ForgotSharedTypes: CrucialProgram {
    func run() async throws { print(try await TopWords.Shared(TopWords()).add("the")) }
}

/// A cloud thread that fails.
struct GiveUp: Runnable {
    var counter: AtomicLong
    func run() async throws {
        try await counter.addAndGet(1)
        throw CrucialError(.userError, "gave up on purpose")
    }
}

/// A run whose thread fails, with an object of its session: the session must end with the
/// run (its objects removed at once, not when its lease lapses 30 s later).
struct FailingRun: CrucialProgram {
    func run() async throws {
        let counter = AtomicLong()
        try await counter.addAndGet(1)
        try await CloudThread(GiveUp(counter: counter)).run()
    }
}

switch ProcessInfo.processInfo.environment["NEWCOMER_TRAP"] {
case "option": await OptionWithoutCommand.main()
case "failing-run": await FailingRun.main()
default: await ForgotSharedTypes.main()
}
