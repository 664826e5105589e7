import Synchronization
internal import CrucialTransport
internal import CrucialCore
internal import Logging
internal import NIOCore

/// This node's part in a cluster: which view it serves, where objects live, sending
/// changes to replicas, and moving objects when the view changes.
///
/// Each view change is a transfer: every node sends each object it holds to the new
/// replicas that did not hold it in the last view it completed, waits for them to
/// apply it, then tells every other member it is done with the view. A node serves a
/// view once it is done and has heard "done" from all the others; calls arriving
/// meanwhile wait. Copies are ordered by version, so a node receiving the same object
/// from several holders keeps the newest, and a removal leaves a tombstone so that an
/// old copy coming back does not revive the object.
///
/// A node serves only while its etcd lease is surely valid (its renewal deadline by the
/// monotonic clock, minus a margin): a node cut off from etcd stops answering before
/// etcd can drop it and the others take its objects over. Dropped while alive, it keeps
/// its objects, registers again as a new incarnation and merges them back (by version).
/// A node back from a restart or a lapse hands every copy it has to the view's replicas,
/// since it cannot know what changed while it was away.
final class Cluster: Replication, Sendable {
    /// Where a call goes.
    enum Route {
        /// This node is the object's primary in view `viewID`.
        case serve(viewID: UInt64)
        /// Another node is; the caller should learn this view.
        case wrongView(View)
        /// A view change is in progress, or the caller knows a newer view than this node.
        case wait
        /// This node cannot be sure of its view: refuse (the client retries).
        case unavailable(CrucialError)
    }

    private struct State {
        var me: View.Member
        var view: View?
        var ring = HashRing(members: [])
        /// The ring of the last view whose transfer completed here; empty after a restart or
        /// a lapse, so that this node hands over every copy it has.
        var stableRing = HashRing(members: [])
        var history: ViewHistory
        var holes = HoleIndex([])
        /// Graceful departures: node id → the incarnation that left.
        var left: [String: UInt64] = [:]
        var ready = false
        var ownTransferDone = false
        var leaving = false
        /// This node is in the view it adopted last.
        var inView = false
        /// Until when this node may serve: its lease's renewal deadline minus the margin
        /// (nil before the first registration).
        var servesUntil: ContinuousClock.Instant?
        /// The view dropped this node: it must register again.
        var wantsRegistration = false
        var reports: [UInt64: [String: TransferDone]] = [:]
        var waiting: [@Sendable () -> Void] = []
        var links: [String: PeerLink] = [:]
        /// Pings the other members of the current view.
        var detector: Task<Void, Never>?
        /// When this node last had a member's lease ended (at most once a lease TTL each).
        var evicted: [String: ContinuousClock.Instant] = [:]
    }

    let rf: Int
    let leaseTTL: Duration
    /// How long before its lease's deadline this node stops serving: etcd's and this
    /// machine's clocks may run at slightly different rates, and a renewal's answer takes time.
    let leaseMargin: Duration
    private let store: ObjectStore
    private let loop: any EventLoop
    private let identity: ConnectionIdentity
    private let logger: Logger
    private let state: Mutex<State>
    /// A deliberately broken node for the tests that must catch one (``ClusterFaults``).
    private let faults: ClusterFaults
    /// Called with the history each time a view is served (to keep it in the data directory).
    private let onServed: @Sendable (ViewHistory) -> Void
    /// Whether a member whose port refuses connections is declared dead at once.
    let fastFailover: Bool
    /// Ends a dead member's lease (this incarnation of it), so that the view changes now.
    private let onDead: @Sendable (View.Member, String) -> Void

    /// `identity`: how this node connects to the others (with the admin secret when there is one).
    /// `history`: what the data directory remembers of the cluster's past (nil: nothing).
    init(
        me: View.Member, rf: Int, leaseTTL: Int, store: ObjectStore, loop: any EventLoop, identity: ConnectionIdentity, logger: Logger,
        history: ViewHistory? = nil, onServed: @escaping @Sendable (ViewHistory) -> Void = { _ in },
        fastFailover: Bool = false, faults: ClusterFaults = [], onDead: @escaping @Sendable (View.Member, String) -> Void = { _, _ in }
    ) {
        self.faults = faults
        self.fastFailover = fastFailover
        self.onDead = onDead
        if faults.contains(.skipReplication) { logger.critical("fault injected: this node does not replicate; it loses data on purpose") }
        self.rf = max(1, rf)
        self.leaseTTL = .seconds(leaseTTL)
        self.leaseMargin = max(.milliseconds(200), .seconds(leaseTTL) / 5)
        self.store = store
        self.loop = loop
        self.identity = identity
        self.logger = logger
        self.onServed = onServed
        var s = State(me: me, history: history ?? ViewHistory())
        s.holes = HoleIndex(s.history.holes)
        self.state = Mutex(s)
    }

