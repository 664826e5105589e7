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

    struct State {
        var me: View.Member
        var view: View?
        var ring = HashRing(members: [])
        /// The ring of the last view whose transfer completed here; empty after a restart or
        /// a lapse, so that this node hands over every copy it has.
        var stableRing = HashRing(members: [])
        var history: ViewHistory
        var holes = HoleIndex([])
        /// What operators accepted of lost objects (from etcd).
        var acceptance = LossAcceptance()
        /// The view in which this member last recorded a collection of tombstones in etcd.
        var collectedIn: UInt64 = 0
        /// This member holds no data of an earlier incarnation (it started with a new or
        /// emptied data directory, or none, and has served no view since): a member that
        /// was away and comes back so is lost rather than back (``ViewHistory``).
        var empty: Bool
        /// Graceful departures: node id → the incarnation that left.
        var left: [String: UInt64] = [:]
        var ready = false
        /// The last view whose change finished here: served, and the copies this member no
        /// longer keeps dropped (what `serving view` logs).
        var settledViewID: UInt64 = 0
        var ownTransferDone = false
        var leaving = false
        /// This node is in the view it adopted last.
        var inView = false
        /// Until when this node may serve: its lease's renewal deadline minus the margin
        /// (nil before the first registration).
        var servesUntil: ContinuousClock.Instant?
        /// Whether that time has passed: this node cannot be sure it still belongs to its view.
        var leaseExpired: Bool { servesUntil.map { ContinuousClock.now >= $0 } ?? false }
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
    let store: ObjectStore
    let loop: any EventLoop
    let identity: ConnectionIdentity
    let logger: Logger
    let state: Mutex<State>
    /// A deliberately broken node for the tests that must catch one (``ClusterFaults``).
    let faults: ClusterFaults
    /// Called with the history each time a view is served (to keep it in the data directory).
    let onServed: @Sendable (ViewHistory) -> Void
    /// Whether a member whose port refuses connections is declared dead at once.
    let fastFailover: Bool
    /// Ends a dead member's lease (this incarnation of it), so that the view changes now.
    let onDead: @Sendable (View.Member, String) -> Void
    /// Records an operator's acceptance of lost objects (`ref`, or every one) found up to a
    /// view, where every member finds it (etcd); the members follow through ``accept(_:)``.
    let recordAcceptance: @Sendable (_ ref: ObjectRef?, _ upTo: UInt64) async throws -> Void
    /// Records a collection of tombstones where every member finds it (etcd), before any is dropped.
    let recordCollection: @Sendable (TombstoneCollection) async throws -> Void
    /// How this node reaches the others: TCP whose sends only queue (they are made under an
    /// object's lock), or the in-process transport in the tests of view changes.
    let transport: any Transport

    /// `identity`: how this node connects to the others (with the admin secret when there is one).
    /// `history`: what the data directory remembers of the cluster's past (nil: nothing: the
    /// member holds no data of an earlier incarnation).
    init(
        me: View.Member, rf: Int, leaseTTL: Int, store: ObjectStore, loop: any EventLoop, identity: ConnectionIdentity, logger: Logger,
        history: ViewHistory? = nil, onServed: @escaping @Sendable (ViewHistory) -> Void = { _ in },
        fastFailover: Bool = false, faults: ClusterFaults = [], onDead: @escaping @Sendable (View.Member, String) -> Void = { _, _ in },
        recordAcceptance: @escaping @Sendable (ObjectRef?, UInt64) async throws -> Void = { _, _ in },
        recordCollection: @escaping @Sendable (TombstoneCollection) async throws -> Void = { _ in },
        transport: any Transport = TCPTransport(writesInline: false)
    ) {
        self.transport = transport
        self.recordAcceptance = recordAcceptance
        self.recordCollection = recordCollection
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
        var s = State(me: me, history: history ?? ViewHistory(), empty: history == nil)
        s.holes = HoleIndex(s.history.holes)
        self.state = Mutex(s)
    }

    var me: View.Member { state.withLock { $0.me } }
    var view: View? { state.withLock { $0.view } }
    var history: ViewHistory { state.withLock { $0.history } }
    /// The view calls are served in; a leaving node serves none (`UInt64.max` matches no call).
    var viewID: UInt64 { state.withLock { $0.leaving ? .max : $0.view?.id ?? 0 } }

    /// Why this member cannot serve calls now, or nil when it serves its view (`GET /ready`):
    /// no view yet, not in it, leaving, a view change under way, or its etcd lease not renewed in time.
    var notReady: String? {
        state.withLock { s in
            guard let view = s.view else { return "no view yet: registering in etcd" }
            if s.leaving { return "leaving the cluster" }
            if !s.inView { return "not a member of view \(view.id)" }
            if !s.ready { return "a view change to view \(view.id) is under way: objects are moving" }
            if s.leaseExpired {
                return "its etcd lease was not renewed in time (is etcd reachable?)"
            }
            return nil
        }
    }

    /// How many copies `box` has in the cluster.
    func copies(_ box: ObjectBox) -> Int { box.replicates ? rf : 1 }

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
            if s.leaseExpired {
                return .unavailable(
                    CrucialError(
                        .unavailable,
                        "member \(s.me.id) cannot be sure it still belongs to view \(view.id): its etcd lease was not renewed in time "
                            + "(is etcd reachable?); it serves again once renewed or registered again; retry"))
            }
            return .serve(viewID: view.id)
        }
    }

    /// Whether this member handles the events of `ref`'s primary copy now: only the primary,
    /// serving its view with its lease sure, changes a replicated object outside of calls.
    func eventRoute(of ref: ObjectRef) -> EventRoute {
        state.withLock { s in
            if s.leaving { return .elsewhere }
            guard let view = s.view, s.inView, s.ready, !s.leaseExpired else { return .later }
            return s.ring.primary(for: ref)?.id == s.me.id ? .serve(viewID: view.id) : .elsewhere
        }
    }

    /// Why a call on `ref`, whose copy here exists (kept on `copies` members), cannot be
    /// served now, if it cannot: every copy is on members that left without handing it over.
    func unavailability(of ref: ObjectRef, copies: Int) -> CrucialError? {
        let holders: [String]? = state.withLock { s in s.holes.isEmpty ? nil : s.holes.absentHolders(of: ref, copies: copies) }
        return holders.map { Self.unavailable(ref, $0) }
    }

    /// Why a call on `ref`, which has no copy here, cannot be served: every copy is on
    /// members that are away (UNAVAILABLE, kept on `copies` members), or every copy was lost
    /// and no operator accepted it (DATA_LOSS: an object that may have been persistent;
    /// `persistent` false for an ephemeral one's creation, nil when the call does not say).
    func absence(of ref: ObjectRef, copies: Int, persistent: Bool?) -> CrucialError? {
        let (away, lost) = state.withLock { s -> (Absence?, Absence?) in
            guard !s.holes.isEmpty else { return (nil, nil) }
            let here = s.holes.absence(of: ref, copies: copies)
            if case .away? = here { return (here, nil) }
            // An ephemeral object has one copy, lost with its member whatever: only persistent ones are lost for good.
            return (nil, persistent == false ? nil : s.holes.absence(of: ref, copies: rf))
        }
        if case .away(let holders)? = away { return Self.unavailable(ref, holders, ephemeral: persistent == false) }
        switch lost {
        case .lost(let holders, let members)?:
            return CrucialError(
                .dataLoss,
                "every copy of \(ref) was on \(holders.joined(separator: ", ")), and \(members.joined(separator: ", ")) came back without "
                    + "\(members.count == 1 ? "its" : "their") data (an empty data directory): \(ref) is lost, or never existed "
                    + "(the cluster cannot tell). Nothing was done. An operator who accepts the loss lets it be created afresh: "
                    + "crucial objects forget \(ref.type) \(ref.key) (this object), or crucial cluster accept-loss (every lost object)")
        case .away(let holders)?: return Self.unavailable(ref, holders, ephemeral: persistent == false)
        case nil: return nil
        }
    }

    /// `ephemeral`: the call says it creates an ephemeral object, whose one copy only a
    /// member that was paused or cut off still has (one that crashed lost it).
    private static func unavailable(_ ref: ObjectRef, _ holders: [String], ephemeral: Bool = false) -> CrucialError {
        let back =
            ephemeral
            ? "it is served again if its member comes back with it (one that was paused or cut off from etcd keeps its "
                + "ephemeral objects; one that crashed or restarted lost them, and a creating call then makes a new one; "
                + "make it persistent to keep it on rf members)"
            : "it is served again once one of them is back (a member started with that node id and its data directory; "
                + "started with an empty one, its copies are lost and calls say so)"
        return CrucialError(
            .unavailable, "every copy of \(ref) is on \(holders.joined(separator: ", ")), which left the cluster without handing it over; \(back); retry")
    }

    // MARK: Accepted losses

    /// The operators' acceptance of lost objects changed (in etcd): holes it settles go.
    func accept(_ acceptance: LossAcceptance) {
        let settled = state.withLock { s -> Int in
            guard s.acceptance != acceptance else { return 0 }
            s.acceptance = acceptance
            let before = s.history.holes.count
            s.history = s.history.pruned(by: acceptance)
            s.holes = HoleIndex(s.history.holes, acceptance: acceptance)
            return before - s.history.holes.count
        }
        if settled > 0 { logger.notice("an operator accepted lost objects", metadata: ["settledHoles": "\(settled)", "upTo": "\(acceptance.upTo)"]) }
    }

    /// An operator accepts the loss of `ref` (or of every object lost so far): recorded where
    /// every member finds it, and applied here at once. Returns the view it covers losses up to
    /// and the lost members whose loss it covers.
    func acceptLoss(of ref: ObjectRef?) async throws -> (upTo: UInt64, members: [String]) {
        let (upTo, members) = state.withLock { s -> (UInt64, [String]) in
            let lost = s.history.holes.flatMap(\.lost).filter { !s.acceptance.covers($0, of: ref ?? ObjectRef(type: "", key: "")) }
            return (s.view?.id ?? 0, Array(Set(lost.map(\.id))).sorted())
        }
        try await recordAcceptance(ref, upTo)
        var acceptance = state.withLock { $0.acceptance }
        if let ref { acceptance.objects[ref] = max(acceptance.objects[ref] ?? 0, upTo) } else { acceptance = LossAcceptance(upTo: max(acceptance.upTo, upTo)) }
        accept(acceptance)
        return (upTo, members)
    }

    /// The holes this member knows.
    var holes: [Hole] { state.withLock { $0.history.holes } }

    /// The holes this member knows, with the losses no operator accepted (for every object):
    /// what `crucial cluster status` shows and the `crucial_holes` gauges count.
    var unsettledHoles: [(members: [String], absent: [String], lost: [String])] {
        state.withLock { s in
            s.history.holes.map { h in (h.members, h.absent, h.lost.filter { $0.view > s.acceptance.upTo }.map(\.id)) }
        }
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

    func wakeWaiting() {
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
        accept(registration.acceptance)
        discardStaleCopies(after: registration.collection)
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
}
