import Synchronization
internal import CrucialCore
internal import NIOCore

/// What calls leave behind: their effects carried out after the lock (wake-ups, timers,
/// holders watched), log events, and the state-memory count.
extension ObjectStore {
    /// The estimated bytes of all object state, as last counted.
    package var stateBytes: Int { stateBytesCounter.load() }

    /// Recounts the objects changed since the last count and the total (the server does
    /// this every second); returns it with the number of objects and of parked calls.
    @discardableResult
    package func refreshFootprints() -> (bytes: Int, objects: Int, parkedCalls: Int) {
        var total = 0
        var objects = 0
        var parked = 0
        for box in allBoxes() {
            guard let (bytes, waiting) = box.measure() else { continue }
            objects += 1
            parked += waiting
            total += bytes
        }
        stateBytesCounter.store(total)
        return (total, objects, parked)
    }

    /// Carries out `event` on `box` as a call is carried out: the box's step decides under its
    /// lock, the change (the whole new state) is queued for the replicas and the log there,
    /// and what it woke is answered once both have it, so that no answer is given that a
    /// failover could take back.
    ///
    /// In a cluster, a replicated object's events are handled by its primary alone, in the
    /// view it serves: a member moving objects handles them once it serves the next view,
    /// and a member that is not the primary leaves them to the one that is (which watches
    /// the same clients and arms its own timers).
    func handle(_ event: ObjectEvent, on box: ObjectBox) {
        let replication = self.replication
        var routedIn: UInt64 = 0
        if let replication, box.replicates {
            switch replication.eventRoute(of: box.ref) {
            case .serve(let viewID): routedIn = viewID
            case .later: return later(event, on: box)
            case .elsewhere: return
            }
        }
        let ran = run(event, on: .box(box), routedIn: routedIn) { context, state in
            // The view moved on since the route was read: route the event again.
            if let replication, state.replicates { context.viewChanged = replication.viewID != routedIn }
        }
        guard case .success(let ran) = ran else { return }
        if case .error(let error)? = ran.decision.outcome, error.code == .wrongView { return later(event, on: box) }
        _ = complete(ran, waiter: nil)
    }

    /// Handles `event` again shortly: this member is moving objects or unsure of its lease.
    private func later(_ event: ObjectEvent, on box: ObjectBox) {
        timerLoop.scheduleTask(in: .milliseconds(100)) { [weak box] in
            guard let box else { return }
            self.handle(event, on: box)
        }
    }

    /// Watches `clients`, which now hold something of `box` (semaphore permits): when one
    /// is gone, its holds are released.
    func hold(_ box: ObjectBox, by clients: [UInt64]) {
        guard !clients.isEmpty else { return }
        let lease = defaultSessionLease
        sessions.withLock { s in for c in clients { s.hold(box.ref, by: c, lease: lease, now: .now) } }
    }

    /// Watches the clients holding something of `box` (it came from disk or another member).
    func watchHolders(of box: ObjectBox) {
        hold(box, by: box.read { $0.object.holdingClients })
    }

    /// Releases what the gone `clients` held, and withdraws their detached waiting calls.
    func release(_ gone: [(client: UInt64, holds: Set<ObjectRef>)]) {
        for (client, refs) in gone {
            for ref in refs {
                guard let box = shard(ref).withLock({ $0[ref] }) else { continue }
                handle(.clientGone(client), on: box)
            }
        }
    }

    /// Answers woken waiters and arms timers. Called after the box lock is released.
    func carryOut(_ effects: Effects, box: ObjectBox) {
        for (waiter, outcome) in effects.wakeups {
            waiter.responder.respond(Reply(id: waiter.id.request, outcome: outcome))
        }
        for (id, delay) in effects.timers {
            timerLoop.scheduleTask(in: .nanoseconds(delay.nanosecondsClamped)) { [weak box] in
                guard let box else { return }
                self.handle(.timedOut(id), on: box)
            }
        }
    }
}