    var me: View.Member { state.withLock { $0.me } }
    var view: View? { state.withLock { $0.view } }
    var history: ViewHistory { state.withLock { $0.history } }
    /// The view calls are served in; a leaving node serves none (`UInt64.max` matches no call).
    var viewID: UInt64 { state.withLock { $0.leaving ? .max : $0.view?.id ?? 0 } }

    /// How many copies `box` has in the cluster.
    private func copies(_ box: ObjectBox) -> Int { box.replicates ? rf : 1 }

    // MARK: Routing

    /// Where a call on `ref` from a client in view `clientView` goes.
    func route(_ ref: ObjectRef, clientView: UInt64) -> Route {
        state.withLock { s in
            guard let view = s.view else { return .wait }
            if s.leaving || !s.inView { return .wrongView(view) }
            if !s.ready { return .wait }
            // A client ahead of this node backs off and retries; by then this node has caught up.
            if clientView > view.id { return .wrongView(view) }
            // The primary is the first replica whatever the object's kind.
            guard s.ring.primary(for: ref)?.id == s.me.id else { return .wrongView(view) }
            if let until = s.servesUntil, ContinuousClock.now >= until {
                return .unavailable(
                    CrucialError(
                        .unavailable,
                        "member \(s.me.id) cannot be sure it still belongs to view \(view.id): its etcd lease was not renewed in time "
                            + "(is etcd reachable?); it serves again once renewed or registered again; retry"))
            }
            return .serve(viewID: view.id)
        }
    }

    /// Why a call on `ref` (kept on `copies` members) cannot be served now, if it cannot:
    /// every copy is on members that left without handing it over.
    func unavailability(of ref: ObjectRef, copies: Int) -> CrucialError? {
        let holders: [String]? = state.withLock { s in s.holes.isEmpty ? nil : s.holes.absentHolders(of: ref, copies: copies) }
        guard let holders else { return nil }
        return CrucialError(
            .unavailable,
            "every copy of \(ref) is on \(holders.joined(separator: ", ")), which left the cluster without handing it over; "
                + "it is served again once one of them is back (a member started with that node id; with an empty data dir "
                + "if its disk is lost, which gives its copies up); retry")
    }

