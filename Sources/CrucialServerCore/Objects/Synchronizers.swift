package import CrucialCore

/// `java.util.concurrent.CyclicBarrier`: `parties` callers meet, then the barrier
/// opens and a new generation starts.
///
/// `await` answers with the arrival index (`parties - 1` for the first to arrive,
/// 0 for the last), as in Java. A timed-out `await` breaks the barrier (the
/// others get BROKEN_BARRIER) as in Java; `reset` breaks the current generation
/// and starts a fresh one. A waiter whose connection dies is simply withdrawn —
/// unlike a Java thread's interrupt it does not break the barrier, because a
/// retried cloud thread will come back and take its place. The retry of a waiting
/// `await` (the same client and sequence number, after a lost connection or a failover)
/// takes its own place again: a party never counts twice.
///
/// Initial state: the number of parties. The state as a whole adds, once it has them,
/// `generation`, `broken` and `waiting` (`[client, seq]` per waiting party, in arrival order).
package final class CyclicBarrier: Synchronizer {
    package typealias Method = BarrierMethod
    package static let builtin = BuiltinType.cyclicBarrier
    let parties: Int
    package var parked = WaitQueue<Void>()
    var generation: Int64 = 0
    var broken = false

    package init(initial: Value) throws(CrucialError) {
        let state = initial.recordValue
        guard let p = (state?["parties"] ?? initial).intValue, p >= 1, p <= Int64(Int32.max) else {
            throw CrucialError(.badInitialState, "CyclicBarrier needs a number of parties ≥ 1, got \(initial)")
        }
        parties = Int(p)
        guard let state else { return }
        generation = state["generation"]?.intValue ?? 0
        broken = state["broken"]?.boolValue ?? false
        parked = try WaitQueue(recorded: state["waiting"], of: "CyclicBarrier") { _ in }
    }

    package func snapshot() -> Value {
        guard generation != 0 || broken || !parked.isEmpty else { return .int(Int64(parties)) }
        return .record([
            "parties": .int(Int64(parties)), "generation": .int(generation), "broken": .bool(broken), "waiting": parked.recorded { _ in [] },
        ])
    }

    package func checkCompatible(initial: Value) throws(CrucialError) {
        guard initial.intValue == Int64(parties) else {
            throw CrucialError(
                .badInitialState, "CyclicBarrier exists with \(parties) parties; this proxy asks for \(initial)")
        }
    }

    private func breakBarrier(_ effects: inout Effects) {
        broken = true
        parked.drain(&effects, error: CrucialError(.brokenBarrier, "CyclicBarrier was broken while waiting (generation \(generation))"))
    }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .await(let millis):
            let timeout = millis?.duration
            if parked.takeOver(call.waiter) { return call.park(timeout: timeout) }
            guard !broken else { throw CrucialError(.brokenBarrier, "CyclicBarrier is broken; call reset()") }
            if parked.count + 1 == parties {
                for (n, p) in parked.removeAll().enumerated() { call.effects.wake(p.waiter, value: .int(Int64(parties - 1 - n))) }
                generation += 1
                return .value(.int(0))
            }
            if timeout == .zero {
                breakBarrier(&call.effects)
                throw CrucialError(.timeout, "CyclicBarrier.await timed out")
            }
            try call.admitWaiter(queued: parked.count)
            parked.append(call.waiter)
            return call.park(timeout: timeout)
        case .reset:
            if !parked.isEmpty { breakBarrier(&call.effects) }
            broken = false
            generation += 1
            return .void
        case .isBroken:
            return .value(.bool(broken))
        case .getParties:
            return .value(.int(Int64(parties)))
        case .getNumberWaiting:
            return .value(.int(Int64(parked.count)))
        }
    }

    package static var partiesAreState: Bool { true }

    package func expired(_ party: (waiter: Waiter, entry: Void), effects: inout Effects) {
        effects.wake(party.waiter, error: CrucialError(.timeout, "CyclicBarrier.await timed out"))
        breakBarrier(&effects)
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
/// connection dies is withdrawn and never takes permits; its retry (the same client and
/// sequence number, after a lost connection or a failover) takes its place in the queue.
///
/// Initial state: the number of permits, or `{permits, ownerless}`; the state as a
/// whole (moved between members, kept in snapshots) adds `holders`, a list of
/// `[client, permits]` pairs, `reclaimed` (clients whose permits were taken back) and
/// `queue` (`[client, seq, permits wanted, answers a bool]` per waiting acquire, in order).
package final class Semaphore: Synchronizer {
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
    /// Parked acquires, FIFO, with the permits each wants and whether it answers with a bool.
    package var parked = WaitQueue<(wanted: Int64, boolean: Bool)>()

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
        parked = try WaitQueue(recorded: r["queue"], of: "Semaphore") { fields throws(CrucialError) in
            guard fields.count == 4, let wanted = fields[2].intValue, wanted >= 0, let boolean = fields[3].boolValue else {
                throw CrucialError(.badInitialState, "Semaphore parked entries must be [client, seq, permits, bool], got \(fields)")
            }
            return (wanted, boolean)
        }
    }

    package func snapshot() -> Value {
        guard ownerless || !holders.isEmpty || !reclaimed.isEmpty || !parked.isEmpty else { return .int(permits) }
        var r: [String: Value] = ["permits": .int(permits)]
        if ownerless { r["ownerless"] = .bool(true) }
        if !holders.isEmpty {
            r["holders"] = .list(holders.sorted { $0.key < $1.key }.map { .list([.int(Int64(bitPattern: $0.key)), .int($0.value)]) })
        }
        if !reclaimed.isEmpty { r["reclaimed"] = .list(reclaimed.map { .int(Int64(bitPattern: $0)) }) }
        if !parked.isEmpty { r["queue"] = parked.recorded { [.int($0.wanted), .bool($0.boolean)] } }
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

    package var holdingClients: [UInt64] { Array(holders.keys) + parked.detachedClients }

    /// The permits a call asks for (absent: one).
    private func wanted(_ permits: Count?) -> Int64 { permits.map { Int64($0.value) } ?? 1 }

    /// `n` permits now belong to `waiter`'s client.
    private func take(_ n: Int64, for waiter: Waiter, _ effects: inout Effects) {
        permits -= n
        guard !ownerless, n > 0, waiter.clientID != 0 else { return }
        holders[waiter.clientID, default: 0] += n
        reclaimed.removeAll { $0 == waiter.clientID }
        effects.held(by: waiter.clientID)
    }

    /// Grants queued acquires from the head while permits suffice.
    package static var partiesAreState: Bool { true }

    /// Permits came back, or a head that left was blocking smaller requests.
    package func partiesLeft(effects: inout Effects) { grant(&effects) }

    package func expired(_ party: (waiter: Waiter, entry: (wanted: Int64, boolean: Bool)), effects: inout Effects) {
        effects.wake(party.waiter, value: .bool(false))
    }

    private func grant(_ effects: inout Effects) {
        while let head = parked.first, head.entry.wanted <= permits {
            _ = parked.removeFirst()
            take(head.entry.wanted, for: head.waiter, &effects)
            effects.wake(head.waiter, value: head.entry.boolean ? .bool(true) : .null)
        }
    }

    package func clientGone(_ client: UInt64, effects: inout Effects) {
        parked.withdrawDetached(of: client)
        if let held = holders.removeValue(forKey: client) {
            permits += held
            reclaimed.removeAll { $0 == client }
            reclaimed.append(client)
            if reclaimed.count > Self.reclaimedLimit { reclaimed.removeFirst(reclaimed.count - Self.reclaimedLimit) }
        }
        grant(&effects)  // permits came back, or a withdrawn head was blocking smaller requests
    }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .acquire(let asked):
            let n = wanted(asked)
            if parked.takeOver(call.waiter) { return call.park() }
            if parked.isEmpty, n <= permits {
                take(n, for: call.waiter, &call.effects)
                return .void
            }
            try call.admitWaiter(queued: parked.count)
            parked.append(call.waiter, (n, false))
            return call.park()
        case .tryAcquire(let asked, let millis):
            let n = wanted(asked)
            let timeout = millis?.duration
            if parked.takeOver(call.waiter) { return call.park(timeout: timeout) }
            if parked.isEmpty, n <= permits {
                take(n, for: call.waiter, &call.effects)
                return .value(.bool(true))
            }
            guard let timeout, timeout > .zero else { return .value(.bool(false)) }
            try call.admitWaiter(queued: parked.count)
            parked.append(call.waiter, (n, true))
            return call.park(timeout: timeout)
        case .release(let asked):
            let n = wanted(asked)
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
            return .value(.int(Int64(parked.count)))
        }
    }
}
