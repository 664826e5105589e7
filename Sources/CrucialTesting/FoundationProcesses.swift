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
    /// kernel to show it exited (a zombie Foundation has not reaped yet: on a loaded machine
    /// Foundation noticed an exited child up to a minute late). Not `waitUntilExit()`: on
    /// Linux it waits in a run loop that can miss the exit, and a cooperative thread blocked
    /// there forever starves every task of the process (seen: a hung test suite).
    package static func awaitExit(_ process: Process, within limit: Duration = .seconds(30)) {
        let deadline = ContinuousClock.now + limit
        while process.isRunning, exitedChild(process.processIdentifier) == nil, ContinuousClock.now < deadline { usleep(2_000) }
    }

    /// How `process` ended once it did (at most `limit` from now), or nil: Foundation's
    /// answer when it saw the end, else the kernel's for a zombie. Never Foundation's
    /// `terminationStatus` of a process it thinks runs, which traps (and a trap in a test
    /// bundle takes every test with it).
    package static func termination(of process: Process, within limit: Duration = .seconds(120)) -> Termination? {
        // Polled as one: Foundation may reap the zombie between a look at each.
        let deadline = ContinuousClock.now + limit
        repeat {
            if !process.isRunning {
                return process.terminationReason == .exit ? .exit(process.terminationStatus) : .signal(process.terminationStatus)
            }
            if let ended = exitedChild(process.processIdentifier) { return ended }
            usleep(2_000)
        } while ContinuousClock.now < deadline
        return nil
    }

    /// `process`'s exit status (or the signal that ended it) once it ended, at most `limit`
    /// from now; nil when it still runs then.
    package static func exitStatus(of process: Process, within limit: Duration = .seconds(120)) -> Int32? {
        switch termination(of: process, within: limit) {
        case .exit(let status), .signal(let status): return status
        case nil: return nil
        }
    }

    /// How the child `pid` ended when the kernel shows it exited but not yet reaped (state
    /// `Z` in `/proc/PID/stat`, whose 52nd field is waitpid's status word); nil otherwise.
    package static func exitedChild(_ pid: Int32) -> Termination? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3); field 52 (exit_code) is fields[49].
        guard fields.first == "Z", fields.count > 49, let word = Int32(fields[49].trimmingWhitespace()) else { return nil }
        let signal = word & 0x7f
        return signal == 0 ? .exit((word >> 8) & 0xff) : .signal(signal)
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
