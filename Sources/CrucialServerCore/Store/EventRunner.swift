import Synchronization
internal import CrucialCore
internal import NIOCore

/// The one place where an object's state changes.
///
/// The runner finds the box of an event's object (or makes and places one: the first
/// creation wins a race), takes the box's lock, reads the `StepContext`, lets
/// `BoxState/step(_:in:)` decide, and hands the `Decision` to the sinks in the object's
/// order while the lock is held: the replication sink (`Replication`) and the log sink
/// (`OperationLog`) only queue what they are given. It takes a retired box out of its
/// shard, places a successor, and keeps tombstones. What answers someone or arms a timer
/// happens after the lock (`ObjectStore.complete(_:waiter:)`).
enum EventRunner {
    /// The key of `ObjectBox/change(_:_:)`: only this file makes one.
    struct Key {
        fileprivate init() {}
    }
}

extension ObjectStore {
    /// Which box an event goes to.
    enum Target {
        /// This box, if it is still in the store (a timer's, a closed connection's).
        case box(ObjectBox)
        /// The box of `ref` in the store; none: the event is not applied.
        case existing(ObjectRef)
        /// The box of `ref`, or else the one `make` gives, placed unless another was placed
        /// first, with its creation event (`.created`) stepped on it first; nil: the event
        /// itself is its creation, stepped on it with `StepContext/madeForEvent`.
        case creating(ObjectRef, make: () -> Result<(ObjectBox, creation: ObjectEvent?), CrucialError>)
        /// The box of `ref`, whose step may retire it for `successor`; or, when there is none,
        /// `successor` at once. The event is stepped on the successor with
        /// `StepContext/madeForEvent`.
        case replacing(ObjectRef, successor: ObjectBox)

        var ref: ObjectRef {
            switch self {
            case .box(let box): box.ref
            case .existing(let ref), .creating(let ref, _), .replacing(let ref, _): ref
            }
        }
    }

    /// What the runner did: the box the event was stepped on, its decision, and what the
    /// decision's answer waits for.
    struct Ran {
        let box: ObjectBox
        var decision: Decision
        var pending: Pending
    }

    /// What a decision waits for before it is answered: its replication, its log record.
    struct Pending {
        var replicated: EventLoopFuture<Outcome?>?
        var lsn: UInt64?
    }

    /// Steps `event` on the box `target` names, in view `routedIn` (0 on a single server);
    /// `refine` adds what the caller knows to the context, under the lock. Returns nil when
    /// there is no box to step it on, else what was decided; a box removed between lookup
    /// and lock is looked up again.
    func run(
        _ event: ObjectEvent, on target: Target, routedIn: UInt64 = 0,
        refine: (inout StepContext, borrowing BoxState) -> Void = { _, _ in }
    ) -> Result<Ran, CrucialError>? {
        let ref = target.ref
        var madeHere: ObjectBox?  // the box this call made and placed, if it did
        for _ in 0..<8 {
            let box: ObjectBox
            switch target {
            case .box(let only): box = only
            case .existing:
                guard let found = shard(ref).withLock({ $0[ref] }) else { return nil }
                box = found
            case .creating(_, let make):
                if let found = shard(ref).withLock({ $0[ref] }) {
                    box = found
                    break
                }
                let fresh: ObjectBox
                let creation: ObjectEvent?
                switch make() {
                case .success(let made): (fresh, creation) = made
                case .failure(let error): return .failure(error)
                }
                switch place(fresh, stepping: creation ?? event, madeForEvent: creation == nil, routedIn: routedIn, refine: refine) {
                case .placed(let ran):
                    if creation == nil { return .success(ran) }
                    if case .error(let error)? = ran.decision.outcome { return .failure(error) }
                    (box, madeHere) = (fresh, fresh)
                case .raced(let other): box = other
                }
            case .replacing(_, let successor):
                guard let found = shard(ref).withLock({ $0[ref] }) else {
                    switch place(successor, stepping: event, madeForEvent: true, routedIn: routedIn, refine: refine) {
                    case .placed(let ran): return .success(ran)
                    case .raced: continue
                    }
                }
                box = found
            }
            var successor: ObjectBox?
            if case .replacing(_, let next) = target { successor = next }
            let justCreated = if case .creating = target { box === madeHere } else { false }
            guard let ran = step(event, on: box, routedIn: routedIn, justCreated: justCreated, successor: successor, refine: refine) else {
                if case .box = target { return nil }
                continue
            }
            return .success(ran)
        }
        return .failure(CrucialError(.internal, "\(ref) kept being removed and re-created while it changed"))
    }

    /// Steps `event` on `box` under its lock and queues the decision's changes; nil if the
    /// box left the store before. When the step retires the box for a successor, `successor`
    /// takes its place in the shard under the same lock (no call finds the object missing
    /// meanwhile), the event is stepped on it, and what was decided there is returned; the
    /// retired box's parked calls are answered after the lock.
    private func step(
        _ event: ObjectEvent, on box: ObjectBox, routedIn: UInt64, justCreated: Bool, successor: ObjectBox?,
        refine: (inout StepContext, borrowing BoxState) -> Void
    ) -> Ran? {
        let outcome: (Ran, Ran?)? = box.change(EventRunner.Key()) { state in
            guard !state.removed else { return nil }
            let ran = decide(event, on: box, &state, routedIn: routedIn) { context, state in
                context.justCreated = justCreated
                refine(&context, state)
            }
            guard ran.decision.successor != nil, let successor else {
                settle(ran.decision, of: box, &state)
                return (ran, nil)
            }
            switch place(successor, stepping: event, madeForEvent: true, routedIn: routedIn, replacing: box, refine: refine) {
            case .placed(let next): return (ran, next)
            case .raced: return (ran, nil)  // not while `box` is in the shard: cannot happen
            }
        }
        guard let (ran, next) = outcome else { return nil }
        afterLock(ran)
        guard let next else { return ran }
        carryOut(ran.decision.effects, box: box)
        return next
    }

