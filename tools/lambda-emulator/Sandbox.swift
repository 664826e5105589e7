import CrucialProcess
import Foundation
import NIOCore
import NIOHTTP1
import Subprocess
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Which file a path names, and which version of it: a rebuild writes a new file (another
/// inode) or rewrites it (another modification time or size).
struct FileIdentity: Sendable, Equatable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64  // nanoseconds since the epoch

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }
}

/// One invocation as the Runtime API hands it out.
struct Event: Sendable {
    var requestID: String
    var payload: ByteBuffer
    var deadlineMs: Int64
    var functionARN: String
    /// The caller's `X-Amz-Client-Context`, decoded (synchronous invocations only).
    var clientContext: String?
    var traceID: String
}

/// How an invocation ended.
enum Outcome: Sendable {
    case response(ByteBuffer)
    /// The runtime posted an error (to `/error` or `/init/error`).
    case functionError(type: String, body: ByteBuffer)
    case exited(reason: String)
    /// The process was gone before the runtime took the event: the function never
    /// saw it, so it may be handed to another environment.
    case undelivered(reason: String)
    case timedOut
    case tooLarge(bytes: Int)
}

/// One execution environment: a bootstrap process and the Runtime API it polls,
/// served on its own loopback port. Runs one invocation at a time.
final class Sandbox: Sendable {
    let id: Int
    let function: FunctionConfig
    let spawnedAt: ContinuousClock.Instant
    /// The bootstrap file it was started from: a rebuilt file is another identity.
    let binary: FileIdentity?
    /// The emulator's generation when it was started (a reload starts the next one).
    let generation: Int
    private let process: ProcessBox
    private let server: Mutex<HTTPServer?> = Mutex(nil)
    private let state = Mutex(State())

    private struct State {
        /// When the runtime first asked for an invocation: the end of its init.
        var ready: ContinuousClock.Instant?
        var waitingNext: CheckedContinuation<Event?, Never>?
        var pendingEvent: Event?
        var current: (requestID: String, continuation: CheckedContinuation<Outcome, Never>)?
        var deliveredAt: ContinuousClock.Instant?
        var exitReason: String?
        var log = LogTail()
        /// The invocations answered already (`/response` or `/error` once): a second answer is
        /// an invalid state transition, not an unknown request.
        var answered: Set<String> = []
    }

    /// Output lines captured during the current invocation (the last 4 KB).
    struct LogTail {
        var text = ""
        mutating func append(_ line: String) {
            text += line + "\n"
            if text.utf8.count > 4096 { text = String(decoding: text.utf8.suffix(4096), as: UTF8.self) }
        }
    }

