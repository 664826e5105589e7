internal import CrucialCore
internal import NIOCore

extension BoxState {
    /// One event on this object, as a state machine: changes the state (its object, retry
    /// table, version, flags) and returns what must follow, as values. Called by the event
    /// runner under the box's lock; does no I/O, takes no other lock and answers no one.
    mutating func step(_ event: ObjectEvent, in context: StepContext) -> Decision {
        switch event {
        case .invoke(let invoke, let call): return step(invoke, call, in: context)
        case .created(let create): return created(create, in: context)
        case .timedOut, .connectionClosed, .clientGone, .withdrawDetached: return parkedCallsChanged(by: event, in: context)
        case .detached(let error):
            var decision = Decision(nil)
            object.detachWaiters(effects: &decision.effects, error: error)
            return decision
        case .replicationFailed:
            if replicates { needsSync = true }
            return .unchanged(nil)
        case .removed(let removal): return remove(removal, in: context)
        case .codeReplaced(let build, let factory): return replaceCode(build: build, factory, in: context)
        case .replicated(let invoke, let version, let codeBuild): return applyCall(invoke, at: version, codeBuild: codeBuild, in: context)
        case .installed(let state, let version): return install(state, at: version, in: context)
        case .replayed(let record): return replay(record, in: context)
        }
    }

    /// A client's call on the primary. In this order: the refusals (an incompatible create,
    /// a changed view, copies away), a whole-state sync when one is due, a retry's recorded
    /// answer, the limits (memory, a failed log), the method, then the change's version,
    /// replication and log record.
    mutating func step(_ invoke: Invoke, _ call: Call, in context: StepContext) -> Decision {
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
        var call = call
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

    /// The object was just made by a call carrying its creation (here, or on its primary):
    /// it starts from `context.base`, and a persistent one's creation is its first record,
    /// logged before anyone can reach it and log a call. A failing log takes it out again.
    mutating func created(_ create: Create, in context: StepContext) -> Decision {
        if context.clustered, replicates { version = context.base }
        footprintStale = false
        footprint = object.footprint
        guard context.logged else { return Decision(.void) }
        if let failure = context.logFailure {
            removed = true
            var refused = Decision.refuse(failure)
            refused.retired = true
            return refused
        }
        var decision = Decision(.void)
        decision.log = .create(initial: create.initial)
        return decision
    }

    /// A timeout, a closed connection, a client gone, or the withdrawal of a recovered
    /// server's detached calls: what it wakes, and when it changed the state, the whole new
    /// state for the replicas (at the next version, in the view the event was routed in) and
    /// for the log.
    ///
    /// The whole state rather than the event: replicas know a parked call by its retry
    /// identity, not by the connection or timer that only the primary has, and an event is
    /// rare next to calls.
    mutating func parkedCallsChanged(by event: ObjectEvent, in context: StepContext) -> Decision {
        // Routed in a view this member no longer serves: the runner's caller routes it again.
        if context.viewChanged { return .refuse(CrucialError(.wrongView, "the view changed while an event of \(ref) was routed")) }
        let before = object.snapshot()
        var effects = Effects()
        switch event {
        case .timedOut(let id): object.timeout(id, effects: &effects)
        case .connectionClosed(let connection): object.cancelWaiters(of: connection, effects: &effects)
        case .clientGone(let client): object.clientGone(client, effects: &effects)
        case .withdrawDetached: object.withdrawDetached(effects: &effects)
        default: break
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

    /// Runs `call` on the object and records its answer (nil: it parked) and the late
    /// answers it caused for retries.
    mutating func run(_ call: inout Call, clientID: UInt64, seq: UInt64) -> Outcome? {
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

    /// Records the answers of woken calls for their retries.
    mutating func recordLateAnswers(_ effects: Effects) {
        for (waiter, outcome) in effects.wakeups where waiter.seq != 0 {
            retries.record(client: waiter.clientID, seq: waiter.seq, outcome: outcome)
        }
    }
}
