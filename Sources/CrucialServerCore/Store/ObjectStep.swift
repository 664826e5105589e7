internal import CrucialCore
internal import NIOCore

/// What the store knows around one call, read under the object's lock just before its
/// ``ObjectBox/step(_:_:in:)``: the step itself asks nothing of the store, the cluster or
/// the log, so the tests drive it with any context they like.
struct StepContext {
    /// In a cluster: the view the call was routed in (0 on a single server).
    var routedIn: UInt64 = 0
    /// The view changed since the call was routed: refuse with WRONG_VIEW.
    var viewChanged = false
    /// Every copy of the object is on members that are away.
    var away: CrucialError?
    /// The store is part of a cluster, which keeps `rf` copies of a replicated object.
    var clustered = false
    /// The object is persistent and persistence runs: its changes are logged.
    var logged = false
    /// The log fails: changes to persistent objects are refused with this.
    var logFailure: CrucialError?
    /// The store's object state is over its limit: calls that may add state are refused with this.
    var memoryFull: CrucialError?
}

/// What one call on an object decided, as values: the answer, and what the store must do
/// for it. Made under the object's lock by ``ObjectBox/step(_:_:in:)``; the store then
/// queues the log record and the replicas' changes (still under the lock, since their order
/// is the object's order) and carries out everything else once the lock is released.
struct Decision {
    /// The answer; nil when the call parked on the object.
    var outcome: Outcome?
    /// What the call did to other parked calls and timers (carried out after the lock).
    var effects = Effects()
    /// Changes to send to the object's other replicas, in this order, each at its version:
    /// a whole-state sync first when an earlier change did not reach them all.
    var replicate: [(Replicate.Operation, ObjectVersion)] = []
    /// The answer waits for the replication already under way (a read that may have seen
    /// changes not yet on every replica, or a retry whose first attempt may not have reached them).
    var awaitsEarlierReplication = false
    /// The record to append to the operation log.
    var log: LogRecord.Operation?
    /// The answer waits for the object's last log record (a retry answered from the table).
    var awaitsLastRecord = false

    init(_ outcome: Outcome?) { self.outcome = outcome }

    /// Nothing to do but answer with `error`.
    static func refuse(_ error: CrucialError) -> Decision { Decision(.error(error)) }
}

extension ObjectBox {
    /// One call on this object, as a state machine: changes the object's state (its
    /// object, retry table, version and sync flag) and returns what must follow, as values.
    /// Called under the box's lock; does no I/O, takes no other lock and answers no one.
    ///
    /// In this order: the refusals (an incompatible create, a changed view, copies away),
    /// a whole-state sync when one is due, a retry's recorded answer, the limits (memory,
    /// a failed log), the method, then the change's version, replication and log record.
    func step(_ invoke: Invoke, _ call: inout Call, in context: StepContext) -> Decision {
        if let create = invoke.create {
            do throws(CrucialError) {
                try object.checkCompatible(initial: create.initial)
            } catch {
                return .refuse(error)
            }
        }
        if let mismatch = object.versionMismatch(invoke) { return .refuse(mismatch) }
        if context.viewChanged {
            return .refuse(CrucialError(.wrongView, "the cluster's view changed while \(ref) was called; retry"))
        }
        if let away = context.away { return .refuse(away) }
        let replicated = context.clustered && replicates
        var sync: [(Replicate.Operation, ObjectVersion)] = []
        if replicated, needsSync {
            // An earlier change did not reach every replica: send them the whole state first.
            needsSync = false
            sync.append((.install(exported), version))
        }
        if let answered = retries.lookup(client: invoke.clientID, seq: invoke.seq, ackedBelow: invoke.ackedBelow) {
            var decision = Decision(answered)
            decision.awaitsLastRecord = context.logged
            // A retry: its first attempt may not have reached every replica. The whole state
            // brings them up to date (and is the sync, when one was due: one copy, not two).
            decision.replicate = replicated ? [(.install(exported), version)] : []
            return decision
        }
        let readOnly = object.kind(of: invoke.method).isRead
        if !readOnly, !type(of: object).hasFixedSize {
            if object.mayGrow(invoke.method), let full = context.memoryFull { return .refuse(full) }
            footprintStale = true
        }
        if context.logged, !readOnly, let failure = context.logFailure { return .refuse(failure) }
        let versionBefore = version
        var decision = Decision(run(&call, clientID: invoke.clientID, seq: invoke.seq))
        decision.effects = call.effects
        decision.replicate = sync
        if replicated {
            if readOnly, version.index > 0 {
                decision.awaitsEarlierReplication = true  // a read waits for the writes it may have seen
            } else {
                // A copy at index 0 was just created here: its creation goes to the replicas,
                // with whatever call made it. The version is in the view the call was checked
                // in (under this lock), never one read again: the view may change meanwhile,
                // and a leaving node's `viewID` (UInt64.max) would make this copy look newer
                // than every later one.
                version = ObjectVersion(view: context.routedIn, index: version.index + 1)
                decision.replicate.append((.invoke(invoke), version))
            }
        }
        if context.logged, !readOnly || version != versionBefore {
            // Logged whatever the outcome: a method that threw may have changed the state first.
            decision.log = .invoke(
                method: invoke.method, args: invoke.args, clientID: invoke.clientID, seq: invoke.seq,
                connection: call.waiter.id.connection.raw, request: call.waiter.id.request)
        }
        return decision
    }

