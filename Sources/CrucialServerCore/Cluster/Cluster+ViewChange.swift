import Synchronization
internal import CrucialTransport
internal import CrucialCore
internal import Logging
internal import NIOCore

/// View changes: adopting a new view, detecting failed members, handing objects over to
/// their new owners, leaving.
extension Cluster {
    // MARK: View changes

    /// Adopts a view from etcd and moves objects for it.
    func adopt(_ change: Membership.Change) {
        let view = change.view
        let outcome = state.withLock { s -> (previous: View, inView: Bool)? in
            let previous = s.view
            guard (previous?.id ?? 0) < view.id else { return nil }
            s.view = view
            s.left = change.left
            s.ring = HashRing(members: view.members)
            s.ready = false
            s.ownTransferDone = false
            s.reports = s.reports.filter { $0.key >= view.id }
            for (id, l) in s.links where !view.members.contains(l.member) {
                l.close()
                s.links[id] = nil
            }
            s.inView = view.members.contains { $0.id == s.me.id }
            if !s.inView, !s.leaving, s.servesUntil != nil { s.wantsRegistration = true }
            return (previous ?? View(id: 0, members: [], rf: view.rf), s.inView)
        }
        guard let (previous, inView) = outcome else { return }
        guard inView else {
            if !state.withLock({ $0.leaving }) {
                logger.error(
                    "this member is not in the cluster's view any more (its etcd lease lapsed); it keeps its objects and registers again",
                    metadata: ["view": "\(view.id)"])
                leaseLapsed()
            }
            wakeWaiting()  // they re-route to the members that have the objects now
            return
        }
        logger.notice(
            "new view", metadata: ["view": "\(view.id)", "members": "\(view.members.map(\.id).joined(separator: ","))", "was": "\(previous.id)"])
        wakeWaiting()  // they re-route: some now belong elsewhere
        Task { await transfer(for: view) }
        watchPeers(of: view)
    }

    // MARK: Failure detection

    enum Probe { case answered, refused, silent }