    /// Starts the Runtime API listener and the bootstrap process.
    static func spawn(id: Int, function: FunctionConfig, generation: Int, output: @escaping @Sendable (String) -> Void) async throws -> Sandbox {
        let sandbox = Sandbox(id: id, function: function, generation: generation)
        let server = try await HTTPServer.start(host: "127.0.0.1", port: 0, maxBody: 16 * 1024 * 1024) { [weak sandbox] request in
            guard let sandbox else { return .json(.gone, #"{"errorType":"Sandbox.Gone","errorMessage":"sandbox ended"}"#) }
            return await sandbox.handleRuntimeAPI(request)
        }
        sandbox.server.withLock { $0 = server }
        do {
            try await sandbox.process.start(function: function, runtimeAPI: "127.0.0.1:\(server.port)", sandboxID: id) { [weak sandbox] line in
                output(line)
                sandbox?.state.withLock { $0.log.append(line) }
            } onExit: { [weak sandbox] reason in
                sandbox?.exited(reason)
            }
        } catch {
            server.close()
            throw error
        }
        return sandbox
    }

    private init(id: Int, function: FunctionConfig, generation: Int) {
        self.id = id
        self.function = function
        self.spawnedAt = .now
        self.binary = FileIdentity(function.executable)
        self.generation = generation
        self.process = ProcessBox()
    }

    var isAlive: Bool { state.withLock { $0.exitReason == nil } }
    var processID: Int32 { process.pid }
    /// Spawn to first `next`, once the runtime got there.
    var initDuration: Duration? { state.withLock { $0.ready.map { $0 - spawnedAt } } }

    /// Hands `event` to the runtime and waits for how it ends. Returns the outcome,
    /// the time from delivery to the end, and the output captured meanwhile.
    func invoke(_ event: Event) async -> (outcome: Outcome, ran: Duration, log: String) {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            enum Action { case deliver(CheckedContinuation<Event?, Never>), wait, dead(String) }
            let action: Action = state.withLock { s in
                if let reason = s.exitReason { return .dead(reason) }
                s.current = (event.requestID, continuation)
                s.log = LogTail()
                if let next = s.waitingNext {
                    s.waitingNext = nil
                    s.deliveredAt = .now
                    return .deliver(next)
                }
                s.pendingEvent = event
                return .wait
            }
            switch action {
            case .deliver(let next): next.resume(returning: event)
            case .wait: break
            case .dead(let reason): continuation.resume(returning: .undelivered(reason: reason))
            }
        }
        let (delivered, log) = state.withLock { s in
            defer { s.deliveredAt = nil; s.log = LogTail() }
            return (s.deliveredAt, s.log.text)
        }
        return (outcome, delivered.map { .now - $0 } ?? .zero, log)
    }

    /// Ends the current invocation as timed out; the caller then kills the process
    /// (AWS resets the environment), after reading its memory use.
    func timeOut(requestID: String) {
        finish(requestID: requestID, with: .timedOut)
    }

    func kill() {
        process.kill()
        server.withLock { $0?.close() }
    }

    /// Peak resident memory of the process so far, from /proc (0 if gone).
    var maxMemoryMB: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) })
        else { return 0 }
        return (kb + 1023) / 1024
    }

    @discardableResult
    private func finish(requestID: String, with outcome: Outcome) -> Bool {
        let continuation = state.withLock { s -> CheckedContinuation<Outcome, Never>? in
            guard let current = s.current, current.requestID == requestID else { return nil }
            s.current = nil
            if s.answered.count > 1000 { s.answered.removeAll() }
            s.answered.insert(requestID)
            return current.continuation
        }
        continuation?.resume(returning: outcome)
        return continuation != nil
    }

    /// The answer to a `/response` or `/error` for a request that is not the one in progress.
    private func notCurrent(_ id: String) -> HTTPResponse {
        if state.withLock({ $0.answered.contains(id) }) {
            return runtimeError(
                .forbidden, "InvalidStateTransition", "State transition from Ready to InvocationResponse failed for runtime: invocation \(id) was answered already")
        }
        return invalidRequestID(id)
    }

    private func exited(_ reason: String) {
        let (current, delivered, next) = state.withLock { s in
            s.exitReason = s.exitReason ?? reason
            defer { s.current = nil; s.waitingNext = nil; s.pendingEvent = nil }
            return (s.current?.continuation, s.pendingEvent == nil, s.waitingNext)
        }
        current?.resume(returning: delivered ? .exited(reason: reason) : .undelivered(reason: reason))
        next?.resume(returning: nil)
        server.withLock { $0?.close() }
    }

    // MARK: The Runtime API

    private func handleRuntimeAPI(_ request: HTTPRequest) async -> HTTPResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        // ["2018-06-01", "runtime", "invocation", "next"] and friends.
        guard parts.count >= 3, parts[0] == "2018-06-01", parts[1] == "runtime" else {
            return runtimeError(.notFound, "UnknownPath", "no Runtime API resource \(request.path)")
        }
        let route = parts.dropFirst(2)
        let id = route.count == 3 && route.first == "invocation" ? route[route.startIndex + 1] : ""
        switch (request.method, route.joined(separator: "/")) {
        case (.GET, "invocation/next"):
            guard let event = await nextEvent() else {
                return runtimeError(.gone, "Sandbox.Gone", "this execution environment is shutting down")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Lambda-Runtime-Aws-Request-Id", value: event.requestID)
            headers.add(name: "Lambda-Runtime-Deadline-Ms", value: String(event.deadlineMs))
            headers.add(name: "Lambda-Runtime-Invoked-Function-Arn", value: event.functionARN)
            headers.add(name: "Lambda-Runtime-Trace-Id", value: event.traceID)
            if let context = event.clientContext { headers.add(name: "Lambda-Runtime-Client-Context", value: context) }
            headers.add(name: "content-type", value: "application/json")
            return HTTPResponse(status: .ok, headers: headers, body: event.payload)
        case (.POST, "invocation/\(id)/response") where !id.isEmpty:
            process.drainOutput()  // what it printed before answering belongs to this invocation's log
            let size = request.bodyBytes
            let outcome: Outcome = size > Emulator.maxResponseBytes ? .tooLarge(bytes: size) : .response(request.body)
            guard finish(requestID: id, with: outcome) else { return notCurrent(id) }
            if case .tooLarge = outcome {
                return runtimeError(.payloadTooLarge, "RequestEntityTooLarge", "response of \(size) bytes is over the \(Emulator.maxResponseBytes)-byte limit")
            }
            return .json(.accepted, #"{"status":"OK"}"#)
        case (.POST, "invocation/\(id)/error") where !id.isEmpty:
            process.drainOutput()
            let type = request.headers.first(name: "Lambda-Runtime-Function-Error-Type") ?? "Unhandled"
            guard finish(requestID: id, with: .functionError(type: type, body: request.body)) else { return notCurrent(id) }
            return .json(.accepted, #"{"status":"OK"}"#)
        case (.POST, "init/error"):
            // Only during init: once the runtime asked for an invocation, init is over.
            if state.withLock({ $0.ready != nil }) {
                return runtimeError(
                    .forbidden, "InvalidStateTransition", "State transition from Ready to InitError failed for runtime: init is over (it called /next)")
            }
            let type = request.headers.first(name: "Lambda-Runtime-Function-Error-Type") ?? "Runtime.Unknown"
            let current = state.withLock { $0.current?.requestID }
            if let current { finish(requestID: current, with: .functionError(type: type, body: request.body)) }
            // An environment whose init failed is discarded once the runtime has said so.
            Task { try? await Task.sleep(for: .milliseconds(100)); self.kill() }
            return .json(.accepted, #"{"status":"OK"}"#)
        default:
            return runtimeError(.notFound, "UnknownPath", "no Runtime API resource \(request.method) \(request.path)")
        }
    }

    private func nextEvent() async -> Event? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Event?, Never>) in
            enum Action { case now(Event?), wait, replace(CheckedContinuation<Event?, Never>) }
            let action: Action = state.withLock { s in
                if s.ready == nil { s.ready = .now }
                if s.exitReason != nil { return .now(nil) }
                if let event = s.pendingEvent {
                    s.pendingEvent = nil
                    s.deliveredAt = .now
                    return .now(event)
                }
                defer { s.waitingNext = continuation }
                return s.waitingNext.map { .replace($0) } ?? .wait
            }
            switch action {
            case .now(let event): continuation.resume(returning: event)
            case .wait: break
            case .replace(let old): old.resume(returning: nil)
            }
        }
    }

    private func invalidRequestID(_ id: String) -> HTTPResponse {
        runtimeError(.badRequest, "InvalidRequestID", "no invocation \(id) is in progress in this environment")
    }

    private func runtimeError(_ status: HTTPResponseStatus, _ type: String, _ message: String) -> HTTPResponse {
        .json(status, jsonObject(["errorType": type, "errorMessage": message]))
    }
}

