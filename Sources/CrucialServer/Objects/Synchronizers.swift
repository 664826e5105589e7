package import CrucialCore

/// `java.util.concurrent.CyclicBarrier`: `parties` callers meet, then the barrier
/// opens and a new generation starts.
///
/// `await` answers with the arrival index (`parties - 1` for the first to arrive,
/// 0 for the last), as in Java. A timed-out `await` breaks the barrier (the
/// others get BROKEN_BARRIER) as in Java; `reset` breaks the current generation
/// and starts a fresh one. A waiter whose connection dies is simply withdrawn —
/// unlike a Java thread's interrupt it does not break the barrier, because a
/// retried cloud thread will come back and take its place.
package final class CyclicBarrier: BuiltinObject {
    package typealias Method = BarrierMethod
    package static let builtin = BuiltinType.cyclicBarrier
    let parties: Int
    var waiting: [Waiter] = []
    var generation: Int64 = 0
    var broken = false

    package init(initial: Value) throws(CrucialError) {
        guard let p = initial.intValue, p >= 1, p <= Int64(Int32.max) else {
            throw CrucialError(.badInitialState, "CyclicBarrier needs a number of parties ≥ 1, got \(initial)")
        }
        parties = Int(p)
    }

    package func snapshot() -> Value { .int(Int64(parties)) }

    package func checkCompatible(initial: Value) throws(CrucialError) {
        guard initial.intValue == Int64(parties) else {
            throw CrucialError(
                .badInitialState, "CyclicBarrier exists with \(parties) parties; this proxy asks for \(initial)")
        }
    }

    package var waiterCount: Int { waiting.count }

    private func breakBarrier(_ effects: inout Effects, except skip: WaiterID? = nil) {
        broken = true
        let error = CrucialError(.brokenBarrier, "CyclicBarrier was broken while waiting (generation \(generation))")
        for w in waiting where w.id != skip { effects.wake(w, error: error) }
        waiting.removeAll()
    }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .await:
            let timeout = try call.timeout(0)
            guard !broken else { throw CrucialError(.brokenBarrier, "CyclicBarrier is broken; call reset()") }
            if waiting.count + 1 == parties {
                for (n, w) in waiting.enumerated() { call.effects.wake(w, value: .int(Int64(parties - 1 - n))) }
                waiting.removeAll()
                generation += 1
                return .value(.int(0))
            }
            if timeout == .zero {
                breakBarrier(&call.effects)
                throw CrucialError(.timeout, "CyclicBarrier.await timed out")
            }
            try call.admitWaiter(queued: waiting.count)
            waiting.append(call.waiter)
            return call.park(timeout: timeout)
        case .reset:
            if !waiting.isEmpty { breakBarrier(&call.effects) }
            broken = false
            generation += 1
            return .void
        case .isBroken:
            return .value(.bool(broken))
        case .getParties:
            return .value(.int(Int64(parties)))
        case .getNumberWaiting:
            return .value(.int(Int64(waiting.count)))
        }
    }

    package func cancelWaiters(of connection: ConnectionID, effects: inout Effects) {
        waiting.removeAll { $0.id.connection == connection }
    }

    package func timeout(_ id: WaiterID, effects: inout Effects) {
        guard let w = waiting.first(where: { $0.id == id }) else { return }
        effects.wake(w, error: CrucialError(.timeout, "CyclicBarrier.await timed out"))
        breakBarrier(&effects, except: id)
    }

    package func drainWaiters(effects: inout Effects, error: CrucialError) {
        for w in waiting { effects.wake(w, error: error) }
        waiting.removeAll()
    }
}

