import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// A function the emulator can run: its name and its bootstrap executable.
struct FunctionConfig: Sendable {
    var name: String
    var executable: String
    var arguments: [String] = []
    var memoryMB: Int
    var timeout: Duration
}

/// The Lambda service on one machine: the Invoke API on loopback, one bootstrap
/// process per concurrent invocation (kept warm for the next), a concurrency limit
/// with a queue, timeouts, and START/END/REPORT lines like CloudWatch's.
final class Emulator: Sendable {
    /// AWS's limit for synchronous request and response payloads.
    static let maxRequestBytes = 6 * 1024 * 1024
    static let maxResponseBytes = 6 * 1024 * 1024

    let functions: [String: FunctionConfig]
    let concurrency: Int
    let logger: Logger
    private let state = Mutex(Pool())
    private let nextSandboxID = Atomic<Int>(0)

    private struct Pool {
        var busy = 0
        var queue: [CheckedContinuation<Void, Never>] = []
        var idle: [String: [Sandbox]] = [:]
        var idleCount: Int { idle.values.reduce(0) { $0 + $1.count } }
        /// Bumped by ``reload()``: environments of an earlier generation are not reused.
        var generation = 0
        /// Each function's bootstrap file as last seen, to log a rebuild once.
        var binaries: [String: FileIdentity] = [:]
    }

    init(functions: [FunctionConfig], concurrency: Int, logger: Logger) {
        self.functions = Dictionary(functions.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        self.concurrency = concurrency
        self.logger = logger
    }

    // MARK: The Invoke API

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        guard request.method == .POST, parts.count == 4, parts[0] == "2015-03-31", parts[1] == "functions", parts[3] == "invocations" else {
            return serviceError(.notFound, "UnknownOperationException", "unknown operation \(request.method) \(request.path)")
        }
        let name = Self.functionName(parts[2].removingPercentEncoding ?? parts[2])
        guard let function = functions[name] else {
            return serviceError(.notFound, "ResourceNotFoundException", "Function not found: \(arn(name))")
        }
        if request.body.readableBytes > Self.maxRequestBytes {
            return serviceError(
                .payloadTooLarge, "RequestTooLargeException",
                "Request must be smaller than \(Self.maxRequestBytes) bytes for the InvokeFunction operation")
        }
        var payload = request.body
        if payload.readableBytes == 0 { payload = ByteBuffer(string: "{}") }
        do {
            _ = try JSONSerialization.jsonObject(with: Data(payload.readableBytesView), options: [.fragmentsAllowed])
        } catch {
            return serviceError(.badRequest, "InvalidRequestContentException", "Could not parse request body into json: \(error)")
        }
        let tail = request.headers.first(name: "X-Amz-Log-Type") == "Tail"
        switch request.headers.first(name: "X-Amz-Invocation-Type") ?? "RequestResponse" {
        case "RequestResponse":
            return await invoke(function, payload: payload, traceID: request.headers.first(name: "X-Amzn-Trace-Id"), tail: tail)
        case "Event":
            Task { _ = await invoke(function, payload: payload, traceID: nil, tail: false) }
            return HTTPResponse(status: .accepted)
        case "DryRun":
            return HTTPResponse(status: .noContent)
        case let other:
            return serviceError(.badRequest, "InvalidParameterValueException", "unknown X-Amz-Invocation-Type \(other)")
        }
    }

    /// "name", "name:qualifier" or "arn:aws:lambda:region:account:function:name[:qualifier]" → "name".
    static func functionName(_ s: String) -> String {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count >= 7, parts[0] == "arn" { return String(parts[6]) }
        return String(parts[0])
    }

    private func arn(_ name: String) -> String { "arn:aws:lambda:us-east-1:000000000000:function:\(name)" }

