// Programs with a newcomer's mistakes (issue 30), each of which must stop at once saying
// how to fix it. NEWCOMER_TRAP picks one: `option` or `unknown-type`.
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

switch ProcessInfo.processInfo.environment["NEWCOMER_TRAP"] {
case "option": await OptionWithoutCommand.main()
default: await ForgotSharedTypes.main()
}
