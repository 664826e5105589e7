public import CrucialClient
import Synchronization
internal import FoundationEssentials

/// A thread whose body runs as a cloud function, as `CloudThread` does in the
/// Crucial paper: `start()` invokes the function, `join()` waits for it to end and
/// rethrows its failure.
///
/// ```swift
/// let threads = (0..<8).map { _ in CloudThread(PiEstimator(iterations: 10_000_000)) }
/// for t in threads { t.start() }
/// for t in threads { try await t.join() }   // the first failure of any thread is thrown here
/// ```
///
/// The threads a driver starts form a run (see `CloudRun` in CrucialClient): the first one that fails
/// (after its retries) fails the run at once, so the joins of the others throw its error
/// without waiting for them, whatever order the program joins in, and the servers cancel
/// the calls the others are parked in ("run cancelled because cloud thread 3 failed: ...").
/// A thread created with `failsRun: false` fails alone: only its own join throws.
///
/// The function reaches the DSO layer through the servers of `client`
/// (`CrucialClient.shared` by default), resolved to IP addresses here.
public final class CloudThread: Sendable {
    /// The ``CloudFunction/cloudName`` of the runnable.
    public let function: String
    private let call: CloudCall
    private let started = Mutex<StartedCall?>(nil)

    /// A thread that will run `runnable`.
    /// - Parameters:
    ///   - runnable: its body and input.
    ///   - invoker: where it runs; ``CloudInvokers/default`` when `nil`.
    ///   - retry: how often a failed run is repeated (none by default).
    ///   - failsRun: whether its failure (after the retries) fails the whole run (the default)
    ///     or only its own join.
    ///   - client: whose servers the function uses; `CrucialClient.shared` when `nil`.
    public init<R: Runnable>(
        _ runnable: R, invoker: (any CloudInvoker)? = nil, retry: RetryPolicy = .none, failsRun: Bool = true, client: CrucialClient? = nil
    ) {
        CloudFunctions.register(runnable: R.self)
        self.function = R.cloudName
        self.call = CloudCall(input: runnable, invoker: invoker, retry: retry, failsRun: failsRun, client: client)
    }

    /// Invokes the function and returns at once. A second call does nothing.
    public func start() {
        started.withLock { started in
            guard started == nil else { return }
            started = call.start()
        }
    }

    /// Its number in its run (1 for the first thread started), once started.
    public var number: Int? { started.withLock { $0?.number } }

    /// Waits until the function has ended; rethrows its ``CloudFunctionError``, or the
    /// ``CloudThreadError`` that kept it from running. Throws at once the first failure of
    /// another thread of its run, and `CancellationError` when the waiting task is cancelled
    /// (the function itself goes on).
    public func join() async throws {
        guard let started = started.withLock({ $0 }) else { throw CloudThreadError.notStarted }
        _ = try await started.outcome.join(in: started.run)
    }

    /// `start()` then `join()`.
    public func run() async throws {
        start()
        try await join()
    }

    /// Starts every thread not started yet and waits until all have ended; throws the first
    /// failure as it happens, whichever thread it is (with `failsRun: false` threads too,
    /// which a join in order would reach only after the ones before it).
    ///
    /// ```swift
    /// try await CloudThread.joinAll(workers.map { CloudThread($0) })
    /// ```
    public static func joinAll(_ threads: [CloudThread]) async throws {
        for t in threads { t.start() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in threads { group.addTask { try await t.join() } }
            // The first error leaves the group, cancelling the other joins (which honour it);
            // waitForAll() would rethrow it only once every thread ended.
            while try await group.next() != nil {}
        }
    }
}

extension Runnable {
    /// Runs this as a cloud thread and waits for it to end: `CloudThread(self).run()`.
    /// The port of a plain program's `group.addTask { try await worker.run() }` changes one
    /// word: `group.addTask { try await worker.runInCloud() }`.
    public func runInCloud(
        invoker: (any CloudInvoker)? = nil, retry: RetryPolicy = .none, failsRun: Bool = true, client: CrucialClient? = nil
    ) async throws {
        try await CloudThread(self, invoker: invoker, retry: retry, failsRun: failsRun, client: client).run()
    }
}

/// A started cloud function: its run, its number in it, and its outcome.
struct StartedCall: Sendable {
    let run: CloudRun
    let number: Int
    let outcome: CloudThreadOutcome<Data>
}

/// One cloud function run with retries: what a thread or an executor task does.
struct CloudCall: Sendable {
    let function: String
    let invoker: (any CloudInvoker)?
    let retry: RetryPolicy
    let failsRun: Bool
    let client: CrucialClient?
    let encode: @Sendable (_ endpoint: DSOEndpoint, _ attempt: Int) throws -> Data

    init<F: CloudFunction>(input: F, invoker: (any CloudInvoker)?, retry: RetryPolicy, failsRun: Bool, client: CrucialClient?) {
        self.function = F.cloudName
        self.invoker = invoker
        self.retry = retry
        self.failsRun = failsRun
        self.client = client
        self.encode = { endpoint, attempt in
            try InvocationPayload(function: F.cloudName, input: input, crucial: endpoint, attempt: attempt).encode()
        }
    }

    /// Starts the function in its driver's current run; its failure (after the retries) fails
    /// the run, unless `failsRun` is false.
    func start() -> StartedCall {
        let driver = client ?? .shared
        let run = driver.cloudRuns.run
        let number = run.nextThread()
        let outcome = CloudThreadOutcome<Data>()
        Task {
            do {
                outcome.finish(.success(try await perform(driver: driver, run: run.id)))
            } catch {
                var failure: any Error = error
                if var e = error as? CloudFunctionError {
                    e.thread = number
                    failure = e
                }
                if failsRun, run.fail(thread: number, failure) {
                    driver.cloudRuns.retire(run)
                    // The others' calls end with CANCELLED; their failures come after this one.
                    let reason = failure is CloudFunctionError ? "\(failure)" : "cloud thread \(number) (\(function)) could not run: \(failure)"
                    _ = try? await driver.cancelRun(run.id, reason: reason)
                }
                outcome.finish(.failure(failure))
            }
        }
        return StartedCall(run: run, number: number, outcome: outcome)
    }

    /// Runs the function until it succeeds or the retries are used up; returns its JSON answer.
    private func perform(driver: CrucialClient, run: UInt64) async throws -> Data {
        let invoker = try self.invoker ?? CloudInvokers.default
        // A wrong address or token is the driver's to report, before any function runs.
        try await driver.checkServers()
        // The function's ephemeral objects join the driver's session: keep it alive from
        // now on, even if the driver itself never creates an object.
        await driver.keepSessionAliveFromNow()
        var endpoint = DSOEndpoint(client: driver)
        endpoint.run = String(run, radix: 16)
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
