package import CrucialCore

// The synchronizers whose parked is a read (a latch's await, a future's get): their waiters
// are not part of the state, and a retried wait is answered or parked again wherever it lands.

/// `java.util.concurrent.CountDownLatch`: `await` waits until `countDown` has been
/// called `count` times. `await(timeoutMillis)` answers false on timeout.
///
/// `await` changes nothing (a read): its waiters are not part of the state, and a copy
/// elsewhere answers a retried one at once when the count is 0, or parks it again.
package final class CountDownLatch: Synchronizer {
    package typealias Method = LatchMethod
    package static let builtin = BuiltinType.countDownLatch
    var count: Int64
    package var parked = WaitQueue<Void>()

    package init(initial: Value) throws(CrucialError) {
        guard let c = initial.intValue, c >= 0 else {
            throw CrucialError(.badInitialState, "CountDownLatch needs a count ≥ 0, got \(initial)")
        }
        count = c
    }

    package func snapshot() -> Value { .int(count) }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .countDown:
            guard count > 0 else { return .void }
            count -= 1
            if count == 0 {
                for p in parked.removeAll() { call.effects.wake(p.waiter, value: .bool(true)) }
            }
            return .void
        case .getCount:
            return .value(.int(count))
        case .await(let millis):
            let timeout = millis?.duration
            if count == 0 { return .value(.bool(true)) }
            if timeout == .zero { return .value(.bool(false)) }
            try call.admitWaiter(queued: parked.count)
            parked.append(call.waiter)
            return call.park(timeout: timeout)
        }
    }

    package static var partiesAreState: Bool { false }

    package func expired(_ party: (waiter: Waiter, entry: Void), effects: inout Effects) { effects.wake(party.waiter, value: .bool(false)) }
}

/// A value set once; `get` waits until it is set. `get(timeoutMillis)` fails
/// with TIMEOUT when the wait expires; a second `set` fails with ILLEGAL_STATE.
///
/// `get` changes nothing (a read): as a latch's `await`, its waiters are not part of the state.
package final class SharedFuture: Synchronizer {
    package typealias Method = FutureMethod
    package static let builtin = BuiltinType.sharedFuture
    var value: Value?
    package var parked = WaitQueue<Void>()

    package init(initial: Value) throws(CrucialError) {
        // The initial state of a fresh future is `null` (not done); a snapshot of a
        // done future is {"value": v}.
        if case .record(let r) = initial, let v = r["value"] { value = v }
    }

    package func snapshot() -> Value { value.map { .record(["value": $0]) } ?? .null }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .set(let v), .trySet(let v):
            let trying = method.name == .trySet
            guard value == nil else {
                if trying { return .value(.bool(false)) }
                throw CrucialError(.illegalState, "SharedFuture(\"\(call.ref.key)\") is already set")
            }
            value = v
            for p in parked.removeAll() { call.effects.wake(p.waiter, value: v) }
            return trying ? .value(.bool(true)) : .void
        case .get(let millis):
            let timeout = millis?.duration
            if let value { return .value(value) }
            if timeout == .zero { throw CrucialError(.timeout, "SharedFuture(\"\(call.ref.key)\") is not set") }
            try call.admitWaiter(queued: parked.count)
            parked.append(call.waiter)
            return call.park(timeout: timeout)
        case .isDone:
            return .value(.bool(value != nil))
        }
    }

    package static var partiesAreState: Bool { false }

    package func expired(_ party: (waiter: Waiter, entry: Void), effects: inout Effects) {
        effects.wake(party.waiter, error: CrucialError(.timeout, "SharedFuture.get timed out"))
    }
}
