public import CrucialClient
import Synchronization
internal import Foundation

/// A thread whose body runs as a cloud function, as `CloudThread` does in the
/// Crucial paper: `start()` invokes the function, `join()` waits for it to end and
/// rethrows its failure.
///
/// ```swift
/// let threads = (0..<8).map { _ in CloudThread(PiEstimator(iterations: 10_000_000)) }
/// for t in threads { t.start() }
/// for t in threads { try await t.join() }   // a remote failure is rethrown here
/// ```
///
/// The function reaches the DSO layer through the servers of `client`
/// (`CrucialClient.shared` by default), resolved to IP addresses here.
public final class CloudThread: Sendable {
    /// The ``CloudFunction/cloudName`` of the runnable.
    public let function: String
    private let call: CloudCall
    private let task = Mutex<Task<Data, any Error>?>(nil)

    /// A thread that will run `runnable`.
    /// - Parameters:
    ///   - runnable: its body and input.
    ///   - invoker: where it runs; ``CloudInvokers/default`` when `nil`.
    ///   - retry: how often a failed run is repeated (none by default).
    ///   - client: whose servers the function uses; `CrucialClient.shared` when `nil`.
    public init<R: Runnable>(_ runnable: R, invoker: (any CloudInvoker)? = nil, retry: RetryPolicy = .none, client: CrucialClient? = nil) {
        CloudFunctions.register(runnable: R.self)
        self.function = R.cloudName
        self.call = CloudCall(input: runnable, invoker: invoker, retry: retry, client: client)
    }

    /// Invokes the function and returns at once. A second call does nothing.
    public func start() {
        task.withLock { task in
            guard task == nil else { return }
            let call = self.call
            task = Task { try await call.perform() }
        }
    }

    /// Waits until the function has ended; rethrows its ``CloudFunctionError``, or the
    /// ``CloudThreadError`` that kept it from running.
    public func join() async throws {
        guard let task = task.withLock({ $0 }) else { throw CloudThreadError.notStarted }
        _ = try await task.value
    }

    /// `start()` then `join()`.
    public func run() async throws {
        start()
        try await join()
    }
}

extension Runnable {
    /// Runs this as a cloud thread and waits for it to end: `CloudThread(self).run()`.
    /// The port of a plain program's `group.addTask { try await worker.run() }` changes one
    /// word: `group.addTask { try await worker.runInCloud() }`.
    public func runInCloud(invoker: (any CloudInvoker)? = nil, retry: RetryPolicy = .none, client: CrucialClient? = nil) async throws {
        try await CloudThread(self, invoker: invoker, retry: retry, client: client).run()
    }
}

/// One cloud function run with retries: what a thread or an executor task does.
struct CloudCall: Sendable {
    let function: String
    let invoker: (any CloudInvoker)?
    let retry: RetryPolicy
    let client: CrucialClient?
    let encode: @Sendable (_ endpoint: DSOEndpoint, _ attempt: Int) throws -> Data

    init<F: CloudFunction>(input: F, invoker: (any CloudInvoker)?, retry: RetryPolicy, client: CrucialClient?) {
        self.function = F.cloudName
        self.invoker = invoker
        self.retry = retry
        self.client = client
        self.encode = { endpoint, attempt in
            try InvocationPayload(function: F.cloudName, input: input, crucial: endpoint, attempt: attempt).encode()
        }
    }

    /// Runs the function until it succeeds or the retries are used up; returns its JSON answer.
    func perform() async throws -> Data {
        let invoker = try self.invoker ?? CloudInvokers.default
        let driver = client ?? .shared
        // The function's ephemeral objects join the driver's session: keep it alive from
        // now on, even if the driver itself never creates an object.
        await driver.keepSessionAliveFromNow()
        let endpoint = DSOEndpoint(client: driver)
        var attempt = 1
        while true {
            let payload: Data
            do { payload = try encode(endpoint, attempt) } catch {
                throw CloudThreadError.invalidPayload("input of \(function) does not encode as JSON: \(error)")
            }
            do {
                return try await invoker.invoke(function: function, payload: payload)
            } catch {
                guard attempt <= retry.retries, retry.isRetryable(error) else {
                    if var failure = error as? CloudFunctionError {
                        failure.attempts = attempt
                        throw failure
                    }
                    throw error
                }
                try await Task.sleep(for: retry.delay(beforeRetry: attempt))
                attempt += 1
            }
        }
    }
}