/// `java.util.concurrent.Semaphore` (fair): `acquire(n)` waits in FIFO order
/// until n permits are free; `tryAcquire(n, timeoutMillis?)` answers false
/// instead of waiting past its timeout.
///
/// A permit belongs to the client that acquired it, as in Hazelcast's CP semaphore: when
/// that client is gone (its keep-alive lapsed, or its application session ended) its
/// permits are released, so a crashed cloud thread cannot leave the others waiting
/// forever. `release(n)` gives back the caller's own permits first and adds any more
/// as new ones, so signalling (one thread releases, another acquires) works as in Java.
/// Created with `ownerless: true`, permits belong to nobody (java.util.concurrent's
/// semantics: a dead client's permits are never given back). A *waiting* acquire whose
/// connection dies is withdrawn and never takes permits.
///
/// Initial state: the number of permits, or `{permits, ownerless}`; the state as a
/// whole (moved between members, kept in snapshots) adds `holders`, a list of
/// `[client, permits]` pairs.
package final class Semaphore: BuiltinObject {
    package typealias Method = SemaphoreMethod
    package static let builtin = BuiltinType.semaphore
    var permits: Int64
    let ownerless: Bool
    /// Permits held per client (never for an ownerless semaphore).
    var holders: [UInt64: Int64] = [:]
    /// Clients whose permits were taken back because they looked dead (their keep-alive
    /// lease lapsed), oldest first, until they acquire again: a release from one that holds
    /// nothing is refused, else a client that was only slow would add a permit that never
    /// existed. At most ``reclaimedLimit``.
    var reclaimed: [UInt64] = []
    static let reclaimedLimit = 1024
    /// Parked acquires, FIFO: (waiter, permits wanted, answer with a bool?).
    var queue: [(waiter: Waiter, wanted: Int64, boolean: Bool)] = []

    package init(initial: Value) throws(CrucialError) {
        if let p = initial.intValue {
            permits = p
            ownerless = false
            return
        }
        guard case .record(let r) = initial, let p = r["permits"]?.intValue else {
            throw CrucialError(
                .badInitialState, "Semaphore initial state must be a number of permits or {permits, ownerless}, got \(initial.kindName)")
        }
        permits = p
        ownerless = r["ownerless"]?.boolValue ?? false
        for pair in r["holders"]?.listValue ?? [] {
            guard case .list(let kv) = pair, kv.count == 2, let client = kv[0].intValue, let n = kv[1].intValue, n > 0 else {
                throw CrucialError(.badInitialState, "Semaphore holders must be [client, permits] pairs, got \(pair)")
            }
            holders[UInt64(bitPattern: client), default: 0] += n
        }
        for client in r["reclaimed"]?.listValue ?? [] {
            guard let id = client.intValue else { throw CrucialError(.badInitialState, "Semaphore reclaimed must be client ids, got \(client)") }
            reclaimed.append(UInt64(bitPattern: id))
        }
    }

    package func snapshot() -> Value {
        guard ownerless || !holders.isEmpty || !reclaimed.isEmpty else { return .int(permits) }
        var r: [String: Value] = ["permits": .int(permits)]
        if ownerless { r["ownerless"] = .bool(true) }
        if !holders.isEmpty {
            r["holders"] = .list(holders.sorted { $0.key < $1.key }.map { .list([.int(Int64(bitPattern: $0.key)), .int($0.value)]) })
        }
        if !reclaimed.isEmpty { r["reclaimed"] = .list(reclaimed.map { .int(Int64(bitPattern: $0)) }) }
        return .record(r)
    }

    package func checkCompatible(initial: Value) throws(CrucialError) {
        let wantsOwnerless: Bool
        if case .record(let r) = initial { wantsOwnerless = r["ownerless"]?.boolValue ?? false } else { wantsOwnerless = false }
        guard wantsOwnerless == ownerless else {
            throw CrucialError(
                .badInitialState,
                "Semaphore exists \(ownerless ? "with" : "without") ownerless permits; this proxy asks for \(wantsOwnerless ? "ownerless" : "owned") ones")
        }
    }

    package var waiterCount: Int { queue.count }
    package var holdingClients: [UInt64] { Array(holders.keys) }

    private func wanted(_ call: Call, _ i: Int) throws(CrucialError) -> Int64 {
        guard i < call.args.count else { return 1 }
        let n = try call.int(i)
        guard n >= 0 else { throw .badArguments("Semaphore.\(call.method): permits must not be negative, got \(n)") }
        return n
    }

    /// `n` permits now belong to `waiter`'s client.
    private func take(_ n: Int64, for waiter: Waiter, _ effects: inout Effects) {
        permits -= n
        guard !ownerless, n > 0, waiter.clientID != 0 else { return }
        holders[waiter.clientID, default: 0] += n
        reclaimed.removeAll { $0 == waiter.clientID }
        effects.held(by: waiter.clientID)
    }

    /// Grants queued acquires from the head while permits suffice.
    private func grant(_ effects: inout Effects) {
        while let head = queue.first, head.wanted <= permits {
            queue.removeFirst()
            take(head.wanted, for: head.waiter, &effects)
            effects.wake(head.waiter, value: head.boolean ? .bool(true) : .null)
        }
    }

    package func clientGone(_ client: UInt64, effects: inout Effects) {
        guard let held = holders.removeValue(forKey: client) else { return }
        permits += held
        reclaimed.removeAll { $0 == client }
        reclaimed.append(client)
        if reclaimed.count > Self.reclaimedLimit { reclaimed.removeFirst(reclaimed.count - Self.reclaimedLimit) }
        grant(&effects)
    }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .acquire:
            let n = try wanted(call, 0)
            if queue.isEmpty, n <= permits {
                take(n, for: call.waiter, &call.effects)
                return .void
            }
            try call.admitWaiter(queued: queue.count)
            queue.append((call.waiter, n, false))
            return call.park()
        case .tryAcquire:
            let n = try wanted(call, 0)
            let timeout = try call.timeout(1)
            if queue.isEmpty, n <= permits {
                take(n, for: call.waiter, &call.effects)
                return .value(.bool(true))
            }
            guard let timeout, timeout > .zero else { return .value(.bool(false)) }
            try call.admitWaiter(queued: queue.count)
            queue.append((call.waiter, n, true))
            return call.park(timeout: timeout)
        case .release:
            let n = try wanted(call, 0)
            let client = call.waiter.clientID
            if client != 0, holders[client] == nil, reclaimed.contains(client) {
                throw CrucialError(
                    .illegalState,
                    "Semaphore.release: this client holds no permits: they were given back when its keep-alive lease lapsed "
                        + "(it looked dead); acquire again before releasing")
            }
            let (sum, overflow) = permits.addingReportingOverflow(n)
            guard !overflow else { throw CrucialError(.illegalState, "Semaphore.release: permit count would overflow") }
            permits = sum
            // The caller's own permits go back first; any more are new permits.
            if let held = holders[call.waiter.clientID] {
                holders[call.waiter.clientID] = held > n ? held - n : nil
            }
            grant(&call.effects)
            return .void
        case .availablePermits:
            return .value(.int(permits))
        case .drainPermits:
            let drained = max(permits, 0)
            take(drained, for: call.waiter, &call.effects)
            return .value(.int(drained))
        case .getQueueLength:
            return .value(.int(Int64(queue.count)))
        }
    }

    package func cancelWaiters(of connection: ConnectionID, effects: inout Effects) {
        queue.removeAll { $0.waiter.id.connection == connection }
        grant(&effects)  // a withdrawn head may have been blocking smaller requests
    }

    package func timeout(_ id: WaiterID, effects: inout Effects) {
        guard let i = queue.firstIndex(where: { $0.waiter.id == id }) else { return }
        let entry = queue.remove(at: i)
        effects.wake(entry.waiter, value: .bool(false))
        grant(&effects)
    }

    package func drainWaiters(effects: inout Effects, error: CrucialError) {
        for e in queue { effects.wake(e.waiter, error: error) }
        queue.removeAll()
    }
}

