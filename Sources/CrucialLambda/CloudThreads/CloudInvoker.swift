public import CrucialClient
import Synchronization
public import FoundationEssentials

/// How often a failed cloud function is run again, and how long to wait in between.
///
/// A retried function runs with the same input; shared objects keep whatever its
/// earlier attempt wrote, so make re-execution sound (README, "Retries and idempotence").
public struct RetryPolicy: Sendable, Equatable {
    /// Runs after the first one; 0 reports the first failure.
    public var retries: Int
    /// The wait before the first retry; each next one waits twice as long, at most ``maxBackoff``.
    public var backoff: Duration
    /// The longest wait between two attempts.
    public var maxBackoff: Duration

    /// Retries `retries` times, waiting `backoff`, then twice as long each time, at most `maxBackoff`.
    public init(retries: Int, backoff: Duration = .milliseconds(200), maxBackoff: Duration = .seconds(10)) {
        self.retries = max(0, retries)
        self.backoff = backoff
        self.maxBackoff = maxBackoff
    }

    /// Report the first failure.
    public static let none = RetryPolicy(retries: 0)

    /// Whether `error` may go away when the function runs again: function errors
    /// and an unreachable endpoint, not configuration or payload mistakes.
    func isRetryable(_ error: any Error) -> Bool {
        switch error {
        case is CloudFunctionError: return true
        case let e as CloudThreadError:
            if case .unreachable = e { return true }
            if case .invocationRefused(let status, _, _) = e { return status == 429 || status >= 500 }
            return false
        default: return false
        }
    }

    /// The wait before retry number `n` (1 for the first).
    public func delay(beforeRetry n: Int) -> Duration {
        var d = backoff
        for _ in 1..<max(1, n) where d < maxBackoff { d *= 2 }
        return min(d, maxBackoff)
    }
}

/// The invoker cloud threads use when none is given: the invoker of the `CrucialContext` in
/// effect.
public enum CloudInvokers {
    /// The invoker of the `CrucialContext` in effect (the task's, else the process's); the
    /// process's is made on first use from the environment: `CRUCIAL_INVOKER=in-process`
    /// runs functions in this process; otherwise a ``LambdaInvoker`` configured by
    /// ``LambdaInvoker/Configuration/fromEnvironment()`` (the local emulator at
    /// `http://127.0.0.1:7421` unless `CRUCIAL_LAMBDA_ENDPOINT` says otherwise).
    public static var `default`: any CloudInvoker {
        get throws(CloudThreadError) {
            if let invoker = CrucialContext.currentInvoker { return invoker }
            let made: any CloudInvoker =
                if environment("CRUCIAL_INVOKER") == "in-process" { InProcessInvoker() } else { LambdaInvoker(configuration: try .fromEnvironment()) }
            return CrucialContext.processInvoker(orSet: made)
        }
    }

    /// Makes `invoker` the process's (`CrucialContext.setProcessInvoker(_:)`), the default
    /// for threads and executors created without one outside a task's own context.
    public static func useDefault(_ invoker: any CloudInvoker) { CrucialContext.setProcessInvoker(invoker) }
}

/// Runs cloud functions as tasks of this process, through the same encode, look-up
/// and decode path as a Lambda bootstrap: what passes here has the same `Codable`
/// behaviour remotely. For tests and debugging.
///
/// Shared objects the function creates without a `client:` use the invocation's
/// DSO endpoint, as they would in a Lambda bootstrap.
public struct InProcessInvoker: CloudInvoker {
    /// What carries the functions' connections (tests: CrucialServer's in-process transport).
    private let transport: (any Transport)?

    /// An invoker running functions in this process.
    public init() { transport = nil }

    /// An invoker whose functions reach the DSO layer through `transport`.
    package init(transport: any Transport) { self.transport = transport }

    /// One client per DSO endpoint (a driver's run has one), the 32 newest kept: older runs
    /// are over, and their clients closed.
    private static let clients = Mutex<(byEndpoint: [DSOEndpoint: CrucialClient], order: [DSOEndpoint])>(([:], []))

    /// Runs `function` on `payload` in this process and returns its JSON answer.
    public func invoke(function: String, payload: Data) async throws -> Data {
        let requestID = "local-" + UUID().uuidString.lowercased()
        var client: CrucialClient?
        if let endpoint = (try? PayloadHeader.decode(payload))?.crucial, !endpoint.servers.isEmpty {
            let (c, old) = Self.clients.withLock { clients -> (CrucialClient, [CrucialClient]) in
                if let c = clients.byEndpoint[endpoint] { return (c, []) }
                let c = endpoint.makeClient(transport: transport)
                clients.byEndpoint[endpoint] = c
                clients.order.append(endpoint)
                let gone = clients.order.count > 32 ? clients.order.prefix(clients.order.count - 32) : []
                clients.order.removeFirst(gone.count)
                return (c, gone.compactMap { clients.byEndpoint.removeValue(forKey: $0) })
            }
            for o in old { o.close() }
            client = c
        }
        let execute = { await CloudFunctions.execute(payload: payload, requestID: requestID, deadline: nil) }
        let result = if let client { await CrucialContext(client: client).run(execute) } else { await execute() }
        switch result {
        case .success(let answer): return answer
        case .failure(let body):
            throw CloudFunctionError(
                function: function, errorType: body.errorType ?? "Unknown", errorMessage: body.errorMessage ?? "",
                kind: "Handled", requestID: requestID)
        }
    }
}

extension CloudFunctions {
    /// Runs one invocation of a registered function: the bootstrap's and the
    /// in-process invoker's common path. Never throws: failures become Lambda error bodies.
    package static func execute(
        payload: Data, requestID: String, deadline: ContinuousClock.Instant?
    ) async -> Result<Data, LambdaErrorBody> {
        let header: PayloadHeader
        do { header = try PayloadHeader.decode(payload) } catch {
            return .failure(LambdaErrorBody(errorType: "Crucial.InvalidPayload", errorMessage: error.description))
        }
        guard let handler = handler(for: header) else {
            let known = names.isEmpty ? "none" : names.joined(separator: ", ")
            return .failure(LambdaErrorBody(
                errorType: "Crucial.UnknownFunction",
                errorMessage: "no cloud function \"\(header.function)\" here (registered: \(known); "
                    + (header.swiftType.map { "no type \($0) in this executable" } ?? "the payload names no swiftType")
                    + "); build the bootstrap from the program that starts the thread, or pass its type to "
                    + "CrucialLambda.serveIfLambda(registering:)"))
        }
        let invocation = CloudInvocation(requestID: requestID, attempt: header.attempt ?? 1, deadline: deadline)
        do {
            return .success(try await handler(payload, invocation))
        } catch let error as DecodingError {
            return .failure(LambdaErrorBody(errorType: "Crucial.InvalidPayload", errorMessage: "input of \(header.function) does not decode: \(error)"))
        } catch {
            return .failure(LambdaErrorBody(describing: error))
        }
    }
}
