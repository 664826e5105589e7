import CrucialTesting
import CrucialProcess
import CrucialClient
import CrucialLambda
import Foundation

#if canImport(Glibc)
import Glibc
import Testing
#endif

/// A real `crucial-server` process on a free loopback port, for one test.
final class TestServer: Sendable {
    let server: ServerProcess
    let port: Int
    var address: String { "127.0.0.1:\(port)" }

    /// The built `crucial-server`: $CRUCIAL_SERVER_BIN, or next to the test bundle.
    static func binary() throws -> String {
        if let env = ProcessInfo.processInfo.environment["CRUCIAL_SERVER_BIN"] { return env }
        return try builtExecutable("crucial-server")
    }

    /// - Parameter executable: the server binary; default `crucial-server`
    ///   (`crucial-test-server` knows the tests' `@Shared` types).
    /// - Parameter port: 0 lets the server pick one.
    init(port: Int = 0, arguments: [String] = [], executable: String? = nil, environment: [String: String] = [:]) async throws {
        server = try await ServerProcess.start(
            executable: executable ?? Self.binary(), arguments: ["--port", String(port), "--log-level", "warning"] + arguments,
            environment: environment)
        guard let port = server.port else { throw CrucialError(.connectionFailed, "no port in \(server.readyLine)") }
        self.port = port
    }

    /// A `crucial-test-server`: a server linking the tests' `@Shared` types.
    static func withTestTypes(arguments: [String] = []) async throws -> TestServer {
        try await TestServer(arguments: arguments, executable: builtExecutable("crucial-test-server"))
    }

    var isRunning: Bool { server.isRunning }

    func client(connections: Int = 2, retries: Int = 5) -> CrucialClient {
        CrucialClient(configuration: .init(servers: [address], connections: connections, retries: retries))
    }

    /// SIGTERM (SIGKILL after 60 s); returns the exit status. The grace only catches a
    /// shutdown that hangs: a fresh clone's loaded suite once took over 10 s to stop a server
    /// (its exit status was then the SIGKILL's, and a test checking a clean exit failed).
    @discardableResult
    func stop() async -> Int32 { await server.stop(grace: .seconds(60)) }

    /// ``stop()`` without waiting, for a `defer`.
    func stop() { server.stopInBackground(grace: .seconds(10)) }

    func kill9() async { await server.kill9() }

    /// ``kill9()`` blocking the calling thread, for a `deinit`.
    func kill9() { server.kill9() }
}

/// Runs `path` to completion (with `environment` added to this process's); returns its exit status, stdout and stderr.
func runProcess(_ path: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, out: String, err: String) {
    try await offCooperativePool { try runProcessBlocking(path, arguments, environment: environment) }
}

/// ``runProcess(_:_:)`` blocking the calling thread, for a `defer` or a `deinit`.
func runProcessBlocking(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    // A crashing program ends at once, without Swift's seconds-long backtrace.
    p.environment = ProcessInfo.processInfo.environment.merging(environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { mine, _ in mine }) { _, new in new }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Both pipes drained at once: a child filling one while we wait on the other would hang.
    // The reader is a thread of its own, not Dispatch's: tests blocked in reads would take
    // the workers Foundation needs to see its children exit.
    let stderr = Drained()
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        stderr.data = err.fileHandleForReading.readDataToEndOfFile()
        done.signal()
    }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    done.wait()
    guard let status = ServerProcess.exitStatus(of: p) else {
        throw CrucialError(.internal, "\(path) \(arguments.joined(separator: " ")) closed its output, but Foundation still reports it running 120 s later")
    }
    return (status, String(decoding: o, as: UTF8.self), String(decoding: stderr.data, as: UTF8.self))
}

/// What a reader thread collected; read after it signalled.
private final class Drained: @unchecked Sendable {
    var data = Data()
}

/// An executable product of this package, next to the test bundle or in .build/debug.
func builtExecutable(_ name: String) throws -> String { try builtFile(name) }

/// A dynamic library product of this package (`lib<product>.so`), found as executables are.
func builtLibrary(_ product: String) throws -> String { try builtFile("lib\(product).so") }

private func builtFile(_ name: String) throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    let candidates = [besideTests.appendingPathComponent(name).path, root.appendingPathComponent(".build/debug/\(name)").path]
    if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
        return found
    }
    throw CrucialError(.invalidArgument, "\(name) is not built; run `swift build --build-tests` first")
}

/// A real `crucial-lambda-emulator` on a free loopback port, running the
/// `crucial-test-functions` bootstrap, for one test.
final class TestEmulator: Sendable {
    let process: ServerProcess
    let address: String

    init(timeout: Double = 60, concurrency: Int = 16, bootstrap: String? = nil, arguments: [String] = []) async throws {
        process = try await ServerProcess.start(
            executable: builtExecutable("crucial-lambda-emulator"),
            arguments: [
                "--port", "0", "--function", "crucial=\(try bootstrap ?? builtExecutable("crucial-test-functions"))", "--timeout", String(timeout),
                "--concurrency", String(concurrency), "--log-level", "warning",
                // A crashing bootstrap ends at once, without Swift's seconds-long backtrace.
                "--env", "SWIFT_BACKTRACE=enable=no",
            ] + arguments)
        address = process.address
    }

    func invoker(function: String = "crucial") -> LambdaInvoker {
        LambdaInvoker(configuration: .init(endpoint: "http://\(address)", functionName: function))
    }

    @discardableResult
    func stop() async -> Int32 { await process.stop(grace: .seconds(10)) }

    /// ``stop()`` without waiting, for a `defer`.
    func stop() { process.stopInBackground(grace: .seconds(10)) }
}

/// Checks a process stopped by SIGTERM exited by itself with status 0, saying the status
/// otherwise (9: it was SIGKILLed after its grace; a signal's number when it crashed).
func expectCleanExit(_ status: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(status == 0, "exit status \(status)", sourceLocation: sourceLocation)
}
