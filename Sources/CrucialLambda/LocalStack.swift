import CrucialClient
public import CrucialProcess
import FoundationEssentials

/// The embedded default of the demo and the applications: a DSO server and a
/// crucial-lambda-emulator on free loopback ports, unless the environment names others
/// (`CRUCIAL_SERVERS`, `CRUCIAL_LAMBDA_ENDPOINT`, or `CRUCIAL_INVOKER=in-process`).
///
/// ```swift
/// let local = try await LocalStack.start(concurrency: 8, bootstrap: "my-app")
/// defer { local.stop() }
/// ```
public struct LocalStack: Sendable {
    /// The DSO server started, if one was (none when `CRUCIAL_SERVERS` names one).
    public private(set) var server: ServerProcess?
    /// The emulator started, if one was.
    public private(set) var emulator: ServerProcess?

    /// - Parameters:
    ///   - concurrency: how many cloud threads the emulator runs at once.
    ///   - bootstrap: the executable (next to this one) the emulator runs as each cloud
    ///     thread's process: usually this program itself.
    ///   - server: the DSO server to start: `crucial-server`, or this program with
    ///     `serverArguments` (say `["serve"]`) when it links its own `@Shared` types.
    ///   - serverArguments: the arguments `server` starts with (before `--port 0`).
    ///   - serverEnvironment: variables `server` starts with, besides this process's.
    ///   - inProcessWithoutEmulator: with no `crucial-lambda-emulator` next to this program,
    ///     run cloud threads as tasks of this process (`InProcessInvoker`) instead of failing.
    public static func start(
        concurrency: Int, bootstrap: String, server: String = "crucial-server", serverArguments: [String] = [],
        serverEnvironment: [String: String] = [:], inProcessWithoutEmulator: Bool = false
    ) async throws -> LocalStack {
        var stack = LocalStack()
        let env = ProcessInfo.processInfo.environment
        if (env["CRUCIAL_SERVERS"] ?? "").isEmpty {
            guard let binary = ServerProcess.siblingExecutable(server) else {
                throw CrucialError(.invalidArgument, "no \(server) next to this program; build it, or set CRUCIAL_SERVERS")
            }
            let process = try await ServerProcess.start(
                executable: binary, arguments: serverArguments + ["--port", "0", "--log-level", "warning"], environment: serverEnvironment)
            CrucialClient.useShared(CrucialClient(servers: [process.address]))
            print("started a local DSO server (\(server)) at \(process.address)")
            stack.server = process
        }
        if (env["CRUCIAL_LAMBDA_ENDPOINT"] ?? "").isEmpty, env["CRUCIAL_INVOKER"] != "in-process" {
            if inProcessWithoutEmulator, ServerProcess.siblingExecutable("crucial-lambda-emulator") == nil {
                CloudInvokers.useDefault(InProcessInvoker())
                print("no crucial-lambda-emulator next to this program: cloud threads run in this process "
                    + "(build it, `swift build --product crucial-lambda-emulator`, to run each in its own)")
                return stack
            }
            guard let binary = ServerProcess.siblingExecutable("crucial-lambda-emulator"),
                let me = ServerProcess.siblingExecutable(bootstrap)
            else {
                stack.stop()
                throw CrucialError(.invalidArgument, "no crucial-lambda-emulator or \(bootstrap) next to this program; build them, or set CRUCIAL_LAMBDA_ENDPOINT")
            }
            let emulator = try await ServerProcess.start(
                executable: binary,
                arguments: ["--port", "0", "--function", "crucial=\(me)", "--concurrency", String(concurrency), "--log-level", "warning"])
            CloudInvokers.useDefault(LambdaInvoker(configuration: .init(endpoint: "http://\(emulator.address)")))
            print("started a local crucial-lambda-emulator at \(emulator.address), running \(bootstrap) as the bootstrap")
            stack.emulator = emulator
        }
        return stack
    }

    /// Stops what ``start(concurrency:bootstrap:server:serverArguments:serverEnvironment:inProcessWithoutEmulator:)`` started.
    public func stop() {
        emulator?.stop()
        server?.stop()
    }
}