    private enum Placement {
        case placed(Ran)
        case raced(ObjectBox)
    }

    /// Places `fresh` in its shard unless a box is there already, stepping `event` on it
    /// under its lock before anyone else can reach it.
    private func place(
        _ fresh: ObjectBox, stepping event: ObjectEvent, madeForEvent: Bool, routedIn: UInt64, replacing old: ObjectBox? = nil,
        refine: (inout StepContext, borrowing BoxState) -> Void
    ) -> Placement {
        let ref = fresh.ref
        let base = tombstones.withLock { $0[ref] } ?? .zero
        let placed: Placement = fresh.change(EventRunner.Key()) { state in
            let winner = shard(ref).withLock { map -> ObjectBox in
                if let raced = map[ref], raced !== old { return raced }
                map[ref] = fresh
                return fresh
            }
            guard winner === fresh else { return .raced(winner) }
            let ran = decide(event, on: fresh, &state, routedIn: routedIn) { context, state in
                context.madeForEvent = madeForEvent
                context.base = base
                // A creation event (`.created`) needs nothing of the caller: its call comes next.
                if madeForEvent { refine(&context, state) }
            }
            settle(ran.decision, of: fresh, &state)
            return .placed(ran)
        }
        guard case .placed(let ran) = placed else { return placed }
        if !ran.decision.retired {
            stateBytesCounter.add(fresh.read { $0.footprint })  // as last counted: the census corrects it each second
            if fresh.session != 0 { adopt(fresh) }
            watchHolders(of: fresh)
        }
        afterLock(ran)
        return placed
    }

    /// Under `box`'s lock: reads the context (the store's part, then `adjust`'s), steps `event`
    /// on `state`, and queues what the decision sends to the sinks.
    private func decide(
        _ event: ObjectEvent, on box: ObjectBox, _ state: inout BoxState, routedIn: UInt64,
        adjust: (inout StepContext, borrowing BoxState) -> Void
    ) -> Ran {
        let (replication, log) = (self.replication, box.persistent ? self.log : nil)
        var context = StepContext(routedIn: routedIn, clustered: replication != nil, logged: log != nil)
        context.logFailure = log?.failure
        adjust(&context, state)
        let decision = state.step(event, in: context)
        return Ran(box: box, decision: decision, pending: queue(decision, &state, in: routedIn, replication: replication, log: log))
    }

    /// Runs `event` as `run(_:on:routedIn:refine:)` does and carries out at once what it woke:
    /// for callers whose answer waits for nothing the decision queued (or answer no one).
    func runNow(
        _ event: ObjectEvent, on target: Target, routedIn: UInt64 = 0,
        refine: (inout StepContext, borrowing BoxState) -> Void = { _, _ in }
    ) -> Result<Ran, CrucialError>? {
        let ran = run(event, on: target, routedIn: routedIn, refine: refine)
        if case .success(let done) = ran { carryOut(done.decision.effects, box: done.box) }
        return ran
    }

    /// Queues the decision's changes to the replicas and its log record, in the object's
    /// order. Called under the box lock: neither writes anything here (each replica link's
    /// event loop and the log's writer thread do).
    private func queue(
        _ decision: Decision, _ state: inout BoxState, in viewID: UInt64, replication: (any Replication)?, log: OperationLog?
    ) -> Pending {
        var pending = Pending()
        if decision.awaitsEarlierReplication { pending.replicated = state.replicated }
        if let replication, !decision.replicate.isEmpty {
            let copies = state.replicates ? replication.rf : 1
            for (operation, version) in decision.replicate {
                // The code that ran the call is the box's.
                let build = if case .invoke = operation { state.object.code?.build ?? "" } else { "" }
                let sent = replication.replicate(operation, of: state.ref, copies: copies, codeBuild: build, at: version, in: viewID)
                // Wait for every one (acks of one replica come in order; of several, not).
                pending.replicated = pending.replicated.map { $0.and(sent).map { $0 ?? $1 } } ?? sent
            }
            state.replicated = pending.replicated
        }
        if let log, let operation = decision.log {
            let (ref, version) = (state.ref, state.version)
            state.lastLSN = log.append { LogRecord(lsn: $0, ref: ref, operation: operation, version: version) }
            pending.lsn = state.lastLSN
        } else if decision.awaitsLastRecord, log != nil {
            pending.lsn = state.lastLSN
        }
        return pending
    }

    /// Under the box lock: takes a retired box out of its shard, and keeps the tombstones.
    private func settle(_ decision: Decision, of box: ObjectBox, _ state: inout BoxState) {
        let ref = box.ref
        if decision.retired {
            shard(ref).withLock { map in if map[ref] === box { map.removeValue(forKey: ref) } }
        }
        if let removedAt = decision.tombstone {
            tombstones.withLock { t in t[ref] = max(t[ref] ?? .zero, removedAt) }
        }
        if decision.clearsTombstone {
            let version = state.version
            tombstones.withLock { t in if let removedAt = t[ref], removedAt < version { t[ref] = nil } }
        }
    }

    /// After the lock: a retired box leaves its session and the state count; new holders are watched.
    private func afterLock(_ ran: Ran) {
        let box = ran.box
        if ran.decision.retired {
            if box.session != 0 { release(box) }
            stateBytesCounter.subtract(box.read { $0.footprint })
        }
        hold(box, by: ran.decision.effects.holders)
    }
}
