// `import Crucial`: everything an application uses, and its entry point.
@_exported public import ArgumentParser
@_exported public import CrucialClient
@_exported public import CrucialLambda
@_exported public import CrucialShared
internal import CrucialProcess
internal import Foundation
import Synchronization
internal import CrucialServerCore

/// A program on Crucial: adopt it beside `AsyncParsableCommand` (or on any `@main` type
/// with `init()` and `run()`) and the program does the rest itself.
///
/// ```swift
/// @main
/// struct MonteCarlo: AsyncParsableCommand, CrucialProgram {
///     @Option var threads = 8
///     func run() async throws {
///         let counter = AtomicLong()
///         try await withThrowingTaskGroup(of: Void.self) { group in
///             for t in 0..<threads { group.addTask { try await Estimator(seed: t, counter: counter).runInCloud() } }
///             try await group.waitForAll()
///         }
///         print(try await counter.get())
///     }
/// }
/// ```
///
/// Started by a Lambda runtime (AWS Lambda or `crucial-lambda-emulator`), the program
/// serves cloud-thread invocations and never reaches `run()`: every `Runnable` and
/// `Callable` it starts is found by the type the invocation names, with no list to keep.
/// Started by hand, it parses its command line, then reaches the DSO servers and the
/// Lambda endpoint the environment names (`CRUCIAL_SERVERS`, `CRUCIAL_LAMBDA_ENDPOINT`,
/// `CRUCIAL_INVOKER`) or, when it names none, starts a local stack: a DSO server (this
/// program itself, so it knows ``sharedTypes``) and `crucial-lambda-emulator` running this
/// program as each cloud thread's process (without the emulator next to the program, cloud
/// threads run in this process). When `run()` returns it ends its session (its ephemeral
/// objects go) and stops what it started; an error is reported as the command line's
/// errors are, with a non-zero exit status.
public protocol CrucialProgram {
    /// The user-defined `@Shared` types the local DSO server runs (none by default: the
    /// built-in objects need none).
    static var sharedTypes: [any SharedType.Type] { get }
    /// How many cloud threads the local emulator runs at once (default 1000, AWS Lambda's
    /// default account concurrency). Threads that wait for one another at a barrier must all
    /// fit.
    static var cloudConcurrency: Int { get }
    init()
    mutating func run() async throws
}

extension CrucialProgram {
    /// None: the built-in objects need no user type.
    public static var sharedTypes: [any SharedType.Type] { [] }
    /// 1000, AWS Lambda's default account concurrency.
    public static var cloudConcurrency: Int { 1000 }

    /// Runs the program as ``CrucialProgram`` says, for a `@main` type that is not a command.
    /// Command-line options (`@Option`, `@Flag`, `@Argument`) need a command: such a program
    /// stops at once, saying to adopt `AsyncParsableCommand` beside `CrucialProgram`.
    public static func main() async {
        await ProgramRuntime.serveIfAsked(sharedTypes)
        var program = Self()
        if let options = ProgramRuntime.commandLineProperties(of: program) {
            StandardStreams.error(
                "Error: \(Self.self) declares command-line options (\(options.joined(separator: ", "))), which only a command parses: "
                    + "declare it `struct \(Self.self): AsyncParsableCommand, CrucialProgram`\n")
            exit(64)
        }
        await ProgramRuntime.run(concurrency: cloudConcurrency) {
            try await program.run()
        } fail: { error in
            StandardStreams.error("Error: \(error)\n")
            exit(1)
        }
    }
}

extension CrucialProgram where Self: AsyncParsableCommand {
    /// Runs the command as ``CrucialProgram`` says: parsed before anything starts, so that
    /// `--help` and bad options answer at once.
    public static func main() async {
        await ProgramRuntime.serveIfAsked(sharedTypes)
        var parsed: any ParsableCommand
        do { parsed = try parseAsRoot() } catch { exit(withError: error) }
        // `--help` parses as ArgumentParser's own help command: it needs no stack.
        if String(reflecting: type(of: parsed)).hasPrefix("ArgumentParser.") {
            do { try parsed.run() } catch { exit(withError: error) }
            return
        }
        await ProgramRuntime.run(concurrency: cloudConcurrency) {
            var command = parsed
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } fail: { error in
            exit(withError: error)
        }
    }
}