/// `java.util.concurrent.CountDownLatch`: `await` waits until `countDown` has been
/// called `count` times. `await(timeoutMillis)` answers false on timeout.
package final class CountDownLatch: BuiltinObject {
    package typealias Method = LatchMethod
    package static let builtin = BuiltinType.countDownLatch
    var count: Int64
    var waiting: [Waiter] = []

    package init(initial: Value) throws(CrucialError) {
        guard let c = initial.intValue, c >= 0 else {
            throw CrucialError(.badInitialState, "CountDownLatch needs a count ≥ 0, got \(initial)")
        }
        count = c
    }

    package func snapshot() -> Value { .int(count) }

    package var waiterCount: Int { waiting.count }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .countDown:
            guard count > 0 else { return .void }
            count -= 1
            if count == 0 {
                for w in waiting { call.effects.wake(w, value: .bool(true)) }
                waiting.removeAll()
            }
            return .void
        case .getCount:
            return .value(.int(count))
        case .await:
            let timeout = try call.timeout(0)
            if count == 0 { return .value(.bool(true)) }
            if timeout == .zero { return .value(.bool(false)) }
            try call.admitWaiter(queued: waiting.count)
            waiting.append(call.waiter)
            return call.park(timeout: timeout)
        }
    }

    package func cancelWaiters(of connection: ConnectionID, effects: inout Effects) {
        waiting.removeAll { $0.id.connection == connection }
    }

    package func timeout(_ id: WaiterID, effects: inout Effects) {
        guard let i = waiting.firstIndex(where: { $0.id == id }) else { return }
        effects.wake(waiting.remove(at: i), value: .bool(false))
    }

    package func drainWaiters(effects: inout Effects, error: CrucialError) {
        for w in waiting { effects.wake(w, error: error) }
        waiting.removeAll()
    }
}

