internal import CrucialClient
internal import FoundationEssentials
internal import NIOCore
internal import NIOHTTP1

/// What the runtime loop needs of the Lambda Runtime API: the next invocation, and a
/// place for each answer. ``RuntimeClient`` speaks it over HTTP; the tests script it.
protocol RuntimeAPI: Sendable {
    /// Waits for the next invocation.
    func next() async throws -> RuntimeClient.Invocation
    /// Posts the function's answer to invocation `requestID`.
    func respond(requestID: String, body: Data) async throws
    /// Posts a function error for invocation `requestID`.
    func fail(requestID: String, error: LambdaErrorBody) async throws
}

/// The Lambda Runtime API (version 2018-06-01) as a custom runtime uses it.
struct RuntimeClient: RuntimeAPI {
    /// `AWS_LAMBDA_RUNTIME_API`: "host:port".
    let api: String

    struct Invocation: Sendable {
        var requestID: String
        var payload: Data
        var deadline: ContinuousClock.Instant?
        var traceID: String?
        var functionARN: String?
    }

    enum Failure: Error, CustomStringConvertible {
        case status(path: String, code: UInt, body: String)
        case missingRequestID

        var description: String {
            switch self {
            case .status(let path, let code, let body): "\(path) answered HTTP \(code): \(body)"
            case .missingRequestID: "the next invocation came without Lambda-Runtime-Aws-Request-Id"
            }
        }
    }

    /// Waits for the next invocation (a long poll, no timeout).
    func next() async throws -> Invocation {
        let path = "/2018-06-01/runtime/invocation/next"
        let response = try await HTTP1Client.shared.execute(.init(url: "http://\(api)\(path)"), timeout: .hours(24 * 365), maxBody: 7 * 1024 * 1024)
        let body = response.body
        guard response.status == .ok else {
            throw Failure.status(path: path, code: response.status.code, body: String(buffer: body))
        }
        guard let requestID = response.headers.first(name: "lambda-runtime-aws-request-id") else { throw Failure.missingRequestID }
        var deadline: ContinuousClock.Instant?
        if let ms = response.headers.first(name: "lambda-runtime-deadline-ms").flatMap(Int64.init) {
            let left = ms - Int64(Date().timeIntervalSince1970 * 1000)
            deadline = .now + .milliseconds(left)
        }
        return Invocation(
            requestID: requestID, payload: Data(body.readableBytesView), deadline: deadline,
            traceID: response.headers.first(name: "lambda-runtime-trace-id"),
            functionARN: response.headers.first(name: "lambda-runtime-invoked-function-arn"))
    }

    /// Posts the function's answer.
    func respond(requestID: String, body: Data) async throws {
        try await post("/2018-06-01/runtime/invocation/\(requestID)/response", body: body, errorType: nil)
    }

    /// Posts a function error in AWS's format.
    func fail(requestID: String, error: LambdaErrorBody) async throws {
        try await post("/2018-06-01/runtime/invocation/\(requestID)/error", body: try JSONEncoder().encode(error), errorType: error.errorType)
    }

    /// Reports a failure before the first invocation; the caller exits after it.
    func initError(type: String, message: String) async {
        let body = (try? JSONEncoder().encode(LambdaErrorBody(errorType: type, errorMessage: message))) ?? Data()
        do { try await post("/2018-06-01/runtime/init/error", body: body, errorType: type) } catch {
            log("crucial: could not report the init error: \(error)")
        }
    }

    private func post(_ path: String, body: Data, errorType: String?) async throws {
        var request = HTTP1Client.Request(method: .POST, url: "http://\(api)\(path)", body: ByteBuffer(bytes: body))
        request.headers.add(name: "content-type", value: "application/json")
        if let errorType { request.headers.add(name: "lambda-runtime-function-error-type", value: errorType) }
        let response = try await HTTP1Client.shared.execute(request, timeout: .seconds(30))
        let answer = response.body
        // 202 Accepted; 400/413 mean this answer was refused (bad id, too large) but the loop can go on.
        guard response.status == .accepted || response.status == .badRequest || response.status == .payloadTooLarge else {
            throw Failure.status(path: path, code: response.status.code, body: String(buffer: answer))
        }
        if response.status != .accepted {
            log("crucial: \(path) answered HTTP \(response.status.code): \(String(buffer: answer))")
        }
    }
}
