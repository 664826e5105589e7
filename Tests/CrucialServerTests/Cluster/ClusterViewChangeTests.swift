import CrucialCore
@testable import CrucialServerCore
import CrucialTransport
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Members of a cluster in one process, reaching each other through the in-process
/// transport: no socket, no etcd. The tests hand them views as etcd would and watch
/// objects move (swift-distributed-actors' `SWIM.Instance` tests are the model).
final class InProcessCluster: @unchecked Sendable {  // `nodes` changes only between the steps of a test, never during a call
    struct Node {
        let member: View.Member
        let store: ObjectStore
        let cluster: Cluster
        let settings: ConnectionSettings
    }

    let loop = MultiThreadedEventLoopGroup.singleton.next()
    let network: InProcessTransport
    private(set) var nodes: [String: Node] = [:]
    let rf: Int
    /// The lease of a client the members hear of only as a holder (a party's client, a permit's).
    let sessionLease: Duration
    private let requests = Atomic<UInt64>(1000)  // above the sequence numbers tests pick
    /// What etcd would hold of the operators' acceptance of lost objects.
    private let acceptance = Mutex(LossAcceptance())
    /// What etcd would hold of the last collection of tombstones.
    let collection = Mutex<TombstoneCollection?>(nil)

    init(_ ids: [String], rf: Int, sessionLease: Duration = .seconds(30)) {
        self.rf = rf
        self.sessionLease = sessionLease
        network = InProcessTransport(loop: loop)
        for id in ids { add(id) }
    }

    /// The test is over: every member closes its links, nothing keeps running.
    deinit {
        for node in nodes.values { node.cluster.shutdown() }
    }

    /// A fresh member `id` (a new process: empty store), serving at "id:1".
    func add(_ id: String, incarnation: UInt64 = 1) {
        let member = View.Member(id: id, address: "\(id):1", incarnation: incarnation)
        let store = ObjectStore(timerLoop: loop, defaultSessionLease: sessionLease)
        var logger = Logger(label: "crucial.test-cluster")
        logger[metadataKey: "node"] = "\(id)"
        logger.logLevel = .warning
        let cluster = Cluster(
            me: member, rf: rf, leaseTTL: 10, store: store, loop: loop, identity: ConnectionIdentity(name: id, secret: ""),
            logger: logger, recordAcceptance: { [weak self] ref, upTo in self?.record(ref, upTo) },
            recordCollection: { [weak self] c in self?.collection.withLock { $0 = max(c.view, $0?.view ?? 0) == c.view ? c : $0 } },
            transport: network)
        store.replicationBox.withLock { $0 = cluster }
        let settings = ConnectionSettings(
            serverID: id, maxFrameSize: 1 << 20, credentials: [], pluginDirectory: "/nonexistent", maxPluginBytes: 0, cluster: cluster,
            limits: Limits(), metrics: ServerMetrics())
        network.serve(store, settings: settings, at: member.address)
        nodes[id] = Node(member: member, store: store, cluster: cluster, settings: settings)
    }

    /// Records an acceptance of lost objects as etcd would, and hands it to every member as its watch would.
    private func record(_ ref: ObjectRef?, _ upTo: UInt64) {
        let accepted = acceptance.withLock { a in
            if let ref { a.objects[ref] = max(a.objects[ref] ?? 0, upTo) } else { a = LossAcceptance(upTo: max(a.upTo, upTo)) }
            return a
        }
        for node in nodes.values { node.cluster.accept(accepted) }
    }

    /// The process of `id` dies: it sends nothing more, its address refuses connections,
    /// its connections (the clients' too) are cut.
    func crash(_ id: String) {
        guard let node = nodes.removeValue(forKey: id) else { return }
        node.cluster.shutdown()
        network.stopServing(at: node.member.address)
    }

    /// `id`'s address refuses connections (a network cut to it) while its process lives on.
    func unreachable(_ id: String) {
        if let node = nodes[id] { network.stopServing(at: node.member.address) }
    }

    /// `id` can be reached again.
    func reachable(_ id: String) {
        if let node = nodes[id] { network.serve(node.store, settings: node.settings, at: node.member.address) }
    }

    func view(_ id: UInt64, _ members: [String]) -> View {
        View(id: id, members: members.compactMap { nodes[$0]?.member }, rf: UInt32(rf))
    }

