import ArgumentParser
import CCrucialShims
import CrucialCore
import CrucialProcess
import Dispatch
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

@main
struct EmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crucial-lambda-emulator",
        abstract: "A local AWS Lambda: the Invoke API on loopback, bootstrap processes spawned on demand.",
        discussion: """
            Serves POST /2015-03-31/functions/NAME/invocations as AWS Lambda does, and runs each \
            concurrent invocation in its own bootstrap process, which it serves the Lambda Runtime API \
            (AWS_LAMBDA_RUNTIME_API). Processes stay warm for the next invocation, as long as their \
            bootstrap file is unchanged: after a rebuild, new invocations get fresh processes (logged), \
            as AWS does after update-function-code; SIGHUP makes every later invocation start a fresh one. \
            Invocations over --concurrency wait in a queue. Each invocation logs START, END and REPORT \
            lines as CloudWatch does.

            Example:
              crucial-lambda-emulator --function crucial=.build/release/my-app
              CRUCIAL_LAMBDA_ENDPOINT=http://127.0.0.1:7421 .build/release/my-app
            """,
        version: CrucialVersion.description)

    @Option(help: "Address to listen on (keep it on loopback: the Invoke API has no authentication here).")
    var host = "127.0.0.1"

    @Option(help: "Port of the Invoke API; 0 picks a free one.")
    var port = 7421

    @Option(name: .customLong("function"), help: ArgumentHelp(
        "A function, NAME=EXECUTABLE (or EXECUTABLE alone, named \"crucial\"). Repeat for more.", valueName: "name=path"))
    var functions: [String] = []

    @Option(help: "At most this many invocations run at once; more wait in a queue.")
    var concurrency = 64

    @Option(help: "Seconds an invocation may run (cold start included) before its process is killed.")
    var timeout: Double = 900

    @Option(help: "Memory size reported to functions and in REPORT lines, in MB.")
    var memory = 1024

    @Option(name: .customLong("env"), help: ArgumentHelp(
        "An environment variable of the functions, KEY=VALUE (repeatable). Functions get only these, PATH and what Lambda defines: none of the emulator's own (its AWS keys least of all).",
        valueName: "key=value"))
    var environment: [String] = []

    @Option(help: "The runtime functions are told they run in (AWS_EXECUTION_ENV=AWS_Lambda_<runtime>), e.g. python3.12.")
    var runtime = "provided.al2023"

    @Flag(help: "Answer synchronous invocations over --concurrency with 429 TooManyRequestsException, as AWS does, instead of queueing them.")
    var throttle = false

    @Option(help: "Retries of an asynchronous (Event) invocation whose function failed (AWS: 2).")
    var eventRetries = 2

    @Option(help: "Seconds before the first retry of a failed asynchronous invocation; the second waits twice as long (AWS: about 60).")
    var eventRetryDelay: Double = 60

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "notice"

    func validate() throws {
        guard !functions.isEmpty else { throw ValidationError("give at least one --function NAME=EXECUTABLE") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard timeout > 0, timeout <= 86_400 else { throw ValidationError("--timeout must be between 0 and 86400 seconds") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard (0...10).contains(eventRetries) else { throw ValidationError("--event-retries must be 0...10") }
        guard eventRetryDelay >= 0 else { throw ValidationError("--event-retry-delay must not be negative") }
        _ = try parsedEnvironment()
        for f in try parsedFunctions() where !FileManager.default.isExecutableFile(atPath: f.executable) {
            throw ValidationError("\(f.executable) (function \(f.name)) is not an executable file")
        }
    }

    func parsedEnvironment() throws -> [String: String] {
        var variables: [String: String] = [:]
        for spec in environment {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else { throw ValidationError("--env \(spec): write KEY=VALUE") }
            variables[String(spec[..<eq])] = String(spec[spec.index(after: eq)...])
        }
        return variables
    }

    func parsedFunctions() throws -> [FunctionConfig] {
        let variables = try parsedEnvironment()
        return try functions.map { spec in
            let (name, path): (String, String)
            if let eq = spec.firstIndex(of: "=") {
                (name, path) = (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
            } else {
                (name, path) = ("crucial", spec)
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw ValidationError("bad function name \"\(name)\": use letters, digits, - and _")
            }
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            return FunctionConfig(
                name: name, executable: absolute, memoryMB: memory, timeout: .milliseconds(Int64(timeout * 1000)), environment: variables,
                runtime: runtime)
        }
    }

    func run() async throws {
        var logger = Logger(label: "crucial-lambda-emulator") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        let policy = InvocationPolicy(
            throttle: throttle, eventRetries: eventRetries, eventRetryDelay: .milliseconds(Int64(eventRetryDelay * 1000)))
        let emulator = Emulator(functions: try parsedFunctions(), concurrency: concurrency, policy: policy, logger: logger)
        let server = try await HTTPServer.start(host: host, port: port, maxBody: Emulator.maxRequestBytes) { request in
            await emulator.handle(request)
        }
        for f in emulator.functions.values.sorted(by: { $0.name < $1.name }) {
            logger.notice("function \(f.name): \(f.executable)")
        }
        // Signals through a pipe whose handler is installed at once (sigaction): a dispatch
        // source is registered by libdispatch after resume() returns, and a SIGTERM sent in
        // between (as soon as the ready line was read) was ignored and lost, leaving the
        // emulator running (13 times in 20). SIGHUP: fresh environments from now on (a
        // rebuilt bootstrap is noticed by itself); SIGINT/SIGTERM: stop the warm processes,
        // then exit.
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0, fcntl(pipeEnds[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(pipeEnds[1], F_SETFD, FD_CLOEXEC) == 0 else {
            throw ValidationError("the signal pipe: \(String(cString: strerror(errno)))")
        }
        for sig in [SIGHUP, SIGINT, SIGTERM] where crucial_signal_to_pipe(sig, pipeEnds[1]) != 0 {
            throw ValidationError("sigaction(\(sig)): \(String(cString: strerror(errno)))")
        }
        let (stop, continuation) = AsyncStream<Int32>.makeStream()
        let signalReader = pipeEnds[0]
        Thread.detachNewThread {
            // A process started by a Swift program may inherit a mask that blocks these
            // signals in every thread: this one takes them (one sent earlier waits, pending).
            var mask = sigset_t()
            sigemptyset(&mask)
            for sig in [SIGHUP, SIGINT, SIGTERM] { sigaddset(&mask, sig) }
            pthread_sigmask(SIG_UNBLOCK, &mask, nil)
            var number: UInt8 = 0
            while true {
                let got = read(signalReader, &number, 1)
                if got < 0, errno == EINTR { continue }
                guard got == 1 else { return }
                if Int32(number) == SIGHUP { emulator.reload() } else { continuation.yield(Int32(number)) }
            }
        }
        // A driver that stops while the emulator still logs must not take it down.
        StandardStreams.ignoreBrokenPipes()
        Emulator.write("crucial-lambda-emulator listening on \(host):\(server.port)")
        ParentWatch.start()
        for await sig in stop {
            logger.notice("signal \(sig): stopping")
            break
        }
        server.close()
        emulator.shutdown()
    }
}
