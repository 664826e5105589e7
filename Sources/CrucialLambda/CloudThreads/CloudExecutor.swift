public import CrucialClient
internal import FoundationEssentials

/// Runs many cloud functions at once, as the paper's `ServerlessExecutorService`.
///
/// ```swift
/// let executor = CloudExecutor()
/// let sums = try await executor.invokeAll((0..<8).map { PartialSum(part: $0) })   // [PartialSum.Output]
/// try await executor.invokeIterativeTask(Square(), workers: 4, from: 0, to: 1_000)
/// ```
///
/// The functions of one call form a run with the driver's other cloud threads (see
/// ``CloudThread``): the first that fails (after its retries) is thrown at once, without
/// waiting for the others, and the servers cancel what the others are parked in. With
/// `failsRun: false`, every function runs to its end and the first failure in input order
/// is thrown.
public struct CloudExecutor: Sendable {
    /// Where the threads run; nil: ``CloudInvokers/default``.
    public var invoker: (any CloudInvoker)?
    /// How failed invocations are retried.
    public var retry: RetryPolicy
    /// Whether a function's failure (after its retries) fails the whole run.
    public var failsRun: Bool
    /// The DSO client the threads reach (nil: `CrucialClient.shared`).
    public var client: CrucialClient?

    /// - Parameters: as for ``CloudThread/init(_:invoker:retry:failsRun:client:)``.
    public init(invoker: (any CloudInvoker)? = nil, retry: RetryPolicy = .none, failsRun: Bool = true, client: CrucialClient? = nil) {
        self.invoker = invoker
        self.retry = retry
        self.failsRun = failsRun
        self.client = client
    }

    /// Runs every runnable as its own cloud function and waits for all of them.
    public func invokeAll<R: Runnable>(_ runnables: [R]) async throws {
        CloudFunctions.register(runnable: R.self)
        _ = try await runAll(runnables.map { CloudCall(input: $0, invoker: invoker, retry: retry, failsRun: failsRun, client: client) })
    }

    /// Runs every callable as its own cloud function; returns their outputs in order.
    public func invokeAll<C: Callable>(_ callables: [C]) async throws -> [C.Output] {
        CloudFunctions.register(callable: C.self)
        let answers = try await runAll(callables.map { CloudCall(input: $0, invoker: invoker, retry: retry, failsRun: failsRun, client: client) })
        return try answers.map { data in
            do { return try JSONDecoder().decode(C.Output.self, from: data) } catch {
                throw CloudThreadError.invalidPayload("the answer of \(C.cloudName) does not decode as \(C.Output.self): \(error)")
            }
        }
    }

    /// Runs `task.run(index:)` for every index of `from..<to`, split into `workers`
    /// contiguous shares of near-equal size, one cloud function each (the original
    /// system's `invokeIterativeTask`).
    public func invokeIterativeTask<T: IterativeTask>(_ task: T, workers: Int, from: Int, to: Int) async throws {
        guard workers >= 1 else { throw CloudThreadError.invalidFunction("invokeIterativeTask needs at least 1 worker, got \(workers)") }
        guard from <= to else { throw CloudThreadError.invalidFunction("invokeIterativeTask range \(from)..<\(to) is reversed") }
        try await invokeAll(Self.split(from..<to, into: workers).map { IterationRange(task: task, range: $0) })
    }

    /// `range` cut into at most `parts` contiguous, non-empty pieces whose sizes differ by at most one.
    public static func split(_ range: Range<Int>, into parts: Int) -> [Range<Int>] {
        let n = range.count, parts = max(1, min(parts, n))
        guard n > 0 else { return [] }
        let base = n / parts, extra = n % parts
        var result: [Range<Int>] = []
        var lower = range.lowerBound
        for i in 0..<parts {
            let upper = lower + base + (i < extra ? 1 : 0)
            result.append(lower..<upper)
            lower = upper
        }
        return result
    }

    private func runAll(_ calls: [CloudCall]) async throws -> [Data] {
        let started = calls.map { $0.start() }
        var answers: [Data] = []
        answers.reserveCapacity(started.count)
        for call in started { answers.append(try await call.outcome.join(in: call.run)) }
        return answers
    }
}
