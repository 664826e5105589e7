import Synchronization
internal import CrucialCore
internal import NIOCore

/// The replica side of replication and the moving of objects between nodes.
///
/// A replica logs what it applies (with the object's version) exactly as a primary logs
/// its own changes, so that every copy of a persistent object is on disk; under
/// `--fsync always` its acknowledgement waits for the disk.
extension ObjectStore {
    /// Applies what a primary sent; `done` gets the answer once its record is in this
    /// member's log (fsynced under `--fsync always`). `currentView` is the view this
    /// node serves; an operation from an older view is refused with WRONG_VIEW, checked
    /// under the object's lock so that no view change slips between check and apply.
    func apply(_ replicate: Replicate, currentView: @escaping @Sendable () -> View?, done: @escaping @Sendable (Outcome) -> Void) {
        let ref = replicate.ref
        let stale: () -> Outcome? = {
            guard let view = currentView() else { return nil }
            return replicate.viewID < view.id ? .wrongView(view) : nil
        }
        let (outcome, lsn): (Outcome, UInt64?)
        switch replicate.operation {
        case .remove:
            (outcome, lsn) = applyRemoval(ref, at: replicate.version, refuse: stale)
        case .install(let state):
            (outcome, lsn) = install(ref, state, version: replicate.version, refuse: stale)
        case .invoke(let invoke):
            (outcome, lsn) = applyInvoke(invoke, replicate, refuse: stale)
        case .collect:
            (outcome, lsn) = collect(ref, at: replicate.version, refuse: stale)
        }
        guard let lsn, let log, case .value = outcome else { return done(outcome) }
        log.whenSafe(lsn) { failure in done(failure.map { .error($0) } ?? outcome) }
    }

    /// The answer to a change a replica cannot log (its disk failed): nothing applied.
    private func logRefusal() -> Outcome? {
        guard let failure = log?.failure else { return nil }
        return .error(CrucialError(.resourceExhausted, failure.message))
    }

    private func applyInvoke(_ invoke: Invoke, _ replicate: Replicate, refuse stale: () -> Outcome?) -> (Outcome, UInt64?) {
        let ref = replicate.ref
        for _ in 0..<8 {
            var box = shard(ref).withLock { $0[ref] }
            var created: Value?
            if box == nil {
                // The first change of a new object carries its creation.
                let base = tombstones.withLock { $0[ref] } ?? .zero
                guard let create = invoke.create, replicate.version.index == base.index + 1 else {
                    return (.error(CrucialError(.illegalState, "replica of \(ref) missing; send its state")), nil)
                }
                let object: any SharedObject
                do throws(CrucialError) {
                    object = try registry.make(ref.type, initial: create.initial) { "no object type \"\(ref.type)\" on this replica" }
                } catch {
                    return (.error(error), nil)
                }
                let fresh = ObjectBox(ref: ref, object: object, persistent: create.persistent, session: create.session)
                fresh.version = base
                box = shard(ref).withLock { map in
                    if let raced = map[ref] { return raced }
                    map[ref] = fresh
                    return fresh
                }
                if box === fresh { created = create.initial }
            }
            guard let box else { continue }
            // The primary answers the client: here the call is detached.
            let waiter = Waiter.detached(clientID: invoke.clientID, seq: invoke.seq)
            var call = Call(ref: ref, method: invoke.method, args: invoke.args, waiter: waiter)
            let outcome: (Outcome, UInt64?)? = box.locked {
                guard !box.removed else { return nil }
                if let refusal = stale() { return (refusal, nil) }
                // Another build of the type's code may compute another state: take the state instead.
                if let mine = box.object.code?.build, mine != replicate.codeBuild {
                    return (
                        .error(
                            CrucialError(
                                .illegalState,
                                "replica of \(ref) runs build \(mine.isEmpty ? "(linked)" : mine) of \(ref.type), the primary build "
                                    + "\(replicate.codeBuild.isEmpty ? "(linked)" : replicate.codeBuild); send its state")),
                        nil
                    )
                }
                guard box.version.index + 1 == replicate.version.index else {
                    return (
                        .error(
                            CrucialError(.illegalState, "replica of \(ref) is at \(box.version), this change makes \(replicate.version); send its state")),
                        nil
                    )
                }
                if box.persistent, let refusal = logRefusal() { return (refusal, nil) }
                if let created { logEvent(.create(initial: created), on: box) }
                _ = box.retries.lookup(client: invoke.clientID, seq: invoke.seq, ackedBelow: invoke.ackedBelow)
                _ = run(&call, on: box, clientID: invoke.clientID, seq: invoke.seq)
                box.version = replicate.version
                box.footprintStale = true
                logEvent(
                    .invoke(
                        method: invoke.method, args: invoke.args, clientID: invoke.clientID, seq: invoke.seq, connection: 0,
                        request: replicate.id), on: box)
                return (.void, box.persistent && log != nil ? box.lastLSN : nil)
            }
            guard let outcome else { continue }
            if box.persistent, created == nil { tombstones.withLock { _ = $0.removeValue(forKey: ref) } }
            return outcome
        }
        return (.error(CrucialError(.internal, "\(ref) kept being replaced while a change was applied")), nil)
    }