/// A value set once; `get` waits until it is set. `get(timeoutMillis)` fails
/// with TIMEOUT when the wait expires; a second `set` fails with ILLEGAL_STATE.
package final class SharedFuture: BuiltinObject {
    package typealias Method = FutureMethod
    package static let builtin = BuiltinType.sharedFuture
    var value: Value?
    var waiting: [Waiter] = []

    package init(initial: Value) throws(CrucialError) {
        // The initial state of a fresh future is `null` (not done); a snapshot of a
        // done future is {"value": v}.
        if case .record(let r) = initial, let v = r["value"] { value = v }
    }

    package func snapshot() -> Value { value.map { .record(["value": $0]) } ?? .null }

    package var waiterCount: Int { waiting.count }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .set, .trySet:
            let v = try call.value(0)
            guard value == nil else {
                if method == .trySet { return .value(.bool(false)) }
                throw CrucialError(.illegalState, "SharedFuture(\"\(call.ref.key)\") is already set")
            }
            value = v
            for w in waiting { call.effects.wake(w, value: v) }
            waiting.removeAll()
            return method == .trySet ? .value(.bool(true)) : .void
        case .get:
            let timeout = try call.timeout(0)
            if let value { return .value(value) }
            if timeout == .zero { throw CrucialError(.timeout, "SharedFuture(\"\(call.ref.key)\") is not set") }
            try call.admitWaiter(queued: waiting.count)
            waiting.append(call.waiter)
            return call.park(timeout: timeout)
        case .isDone:
            return .value(.bool(value != nil))
        }
    }

    package func cancelWaiters(of connection: ConnectionID, effects: inout Effects) {
        waiting.removeAll { $0.id.connection == connection }
    }

    package func timeout(_ id: WaiterID, effects: inout Effects) {
        guard let i = waiting.firstIndex(where: { $0.id == id }) else { return }
        effects.wake(waiting.remove(at: i), error: CrucialError(.timeout, "SharedFuture.get timed out"))
    }

    package func drainWaiters(effects: inout Effects, error: CrucialError) {
        for w in waiting { effects.wake(w, error: error) }
        waiting.removeAll()
    }
}