    /// Runs `callback` once this node serves a view (again); at once if it does.
    func whenReady(_ callback: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if s.ready || s.leaving || !s.inView { return true }
            s.waiting.append(callback)
            return false
        }
        if now { callback() }
    }

    private func wakeWaiting() {
        let waiting = state.withLock { s in
            defer { s.waiting.removeAll() }
            return s.waiting
        }
        for w in waiting { w() }
    }

    // MARK: The lease

    /// Registered (again) in etcd as incarnation `registration.incarnation`.
    func registered(_ registration: Membership.Registration) {
        state.withLock { s in
            s.me.incarnation = registration.incarnation
            s.wantsRegistration = false
            s.servesUntil = registration.grantedAt + leaseTTL - leaseMargin
        }
        adopt(Membership.Change(view: registration.view, left: registration.left))
    }

    /// The lease was renewed: it lasts at least until `deadline`.
    func leaseRenewed(until deadline: ContinuousClock.Instant) {
        state.withLock { s in
            let until = deadline - leaseMargin
            s.servesUntil = max(s.servesUntil ?? until, until)
        }
    }

    /// The lease lapsed (or etcd dropped this node): stop serving, and hand over every copy
    /// after registering again, because the others may have moved on meanwhile.
    func leaseLapsed() {
        let wasServing = state.withLock { s -> Bool in
            defer {
                s.servesUntil = .now
                s.stableRing = HashRing(members: [])
            }
            return s.ready
        }
        if wasServing { logger.error("stopped serving: this member's etcd lease lapsed; it keeps its objects and registers again") }
    }

    /// Whether the view dropped this node while its lease loop still runs.
    var wantsRegistration: Bool { state.withLock { $0.wantsRegistration } }

    // MARK: Replication (primary side)

    func replicate(_ box: ObjectBox, _ operation: Replicate.Operation, in viewID: UInt64) -> EventLoopFuture<Outcome?> {
        if faults.contains(.skipReplication) { return loop.makeSucceededFuture(nil) }
        return toOtherReplicas(operation, of: box.ref, at: box.version, copies: copies(box), in: viewID)
    }

    /// Sends `operation` to the replicas of `ref` in view `viewID` other than this node;
    /// nil once all applied it, else the first refusal. A change made in a view this node
    /// no longer serves (the view changed, or it is leaving) is not sent to the next
    /// view's replicas: the client retries, and the change reaches them, if at all, with
    /// the moving of objects, which orders copies by version.
    private func toOtherReplicas(
        _ operation: Replicate.Operation, of ref: ObjectRef, at version: ObjectVersion, copies: Int, in viewID: UInt64
    ) -> EventLoopFuture<Outcome?> {
        let targets = state.withLock { s -> [PeerLink]? in
            guard let view = s.view, view.id == viewID, !s.leaving else { return nil }
            let me = s.me.id
            return s.ring.replicas(for: ref, count: copies).filter { $0.id != me }.map { link(to: $0, in: &s) }
        }
        guard let targets else {
            return loop.makeSucceededFuture(.error(CrucialError(.wrongView, "the cluster's view changed while \(ref) was changed; retry")))
        }
        guard !targets.isEmpty else { return loop.makeSucceededFuture(nil) }
        let acks = send(operation, of: ref, at: version, in: viewID, to: targets)
        return EventLoopFuture.whenAllSucceed(acks, on: loop).map { $0.compactMap { $0 }.first }
    }

    /// Sends `operation` on `ref` to each of `links`; each future holds nil once that
    /// replica applied it, else what the client should be told (a replica that cannot
    /// be reached makes the client retry, by when a new view has gone without it).
    private func send(
        _ operation: Replicate.Operation, of ref: ObjectRef, at version: ObjectVersion, in viewID: UInt64, to links: [PeerLink]
    ) -> [EventLoopFuture<Outcome?>] {
        links.map { l in
            l.send { .replicate(Replicate(id: $0, viewID: viewID, ref: ref, version: version, operation: operation)) }
                .map { Self.refusal($0, from: l.member, ref: ref) }
                .recover { .error(CrucialError(.wrongView, "replica \(l.member.id) of \(ref) is unreachable (\($0)); retry")) }
        }
    }

    /// nil for an ok answer, else what the client should be told.
    private static func refusal(_ frame: Frame, from member: View.Member, ref: ObjectRef) -> Outcome? {
        guard case .result(let reply) = frame else {
            return .error(CrucialError(.internal, "replica \(member.id) answered a Replicate with \(frame.kindName)"))
        }
        switch reply.outcome {
        case .value: return nil
        case .wrongView(let v): return .wrongView(v)
        case .error(let e) where e.code == .resourceExhausted:
            return .error(CrucialError(.resourceExhausted, "replica \(member.id) of \(ref) cannot take the change: \(e.message)"))
        case .error(let e):
            return .error(CrucialError(.wrongView, "replica \(member.id) refused a change of \(ref): \(e.message); retry"))
        }
    }

    /// The link to `member` (this incarnation of it), made on first use. Called under the state lock.
    private func link(to member: View.Member, in s: inout State) -> PeerLink {
        if let l = s.links[member.id], l.member == member { return l }
        s.links[member.id]?.close()
        let l = PeerLink(member: member, loop: loop, identity: identity)
        s.links[member.id] = l
        return l
    }

    // MARK: Replica side

    /// Applies what a primary sent; `done` gets the answer once it may be given (under
    /// `--fsync always`, once the change is on disk here).
    func apply(_ replicate: Replicate, done: @escaping @Sendable (Outcome) -> Void) {
        store.apply(replicate, currentView: { [self] in view }, done: done)
    }

    func transferDone(_ report: TransferDone) {
        state.withLock { s in
            guard report.viewID >= (s.view?.id ?? 0) || s.reports[report.viewID] != nil else { return }
            s.reports[report.viewID, default: [:]][report.from] = report
        }
        checkReady()
    }

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

    private enum Probe { case answered, refused, silent }

    /// Pings every other member of `view` every 100 ms, until the next view. A member whose
    /// port refuses the connection is dead (its process is gone, the machine is up): its
    /// lease is ended, so that the others take its objects over now rather than after the
    /// lease. A member that only falls silent (paused, cut off) is left to its lease: it
    /// may still be serving reads, and only its own lease deadline tells it to stop, so
    /// ending its lease early would let two members answer for one object. A node that
    /// cannot be sure of its own lease accuses nobody.
    private func watchPeers(of view: View) {
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
    private func probe(_ member: View.Member) async -> Probe {
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

    private func suspect(_ member: View.Member, _ reason: String) {
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
    private func transfer(for view: View) async {
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
                id: 0, viewID: view.id, from: s.me.id, leftGracefully: { left[$0.id] == $0.incarnation }, into: view)
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
    private func checkReady() {
        let completed = state.withLock { s -> (view: View, ring: HashRing, history: ViewHistory)? in
            guard let view = s.view, !s.ready, s.ownTransferDone, s.inView else { return nil }
            let heard = s.reports[view.id] ?? [:]
            guard view.members.allSatisfy({ heard[$0.id] != nil }) else { return nil }
            s.history = s.history.completing(view, reports: Array(heard.values))
            s.holes = HoleIndex(s.history.holes)
            s.ready = true
            s.stableRing = s.ring
            return (view, s.ring, s.history)
        }
        guard let (view, ring, history) = completed else { return }
        onServed(history)
        // Copies this node no longer keeps: every new replica has acknowledged them.
        var dropped = 0
        let me = state.withLock { $0.me.id }
        for box in store.allBoxes() where !ring.replicas(for: box.ref, count: copies(box)).contains(where: { $0.id == me }) {
            store.drop(box)
            dropped += 1
        }
        store.dropTombstones { !ring.replicas(for: $0, count: rf).contains(where: { $0.id == me }) }
        if !history.holes.isEmpty {
            logger.error(
                "some objects' copies are all on members that left without handing them over: they are unavailable until one is back",
                metadata: ["holes": "\(history.holes.map { "absent \($0.absent.joined(separator: ",")) of \($0.members.joined(separator: ","))" })"])
        }
        logger.notice("serving view", metadata: ["view": "\(view.id)", "objects": "\(store.count)", "dropped": "\(dropped)"])
        wakeWaiting()
    }

    /// Sends every object held here to its replicas in `new` that were not replicas in
    /// `old` (as the same incarnation), and every tombstone likewise; returns the
    /// acknowledgements (nil: applied) and how many objects were offered. Each target is
    /// first offered the versions (``Frame/offer(id:viewID:entries:)``) and sent only the
    /// objects it wants: a member back from a restart gets only what changed meanwhile.
    private func handOver(from old: HashRing, to new: HashRing, viewID: UInt64) -> ([EventLoopFuture<Outcome?>], Int) {
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
    private func offer(_ boxes: [ObjectBox], to link: PeerLink, viewID: UInt64) -> EventLoopFuture<Outcome?> {
        let entries = boxes.map { box in box.locked { OfferEntry(ref: box.ref, version: box.version) } }
        let loop = self.loop
        return link.send { .offer(id: $0, viewID: viewID, entries: entries) }
            .flatMap { [self] frame -> EventLoopFuture<Outcome?> in
                guard case .result(let reply) = frame, case .value(.ints(let wanted)) = reply.outcome else {
                    if case .result(let reply) = frame, case .wrongView(let view) = reply.outcome { return loop.makeSucceededFuture(.wrongView(view)) }
                    return loop.makeSucceededFuture(.error(CrucialError(.wrongView, "member \(link.member.id) answered an Offer with \(frame.kindName); retry")))
                }
                var installs: [EventLoopFuture<Outcome?>] = []
                for i in wanted where i >= 0 && Int(i) < boxes.count {
                    let box = boxes[Int(i)]
                    let exported: (ObjectState, ObjectVersion)? = box.locked {
                        box.removed ? nil : (store.exportState(box), box.version)
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

    func shutdown() {
        let links = state.withLock { s in
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
