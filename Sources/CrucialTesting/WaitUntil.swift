internal import CrucialCore

/// Polls `condition` every 10 ms until it holds; throws a TIMEOUT `CrucialError` when it
/// did not within `limit`. For a test that waits on something asynchronous (a parked call
/// to arrive, a lease to lapse): keep `limit` generous, a bound that only catches a
/// condition never reached on a loaded machine, never the thing a test measures.
///
/// ```swift
/// try await waitUntil { try await barrier.numberWaiting() == 2 }
/// ```
public func waitUntil(within limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw CrucialError(.timeout, "the condition was not reached within \(limit)")
}