    /// `members` learn `view` from etcd.
    func adopt(_ view: View, on members: [String]) {
        for id in members { nodes[id]?.cluster.adopt(Membership.Change(view: view, left: [:])) }
    }

    /// Waits until each of `members` serves `view` (bounded: a hang fails, never a slow machine).
    func waitReady(_ view: View, _ members: [String]) async throws {
        for _ in 0..<3000 {
            // Served, and done dropping what it no longer keeps (a member is ready a moment before).
            let ready = members.allSatisfy { id in
                nodes[id]?.cluster.state.withLock { $0.ready && $0.view?.id == view.id && $0.settledViewID >= view.id } ?? false
            }
            if ready { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("view \(view.id) was not served by \(members) within 30 s")
        throw CrucialError(.timeout, "view \(view.id) not served")
    }

    /// View `id` of `members`, handed to all of them, once all serve it.
    func serve(_ id: UInt64, _ members: [String]) async throws -> View {
        let v = view(id, members)
        adopt(v, on: members)
        try await waitReady(v, members)
        return v
    }

    /// Calls `method` on `ref` as a client in `view` would: on the primary the view's ring names.
    /// `seq`: the retry sequence number (a fresh one when nil); `client`: the caller's client
    /// id; `initial`: the state a first call creates the object with (persistent unless `persistent` is false).
    func call(
        _ ref: ObjectRef, _ method: String, _ args: [Value] = [], in view: View, at node: String? = nil, seq: UInt64? = nil,
        client: UInt64 = 99, initial: Value = 0, creating: Bool = true, persistent: Bool = true
    ) async throws -> Outcome {
        let primary = node ?? HashRing(members: view.members).primary(for: ref)!.id
        let (host, port) = (primary, 1)
        let connection = try await network.connect(
            host: host, port: port, group: loop, identity: ConnectionIdentity(name: "client", secret: ""), timeout: .seconds(2),
            heartbeat: nil)
        defer { connection.close() }
        let id = requests.add(1, ordering: .relaxed).newValue
        let invoke = Invoke(
            id: id, ref: ref, method: method, args: args, create: creating ? Create(initial: initial, persistent: persistent) : nil, clientID: client,
            seq: seq ?? id, viewID: view.id)
        guard case .result(let reply) = try await connection.request(.invoke(invoke), id: id) else {
            throw CrucialError(.internal, "not a result")
        }
        return reply.outcome
    }

    /// Removes `ref` as a client in `view` would: on its primary.
    func remove(_ ref: ObjectRef, in view: View) async throws -> Outcome {
        let primary = HashRing(members: view.members).primary(for: ref)!.id
        let connection = try await network.connect(
            host: primary, port: 1, group: loop, identity: ConnectionIdentity(name: "client", secret: ""), timeout: .seconds(2), heartbeat: nil)
        defer { connection.close() }
        let id = requests.add(1, ordering: .relaxed).newValue
        guard case .result(let reply) = try await connection.request(.remove(id: id, ref: ref), id: id) else {
            throw CrucialError(.internal, "not a result")
        }
        return reply.outcome
    }

    /// Which members hold a copy of `ref`, and its value there.
    func copies(of ref: ObjectRef) -> [String: Value] {
        nodes.compactMapValues { $0.store.snapshot(ref) }
    }
}

@Suite("Cluster view changes and transfers, in process", .timeLimit(.minutes(2)))  // a hang fails, never a slow machine
struct ClusterViewChangeTests {
    static let refs = (0..<24).map { ObjectRef(type: "AtomicLong", key: "counter-\($0)") }

    /// Adds `i + 1` to counter i, through its primary in `view`.
    static func fill(_ c: InProcessCluster, in view: View) async throws {
        for (i, ref) in refs.enumerated() {
            #expect(try await c.call(ref, "addAndGet", [.int(Int64(i + 1))], in: view) == .value(.int(Int64(i + 1))))
        }
    }

    /// Every counter is on exactly its replicas in `view`, with `value(i)` on each.
    static func expectPlaced(_ c: InProcessCluster, _ view: View, value: (Int) -> Int64) {
        let ring = HashRing(members: view.members)
        for (i, ref) in refs.enumerated() {
            let want = Set(ring.replicas(for: ref, count: c.rf).map(\.id))
            let have = c.copies(of: ref)
            #expect(Set(have.keys) == want, "\(ref): copies on \(have.keys.sorted()), its replicas are \(want.sorted())")
            #expect(have.values.allSatisfy { $0 == .int(value(i)) }, "\(ref): \(have)")
        }
    }

    @Test("Each change reaches the object's replicas before it is answered")
    func replicatedBeforeAnswered() async throws {
        let c = InProcessCluster(["a", "b", "c"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b", "c"])
        try await Self.fill(c, in: v1)
        Self.expectPlaced(c, v1) { Int64($0 + 1) }
    }

    @Test("A member that joins gets its share; members that are no longer replicas drop theirs")
    func join() async throws {
        let c = InProcessCluster(["a", "b"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b"])
        try await Self.fill(c, in: v1)
        c.add("c")
        let v2 = try await c.serve(2, ["a", "b", "c"])
        Self.expectPlaced(c, v2) { Int64($0 + 1) }
        // They go on from there, in the new view.
        for ref in Self.refs { _ = try await c.call(ref, "incrementAndGet", in: v2) }
        Self.expectPlaced(c, v2) { Int64($0 + 2) }
    }

    @Test("A member that crashes: the others make up its copies, and nothing acknowledged is lost")
    func crash() async throws {
        let c = InProcessCluster(["a", "b", "c"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b", "c"])
        try await Self.fill(c, in: v1)
        c.crash("c")
        let v2 = try await c.serve(2, ["a", "b"])
        Self.expectPlaced(c, v2) { Int64($0 + 1) }
    }

    @Test("A call during a view change waits, and is served once every member is done; a client in the old view is told the new one")
    func callsWaitForTheTransfer() async throws {
        let c = InProcessCluster(["a", "b"], rf: 1)
        let v1 = try await c.serve(1, ["a", "b"])
        try await Self.fill(c, in: v1)
        let v2 = c.view(2, ["a", "b"])
        // Only a knows the new view: it cannot serve it until b reports its transfer.
        c.adopt(v2, on: ["a"])
        let ref = Self.refs.first { HashRing(members: v2.members).primary(for: $0)?.id == "a" }!
        let waiting = Task { try await c.call(ref, "get", in: v2) }
        try await Task.sleep(for: .milliseconds(100))
        guard case .wait? = c.nodes["a"]?.cluster.route(ref, clientView: v2.id) else {
            Issue.record("a should wait for b's transfer before serving view 2")
            return
        }
        c.adopt(v2, on: ["b"])
        #expect(try await waiting.value == .value(.int(Int64(Self.refs.firstIndex(of: ref)! + 1))))
        // A client still in view 1, calling a for an object whose primary is b, is told view 2.
        let other = Self.refs.first { HashRing(members: v2.members).primary(for: $0)?.id == "b" }!
        guard case .wrongView(let told) = try await c.call(other, "get", in: v1, at: "a") else {
            Issue.record("expected WRONG_VIEW")
            return
        }
        #expect(told.id == 2)
    }

    @Test("A replica that cannot be reached makes the client retry; the retry brings it the whole state")
    func unreachableReplica() async throws {
        let c = InProcessCluster(["a", "b"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b"])
        let ref = Self.refs.first { HashRing(members: v1.members).primary(for: $0)?.id == "a" }!
        #expect(try await c.call(ref, "addAndGet", [5], in: v1, seq: 1) == .value(5))
        c.unreachable("b")
        // Done on a, but not on every replica: not acknowledged, the client is told to retry.
        guard case .error(let e) = try await c.call(ref, "addAndGet", [3], in: v1, seq: 2), e.code == .wrongView else {
            Issue.record("expected WRONG_VIEW while b cannot be reached")
            return
        }
        #expect(c.copies(of: ref) == ["a": .int(8), "b": .int(5)])
        c.reachable("b")
        // The retry (same sequence number) is not applied again; b gets a's whole state first.
        #expect(try await c.call(ref, "addAndGet", [3], in: v1, seq: 2) == .value(8))
        #expect(c.copies(of: ref) == ["a": .int(8), "b": .int(8)])
        #expect(try await c.call(ref, "incrementAndGet", in: v1, seq: 3) == .value(9))
        #expect(c.copies(of: ref) == ["a": .int(9), "b": .int(9)])
    }
}
