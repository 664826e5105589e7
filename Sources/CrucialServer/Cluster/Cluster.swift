internal import CrucialClient
internal import CrucialCore
internal import Logging
internal import NIOConcurrencyHelpers
internal import NIOCore

/// This node's part in a cluster: which view it serves, where objects live, sending
/// changes to replicas, and moving objects when the view changes.
///
/// Each view change is a transfer: every node sends each object it holds to the new
/// replicas that did not hold it in the last view it completed, waits for them to
/// apply it, then tells every other member it is done with the view. A node serves a
/// view once it is done and has heard "done" from all the others; calls arriving
/// meanwhile wait. Copies are ordered by version, so a node receiving the same object
/// from several holders keeps the newest.
final class Cluster: Replication, Sendable {
    /// Where a call goes.
    enum Route {
        /// This node is the object's primary in view `viewID`.
        case serve(viewID: UInt64)
        /// Another node is; the caller should learn this view.
        case wrongView(View)
        /// A view change is in progress, or the caller knows a newer view than this node.
        case wait
    }

    private struct State {
        var view: View?
        var ring = HashRing(members: [])
        /// The ring of the last view whose transfer completed here.
        var stableRing = HashRing(members: [])
        var ready = false
        var ownTransferDone = false
        var leaving = false
        var dones: [UInt64: Set<String>] = [:]
        var waiting: [@Sendable () -> Void] = []
        var links: [String: PeerLink] = [:]
    }

    let me: View.Member
    let rf: Int
    private let store: ObjectStore
    private let loop: any EventLoop
    private let identity: ConnectionIdentity
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// A deliberately broken node for the tests that must catch one: it acknowledges
    /// changes without sending them to the replicas (CRUCIAL_TEST_FAULT=skip-replication).
    private let skipsReplication = ProcessInfoEnvironment.get("CRUCIAL_TEST_FAULT") == "skip-replication"
    /// Called when etcd dropped this node from the view without it leaving.
    private let onEvicted: @Sendable () -> Void

    /// `identity`: how this node connects to the others (with the admin secret when there is one).
    init(
        me: View.Member, rf: Int, store: ObjectStore, loop: any EventLoop, identity: ConnectionIdentity, logger: Logger,
        onEvicted: @escaping @Sendable () -> Void
    ) {
        self.onEvicted = onEvicted
        if skipsReplication { logger.critical("CRUCIAL_TEST_FAULT=skip-replication: this node does not replicate; it loses data on purpose") }
        self.me = me
        self.rf = max(1, rf)
        self.store = store
        self.loop = loop
        self.identity = identity
        self.logger = logger
    }

    var view: View? { state.withLockedValue { $0.view } }
    /// The view calls are served in; a leaving node serves none (`UInt64.max` matches no call).
    var viewID: UInt64 { state.withLockedValue { $0.leaving ? .max : $0.view?.id ?? 0 } }

    /// How many copies `box` has in the cluster.
    private func copies(_ box: ObjectBox) -> Int { box.replicates ? rf : 1 }

    // MARK: Routing

    /// Where a call on `ref` from a client in view `clientView` goes.
    func route(_ ref: ObjectRef, clientView: UInt64) -> Route {
        state.withLockedValue { s in
            guard let view = s.view else { return .wait }
            if s.leaving { return .wrongView(view) }
            if !s.ready { return .wait }
            // A client ahead of this node backs off and retries; by then this node has caught up.
            if clientView > view.id { return .wrongView(view) }
            // The primary is the first replica whatever the object's kind.
            guard s.ring.primary(for: ref)?.id == me.id else { return .wrongView(view) }
            return .serve(viewID: view.id)
        }
    }

    /// Runs `callback` once this node serves a view (again); at once if it does.
    func whenReady(_ callback: @escaping @Sendable () -> Void) {
        let now = state.withLockedValue { s -> Bool in
            if s.ready || s.leaving { return true }
            s.waiting.append(callback)
            return false
        }
        if now { callback() }
    }

