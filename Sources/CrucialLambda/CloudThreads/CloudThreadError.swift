internal import CrucialClient
/// A cloud function ran and failed: the error its code threw, with the remote
/// Swift type and message, or the platform's own (a timeout, a crash).
///
/// ```swift
/// do { try await thread.join() }
/// catch let e as CloudFunctionError where e.errorType == "Sandbox.Timedout" { ... }
/// ```
public struct CloudFunctionError: Error, Sendable, CustomStringConvertible {
    /// The ``CloudFunction/cloudName`` of what ran.
    public var function: String
    /// The remote error's type: a Swift type name (`"MyApp.ParseError"`) for errors
    /// user code threw, or Lambda's (`"Sandbox.Timedout"`, `"Runtime.ExitError"`).
    public var errorType: String
    /// The error's message.
    public var errorMessage: String
    /// Lambda's `X-Amz-Function-Error`: `"Unhandled"` or `"Handled"`.
    public var kind: String
    /// The request id of the last attempt, when the platform gave one.
    public var requestID: String?
    /// How many times the function ran.
    public var attempts: Int
    /// The end of the function's log (the last 4 KB Lambda returns), when asked for.
    public var log: String?
    /// The number of the cloud thread that failed in its run (1 for the first started), when
    /// it ran as one.
    public var thread: Int?

    /// A failure of `function` as the platform reported it.
    public init(function: String, errorType: String, errorMessage: String, kind: String = "Unhandled", requestID: String? = nil, attempts: Int = 1) {
        self.function = function
        self.errorType = errorType
        self.errorMessage = errorMessage
        self.kind = kind
        self.requestID = requestID
        self.attempts = attempts
    }

    /// The failure as one line: thread, function, error type, message, and for a crash the
    /// line that says why (``crashReason``).
    public var description: String {
        let tries = attempts > 1 ? " after \(attempts) attempts" : ""
        let what = thread.map { "cloud thread \($0) (\(function))" } ?? "cloud function \(function)"
        let why = crashReason.map { "; \($0)" } ?? ""
        return "\(what) failed\(tries): \(errorType): \(errorMessage)\(why)"
    }

    /// Why a function that crashed did (the platform says only "Runtime exited with error:
    /// signal: ..."): the last line of its ``log`` in which the Swift runtime said so
    /// (`main.swift:12: Fatal error: Unexpectedly found nil ...`, a failed precondition or
    /// assertion); nil when it did not crash or its log does not have the line.
    public var crashReason: String? {
        guard errorType == "Runtime.ExitError", let log else { return nil }
        let markers = ["Fatal error:", "Precondition failed", "Assertion failed", "fatal error:"]
        return log.split(separator: "\n").last { line in markers.contains { line.contains($0) } }
            .map { $0.trimmingWhitespace() }
    }
}

/// A cloud thread could not be run at all: bad configuration, an unreachable or
/// refusing Lambda endpoint, a payload that does not encode.
public enum CloudThreadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The type cannot be a cloud function, or is unknown where it should run.
    case invalidFunction(String)
    /// The input or the answer does not encode or decode.
    case invalidPayload(String)
    /// ``CloudThread/join()`` before ``CloudThread/start()``.
    case notStarted
    /// The invoker's settings are incomplete or wrong (endpoint, credentials, region).
    case configuration(String)
    /// The Invoke API refused the call (`status` is the HTTP status, `type` AWS's error type).
    case invocationRefused(status: Int, type: String, message: String)
    /// The Invoke API could not be reached, or broke off.
    case unreachable(String)

    /// The failure as one line: function, error type, message.
    public var description: String {
        switch self {
        case .invalidFunction(let m): "invalid cloud function: \(m)"
        case .invalidPayload(let m): "invalid payload: \(m)"
        case .notStarted: "join() on a cloud thread that was never started"
        case .configuration(let m): "cloud thread configuration: \(m)"
        case .invocationRefused(let status, let type, let message): "Lambda refused the invocation (HTTP \(status) \(type)): \(message)"
        case .unreachable(let m): "Lambda endpoint unreachable: \(m)"
        }
    }
}