/// The bootstrap process, spawned with swift-subprocess (see Package.swift for why not
/// Foundation's `Process`).
final class ProcessBox: Sendable {
    private let pidValue = Atomic<Int32>(0)

    var pid: Int32 { pidValue.load(ordering: .relaxed) }

    /// The process's output (stdout and stderr), read from the file it writes to.
    private let reader = Mutex<OutputReader?>(nil)

    /// Starts the bootstrap; returns once it runs (throws when it cannot be started).
    /// `output` gets each line it writes (stdout and stderr) as ``drainOutput()`` reads it;
    /// `onExit` its end, once its output was read to the end (the last lines, "about to
    /// trap", belong to the invocation's log).
    ///
    /// The output goes to an unlinked temporary file rather than a pipe: whatever the
    /// process wrote before it answered an invocation is in the file when the answer
    /// arrives, so the invocation's log (`LogResult`) has every line printed before it.
    func start(
        function: FunctionConfig, runtimeAPI: String, sandboxID: Int,
        output: @escaping @Sendable (String) -> Void, onExit: @escaping @Sendable (String) -> Void
    ) async throws {
        // What Lambda defines, the function's own variables (--env), and PATH; nothing else of
        // the emulator's environment (its AWS keys least of all) reaches the function.
        var variables = function.environment
        let defined: [String: String] = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_RUNTIME_API": runtimeAPI,
            "AWS_EXECUTION_ENV": "AWS_Lambda_\(function.runtime)",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": String(function.memoryMB),
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/\(function.name)",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local/[$LATEST]\(sandboxID)",
            "AWS_REGION": Emulator.region,
            "AWS_DEFAULT_REGION": Emulator.region,
            "LAMBDA_TASK_ROOT": URL(fileURLWithPath: function.executable).deletingLastPathComponent().path,
            "LAMBDA_RUNTIME_DIR": URL(fileURLWithPath: function.executable).deletingLastPathComponent().path,
            "_HANDLER": function.name,
        ]
        for (key, value) in defined where !(key == "TZ" && variables[key] != nil) { variables[key] = value }  // TZ is not reserved
        // Swift's backtracer spends seconds per crash symbolicating, and its backtrace pushes
        // the crash's own line ("Fatal error: ...") out of the invocation's 4 KB log tail; a
        // function's own --env SWIFT_BACKTRACE decides otherwise.
        if variables["SWIFT_BACKTRACE"] == nil { variables["SWIFT_BACKTRACE"] = "enable=no" }
        var keyed: [Environment.Key: String] = [:]
        for (key, value) in variables { if let k = Environment.Key(rawValue: key) { keyed[k] = value } }
        let environment = Environment.custom(keyed)
        let configuration = Configuration(
            executable: .path(.init(function.executable)), arguments: Arguments(function.arguments), environment: environment)
        let path = "\(NSTemporaryDirectory())crucial-emulator-\(getpid())-\(sandboxID)-\(UInt32.random(in: 0...UInt32.max)).log"
        let writeFD = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o600)
        let readFD = open(path, O_RDONLY | O_CLOEXEC)
        unlink(path)  // the file lives while the descriptors do
        guard writeFD >= 0, readFD >= 0 else {
            if writeFD >= 0 { close(writeFD) }
            if readFD >= 0 { close(readFD) }
            throw EmulatorFailure("cannot make an output file for \(function.executable): \(String(cString: strerror(errno)))")
        }
        let outputReader = OutputReader(fd: readFD, lines: LineSplitter(output))
        reader.withLock { $0 = outputReader }
        let started = StartSignal()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            started.waiting.withLock { $0 = continuation }
            Task.detached { [self] in
                // While it runs, its output reaches the console within a tenth of a second.
                let pump = Task { [outputReader] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(100))
                        outputReader.drain()
                    }
                }
                do {
                    let outcome = try await Subprocess.run(
                        configuration, input: .none, output: .fileDescriptor(FileDescriptor(rawValue: writeFD), closeAfterSpawningProcess: true),
                        error: .combinedWithOutput
                    ) { execution in
                        pidValue.store(execution.processIdentifier.value, ordering: .relaxed)
                        started.resume(nil)
                    }
                    pump.cancel()
                    outputReader.finish()
                    onExit(Self.reason(outcome.terminationStatus))
                } catch {
                    pump.cancel()
                    outputReader.finish()
                    if !started.resume(error) { onExit("the process failed: \(error)") }
                }
            }
        }
    }

    /// Reads what the process wrote so far into lines (see ``start``).
    func drainOutput() { reader.withLock { $0 }?.drain() }

    /// The start's continuation, resumed once: when the process runs, or with why it could not start.
    private final class StartSignal: Sendable {
        let waiting = Mutex<CheckedContinuation<Void, any Error>?>(nil)

        /// Whether the start was still waiting (and now is not).
        @discardableResult
        func resume(_ error: (any Error)?) -> Bool {
            guard let c = waiting.withLock({ $0.take() }) else { return false }
            if let error { c.resume(throwing: error) } else { c.resume() }
            return true
        }
    }

    private static func reason(_ status: TerminationStatus) -> String {
        switch status {
        case .exited(let code): return "exit status \(code)"
        case .signaled(let signal):
            let name = strsignal(signal).map { String(cString: $0).lowercased() } ?? "signal \(signal)"
            return "signal: \(name)"
        }
    }

    func kill() {
        let pid = self.pid
        if pid > 0 { _ = Glibc.kill(pid, SIGKILL) }
    }
}

