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
        // Checked under the object's lock, so that no view change slips between check and apply.
        let refine: (inout StepContext, borrowing BoxState) -> Void = { context, _ in context.refusal = stale() }
        let (outcome, lsn): (Outcome, UInt64?)
        switch replicate.operation {
        case .remove:
            if let ran = runNow(.removed(.at(replicate.version)), on: .existing(ref), refine: refine) {
                (outcome, lsn) = Self.answer(ran)
            } else {
                (outcome, lsn) = tombstoneAlone(ref, at: replicate.version, refuse: stale)
            }
        case .install(let state):
            if let removed = tombstones.withLock({ $0[ref] }), removed >= replicate.version {
                return done(stale() ?? .void)  // removed since: the old copy stays dead
            }
            do throws(CrucialError) {
                let successor = try registry.box(ref, initial: state.state, persistent: state.persistent, session: state.session) {
                    "no object type \"\(ref.type)\" on this node: it cannot hold \(ref)"
                }
                (outcome, lsn) = Self.answer(runNow(.installed(state, version: replicate.version), on: .replacing(ref, successor: successor), refine: refine))
            } catch {
                return done(.error(error))
            }
        case .invoke(let invoke):
            let make = { () -> Result<(ObjectBox, creation: ObjectEvent?), CrucialError> in
                // The first change of a new object carries its creation.
                let base = self.tombstones.withLock { $0[ref] } ?? .zero
                guard let create = invoke.create, replicate.version.index == base.index + 1 else {
                    return .failure(CrucialError(.illegalState, "replica of \(ref) missing; send its state"))
                }
                do throws(CrucialError) {
                    let box = try self.registry.box(ref, initial: create.initial, persistent: create.persistent, session: create.session) {
                        "no object type \"\(ref.type)\" on this replica"
                    }
                    return .success((box, .created(create)))
                } catch {
                    return .failure(error)
                }
            }
            var applied = invoke
            applied.id = replicate.id
            let event = ObjectEvent.replicated(applied, version: replicate.version, codeBuild: replicate.codeBuild)
            (outcome, lsn) = Self.answer(runNow(event, on: .creating(ref, make: make), refine: refine))
        case .collect:
            (outcome, lsn) = collect(ref, at: replicate.version, refuse: stale)
        }
        guard let lsn, let log, case .value = outcome else { return done(outcome) }
        log.whenSafe(lsn) { failure in done(failure.map { .error($0) } ?? outcome) }
    }

    /// A replica's answer to what the runner did, and the log record it waits for.
    private static func answer(_ ran: Result<Ran, CrucialError>?) -> (Outcome, UInt64?) {
        switch ran {
        case nil: (.void, nil)
        case .failure(let error): (.error(error), nil)
        case .success(let ran): (ran.decision.outcome ?? .void, ran.pending.lsn)
        }
    }

    /// A removal of an object with no copy here: its tombstone alone is kept and logged, so
    /// that a restart remembers it.
    private func tombstoneAlone(_ ref: ObjectRef, at version: ObjectVersion, refuse: () -> Outcome?) -> (Outcome, UInt64?) {
        if let refusal = refuse() { return (refusal, nil) }
        guard version != .zero else { return (.void, nil) }
        let recorded = tombstones.withLock { t -> Bool in
            guard (t[ref] ?? .zero) < version else { return false }
            t[ref] = version
            return true
        }
        guard recorded, let log else { return (.void, nil) }
        return (.void, log.append { LogRecord(lsn: $0, ref: ref, operation: .remove, version: version) })
    }

    /// Forgets the tombstone of `ref` at `version` or older, now that tombstones are collected
    /// (every replica has it, and no member that could bring an older copy back is away); a
    /// copy older than it (one that missed the removal) goes too. Logged, so that a restart
    /// does not bring the tombstone back.
    func collect(_ ref: ObjectRef, at version: ObjectVersion, refuse: () -> Outcome? = { nil }) -> (Outcome, UInt64?) {
        if let refusal = refuse() { return (refusal, nil) }
        if let stale = shard(ref).withLock({ $0[ref] }), stale.read({ $0.version < version }) {
            _ = runNow(.removed(.at(.zero)), on: .box(stale))
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
    func removeInCluster(_ ref: ObjectRef, in viewID: UInt64) -> (existed: Bool, replicated: EventLoopFuture<Outcome?>?) {
        guard case .success(let ran) = runNow(.removed(.called), on: .existing(ref), routedIn: viewID) else { return (false, nil) }
        // Refused (the log fails): the answer is the refusal, not that it existed.
        if case .error? = ran.decision.outcome { return (true, timerLoop.makeSucceededFuture(ran.decision.outcome)) }
        return (true, ran.pending.replicated)
    }

    /// Which of `entries` (objects another member would move here) this node wants: those
    /// it holds no copy of as new as the entry, nor a tombstone as new.
    func wanted(_ entries: [OfferEntry]) -> [Int] {
        entries.indices.filter { i in
            let e = entries[i]
            if let removed = tombstones.withLock({ $0[e.ref] }), removed >= e.version { return false }
            guard let box = shard(e.ref).withLock({ $0[e.ref] }) else { return true }
            return box.read { $0.removed || $0.version < e.version }
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
        _ = runNow(.removed(.moved), on: .box(box))
    }
}
