import CrucialCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Subprocess
import Synchronization
import SystemPackage

/// A function the emulator can run: its name and its bootstrap executable.
struct FunctionConfig: Sendable {
    var name: String
    var executable: String
    var arguments: [String] = []
    var memoryMB: Int
    var timeout: Duration
    /// The function's own environment variables (`--env`), beside those Lambda defines.
    var environment: [String: String] = [:]
    /// The runtime's identifier, as in `AWS_EXECUTION_ENV=AWS_Lambda_<runtime>`.
    var runtime = "provided.al2023"
}

/// How invocations beyond the concurrency limit and failed asynchronous ones are handled.
struct InvocationPolicy: Sendable {
    /// Synchronous invocations over the limit: answered 429 TooManyRequestsException as
    /// AWS does (true), or queued until an environment is free (false, the default).
    var throttle = false
    /// Attempts after the first for an asynchronous invocation whose function failed (AWS: 2).
    var eventRetries = 2
    /// The wait before the first retry; the second waits twice as long (AWS: about 1 and 2 minutes).
    var eventRetryDelay: Duration = .seconds(60)
}

/// The Lambda service on one machine: the Invoke API on loopback, one bootstrap
/// process per concurrent invocation (kept warm for the next), a concurrency limit
/// with a queue, timeouts, and START/END/REPORT lines like CloudWatch's.
final class Emulator: Sendable {
    /// AWS's limits: synchronous requests, asynchronous requests, responses (6 MiB and 100
    /// bytes, as AWS lets through).
    static let maxRequestBytes = 6 * 1024 * 1024
    static let maxEventBytes = 1024 * 1024
    static let maxResponseBytes = 6 * 1024 * 1024 + 100

    /// The region functions are told they run in (`AWS_REGION` of the emulator, else us-east-1).
    static let region = ProcessInfo.processInfo.environment["AWS_REGION"] ?? ProcessInfo.processInfo.environment["AWS_DEFAULT_REGION"] ?? "us-east-1"

