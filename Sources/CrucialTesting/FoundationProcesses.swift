package import CrucialProcess
internal import CrucialCore
package import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// Waiting on children started with Foundation's `Process`, for tests that drive one by
/// hand (a raw socket's server, a CLI run to completion). Here, in what tests link, rather
/// than in CrucialProcess, which applications link: Foundation proper brings ICU's 34 MB
/// of data into every Lambda bootstrap.
extension ServerProcess {
    /// Waits (at most `limit`) for `process` to end: for Foundation to see it, or for the
    /// kernel to show it exited (``ServerProcess/kernelEnding(_:)``: a zombie Foundation has
    /// not reaped yet; on a loaded machine
    /// Foundation noticed an exited child up to a minute late). Not `waitUntilExit()`: on
    /// Linux it waits in a run loop that can miss the exit, and a cooperative thread blocked
    /// there forever starves every task of the process (seen: a hung test suite).
    package static func awaitExit(_ process: Process, within limit: Duration = .seconds(30)) {
        _ = termination(of: process, within: limit)
    }

    /// How `process` ended once it did (at most `limit` from now), or nil: Foundation's
    /// answer when it saw the end, else the kernel's for a zombie (without reaping it). Never Foundation's
    /// `terminationStatus` of a process it thinks runs, which traps (and a trap in a test
    /// bundle takes every test with it).
    package static func termination(of process: Process, within limit: Duration = .seconds(120)) -> Termination? {
        // Polled as one: Foundation may reap the zombie between a look at each.
        let deadline = ContinuousClock.now + limit
        repeat {
            if !process.isRunning {
                return process.terminationReason == .exit ? .exit(process.terminationStatus) : .signal(process.terminationStatus)
            }
            if let ended = kernelEnding(process.processIdentifier).termination { return ended }
            usleep(2_000)
        } while ContinuousClock.now < deadline
        return nil
    }

    /// `process`'s exit status (or the signal that ended it) once it ended, at most `limit`
    /// from now; nil when it still runs then.
    package static func exitStatus(of process: Process, within limit: Duration = .seconds(120)) -> Int32? {
        termination(of: process, within: limit)?.status
    }
}

/// Runs `work` on a thread of its own and waits for it without holding a thread of
/// Swift's cooperative pool (one per core), which a blocking call would take from every
/// other task of the process.
package func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

/// ``offCooperativePool(_:)`` for work that cannot fail.
package func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}