/// The reading end of a bootstrap's output file: each ``drain()`` reads from where the
/// last one stopped to the end of what was written, and cuts it into lines.
final class OutputReader: Sendable {
    private let state: Mutex<(fd: Int32, offset: Int64)>
    private let lines: LineSplitter

    init(fd: Int32, lines: LineSplitter) {
        self.state = Mutex((fd, 0))
        self.lines = lines
    }

    func drain() {
        state.withLock { s in
            guard s.fd >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { pread(s.fd, $0.baseAddress, $0.count, off_t(s.offset)) }
                guard n > 0 else { break }
                s.offset += Int64(n)
                lines.feed(Data(buffer[0..<n]))
            }
        }
    }

    /// Reads the rest, emits a last unterminated line, and closes the file.
    func finish() {
        drain()
        lines.flush()
        state.withLock { s in
            if s.fd >= 0 { close(s.fd) }
            s.fd = -1
        }
    }
}

/// A failure of the emulator itself, with the reason.
struct EmulatorFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Cuts a byte stream into lines.
final class LineSplitter: Sendable {
    private let pending = Mutex(Data())
    private let emit: @Sendable (String) -> Void

    init(_ emit: @escaping @Sendable (String) -> Void) { self.emit = emit }

    func feed(_ data: Data) {
        let lines: [String] = pending.withLock { buffer in
            buffer.append(data)
            var out: [String] = []
            while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                out.append(String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self))
                buffer.removeSubrange(buffer.startIndex...nl)
            }
            return out
        }
        lines.forEach(emit)
    }

    func flush() {
        let rest = pending.withLock { buffer in
            defer { buffer.removeAll() }
            return buffer
        }
        if !rest.isEmpty { emit(String(decoding: rest, as: UTF8.self)) }
    }
}

/// A JSON object of strings, escaped properly.
func jsonObject(_ fields: [String: String]) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
    return String(decoding: data, as: UTF8.self)
}
