package import CrucialCore
package import NIOCore

/// The requests of one connection that wait for their answers, by request id, and the
/// bound on calls among them (``CrucialError/Code/pendingLimit``). Only `Invoke`s count:
/// a session's keep-alives must go whatever waits. Confined to the connection's loop.
package struct PendingRequests {
    private var waiting: [UInt64: (answer: AnswerSink, isCall: Bool)] = [:]
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

    /// Remembers `answer` as what the answer to request `id` (`frame`) completes.
    package mutating func add(_ id: UInt64, _ frame: Frame, _ answer: AnswerSink) {
        let isCall = if case .invoke = frame { true } else { false }
        waiting[id] = (answer, isCall)
        if isCall { calls += 1 }
    }

    /// What waits for the answer to request `id`, no longer waiting.
    package mutating func remove(_ id: UInt64) -> AnswerSink? {
        guard let found = waiting.removeValue(forKey: id) else { return nil }
        if found.isCall { calls -= 1 }
        return found.answer
    }

    /// Everything waiting, none waiting any more (the connection closed).
    package mutating func removeAll() -> [AnswerSink] {
        defer {
            waiting.removeAll()
            calls = 0
        }
        return waiting.values.map(\.answer)
    }
}

/// Where the answer to a request goes: a promise (callers that want a future: pipelines,
/// peer links), or the continuation of the task that awaits it (``FrameConnection/request(_:id:)``:
/// no promise, future and callback per call). Completed exactly once.
package enum AnswerSink: Sendable {
    case promise(EventLoopPromise<Frame>)
    case continuation(UnsafeContinuation<Frame, any Error>)

    package func succeed(_ frame: Frame) {
        switch self {
        case .promise(let p): p.succeed(frame)
        case .continuation(let c): c.resume(returning: frame)
        }
    }

    package func fail(_ error: any Error) {
        switch self {
        case .promise(let p): p.fail(error)
        case .continuation(let c): c.resume(throwing: error)
        }
    }
}