    private func serviceError(_ status: HTTPResponseStatus, _ type: String, _ message: String) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "x-amzn-ErrorType", value: type)
        headers.add(name: "x-amzn-RequestId", value: UUID().uuidString.lowercased())
        return .json(status, jsonObject(["Type": "User", "message": message]), headers: headers)
    }

    // MARK: Running an invocation

    private func invoke(_ function: FunctionConfig, payload: ByteBuffer, traceID: String?, tail: Bool) async -> HTTPResponse {
        let requestID = UUID().uuidString.lowercased()
        await acquireSlot(requestID: requestID)
        defer { releaseSlot() }

        let deadline = Date().addingTimeInterval(Double(function.timeout.components.seconds) + Double(function.timeout.components.attoseconds) / 1e18)
        let event = Event(
            requestID: requestID, payload: payload, deadlineMs: Int64(deadline.timeIntervalSince1970 * 1000), functionARN: arn(function.name),
            traceID: traceID ?? "Root=1-\(String(Int(Date().timeIntervalSince1970), radix: 16))-\(requestID.replacingOccurrences(of: "-", with: "").prefix(24));Sampled=0")
        emit("START RequestId: \(requestID) Version: $LATEST")
        var cold = false
        var sandbox: Sandbox
        var outcome: Outcome, ran: Duration, log: String
        var attempt = 1
        while true {
            if let warm = checkout(function) {
                sandbox = warm
            } else {
                cold = true
                do {
                    sandbox = try await spawn(function)
                } catch {
                    logger.error("cannot start \(function.executable): \(error)")
                    return functionError(requestID: requestID, "Runtime.InvalidEntrypoint", "RequestId: \(requestID) Error: cannot start \(function.executable): \(error)", log: "")
                }
            }
            let timer = Task { [sandbox] in
                try await Task.sleep(for: function.timeout)
                sandbox.timeOut(requestID: requestID)
            }
            (outcome, ran, log) = await sandbox.invoke(event)
            timer.cancel()
            // A warm process that exited before taking the event (say, a runtime that
            // quits after answering) never ran it: hand it to another environment.
            guard case .undelivered(let reason) = outcome, attempt < Self.deliveryAttempts else { break }
            sandbox.kill()
            logger.info("sandbox \(sandbox.id) of \(function.name) ended (\(reason)) before taking \(requestID); trying another")
            attempt += 1
        }
        let memory = sandbox.maxMemoryMB
        emit("END RequestId: \(requestID)")
        var report = "REPORT RequestId: \(requestID)\tDuration: \(Self.ms(ran)) ms\tBilled Duration: \(Int(ceil(Self.milliseconds(ran)))) ms"
        report += "\tMemory Size: \(function.memoryMB) MB\tMax Memory Used: \(memory) MB"
        if cold, let initDuration = sandbox.initDuration { report += "\tInit Duration: \(Self.ms(initDuration)) ms" }
        emit(report)
        let fullLog = "START RequestId: \(requestID) Version: $LATEST\n" + log + "END RequestId: \(requestID)\n" + report + "\n"

        switch outcome {
        case .response(let body):
            checkin(sandbox)
            var headers = responseHeaders(requestID: requestID, log: tail ? fullLog : nil)
            headers.add(name: "content-type", value: "application/json")
            return HTTPResponse(status: .ok, headers: headers, body: body)
        case .functionError(let type, let body):
            if sandbox.isAlive { checkin(sandbox) } else { sandbox.kill() }
            var headers = responseHeaders(requestID: requestID, log: tail ? fullLog : nil)
            headers.add(name: "X-Amz-Function-Error", value: "Unhandled")
            headers.add(name: "content-type", value: "application/json")
            _ = type
            return HTTPResponse(status: .ok, headers: headers, body: body)
        case .exited(let reason), .undelivered(let reason):
            sandbox.kill()
            logger.warning("bootstrap of \(function.name) (sandbox \(sandbox.id)) exited during \(requestID): \(reason)")
            return functionError(requestID: requestID, "Runtime.ExitError", "RequestId: \(requestID) Error: Runtime exited with error: \(reason)", log: tail ? fullLog : nil)
        case .timedOut:
            sandbox.kill()
            let seconds = String(format: "%.2f", Self.milliseconds(function.timeout) / 1000)
            logger.warning("\(requestID) timed out after \(seconds) s; sandbox \(sandbox.id) killed")
            return functionError(requestID: requestID, "Sandbox.Timedout", "RequestId: \(requestID) Error: Task timed out after \(seconds) seconds", log: tail ? fullLog : nil)
        case .tooLarge(let bytes):
            checkin(sandbox)
            return functionError(
                requestID: requestID, "Function.ResponseSizeTooLarge",
                "Response payload size (\(bytes) bytes) exceeded maximum allowed payload size (\(Self.maxResponseBytes) bytes).", log: tail ? fullLog : nil)
        }
    }

    /// How many environments an invocation is offered to when each ends before taking it.
    static let deliveryAttempts = 3

    private func functionError(requestID: String, _ type: String, _ message: String, log: String?) -> HTTPResponse {
        var headers = responseHeaders(requestID: requestID, log: log)
        headers.add(name: "X-Amz-Function-Error", value: "Unhandled")
        return .json(.ok, jsonObject(["errorType": type, "errorMessage": message]), headers: headers)
    }

    private func responseHeaders(requestID: String, log: String?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "X-Amzn-RequestId", value: requestID)
        headers.add(name: "X-Amz-Executed-Version", value: "$LATEST")
        if let log { headers.add(name: "X-Amz-Log-Result", value: Data(log.utf8.suffix(4096)).base64EncodedString()) }
        return headers
    }

    // MARK: Concurrency and the warm pool

    private func acquireSlot(requestID: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let queued: Int? = state.withLock { pool in
                if pool.busy < concurrency {
                    pool.busy += 1
                    return nil
                }
                pool.queue.append(continuation)
                return pool.queue.count
            }
            if let queued {
                logger.notice("\(requestID) queued: all \(concurrency) concurrent executions are busy (\(queued) waiting); raise --concurrency to run more at once")
            } else {
                continuation.resume()
            }
        }
    }

    private func releaseSlot() {
        let next = state.withLock { pool -> CheckedContinuation<Void, Never>? in
            if pool.queue.isEmpty {
                pool.busy -= 1
                return nil
            }
            return pool.queue.removeFirst()  // the slot passes to the next waiter
        }
        next?.resume()
    }

    /// A warm environment of `function` to reuse, if one runs the current bootstrap: when
    /// the file changed (the function was rebuilt, as `update-function-code` does on AWS),
    /// or after a reload, the warm ones are stopped and new invocations get fresh ones.
    private func checkout(_ function: FunctionConfig) -> Sandbox? {
        let current = FileIdentity(function.executable)
        let (found, stale, rebuilt) = state.withLock { pool -> (Sandbox?, [Sandbox], Bool) in
            var stale: [Sandbox] = []
            let known = pool.binaries[function.name]
            let rebuilt = current != nil && known != nil && current != known
            if let current { pool.binaries[function.name] = current }
            var found: Sandbox?
            while found == nil, let sandbox = pool.idle[function.name]?.popLast() {
                if sandbox.isAlive, sandbox.generation == pool.generation, sandbox.binary == current {
                    found = sandbox
                } else {
                    stale.append(sandbox)
                }
            }
            return (found, stale, rebuilt)
        }
        if rebuilt { logger.notice("\(function.name): \(function.executable) changed; new invocations start fresh environments") }
        stale.forEach { $0.kill() }
        return found
    }

    private func checkin(_ sandbox: Sandbox) {
        guard sandbox.isAlive else { return }
        let current = FileIdentity(sandbox.function.executable)
        let kept = state.withLock { pool in
            guard sandbox.generation == pool.generation, sandbox.binary == current else { return false }
            pool.idle[sandbox.function.name, default: []].append(sandbox)
            return true
        }
        if !kept { sandbox.kill() }
    }

    /// Starts a new generation: warm environments stop, those running an invocation stop
    /// once it ends, and every later invocation gets a fresh process (SIGHUP).
    func reload() {
        let idle = state.withLock { pool -> [Sandbox] in
            pool.generation += 1
            defer { pool.idle = [:] }
            return pool.idle.values.flatMap { $0 }
        }
        logger.notice("reload: \(idle.count) warm environment(s) stopped; new invocations start fresh ones")
        idle.forEach { $0.kill() }
    }

    /// A new environment; an idle one of another function is stopped first when
    /// processes would outnumber the concurrency limit.
    private func spawn(_ function: FunctionConfig) async throws -> Sandbox {
        let evicted = state.withLock { pool -> Sandbox? in
            guard pool.busy + pool.idleCount > concurrency else { return nil }
            for key in pool.idle.keys.sorted() where !(pool.idle[key] ?? []).isEmpty {
                return pool.idle[key]?.removeFirst()
            }
            return nil
        }
        evicted?.kill()
        let id = nextSandboxID.add(1, ordering: .relaxed).newValue
        logger.info("starting sandbox \(id) for \(function.name): \(function.executable)")
        let generation = state.withLock { $0.generation }
        return try await Sandbox.spawn(id: id, function: function, generation: generation) { line in
            Self.write(line)
        }
    }

    /// Kills every idle environment (at shutdown).
    func shutdown() {
        let all = state.withLock { pool in
            defer { pool.idle = [:] }
            return pool.idle.values.flatMap { $0 }
        }
        all.forEach { $0.kill() }
    }

    // MARK: Output

    private func emit(_ line: String) { Self.write(line) }

    private static let stdout = Mutex(())
    static func write(_ line: String) {
        stdout.withLock { _ in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    static func milliseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    static func ms(_ d: Duration) -> String { String(format: "%.2f", milliseconds(d)) }
}
