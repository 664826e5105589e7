import Synchronization

/// The cloud threads a driver runs, grouped in runs, so that one failure ends them all.
///
/// A thread joins its driver's current run when it starts and gets the next number in it
/// (1 for the first). The first thread of a run that fails (after its retries) fails the
/// run: every join of a thread of it that has not ended throws that thread's error at once,
/// whatever order the program joins in, and the servers are told to cancel what the run's
/// other threads are doing (see ``CrucialClient/cancelRun(_:reason:)``). A thread started
/// after that begins a new run, so a long-lived driver goes on with its next job.
package final class CloudRun: Sendable {
    /// Its identity on the wire (random, never 0): cloud threads name it in their handshake.
    package let id: UInt64
    private struct State {
        var threads = 0
        var failure: (thread: Int, error: any Error)?
        var waiting: [ObjectIdentifier: Wakeup] = [:]
    }
    private let state = Mutex(State())

    init() { id = UInt64.random(in: 1...UInt64.max) }

    /// The number of a thread that starts in this run: 1, 2, 3, ...
    package func nextThread() -> Int { state.withLock { $0.threads += 1; return $0.threads } }

    /// The first failure of the run, if it failed.
    package var failure: (thread: Int, error: any Error)? { state.withLock { $0.failure } }

    /// Records that `thread` failed with `error`; true if it is the run's first failure (the
    /// caller then tells the servers). Wakes every join of the run.
    package func fail(thread: Int, _ error: any Error) -> Bool {
        let (first, woken) = state.withLock { s -> (Bool, [Wakeup]) in
            guard s.failure == nil else { return (false, []) }
            s.failure = (thread, error)
            defer { s.waiting = [:] }
            return (true, Array(s.waiting.values))
        }
        for w in woken { w.fire() }
        return first
    }

    /// Wakes `wakeup` when the run fails (at once if it has).
    package func notify(_ wakeup: Wakeup) {
        let failed = state.withLock { s in
            if s.failure == nil { s.waiting[ObjectIdentifier(wakeup)] = wakeup }
            return s.failure != nil
        }
        if failed { wakeup.fire() }
    }

    /// Forgets `wakeup` (its join is over).
    package func forget(_ wakeup: Wakeup) { _ = state.withLock { $0.waiting.removeValue(forKey: ObjectIdentifier(wakeup)) } }
}

/// The outcome of one cloud thread, which its joins wait for.
package final class CloudThreadOutcome<Output: Sendable>: Sendable {
    private struct State {
        var result: Result<Output, any Error>?
        var waiting: [ObjectIdentifier: Wakeup] = [:]
    }
    private let state = Mutex(State())

    package init() {}

    /// The thread's end, once it ended.
    package var result: Result<Output, any Error>? { state.withLock { $0.result } }

    /// The thread ended: wakes its joins.
    package func finish(_ result: Result<Output, any Error>) {
        let woken = state.withLock { s -> [Wakeup] in
            s.result = result
            defer { s.waiting = [:] }
            return Array(s.waiting.values)
        }
        for w in woken { w.fire() }
    }

    /// Waits until the thread ended, or its run failed, or the waiting task is cancelled:
    /// returns the thread's output, or throws its error, the run's first failure (when that
    /// came first, or when the thread itself failed after it), or `CancellationError`.
    package func join(in run: CloudRun) async throws -> Output {
        while true {
            if let failure = run.failure, result.map({ if case .success = $0 { false } else { true } }) ?? true {
                throw failure.error
            }
            if let result { return try result.get() }
            try Task.checkCancellation()
            let wakeup = Wakeup()
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    wakeup.wait(continuation)
                    state.withLock { s in if s.result == nil { s.waiting[ObjectIdentifier(wakeup)] = wakeup } }
                    if result != nil { wakeup.fire() }
                    run.notify(wakeup)
                }
            } onCancel: {
                wakeup.fire()
            }
            _ = state.withLock { $0.waiting.removeValue(forKey: ObjectIdentifier(wakeup)) }
            run.forget(wakeup)
        }
    }
}

/// A continuation resumed once, by whichever comes first of the events it waits for; an
/// event before the continuation is set resumes it as soon as it is.
package final class Wakeup: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Void, Never>)
        case fired
    }
    private let state = Mutex(State.idle)

    package init() {}

    /// Sets the continuation; resumes it at once if an event came already.
    package func wait(_ continuation: CheckedContinuation<Void, Never>) {
        let fired = state.withLock { s in
            if case .fired = s { return true }
            s = .waiting(continuation)
            return false
        }
        if fired { continuation.resume() }
    }

    /// An event: resumes the continuation (once).
    package func fire() {
        let continuation = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer { s = .fired }
            if case .waiting(let c) = s { return c }
            return nil
        }
        continuation?.resume()
    }
}

/// The driver's current run (see ``CloudRun``).
package final class CloudRuns: Sendable {
    private let current = Mutex(CloudRun())

    package init() {}

    /// The run a thread starting now joins.
    package var run: CloudRun { current.withLock { $0 } }

    /// `run` failed: threads started from now on begin a new run.
    package func retire(_ run: CloudRun) {
        current.withLock { if $0 === run { $0 = CloudRun() } }
    }
}
