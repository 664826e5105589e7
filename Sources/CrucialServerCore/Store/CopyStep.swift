internal import CrucialCore
internal import NIOCore

/// The events that change a copy as a whole, or that come from elsewhere than a client: a
/// removal, new code, a replica's apply of its primary's change, a whole state installed, a
/// record replayed from disk.
extension BoxState {
    /// The object goes: its parked calls are answered (NOT_FOUND when it was removed, else
    /// WRONG_VIEW: they retry where it is now), and the removal is logged and, on a primary
    /// in a cluster, numbered and sent to the replicas with a tombstone.
    mutating func remove(_ removal: Removal, in context: StepContext) -> Decision {
        var decision = Decision(.void)
        let record: LogRecord.Operation?
        let error: CrucialError
        switch removal {
        case .called:
            if context.logged, let failure = context.logFailure { return .refuse(failure) }
            if context.clustered, replicates {
                version = ObjectVersion(view: context.routedIn, index: version.index + 1)
                decision.replicate = [(.remove, version)]
                decision.tombstone = version
            }
            (record, error) = (.remove, CrucialError(.notFound, "\(ref) was removed"))
        case .at(let removedAt):
            if let refusal = context.refusal { return .unchanged(refusal) }
            guard version <= removedAt || removedAt == .zero else { return .unchanged() }  // re-created since: it stays
            if removedAt != .zero {
                version = removedAt
                decision.tombstone = removedAt
            }
            (record, error) = (.remove, CrucialError(.notFound, "\(ref) was removed"))
        case .moved:
            (record, error) = (.drop, CrucialError(.wrongView, "\(ref) moved to another node; retry"))
        case .replaced:
            (record, error) = (nil, CrucialError(.wrongView, "\(ref) was replaced by a newer copy; retry"))
        }
        removed = true
        decision.retired = true
        object.drainWaiters(effects: &decision.effects, error: error)
        if context.logged { decision.log = record }
        return decision
    }

    /// Moves the object to its type's new code, which decodes the state the old code
    /// snapshots (the outcome says when it does not: the object keeps its old code). The new
    /// state is logged as a whole, and a replicated object's next change first sends it.
    mutating func replaceCode(build: String, _ factory: TypeRegistry.Factory, in context: StepContext) -> Decision {
        guard object.code?.build != build else { return .unchanged(nil) }
        do {
            object = try factory(object.snapshot())
        } catch {
            return .refuse(error as? CrucialError ?? CrucialError(.badInitialState, "\(error)"))
        }
        footprintStale = true
        if replicates { needsSync = true }
        var decision = Decision(.void)
        if context.logged { decision.log = .install(exported) }
        return decision
    }

    /// A replica applies its primary's call: the call is detached here (the primary answers
    /// the client), and the copy must be exactly one change behind and run the same build of
    /// its type's code, else it asks for the whole state (ILLEGAL_STATE: the primary sends it).
    mutating func applyCall(_ invoke: Invoke, at newVersion: ObjectVersion, codeBuild: String, in context: StepContext) -> Decision {
        if let refusal = context.refusal { return .unchanged(refusal) }
        // Another build of the type's code may compute another state: take the state instead.
        if let mine = object.code?.build, mine != codeBuild {
            return .refuse(
                CrucialError(
                    .illegalState,
                    "replica of \(ref) runs build \(mine.isEmpty ? "(linked)" : mine) of \(ref.type), the primary build "
                        + "\(codeBuild.isEmpty ? "(linked)" : codeBuild); send its state"))
        }
        guard version.index + 1 == newVersion.index else {
            return .refuse(CrucialError(.illegalState, "replica of \(ref) is at \(version), this change makes \(newVersion); send its state"))
        }
        if context.logged, let failure = context.logFailure { return .refuse(CrucialError(.resourceExhausted, failure.message)) }
        _ = retries.lookup(client: invoke.clientID, seq: invoke.seq, ackedBelow: invoke.ackedBelow)
        var call = Call(ref: ref, method: invoke.method, args: invoke.args, waiter: .detached(clientID: invoke.clientID, seq: invoke.seq))
        _ = run(&call, clientID: invoke.clientID, seq: invoke.seq)
        version = newVersion
        footprintStale = true
        var decision = Decision(.void)
        decision.effects.holders = call.effects.holders  // a replica answers and times out nothing
        decision.clearsTombstone = persistent && !context.justCreated
        if context.logged {
            decision.log = .invoke(
                method: invoke.method, args: invoke.args, clientID: invoke.clientID, seq: invoke.seq, connection: 0, request: invoke.id)
        }
        return decision
    }

    /// A whole state, newer than this copy, takes its place: on the copy found in the store,
    /// the copy retires for a successor made from the state; on that successor
    /// (`context.madeForEvent`), the state's version and retry table are taken and logged.
    mutating func install(_ state: ObjectState, at newVersion: ObjectVersion, in context: StepContext) -> Decision {
        if let refusal = context.refusal { return .unchanged(refusal) }
        guard context.madeForEvent || newVersion > version else { return .unchanged() }  // ours is as new: keep it
        if context.logged, let failure = context.logFailure { return .refuse(CrucialError(.resourceExhausted, failure.message)) }
        guard context.madeForEvent else {
            var decision = remove(.replaced, in: context)
            decision.successor = (state, newVersion)
            return decision
        }
        version = newVersion
        retries.restore(state.retries)
        var decision = Decision(.void)
        decision.clearsTombstone = true
        if context.logged { decision.log = .install(state) }
        return decision
    }

    /// Recovery: a record of the operation log, unless this copy already reflects it. The
    /// calls it replays have no connection: one that parks stays detached (until withdrawn,
    /// or taken over by its retry). Nothing is logged, answered or timed here.
    mutating func replay(_ record: LogRecord, in context: StepContext) -> Decision {
        guard context.madeForEvent || lastLSN < record.lsn else { return .unchanged(nil) }
        var decision = Decision(nil)
        var effects = Effects()
        switch record.operation {
        case .create:
            if context.madeForEvent { version = context.base }
        case .invoke(let method, let args, let clientID, let seq, let connection, let request):
            let waiter = Waiter(
                id: WaiterID(connection: ConnectionID(connection), request: request), clientID: clientID, seq: seq,
                responder: DetachedResponder())
            var call = Call(ref: ref, method: method, args: args, waiter: waiter)
            _ = run(&call, clientID: clientID, seq: seq)
            effects = call.effects
        case .timeout(let connection, let request):
            object.timeout(WaiterID(connection: ConnectionID(connection), request: request), effects: &effects)
            recordLateAnswers(effects)
        case .connectionClosed(let connection):
            object.cancelWaiters(of: ConnectionID(connection), effects: &effects)
            recordLateAnswers(effects)
        case .clientGone(let client):
            object.clientGone(client, effects: &effects)
            recordLateAnswers(effects)
        case .install(let state):
            guard context.madeForEvent else {
                removed = true
                decision.retired = true
                decision.successor = (state, record.version)
                return decision
            }
            retries.restore(state.retries)
            decision.clearsTombstone = true
        case .remove, .drop:
            if case .remove = record.operation, record.version != .zero { decision.tombstone = record.version }
            removed = true
            decision.retired = true
            return decision
        case .collect:
            return .unchanged(nil)  // a tombstone's: the store's, not the copy's
        }
        decision.effects.holders = effects.holders
        lastLSN = record.lsn
        if record.version != .zero { version = record.version }
        return decision
    }
}