    private func wakeWaiting() {
        let waiting = state.withLockedValue { s in
            defer { s.waiting.removeAll() }
            return s.waiting
        }
        for w in waiting { w() }
    }

    // MARK: Replication (primary side)

    func replicate(_ box: ObjectBox, _ operation: Replicate.Operation) -> EventLoopFuture<Outcome?> {
        if skipsReplication { return loop.makeSucceededFuture(nil) }
        return toOtherReplicas(operation, of: box.ref, at: box.version, copies: copies(box))
    }

    /// Removes `ref` from its other replicas too (a removed object has no box to tell
    /// how many copies it had: every possible replica is told).
    func replicateRemoval(_ ref: ObjectRef) -> EventLoopFuture<Outcome?> {
        toOtherReplicas(.remove, of: ref, at: .zero, copies: rf)
    }

    /// Sends `operation` to the replicas of `ref` in the current view other than this
    /// node; nil once all applied it, else the first refusal.
    private func toOtherReplicas(
        _ operation: Replicate.Operation, of ref: ObjectRef, at version: ObjectVersion, copies: Int
    ) -> EventLoopFuture<Outcome?> {
        let (view, targets) = state.withLockedValue { s -> (View?, [PeerLink]) in
            guard let view = s.view else { return (nil, []) }
            return (view, s.ring.replicas(for: ref, count: copies).filter { $0.id != me.id }.map { link(to: $0, in: &s) })
        }
        guard let view, !targets.isEmpty else { return loop.makeSucceededFuture(nil) }
        let acks = send(operation, of: ref, at: version, in: view.id, to: targets)
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
        case .error(let e):
            return .error(CrucialError(.wrongView, "replica \(member.id) refused a change of \(ref): \(e.message); retry"))
        }
    }

    /// The link to `member`, made on first use. Called under the state lock.
    private func link(to member: View.Member, in s: inout State) -> PeerLink {
        if let l = s.links[member.id], l.member == member { return l }
        s.links[member.id]?.close()
        let l = PeerLink(member: member, loop: loop, identity: identity)
        s.links[member.id] = l
        return l
    }

    // MARK: Replica side

    func apply(_ replicate: Replicate) -> Outcome {
        store.apply(replicate) { [self] in view }
    }

    func transferDone(viewID: UInt64, from member: String) {
        state.withLockedValue { s in _ = s.dones[viewID, default: []].insert(member) }
        checkReady()
    }

    // MARK: View changes

    /// Adopts `view` (from etcd) and moves objects for it.
    func adopt(_ view: View) {
        let previous = state.withLockedValue { s -> View? in
            let previous = s.view
            guard (previous?.id ?? 0) < view.id else { return nil }
            s.view = view
            s.ring = HashRing(members: view.members)
            s.ready = false
            s.ownTransferDone = false
            s.dones = s.dones.filter { $0.key >= view.id }
            for (id, l) in s.links where !view.members.contains(where: { $0.id == id }) {
                l.close()
                s.links[id] = nil
            }
            return previous ?? View(id: 0, members: [], rf: view.rf)
        }
        guard let previous else { return }
        if !view.members.contains(where: { $0.id == me.id }) {
            if state.withLockedValue({ $0.leaving }) {
                wakeWaiting()
                return
            }
            logger.critical("this node is not in the cluster's view any more (its etcd lease expired); stopping", metadata: ["view": "\(view.id)"])
            onEvicted()
            return
        }
        logger.notice(
            "new view", metadata: ["view": "\(view.id)", "members": "\(view.members.map(\.id).joined(separator: ","))", "was": "\(previous.id)"])
        wakeWaiting()  // they re-route: some now belong elsewhere
        Task { await transfer(for: view) }
    }

    /// Sends the objects held here to the replicas that get them in `view`, then says so.
    private func transfer(for view: View) async {
        let (stableRing, ring) = state.withLockedValue { ($0.stableRing, $0.ring) }
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
        let others = view.members.filter { $0.id != me.id }
        let links = state.withLockedValue { s in others.map { link(to: $0, in: &s) } }
        while viewID == view.id {
            let told = links.map { l in l.send { .transferDone(id: $0, viewID: view.id, from: me.id) }.map { _ in true }.recover { _ in false } }
            let results = (try? await EventLoopFuture.whenAllSucceed(told, on: loop).get()) ?? []
            if results.allSatisfy({ $0 }) { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
        guard viewID == view.id else { return }
        logger.info("moved objects for the new view", metadata: ["view": "\(view.id)", "objects": "\(moved)"])
        state.withLockedValue { $0.ownTransferDone = true }
        checkReady()
    }

    /// Serves the current view once this node and every other member are done moving.
    private func checkReady() {
        let completed = state.withLockedValue { s -> (view: View, ring: HashRing)? in
            guard let view = s.view, !s.ready, s.ownTransferDone else { return nil }
            let heard = s.dones[view.id] ?? []
            guard view.members.allSatisfy({ $0.id == me.id || heard.contains($0.id) }) else { return nil }
            s.ready = true
            s.stableRing = s.ring
            return (view, s.ring)
        }
        guard let (view, ring) = completed else { return }
        // Copies this node no longer keeps: every new replica has acknowledged them.
        var dropped = 0
        for box in store.allBoxes() where !ring.replicas(for: box.ref, count: copies(box)).contains(where: { $0.id == me.id }) {
            store.drop(box)
            dropped += 1
        }
        logger.notice("serving view", metadata: ["view": "\(view.id)", "objects": "\(store.count)", "dropped": "\(dropped)"])
        wakeWaiting()
    }

    /// Sends every object held here to its replicas in `new` that were not replicas in
    /// `old`; returns the acknowledgements (nil: applied) and how many objects went.
    private func handOver(from old: HashRing, to new: HashRing, viewID: UInt64) -> ([EventLoopFuture<Outcome?>], Int) {
        var sends: [EventLoopFuture<Outcome?>] = []
        var moved = 0
        for box in store.allBoxes() {
            let count = copies(box)
            let had = Set(old.replicas(for: box.ref, count: count).map(\.id))
            let targets = new.replicas(for: box.ref, count: count).filter { $0.id != me.id && !had.contains($0.id) }
            guard !targets.isEmpty else { continue }
            let exported: (ObjectState, ObjectVersion)? = box.lock.withLock { box.removed ? nil : (store.exportState(box), box.version) }
            guard let (objectState, version) = exported else { continue }
            moved += 1
            let links = state.withLockedValue { s in targets.map { link(to: $0, in: &s) } }
            sends += send(.install(objectState), of: box.ref, at: version, in: viewID, to: links)
        }
        return (sends, moved)
    }

    /// Leaves gracefully: stops serving, hands every object to the nodes that keep it
    /// once this one is gone, then lets `deregister` take it out of the view.
    func leave(deregister: () async -> Void) async {
        let (view, ring) = state.withLockedValue { s -> (View?, HashRing) in
            s.leaving = true
            s.ready = false
            return (s.view, s.ring)
        }
        wakeWaiting()  // told the current view: they back off and find the objects' new places
        guard let view else { return await deregister() }
        let remaining = View(id: view.id, members: view.members.filter { $0.id != me.id }, rf: view.rf)
        let (sends, moved) = handOver(from: ring, to: HashRing(members: remaining.members), viewID: view.id)
        let failures = (try? await EventLoopFuture.whenAllSucceed(sends, on: loop).get())?.compactMap { $0 } ?? []
        logger.notice("handed objects over before leaving", metadata: ["objects": "\(moved)", "failures": "\(failures.count)"])
        await deregister()
    }

    func shutdown() {
        let links = state.withLockedValue { s in
            defer { s.links.removeAll() }
            return Array(s.links.values)
        }
        for l in links { l.close() }
        wakeWaiting()
    }
}