    /// Pings every other member of `view` every 100 ms, until the next view. A member whose
    /// port refuses the connection is dead (its process is gone, the machine is up): its
    /// lease is ended, so that the others take its objects over now rather than after the
    /// lease. A member that only falls silent (paused, cut off) is left to its lease: it
    /// may still be serving reads, and only its own lease deadline tells it to stop, so
    /// ending its lease early would let two members answer for one object. A node that
    /// cannot be sure of its own lease accuses nobody.
    func watchPeers(of view: View) {
        guard fastFailover else { return }
        let task = Task { [self] in
            while !Task.isCancelled {
                let others = state.withLock { s in view.members.filter { $0.id != s.me.id } }
                let probes = await withTaskGroup(of: (View.Member, Probe).self) { group in
                    for m in others { group.addTask { (m, await self.probe(m)) } }
                    var all: [(View.Member, Probe)] = []
                    for await p in group { all.append(p) }
                    return all
                }
                if Task.isCancelled { return }
                for (m, probe) in probes where probe == .refused { suspect(m, "its port refuses connections") }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        let old = state.withLock { s -> Task<Void, Never>? in
            defer { s.detector = task }
            return s.detector
        }
        old?.cancel()
    }

    /// One ping to `member`: answered, refused (nothing listens), or silent within 500 ms.
    func probe(_ member: View.Member) async -> Probe {
        let peer: PeerLink = state.withLock { s in link(to: member, in: &s) }
        let answer = peer.send { id in Frame.ping(id: id) }
        let once = Mutex(false)
        let loop = self.loop
        return await withCheckedContinuation { (c: CheckedContinuation<Probe, Never>) in
            let finish: @Sendable (Probe) -> Void = { p in
                if once.withLock({ done in defer { done = true }; return !done }) { c.resume(returning: p) }
            }
            answer.whenComplete { result in
                switch result {
                case .success: finish(.answered)
                case .failure(let e): finish("\(e)".contains("refused the connection") ? .refused : .silent)
                }
            }
            loop.scheduleTask(in: .milliseconds(500)) { finish(.silent) }
        }
    }

    func suspect(_ member: View.Member, _ reason: String) {
        let accuse = state.withLock { s -> Bool in
            guard let until = s.servesUntil, ContinuousClock.now < until, s.inView,
                s.view?.members.contains(member) == true
            else { return false }
            if let last = s.evicted[member.id], ContinuousClock.now - last < leaseTTL { return false }
            s.evicted[member.id] = .now
            return true
        }
        guard accuse else { return }
        logger.error(
            "a member looks dead; ending its etcd lease so that the view changes now",
            metadata: ["member": "\(member.id)", "incarnation": "\(member.incarnation)", "reason": "\(reason)"])
        onDead(member, reason)
    }

    /// Sends the objects held here to the replicas that get them in `view`, then says so.
    func transfer(for view: View) async {
        // The members that get objects must know their types first.
        await sharePlugins(with: view)
        guard viewID == view.id else { return }
        let (stableRing, ring) = state.withLock { ($0.stableRing, $0.ring) }
        let (sends, moved) = handOver(from: stableRing, to: ring, viewID: view.id)
        let failures = (try? await EventLoopFuture.whenAllSucceed(sends, on: loop).get())?.compactMap { $0 } ?? []
        guard viewID == view.id else { return }  // superseded: the next transfer does the work
        if !failures.isEmpty {
            logger.warning(
                "some objects could not be moved; trying again", metadata: ["failures": "\(failures.count)", "first": "\(failures[0])", "view": "\(view.id)"])
            try? await Task.sleep(for: .milliseconds(500))
            return await transfer(for: view)
        }
        // Tell the others; a member that cannot be told is gone, and its departure makes a new view.
        let (report, links) = state.withLock { s -> (TransferDone, [PeerLink]) in
            let left = s.left
            let report = s.history.report(
                id: 0, viewID: view.id, from: s.me.id, leftGracefully: { left[$0.id] == $0.incarnation }, into: view, empty: s.empty)
            s.reports[view.id, default: [:]][s.me.id] = report
            let me = s.me.id
            return (report, view.members.filter { $0.id != me }.map { link(to: $0, in: &s) })
        }
        while viewID == view.id {
            let told = links.map { l in
                l.send { id in
                    var r = report
                    r.id = id
                    return .transferDone(r)
                }.map { _ in true }.recover { _ in false }
            }
            let results = (try? await EventLoopFuture.whenAllSucceed(told, on: loop).get()) ?? []
            if results.allSatisfy({ $0 }) { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
        guard viewID == view.id else { return }
        logger.info("moved objects for the new view", metadata: ["view": "\(view.id)", "objects": "\(moved)"])
        state.withLock { $0.ownTransferDone = true }
        checkReady()
    }

    /// Serves the current view once this node and every other member are done moving.
    func checkReady() {
        let completed = state.withLock { s -> (view: View, ring: HashRing, history: ViewHistory, newlyLost: [Hole.Lost])? in
            guard let view = s.view, !s.ready, s.ownTransferDone, s.inView else { return nil }
            let heard = s.reports[view.id] ?? [:]
            guard view.members.allSatisfy({ heard[$0.id] != nil }) else { return nil }
            let lostBefore = Set(s.history.holes.flatMap(\.lost))
            s.history = s.history.completing(view, reports: Array(heard.values)).pruned(by: s.acceptance)
            s.holes = HoleIndex(s.history.holes, acceptance: s.acceptance)
            s.ready = true
            s.empty = false
            s.stableRing = s.ring
            return (view, s.ring, s.history, s.history.holes.flatMap(\.lost).filter { !lostBefore.contains($0) })
        }
        guard let (view, ring, history, newlyLost) = completed else { return }
        onServed(history)
        if !newlyLost.isEmpty {
            // No loss is silent: the objects are refused with DATA_LOSS, and the log says why.
            logger.critical(
                "members came back without their data while every copy of some objects was on them: those objects are lost, and calls on them are refused with DATA_LOSS until an operator accepts the loss (crucial cluster accept-loss, or crucial objects forget TYPE KEY)",
                metadata: [
                    "lost": "\(Array(Set(newlyLost.map(\.id))).sorted().joined(separator: ","))", "view": "\(view.id)",
                    "holes": "\(history.holes.filter { !$0.lost.isEmpty }.map { "lost \($0.lost.map(\.id).joined(separator: ",")) of \($0.members.joined(separator: ","))" })",
                ])
        }
        // Copies this node no longer keeps: every new replica has acknowledged them. Of the
        // copies it keeps, the calls parked here on objects whose primary is now another
        // member go there (told to retry, they take their parties over on the new primary);
        // on objects it is the primary of, it watches the clients of detached parties (a
        // failover left them), which are withdrawn if their client does not come back.
        var dropped = 0
        let me = state.withLock { $0.me.id }
        for box in store.allBoxes() {
            let replicas = ring.replicas(for: box.ref, count: copies(box))
            if !replicas.contains(where: { $0.id == me }) {
                store.drop(box)
                dropped += 1
            } else if replicas.first?.id != me {
                store.detachWaiters(of: box, CrucialError(.wrongView, "\(box.ref) is served by another member now; retry"))
            } else {
                store.watchHolders(of: box)
            }
        }
        store.dropTombstones { !ring.replicas(for: $0, count: rf).contains(where: { $0.id == me }) }
        if !history.holes.isEmpty {
            logger.error(
                "some objects' copies are all on members that left without handing them over: they are unavailable until one is back",
                metadata: ["holes": "\(history.holes.map { "absent \($0.absent.joined(separator: ",")) of \($0.members.joined(separator: ","))" })"])
        }
        state.withLock { $0.settledViewID = max($0.settledViewID, view.id) }
        logger.notice("serving view", metadata: ["view": "\(view.id)", "objects": "\(store.count)", "dropped": "\(dropped)"])
        wakeWaiting()
    }

    /// Sends every object held here to its replicas in `new` that were not replicas in
    /// `old` (as the same incarnation), and every tombstone likewise; returns the
    /// acknowledgements (nil: applied) and how many objects were offered. Each target is
    /// first offered the versions (``Frame/offer(id:viewID:entries:)``) and sent only the
    /// objects it wants: a member back from a restart gets only what changed meanwhile.
    func handOver(from old: HashRing, to new: HashRing, viewID: UInt64) -> ([EventLoopFuture<Outcome?>], Int) {
        var sends: [EventLoopFuture<Outcome?>] = []
        var moved = 0
        let me = state.withLock { $0.me.id }
        func targets(_ ref: ObjectRef, _ count: Int) -> [View.Member] {
            let had = Set(old.replicas(for: ref, count: count))
            return new.replicas(for: ref, count: count).filter { $0.id != me && !had.contains($0) }
        }
        var offers: [View.Member: [ObjectBox]] = [:]
        for box in store.allBoxes() {
            let to = targets(box.ref, copies(box))
            guard !to.isEmpty else { continue }
            moved += 1
            for t in to { offers[t, default: []].append(box) }
        }
        for (target, boxes) in offers {
            let link = state.withLock { s in self.link(to: target, in: &s) }
            for start in stride(from: 0, to: boxes.count, by: 5000) {
                let chunk = Array(boxes[start..<min(boxes.count, start + 5000)])
                sends.append(offer(chunk, to: link, viewID: viewID))
            }
        }
        for (ref, version) in store.allTombstones() {
            let to = targets(ref, rf)
            guard !to.isEmpty else { continue }
            let links = state.withLock { s in to.map { link(to: $0, in: &s) } }
            sends += send(.remove, of: ref, at: version, in: viewID, to: links)
        }
        return (sends, moved)
    }

    /// Offers `boxes` to `link`'s member and installs the ones it wants; nil once it has them.
    func offer(_ boxes: [ObjectBox], to link: PeerLink, viewID: UInt64) -> EventLoopFuture<Outcome?> {
        let entries = boxes.map { box in box.read { OfferEntry(ref: box.ref, version: $0.version) } }
        let loop = self.loop
        return link.send { .offer(id: $0, viewID: viewID, entries: entries) }
            .flatMap { [self] frame -> EventLoopFuture<Outcome?> in
                guard case .result(let reply) = frame, case .value(.ints(let wanted)) = reply.outcome else {
                    if case .result(let reply) = frame, case .wrongView(let view) = reply.outcome { return loop.makeSucceededFuture(.wrongView(view)) }
                    // A refusal (a member started without the cluster's admin token, say) is passed on as it came.
                    if case .result(let reply) = frame, case .error(let refusal) = reply.outcome {
                        return loop.makeSucceededFuture(
                            .error(CrucialError(refusal.code, "member \(link.member.id) refused an Offer: \(refusal.message)")))
                    }
                    return loop.makeSucceededFuture(.error(CrucialError(.wrongView, "member \(link.member.id) answered an Offer with \(frame.kindName); retry")))
                }
                var installs: [EventLoopFuture<Outcome?>] = []
                for i in wanted where i >= 0 && Int(i) < boxes.count {
                    let box = boxes[Int(i)]
                    let exported: (ObjectState, ObjectVersion)? = box.read { state in
                        state.removed ? nil : (state.exported, state.version)
                    }
                    guard let (objectState, version) = exported else { continue }
                    installs += send(.install(objectState), of: box.ref, at: version, in: viewID, to: [link])
                }
                return EventLoopFuture.whenAllSucceed(installs, on: loop).map { $0.compactMap { $0 }.first }
            }
            .recover { .error(CrucialError(.wrongView, "member \(link.member.id) is unreachable (\($0)); retry")) }
    }

    /// Leaves gracefully: stops serving, hands every object to the nodes that keep it
    /// once this one is gone, then lets `deregister` take it out of the view.
    func leave(deregister: (_ incarnation: UInt64) async -> Void) async {
        let (view, ring, me) = state.withLock { s -> (View?, HashRing, View.Member) in
            s.leaving = true
            s.ready = false
            s.detector?.cancel()
            s.detector = nil
            return (s.view, s.ring, s.me)
        }
        wakeWaiting()  // told the current view: they back off and find the objects' new places
        guard let view else { return await deregister(me.incarnation) }
        let remaining = View(id: view.id, members: view.members.filter { $0.id != me.id }, rf: view.rf)
        let (sends, moved) = handOver(from: ring, to: HashRing(members: remaining.members), viewID: view.id)
        let failures = (try? await EventLoopFuture.whenAllSucceed(sends, on: loop).get())?.compactMap { $0 } ?? []
        logger.notice("handed objects over before leaving", metadata: ["objects": "\(moved)", "failures": "\(failures.count)"])
        await deregister(me.incarnation)
    }

    /// Stops for good: closes the links, and sends and handles nothing more (a member that
    /// stops is leaving; what it still holds lives on elsewhere).
    func shutdown() {
        let links = state.withLock { s in
            s.leaving = true
            defer {
                s.links.removeAll()
                s.detector?.cancel()
                s.detector = nil
            }
            return Array(s.links.values)
        }
        for l in links { l.close() }
        wakeWaiting()
    }
}
