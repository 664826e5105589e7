internal import CrucialCore
internal import NIOCore

/// Answers nothing: a replica applies a call whose client the primary answers.
private struct ReplicaResponder: Responder {
    func respond(_ reply: Reply) {}
}

/// The replica side of replication and the moving of objects between nodes.
extension ObjectStore {
    /// The whole state of `box`. Called under its lock.
    func exportState(_ box: ObjectBox) -> ObjectState {
        ObjectState(state: box.object.snapshot(), persistent: box.persistent, session: box.session, retries: box.retries.value)
    }

    /// Applies what a primary sent. `viewID` is the view this node serves; an
    /// operation from an older view is refused with `stale` (WRONG_VIEW), checked under
    /// the object's lock so that no view change slips between check and apply.
    func apply(_ replicate: Replicate, currentView: @Sendable () -> View?) -> Outcome {
        let ref = replicate.ref
        func stale() -> Outcome? {
            guard let view = currentView() else { return nil }
            return replicate.viewID < view.id ? .wrongView(view) : nil
        }
        switch replicate.operation {
        case .remove:
            if let refusal = stale() { return refusal }
            remove(ref)
            return .void
        case .install(let state):
            return install(ref, state, version: replicate.version, refuse: stale)
        case .invoke(let invoke):
            for _ in 0..<8 {
                var box = shard(ref).withLockedValue { $0[ref] }
                if box == nil {
                    // The first change of a new object carries its creation.
                    guard let create = invoke.create, replicate.version.index == 1 else {
                        return .error(CrucialError(.illegalState, "replica of \(ref) missing; send its state"))
                    }
                    let object: any SharedObject
                    do throws(CrucialError) {
                        object = try registry.make(ref.type, initial: create.initial) { "no object type \"\(ref.type)\" on this replica" }
                    } catch {
                        return .error(error)
                    }
                    let fresh = ObjectBox(ref: ref, object: object, persistent: create.persistent, session: create.session)
                    box = shard(ref).withLockedValue { map in
                        if let raced = map[ref] { return raced }
                        map[ref] = fresh
                        return fresh
                    }
                }
                guard let box else { continue }
                let waiter = Waiter(
                    id: WaiterID(connection: ConnectionID(0), request: replicate.id), clientID: invoke.clientID, seq: invoke.seq,
                    responder: ReplicaResponder())
                var call = Call(ref: ref, method: invoke.method, args: invoke.args, waiter: waiter)
                let outcome: Outcome?? = box.lock.withLock {
                    guard !box.removed else { return nil }
                    if let refusal = stale() { return refusal }
                    guard box.version.index + 1 == replicate.version.index else {
                        return .error(
                            CrucialError(.illegalState, "replica of \(ref) is at \(box.version), this change makes \(replicate.version); send its state"))
                    }
                    _ = box.retries.lookup(client: invoke.clientID, seq: invoke.seq, ackedBelow: invoke.ackedBelow)
                    _ = run(&call, on: box, clientID: invoke.clientID, seq: invoke.seq)
                    box.version = replicate.version
                    return .some(nil)
                }
                guard let outcome else { continue }
                return outcome ?? .void
            }
            return .error(CrucialError(.internal, "\(ref) kept being replaced while a change was applied"))
        }
    }

    /// Replaces the copy of `ref` with `state` unless the copy is newer.
    func install(_ ref: ObjectRef, _ state: ObjectState, version: ObjectVersion, refuse: () -> Outcome? = { nil }) -> Outcome {
        let object: any SharedObject
        do throws(CrucialError) {
            object = try registry.make(ref.type, initial: state.state) { "no object type \"\(ref.type)\" on this node: it cannot hold \(ref)" }
        } catch {
            return .error(error)
        }
        let fresh = ObjectBox(ref: ref, object: object, persistent: state.persistent, session: state.session)
        fresh.version = version
        fresh.retries.restore(state.retries)
        let shard = self.shard(ref)
        for _ in 0..<8 {
            let existing = shard.withLockedValue { $0[ref] }
            if let existing {
                var effects = Effects()
                let outcome: Outcome?? = existing.lock.withLock {
                    guard !existing.removed else { return nil }
                    if let refusal = refuse() { return refusal }
                    guard version >= existing.version else { return .some(nil) }  // ours is newer: keep it
                    existing.removed = true
                    existing.object.drainWaiters(effects: &effects, error: CrucialError(.wrongView, "\(ref) was replaced by a newer copy; retry"))
                    shard.withLockedValue { $0[ref] = fresh }
                    return .some(nil)
                }
                carryOut(effects, box: existing)
                guard let outcome else { continue }
                return outcome ?? .void
            }
            if let refusal = refuse() { return refusal }
            let placed = shard.withLockedValue { map -> Bool in
                guard map[ref] == nil else { return false }
                map[ref] = fresh
                return true
            }
            if placed {
                if fresh.session != 0 { adopt(fresh) }
                return .void
            }
        }
        return .error(CrucialError(.internal, "\(ref) kept changing while its state was installed"))
    }

    /// Forgets the copy in `box` (it now lives on other nodes): its parked calls are
    /// told to retry, where the object is now.
    func drop(_ box: ObjectBox) {
        let removed = shard(box.ref).withLockedValue { map -> Bool in
            guard map[box.ref] === box else { return false }
            map.removeValue(forKey: box.ref)
            return true
        }
        guard removed else { return }
        if box.session != 0 { release(box) }
        var effects = Effects()
        box.lock.withLock {
            box.removed = true
            box.object.drainWaiters(effects: &effects, error: CrucialError(.wrongView, "\(box.ref) moved to another node; retry"))
        }
        carryOut(effects, box: box)
    }
}