    let functions: [String: FunctionConfig]
    let concurrency: Int
    let policy: InvocationPolicy
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
        /// Every environment started and not known to be dead, busy or idle, by id: all are
        /// stopped at shutdown, so that no process outlives the emulator.
        var live: [Int: Sandbox] = [:]
    }

    init(functions: [FunctionConfig], concurrency: Int, policy: InvocationPolicy = InvocationPolicy(), logger: Logger) {
        self.functions = Dictionary(functions.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        self.concurrency = concurrency
        self.policy = policy
        self.logger = logger
    }

    // MARK: The Invoke API

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        guard request.method == .POST, parts.count == 4, parts[0] == "2015-03-31", parts[1] == "functions", parts[3] == "invocations" else {
            return serviceError(.notFound, "UnknownOperationException", "unknown operation \(request.method) \(request.path)")
        }
        let (name, embedded) = Self.functionName(parts[2].removingPercentEncoding ?? parts[2])
        guard let function = functions[name] else {
            return serviceError(.notFound, "ResourceNotFoundException", "Function not found: \(arn(name))")
        }
        // Only $LATEST exists here: no published versions or aliases.
        if let qualifier = request.query("Qualifier") ?? embedded, qualifier != "$LATEST" {
            return serviceError(.notFound, "ResourceNotFoundException", "Function not found: \(arn(name)):\(qualifier)")
        }
        let type = request.headers.first(name: "X-Amz-Invocation-Type") ?? "RequestResponse"
        guard ["RequestResponse", "Event", "DryRun"].contains(type) else {
            return serviceError(
                .badRequest, "InvalidParameterValueException",
                "1 validation error detected: Value '\(type)' at 'invocationType' failed to satisfy constraint: "
                    + "Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
        }
        let limit = type == "Event" ? Self.maxEventBytes : Self.maxRequestBytes
        if request.bodyBytes > limit {
            return serviceError(
                .payloadTooLarge, "RequestEntityTooLargeException", "Request must be smaller than \(limit) bytes for the InvokeFunction operation")
        }
        var payload = request.body
        if payload.readableBytes == 0 { payload = ByteBuffer(string: "{}") }
        if let reason = Self.jsonError(payload) {
            return serviceError(.badRequest, "InvalidRequestContentException", "Could not parse request body into json: \(reason)")
        }
        var clientContext: String?
        if let encoded = request.headers.first(name: "X-Amz-Client-Context") {
            guard let data = Data(base64Encoded: encoded), encoded.utf8.count <= 3583 else {
                return serviceError(
                    .badRequest, "InvalidRequestContentException",
                    "Client context must be a valid Base64-encoded JSON object of at most 3583 bytes")
            }
            clientContext = String(decoding: data, as: UTF8.self)
        }
        let requestID = UUID().uuidString.lowercased()
        switch type {
        case "Event":
            // Queued; a failed attempt is tried again up to twice, as AWS does.
            Task { await invokeEvent(function, payload: payload, requestID: requestID) }
            var headers = HTTPHeaders()
            headers.add(name: "x-amzn-RequestId", value: requestID)
            return HTTPResponse(status: .accepted, headers: headers)
        case "DryRun":
            var headers = HTTPHeaders()
            headers.add(name: "x-amzn-RequestId", value: requestID)
            return HTTPResponse(status: .noContent, headers: headers)
        default:
            if policy.throttle, !tryAcquireSlot() {
                var error = serviceError(.tooManyRequests, "TooManyRequestsException", "Rate Exceeded.", reason: "ReservedFunctionConcurrentInvocationLimitExceeded")
                error.headers.replaceOrAdd(name: "x-amzn-RequestId", value: requestID)
                return error
            }
            let (response, _) = await invoke(
                function, payload: payload, requestID: requestID, traceID: request.headers.first(name: "X-Amzn-Trace-Id"),
                clientContext: clientContext, tail: request.headers.first(name: "X-Amz-Log-Type") == "Tail", slotHeld: policy.throttle)
            return response
        }
    }

    /// Why `payload` is not JSON, in words (nil when it is).
    static func jsonError(_ payload: ByteBuffer) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: Data(payload.readableBytesView), options: [.fragmentsAllowed])
            return nil
        } catch let error as NSError {
            let detail = (error.userInfo["NSDebugDescription"] as? String).map { ": \($0)" } ?? ""
            return "Could not parse payload into json\(detail)"
        }
    }

    /// An asynchronous invocation: run, and run again after a function error, twice at most.
    private func invokeEvent(_ function: FunctionConfig, payload: ByteBuffer, requestID: String) async {
        var attempt = 0
        while true {
            let (_, failed) = await invoke(function, payload: payload, requestID: requestID, traceID: nil, clientContext: nil, tail: false, slotHeld: false)
            guard failed, attempt < policy.eventRetries else { return }
            attempt += 1
            let delay = policy.eventRetryDelay * (1 << (attempt - 1))
            logger.notice("\(function.name): asynchronous invocation \(requestID) failed; retry \(attempt) of \(policy.eventRetries) in \(delay)")
            try? await Task.sleep(for: delay)
        }
    }

    /// "name", "name:qualifier" or "arn:aws:lambda:region:account:function:name[:qualifier]"
    /// (or the partial "account:function:name[:qualifier]") → the name and the qualifier.
    static func functionName(_ s: String) -> (name: String, qualifier: String?) {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count >= 7, parts[0] == "arn" { return (parts[6], parts.count > 7 ? parts[7] : nil) }
        if parts.count >= 3, parts[1] == "function" { return (parts[2], parts.count > 3 ? parts[3] : nil) }
        return (parts[0], parts.count > 1 ? parts[1] : nil)
    }

    private func arn(_ name: String) -> String { "arn:aws:lambda:\(Self.region):000000000000:function:\(name)" }

    private func serviceError(_ status: HTTPResponseStatus, _ type: String, _ message: String, reason: String? = nil) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "x-amzn-ErrorType", value: type)
        headers.add(name: "x-amzn-RequestId", value: UUID().uuidString.lowercased())
        var body = ["Type": "User", "message": message]
        if let reason { body["Reason"] = reason }
        return .json(status, jsonObject(body), headers: headers)
    }

    // MARK: Running an invocation

    /// Runs one invocation; returns the answer and whether the function failed (an error,
    /// a crash, a timeout: what makes an asynchronous invocation try again). `slotHeld`: the
    /// caller took the concurrency slot already (throttling).
    private func invoke(
        _ function: FunctionConfig, payload: ByteBuffer, requestID: String, traceID: String?, clientContext: String?, tail: Bool, slotHeld: Bool
    ) async -> (HTTPResponse, failed: Bool) {
        if !slotHeld { await acquireSlot(requestID: requestID) }
        defer { releaseSlot() }

        let deadline = Date().addingTimeInterval(Double(function.timeout.components.seconds) + Double(function.timeout.components.attoseconds) / 1e18)
        let event = Event(
            requestID: requestID, payload: payload, deadlineMs: Int64(deadline.timeIntervalSince1970 * 1000), functionARN: arn(function.name),
            clientContext: clientContext, traceID: traceID ?? "Root=1-\(String(Int(Date().timeIntervalSince1970), radix: 16))-\(requestID.replacingOccurrences(of: "-", with: "").prefix(24));Sampled=0")
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
                    return (
                        functionError(
                            requestID: requestID, "Runtime.InvalidEntrypoint", "RequestId: \(requestID) Error: cannot start \(function.executable): \(error)",
                            log: ""), true
                    )
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
            return (HTTPResponse(status: .ok, headers: headers, body: body), false)
        case .functionError(let type, let body):
            if sandbox.isAlive { checkin(sandbox) } else { sandbox.kill() }
            var headers = responseHeaders(requestID: requestID, log: tail ? fullLog : nil)
            headers.add(name: "X-Amz-Function-Error", value: "Unhandled")
            headers.add(name: "content-type", value: "application/json")
            _ = type
            return (HTTPResponse(status: .ok, headers: headers, body: body), true)
        case .exited(let reason), .undelivered(let reason):
            sandbox.kill()
            logger.warning("bootstrap of \(function.name) (sandbox \(sandbox.id)) exited during \(requestID): \(reason)")
            return (
                functionError(requestID: requestID, "Runtime.ExitError", "RequestId: \(requestID) Error: Runtime exited with error: \(reason)", log: tail ? fullLog : nil),
                true
            )
        case .timedOut:
            sandbox.kill()
            let seconds = String(format: "%.2f", Self.milliseconds(function.timeout) / 1000)
            logger.warning("\(requestID) timed out after \(seconds) s; sandbox \(sandbox.id) killed")
            return (
                functionError(requestID: requestID, "Sandbox.Timedout", "RequestId: \(requestID) Error: Task timed out after \(seconds) seconds", log: tail ? fullLog : nil),
                true
            )
        case .tooLarge(let bytes):
            checkin(sandbox)
            return (
                functionError(
                    requestID: requestID, "Function.ResponseSizeTooLarge",
                    "Response payload size (\(bytes) bytes) exceeded maximum allowed payload size (\(Self.maxResponseBytes) bytes).",
                    log: tail ? fullLog : nil), true
            )
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

    /// Takes a concurrency slot if one is free now (throttling: no waiting).
    private func tryAcquireSlot() -> Bool {
        state.withLock { pool in
            guard pool.busy < concurrency, pool.queue.isEmpty else { return false }
            pool.busy += 1
            return true
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
        var attempt = 0
        let sandbox: Sandbox
        while true {
            do {
                sandbox = try await Sandbox.spawn(id: id, function: function, generation: generation) { line in
                    Self.write(line)
                }
                break
            } catch let error as SubprocessError where attempt < Self.busyStartAttempts && Self.isTransient(error) {
                // A bootstrap being rebuilt (the linker still writing it: ETXTBSY) or a
                // moment's shortage of processes (EAGAIN) passes: try again shortly.
                attempt += 1
                logger.notice("sandbox \(id) of \(function.name) did not start (\(error)); attempt \(attempt + 1) in 100 ms")
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        state.withLock { pool in
            pool.live = pool.live.filter { $0.value.isAlive }
            pool.live[id] = sandbox
        }
        return sandbox
    }

    /// How often a start that failed for a passing reason is tried again, 100 ms apart (2 s in all).
    static let busyStartAttempts = 20

    static func isTransient(_ error: SubprocessError) -> Bool {
        error.underlyingError == .textFileBusy || error.underlyingError == .resourceTemporarilyUnavailable
    }

    /// Kills every environment, idle or running an invocation (at shutdown): no worker
    /// process outlives the emulator.
    func shutdown() {
        let all = state.withLock { pool in
            defer { (pool.idle, pool.live) = ([:], [:]) }
            return Array(pool.live.values) + pool.idle.values.flatMap { $0 }
        }
        all.forEach { $0.kill() }
    }

    // MARK: Output

    private func emit(_ line: String) { Self.write(line) }

    private static let stdout = Mutex(())
    static func write(_ line: String) {
        stdout.withLock { _ in
            StandardStreams.out(line + "\n")
        }
    }

    static func milliseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    static func ms(_ d: Duration) -> String { String(format: "%.2f", milliseconds(d)) }
}