    /// Runs `call` on the object and records its answer (nil: it parked) and the late
    /// answers it caused for retries. Called under the box lock.
    func run(_ call: inout Call, clientID: UInt64, seq: UInt64) -> Outcome? {
        let outcome: Outcome?
        do throws(CrucialError) {
            switch try object.invoke(&call) {
            case .value(let v): outcome = .value(v)
            case .parked: outcome = nil
            }
        } catch {
            outcome = .error(error)
        }
        if let outcome { retries.record(client: clientID, seq: seq, outcome: outcome) }
        recordLateAnswers(call.effects)
        return outcome
    }

    /// Records the answers of woken calls for their retries. Called under the box lock.
    func recordLateAnswers(_ effects: Effects) {
        for (waiter, outcome) in effects.wakeups where waiter.seq != 0 {
            retries.record(client: waiter.clientID, seq: waiter.seq, outcome: outcome)
        }
    }

    /// The object's whole state, as it moves to another member or to disk. Called under the box lock.
    var exported: ObjectState {
        ObjectState(state: object.snapshot(), persistent: persistent, session: session, retries: retries.value)
    }
}

/// What happens to an object besides a call: it changes parked calls, and so the state of a
/// synchronizer, which its replicas and the log must follow as they follow calls.
enum ObjectEvent: Sendable {
    /// The bounded wait of a parked call expired.
    case timeout(WaiterID)
    /// A connection with calls parked on the object closed.
    case connectionClosed(ConnectionID)
    /// A client holding something of the object (permits), or waiting on it detached, is gone.
    case clientGone(UInt64)
    /// A lone server recovered the object from disk: the calls it replayed have no connection.
    case withdrawDetached
}

extension ObjectBox {
    /// One event on this object, as a state machine: what it wakes, and when it changed the
    /// state, the whole new state for the replicas (at the next version, in the view the
    /// event was routed in) and for the log. Called under the box's lock; does no I/O.
    ///
    /// The whole state rather than the event: replicas know a parked call by its retry
    /// identity, not by the connection or timer that only the primary has, and an event is
    /// rare next to calls.
    func step(_ event: ObjectEvent, in context: StepContext) -> Decision {
        let before = object.snapshot()
        var effects = Effects()
        switch event {
        case .timeout(let id): object.timeout(id, effects: &effects)
        case .connectionClosed(let connection): object.cancelWaiters(of: connection, effects: &effects)
        case .clientGone(let client): object.clientGone(client, effects: &effects)
        case .withdrawDetached: object.withdrawDetached(effects: &effects)
        }
        recordLateAnswers(effects)
        var decision = Decision(nil)
        decision.effects = effects
        // A wait that is not part of the state (a latch's await) changes nothing to follow.
        guard object.snapshot() != before else { return decision }
        if context.clustered, replicates {
            needsSync = false  // the whole state goes anyway
            version = ObjectVersion(view: context.routedIn, index: version.index + 1)
            decision.replicate = [(.install(exported), version)]
        }
        if context.logged { decision.log = .install(exported) }
        return decision
    }
}