    /// Replaces the copy of `ref` with `state` unless the copy (or a tombstone) is newer.
    func install(_ ref: ObjectRef, _ state: ObjectState, version: ObjectVersion, refuse: () -> Outcome? = { nil }) -> (Outcome, UInt64?) {
        if let removed = tombstones.withLock({ $0[ref] }), removed >= version {
            return (refuse() ?? .void, nil)  // removed since: the old copy stays dead
        }
        let object: any SharedObject
        do throws(CrucialError) {
            object = try registry.make(ref.type, initial: state.state) { "no object type \"\(ref.type)\" on this node: it cannot hold \(ref)" }
        } catch {
            return (.error(error), nil)
        }
        let fresh = ObjectBox(ref: ref, object: object, persistent: state.persistent, session: state.session)
        fresh.version = version
        fresh.retries.restore(state.retries)
        let shard = self.shard(ref)
        for _ in 0..<8 {
            let existing = shard.withLock { $0[ref] }
            if let existing {
                var effects = Effects()
                let outcome: (Outcome, UInt64?)? = existing.locked {
                    guard !existing.removed else { return nil }
                    if let refusal = refuse() { return (refusal, nil) }
                    guard version > existing.version else { return (.void, nil) }  // ours is as new: keep it
                    if fresh.persistent, let refusal = logRefusal() { return (refusal, nil) }
                    existing.removed = true
                    existing.object.drainWaiters(effects: &effects, error: CrucialError(.wrongView, "\(ref) was replaced by a newer copy; retry"))
                    fresh.locked {
                        logEvent(.install(state), on: fresh)
                        shard.withLock { $0[ref] = fresh }
                    }
                    return (.void, fresh.persistent && log != nil ? fresh.lastLSN : nil)
                }
                carryOut(effects, box: existing)
                guard let outcome else { continue }
                watchHolders(of: fresh)
                return outcome
            }
            if let refusal = refuse() { return (refusal, nil) }
            if fresh.persistent, let refusal = logRefusal() { return (refusal, nil) }
            let placed = fresh.locked {
                let placed = shard.withLock { map -> Bool in
                    guard map[ref] == nil else { return false }
                    map[ref] = fresh
                    return true
                }
                if placed { logEvent(.install(state), on: fresh) }
                return placed
            }
            if placed {
                tombstones.withLock { _ = $0.removeValue(forKey: ref) }
                if fresh.session != 0 { adopt(fresh) }
                watchHolders(of: fresh)
                return (.void, fresh.persistent && log != nil ? fresh.lastLSN : nil)
            }
        }
        return (.error(CrucialError(.internal, "\(ref) kept changing while its state was installed")), nil)
    }

    /// Removes the copy of `ref` unless it is newer than `version`, leaving a tombstone.
    private func applyRemoval(_ ref: ObjectRef, at version: ObjectVersion, refuse: () -> Outcome?) -> (Outcome, UInt64?) {
        if let refusal = refuse() { return (refusal, nil) }
        if let existing = shard(ref).withLock({ $0[ref] }), existing.locked({ existing.version > version }) {
            return (.void, nil)  // a newer copy (re-created since) stays
        }
        let box = retire(ref) { box in if version != .zero { box.version = version } }
        guard version != .zero else { return (.void, box?.lastLSN) }
        let recorded = tombstones.withLock { t -> Bool in
            guard (t[ref] ?? .zero) < version else { return false }
            t[ref] = version
            return true
        }
        guard box == nil, recorded, let log else { return (.void, box?.lastLSN) }
        // No copy here: the tombstone alone is logged, so that a restart remembers it.
        let lsn = log.append { LogRecord(lsn: $0, ref: ref, operation: .remove, version: version) }
        return (.void, lsn)
    }

