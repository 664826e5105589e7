public import CrucialClient
internal import Foundation

/// Runs many cloud functions at once, as the paper's `ServerlessExecutorService`.
///
/// ```swift
/// let executor = CloudExecutor()
/// let sums = try await executor.invokeAll((0..<8).map { PartialSum(part: $0) })   // [PartialSum.Output]
/// try await executor.invokeIterativeTask(Square(), workers: 4, from: 0, to: 1_000)
/// ```
///
/// Every function runs to its end, even when another fails; the first failure (in
/// input order) is then thrown.
public struct CloudExecutor: Sendable {
    /// Where the threads run; nil: ``CloudInvokers/default``.
    public var invoker: (any CloudInvoker)?
    /// How failed invocations are retried.
    public var retry: RetryPolicy
    /// The DSO client the threads reach (nil: `CrucialClient.shared`).
    public var client: CrucialClient?

    /// - Parameters: as for ``CloudThread/init(_:invoker:retry:client:)``.
    public init(invoker: (any CloudInvoker)? = nil, retry: RetryPolicy = .none, client: CrucialClient? = nil) {
        self.invoker = invoker
        self.retry = retry
        self.client = client
    }

    /// Runs every runnable as its own cloud function and waits for all of them.
    public func invokeAll<R: Runnable>(_ runnables: [R]) async throws {
        CloudFunctions.register(runnable: R.self)
        _ = try await runAll(runnables.map { CloudCall(input: $0, invoker: invoker, retry: retry, client: client) })
    }

    /// Runs every callable as its own cloud function; returns their outputs in order.
    public func invokeAll<C: Callable>(_ callables: [C]) async throws -> [C.Output] {
        CloudFunctions.register(callable: C.self)
        let answers = try await runAll(callables.map { CloudCall(input: $0, invoker: invoker, retry: retry, client: client) })
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
        let results = await withTaskGroup(of: (Int, Result<Data, any Error>).self) { group in
            for (i, call) in calls.enumerated() {
                group.addTask {
                    // Assign, then return: Swift 6.3.1 -O miscompiles
                    // `do { return (i, .success(try await …)) } catch { return (i, .failure(error)) }`
                    // in a child task (every child returned i = 0); see tools/bench `lambda`.
                    let result: Result<Data, any Error>
                    do { result = .success(try await call.perform()) } catch { result = .failure(error) }
                    return (i, result)
                }
            }
            var results = [Result<Data, any Error>?](repeating: nil, count: calls.count)
            for await (i, r) in group { results[i] = r }
            return results
        }
        return try results.enumerated().map { i, result in
            guard let result else { throw CloudThreadError.invalidPayload("cloud function \(i) of \(calls.count) returned no result") }
            return try result.get()
        }
    }
}
