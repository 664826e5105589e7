package import CrucialCore
package import NIOCore

/// The requests of one connection that wait for their answers, by request id, and the
/// bound on calls among them (``CrucialError/Code/pendingLimit``). Only `Invoke`s count:
/// a session's keep-alives must go whatever waits. Confined to the connection's loop.
package struct PendingRequests {
    private var waiting: [UInt64: (promise: EventLoopPromise<Frame>, isCall: Bool)] = [:]
    private var calls = 0
    /// Calls that may wait at once.
    package let limit: Int

    package init(limit: Int) { self.limit = limit }

    package var isEmpty: Bool { waiting.isEmpty }

    /// Why `frame` may not be sent to `address` now, or nil when it may.
    package func refusal(of frame: Frame, to address: String) -> CrucialError? {
        guard case .invoke = frame, calls >= limit else { return nil }
        return CrucialError(
            .pendingLimit,
            "\(limit) calls already wait for answers on the connection to \(address), its limit (Configuration.maxPendingCalls): "
                + "the server is slow or the program makes calls faster than they are answered; await some before making more, or raise the limit")
    }

    /// Remembers `promise` as the one the answer to request `id` (`frame`) completes.
    package mutating func add(_ id: UInt64, _ frame: Frame, _ promise: EventLoopPromise<Frame>) {
        let isCall = if case .invoke = frame { true } else { false }
        waiting[id] = (promise, isCall)
        if isCall { calls += 1 }
    }

    /// The promise waiting for the answer to request `id`, no longer waiting.
    package mutating func remove(_ id: UInt64) -> EventLoopPromise<Frame>? {
        guard let found = waiting.removeValue(forKey: id) else { return nil }
        if found.isCall { calls -= 1 }
        return found.promise
    }

    /// Every waiting promise, none waiting any more (the connection closed).
    package mutating func removeAll() -> [EventLoopPromise<Frame>] {
        defer {
            waiting.removeAll()
            calls = 0
        }
        return waiting.values.map(\.promise)
    }
}