/// What ``CrucialProgram``'s entry points share.
enum ProgramRuntime {
    /// Marks the program's own process started as the local DSO server.
    static let serverRole = "CRUCIAL_PROGRAM_ROLE"

    /// Serves Lambda invocations, or runs the DSO server, when started for either; never
    /// returns then.
    static func serveIfAsked(_ sharedTypes: [any SharedType.Type]) async {
        if ProcessInfo.processInfo.environment[serverRole] == "server" {
            let program = URL(fileURLWithPath: CommandLine.arguments[0]).lastPathComponent
            ObjectStore.adviseOnUnknownTypes { type in
                "this server is the local stack of the program \(program), which runs the @Shared types its CrucialProgram "
                    + "lists: add `static var sharedTypes: [any SharedType.Type] { [\(type.split(separator: ".").last.map(String.init) ?? type).self] }` to it"
            }
            await ProgramServer.run(registering: sharedTypes, arguments: Array(CommandLine.arguments.dropFirst()))
            exit(0)
        }
        await CrucialLambda.serveIfLambda(registering: [])
    }

    /// The properties of `program` that are ArgumentParser's (`@Option`, `@Flag`,
    /// `@Argument`, `@OptionGroup`), by name; nil when it has none.
    static func commandLineProperties(of program: Any) -> [String]? {
        let wrappers = ["Option<", "Flag<", "Argument<", "OptionGroup<"]
        let found = Mirror(reflecting: program).children.compactMap { child -> String? in
            let type = String(describing: Swift.type(of: child.value))
            guard wrappers.contains(where: { type.hasPrefix($0) }) else { return nil }
            let name = child.label.map { $0.hasPrefix("_") ? String($0.dropFirst()) : $0 } ?? "?"
            return "@\(type.prefix { $0 != "<" }) var \(name)"
        }
        return found.isEmpty ? nil : found
    }

    /// Starts the local stack when nothing is configured, runs `body`, ends the session and
    /// stops the stack; `fail` reports an error (and exits).
    static func run(concurrency: Int, _ body: () async throws -> Void, fail: (any Error) -> Never) async {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).lastPathComponent
        let stack: LocalStack
        do {
            stack = try await LocalStack.start(
                concurrency: concurrency, bootstrap: me, server: me, serverEnvironment: [serverRole: "server"],
                inProcessWithoutEmulator: true)
        } catch {
            fail(error)
        }
        do {
            try await body()
            _ = try await CrucialClient.shared.endSession()
        } catch {
            // A failed cloud thread: the end of its function's log, before the error's own line.
            if let failure = error as? CloudFunctionError, let log = failure.log, !log.isEmpty {
                let indented = log.split(separator: "\n", omittingEmptySubsequences: false).map { "  | \($0)" }.joined(separator: "\n")
                StandardStreams.error("The end of the log of \(failure.thread.map { "cloud thread \($0)" } ?? failure.function):\n\(indented)\n")
            }
            // The failed run's ephemeral objects go now rather than when its lease lapses
            // (30 s); a layer that does not answer within a few seconds leaves them to it.
            await endSession(within: .seconds(5))
            stack.stop()  // the emulator stops every worker process with it
            fail(error)
        }
        stack.stop()
    }

    /// Ends the program's session, giving up (silently: its lease ends it) after `limit`.
    static func endSession(within limit: Duration) async {
        // Unstructured: a call that ignores cancellation must not hold the program past `limit`.
        final class First: Sendable {
            let waiting = Mutex<CheckedContinuation<Void, Never>?>(nil)
            func resume() { waiting.withLock { $0.take() }?.resume() }
        }
        let first = First()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            first.waiting.withLock { $0 = continuation }
            Task {
                _ = try? await CrucialClient.shared.endSession()
                first.resume()
            }
            Task {
                try? await Task.sleep(for: limit)
                first.resume()
            }
        }
    }
}