    /// Forgets the tombstone of `ref` at `version` or older, now that tombstones are collected
    /// (every replica has it, and no member that could bring an older copy back is away); a
    /// copy older than it (one that missed the removal) goes too. Logged, so that a restart
    /// does not bring the tombstone back.
    func collect(_ ref: ObjectRef, at version: ObjectVersion, refuse: () -> Outcome? = { nil }) -> (Outcome, UInt64?) {
        if let refusal = refuse() { return (refusal, nil) }
        if let stale = shard(ref).withLock({ $0[ref] }), stale.locked({ stale.version < version }) {
            retire(ref) { _ in }
        }
        let dropped = tombstones.withLock { t -> Bool in
            guard let removed = t[ref], removed <= version else { return false }
            t[ref] = nil
            return true
        }
        guard dropped, let log else { return (.void, nil) }
        return (.void, log.append { LogRecord(lsn: $0, ref: ref, operation: .collect, version: version) })
    }

    /// Removes `ref` on its primary: a replicated object leaves a tombstone at its next
    /// version, here and on its replicas. The future holds nil once the replicas applied it.
    func removeInCluster(_ ref: ObjectRef, replication: any Replication, in viewID: UInt64) -> (
        existed: Bool, replicated: EventLoopFuture<Outcome?>?
    ) {
        var replicated: EventLoopFuture<Outcome?>?
        let box = retire(ref) { box in
            guard box.replicates else { return }
            box.version = ObjectVersion(view: viewID, index: box.version.index + 1)
            replicated = replication.replicate(.remove, of: box, at: box.version, in: viewID)
            let version = box.version
            tombstones.withLock { $0[ref] = version }
        }
        return (box != nil, replicated)
    }

    /// Which of `entries` (objects another member would move here) this node wants: those
    /// it holds no copy of as new as the entry, nor a tombstone as new.
    func wanted(_ entries: [OfferEntry]) -> [Int] {
        entries.indices.filter { i in
            let e = entries[i]
            if let removed = tombstones.withLock({ $0[e.ref] }), removed >= e.version { return false }
            guard let box = shard(e.ref).withLock({ $0[e.ref] }) else { return true }
            return box.locked { box.removed || box.version < e.version }
        }
    }

    /// Drops the persistent copies and tombstones of the objects `stale` picks (a member back
    /// after its tombstones were collected elsewhere), logging it; returns how many of each.
    func discard(where stale: (ObjectRef) -> Bool) -> (copies: Int, tombstones: Int) {
        var copies = 0
        for box in allBoxes() where box.persistent && stale(box.ref) {
            drop(box)
            copies += 1
        }
        let dropped = tombstones.withLock { t in
            let dropped = t.filter { stale($0.key) }
            for ref in dropped.keys { t[ref] = nil }
            return dropped
        }
        if let log {
            for (ref, version) in dropped { _ = log.append { LogRecord(lsn: $0, ref: ref, operation: .collect, version: version) } }
        }
        return (copies, dropped.count)
    }

    /// How many tombstones are held here.
    var tombstoneCount: Int { tombstones.withLock { $0.count } }

    /// The tombstones held here.
    func allTombstones() -> [(ObjectRef, ObjectVersion)] {
        tombstones.withLock { $0.map { ($0.key, $0.value) } }
    }

    /// Forgets the tombstones of objects this node no longer keeps.
    func dropTombstones(where unwanted: (ObjectRef) -> Bool) {
        tombstones.withLock { t in t = t.filter { !unwanted($0.key) } }
    }

    /// Forgets the copy in `box` (it now lives on other nodes): its parked calls are
    /// told to retry, where the object is now.
    func drop(_ box: ObjectBox) {
        let removed = shard(box.ref).withLock { map -> Bool in
            guard map[box.ref] === box else { return false }
            map.removeValue(forKey: box.ref)
            return true
        }
        guard removed else { return }
        if box.session != 0 { release(box) }
        var effects = Effects()
        box.locked {
            logEvent(.drop, on: box)
            box.removed = true
            box.object.drainWaiters(effects: &effects, error: CrucialError(.wrongView, "\(box.ref) moved to another node; retry"))
        }
        carryOut(effects, box: box)
    }
}
