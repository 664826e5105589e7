import CrucialClient
import Foundation
import Synchronization
import Testing

/// One persistent object of every built-in type, with calls that change it.
struct EveryType {
    struct Case: Sendable {
        let type: BuiltinType
        let initial: Value
        let changes: [(String, [Value])]
        /// A method that reads it.
        var read: String {
            switch type {
            case .atomicByteArray, .atomicDoubleArray, .atomicMatrix: "getAll"
            case .sharedList, .sharedSet, .sharedMap, .sharedSortedMap: "size"
            case .cyclicBarrier: "getParties"
            case .semaphore: "availablePermits"
            case .countDownLatch: "getCount"
            case .sharedFuture: "isDone"
            default: "get"
            }
        }
    }

    static func of(_ ref: ObjectRef) -> Case { cases.first { $0.type.typeName == ref.type }! }

    static let cases: [Case] = [
        Case(type: .atomicInt, initial: 0, changes: [("addAndGet", [5])]),
        Case(type: .atomicLong, initial: 0, changes: [("addAndGet", [7]), ("incrementAndGet", [])]),
        Case(type: .atomicBoolean, initial: false, changes: [("set", [true])]),
        Case(type: .atomicDouble, initial: 0.0, changes: [("addAndGet", [2.5])]),
        Case(type: .atomicReference, initial: .null, changes: [("set", ["ref"])]),
        Case(type: .atomicByteArray, initial: 4, changes: [("set", [1, 200])]),
        Case(type: .atomicDoubleArray, initial: 3, changes: [("add", [.doubles([1, 2, 3])])]),
        Case(type: .atomicMatrix, initial: .record(["rows": 2, "cols": 2]), changes: [("set", [1, 0, 4.5])]),
        Case(type: .sharedList, initial: .list([]), changes: [("add", ["x"]), ("add", ["y"])]),
        Case(type: .sharedSet, initial: .list([]), changes: [("add", ["s"])]),
        Case(type: .sharedMap, initial: .list([]), changes: [("put", ["k", 1])]),
        Case(type: .sharedSortedMap, initial: .list([]), changes: [("put", [3, "c"]), ("put", [1, "a"])]),
        Case(type: .cyclicBarrier, initial: 1, changes: [("await", []), ("await", [])]),
        Case(type: .semaphore, initial: 3, changes: [("acquire", [2])]),
        Case(type: .countDownLatch, initial: 5, changes: [("countDown", []), ("countDown", [])]),
        Case(type: .sharedFuture, initial: .null, changes: [("set", ["done"])]),
    ]

    /// A key of `type` whose primary in `view` is `member`.
    static func key(_ type: BuiltinType, primary member: String, in view: View, tag: String) -> ObjectRef {
        let ring = HashRing(members: view.members)
        for i in 0... {
            let ref = ObjectRef(type: type.typeName, key: "\(tag)-\(type.typeName)-\(i)")
            if ring.primary(for: ref)?.id == member { return ref }
        }
        fatalError("unreachable")
    }

    /// Makes and changes one persistent object of every type whose primary is `member`;
    /// returns each with its state as acknowledged.
    static func populate(_ client: CrucialClient, primary member: String, tag: String) async throws -> [(ObjectRef, Value)] {
        try await client.ping()
        let view = try #require(client.view)
        var made: [(ObjectRef, Value)] = []
        for c in cases {
            let ref = key(c.type, primary: member, in: view, tag: tag)
            for (method, args) in c.changes { _ = try await client.call(ref, method, args, create: c.initial, persistent: true) }
            made.append((ref, try await client.state(of: ref)))
        }
        return made
    }
}

/// Waits (bounded: a hang fails) until member `via` serves a view of exactly `members`
/// (asked afresh each time: a client learns a view only from a handshake or a refusal).
func waitForView(_ cluster: TestCluster, _ members: [String], via: String = "a", within limit: Duration = .seconds(60)) async throws {
    let end = ContinuousClock.now + limit
    var seen: [String] = []
    while ContinuousClock.now < end {
        let probe = CrucialClient(configuration: .init(servers: [cluster[via]!.address], retries: 0))
        try? await probe.ping()
        seen = probe.view?.members.map(\.id) ?? []
        probe.close()
        if seen == members { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("the view never became \(members) (it is \(seen))")
    throw CrucialError(.timeout, "view")
}

/// Persistent objects when members are lost for good: their processes and data directories
/// gone. Real processes, because what is checked is what a SIGKILL, a wiped disk and etcd's
/// view of them do together; the semantics alone are tested in process (ClusterLossTests,
/// ReplicatedSynchronizerTests).
@Suite("Persistent objects when members are lost for good (real processes)", .serialized, .timeLimit(.minutes(4)))
struct MemberLossTests {
    @Test("Every built-in type's persistent object, synchronizers included, keeps its acknowledged state when its primary is SIGKILLed for good")
    func everyTypeSurvivesItsPrimary() async throws {
        let cluster = try await TestCluster(fsync: "always")
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let client = cluster.client(via: "a")
        defer { client.close() }
        let made = try await EveryType.populate(client, primary: "b", tag: "survive")
        await cluster["b"]!.kill9()
        try FileManager.default.removeItem(atPath: cluster.dataDirectory("b"))
        try await waitForView(cluster, ["a", "c"])
        for (ref, state) in made {
            #expect(try await client.state(of: ref) == state, "\(ref)")
        }
        // They go on from there.
        #expect(try await client.call(made[1].0, "incrementAndGet", create: 0, persistent: true) == .int(9))
        #expect(try await client.call(made[14].0, "getCount", create: 5, persistent: true) == .int(3))
    }

    @Test("Parked barrier, semaphore, latch and future callers across their primary's SIGKILL get exactly the documented outcome")
    func parkedCallersAcrossTheCrash() async throws {
        let cluster = try await TestCluster()
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let admin = cluster.client(via: "a")
        defer { admin.close() }
        try await admin.ping()
        let view = try #require(admin.view)
        let key = { (type: BuiltinType) in EveryType.key(type, primary: "b", in: view, tag: "parked").key }
        let clients = (0..<6).map { _ in cluster.client(via: "a") }
        defer { for c in clients { c.close() } }
        let barriers = clients.prefix(3).map { CyclicBarrier(key(.cyclicBarrier), parties: 3, persistent: true, client: $0) }
        let semaphores = clients.prefix(2).map { Semaphore(key(.semaphore), permits: 1, persistent: true, client: $0) }
        let latch = CountDownLatch(key(.countDownLatch), count: 1, persistent: true, client: clients[3])
        let future = SharedFuture<String>(key(.sharedFuture), persistent: true, client: clients[4])

        try await semaphores[0].acquire()
        let parties = (0..<2).map { i in Task { try await barriers[i].await() } }
        let acquiring = Task { try await semaphores[1].acquire() }
        _ = try await latch.count()
        _ = try await future.isDone()
        let otherLatch = CountDownLatch(key(.countDownLatch), count: 1, persistent: true, client: clients[5])
        let otherFuture = SharedFuture<String>(key(.sharedFuture), persistent: true, client: clients[5])
        let awaiting = Task { try await otherLatch.await() }
        let getting = Task { try await otherFuture.get() }
        // Parked on b, each on every copy where it is state (the barrier's parties, the queued acquire).
        let end = ContinuousClock.now + .seconds(30)
        while try await barriers[2].numberWaiting() < 2 {
            guard ContinuousClock.now < end else { throw CrucialError(.timeout, "the parties never parked") }
            try await Task.sleep(for: .milliseconds(20))
        }
        while try await semaphores[1].queueLength() < 1 {
            guard ContinuousClock.now < end else { throw CrucialError(.timeout, "the acquire never parked") }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(100))  // the reads are parked too
        await cluster["b"]!.kill9()
        try await waitForView(cluster, ["a", "c"])
        // The parties retried on the new primary: still two, not four.
        #expect(try await barriers[2].numberWaiting() == 2)
        #expect(try await barriers[2].await() == 0)
        let indices = Set([try await parties[0].value, try await parties[1].value])
        #expect(indices == [1, 2])
        // The holder still holds its permit there: its release hands it to the queued acquire, once.
        #expect(try await semaphores[0].availablePermits() == 0)
        try await semaphores[0].release()
        try await acquiring.value
        #expect(try await semaphores[0].availablePermits() == 0)
        try await latch.countDown()
        try await awaiting.value
        try await future.set("v")
        #expect(try await getting.value == "v")
    }

    @Test("A member replaced with an empty data directory loses nothing (a copy is elsewhere); two at once leave DATA_LOSS, never a fresh object, until accepted")
    func replacedWithEmptyDisks() async throws {
        let cluster = try await TestCluster(fsync: "always")
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let client = cluster.client(via: "a")
        defer { client.close() }
        var made: [(ObjectRef, Value)] = []
        for member in ["a", "b", "c"] { made += try await EveryType.populate(client, primary: member, tag: "replace") }

        // One member's disk is lost: it is started again with an empty data directory.
        await cluster["b"]!.kill9()
        try FileManager.default.removeItem(atPath: cluster.dataDirectory("b"))
        try await waitForView(cluster, ["a", "c"])
        try await cluster.start("b")
        try await waitForView(cluster, ["a", "b", "c"])
        for (ref, state) in made { #expect(try await client.state(of: ref) == state, "\(ref) after one replacement") }

        // Two at once (rf 2): the objects whose two copies were on b and c have none left.
        let view = try #require(client.view)
        let ring = HashRing(members: view.members)
        let onBC = made.filter { Set(ring.replicas(for: $0.0, count: 2).map(\.id)) == ["b", "c"] }
        let survivors = made.filter { ring.replicas(for: $0.0, count: 2).contains { $0.id == "a" } }
        #expect(!onBC.isEmpty && !survivors.isEmpty)
        await cluster["b"]!.kill9()
        await cluster["c"]!.kill9()
        for id in ["b", "c"] { try FileManager.default.removeItem(atPath: cluster.dataDirectory(id)) }
        try await waitForView(cluster, ["a"])
        let impatient = CrucialClient(configuration: .init(servers: [cluster["a"]!.address], failoverTimeout: .seconds(1)))
        defer { impatient.close() }
        do {
            _ = try await impatient.state(of: onBC[0].0)
            Issue.record("\(onBC[0].0) was served with both its copies gone")
        } catch let e as CrucialError {
            #expect(e.code == .unavailable, "\(e)")
        }
        for id in ["b", "c"] { try await cluster.start(id) }
        try await waitForView(cluster, ["a", "b", "c"])
        for (ref, _) in onBC {
            // Refused, whether the call would create it or not: never a fresh object.
            let c = EveryType.of(ref)
            for create in [c.initial, nil] as [Value?] {
                do {
                    let value = try await client.call(ref, c.read, create: create, persistent: true)
                    Issue.record("\(ref) answered \(value) with both its copies lost")
                } catch let e as CrucialError {
                    #expect(e.code == .dataLoss && e.message.contains("crucial cluster accept-loss"), "\(ref): \(e)")
                }
            }
        }
        for (ref, state) in survivors { #expect(try await client.state(of: ref) == state, "\(ref) had a copy on a") }
        let status = try await runCLI(["cluster", "status", "--servers", cluster["a"]!.address])
        #expect(status.out.contains("LOST:"), "\(status.out)")

        // One forgotten: created afresh from its initial state; the others still refused.
        let (first, _) = onBC[0]
        let forget = try await runCLI(["objects", "forget", first.type, first.key, "--servers", cluster["a"]!.address])
        #expect(forget.status == 0, "\(forget.err)")
        _ = try await client.call(first, EveryType.of(first).read, create: EveryType.of(first).initial, persistent: true)
        if onBC.count > 1 {
            await #expect(throws: CrucialError.self) { try await client.state(of: onBC[1].0) }
        }
        let accept = try await runCLI(["cluster", "accept-loss", "--servers", cluster["c"]!.address])
        #expect(accept.status == 0 && accept.out.contains("b, c"), "\(accept.out)\(accept.err)")
        let cleared = try await runCLI(["cluster", "status", "--servers", cluster["a"]!.address])
        #expect(!cleared.out.contains("LOST:"), "\(cleared.out)")
        for (ref, _) in onBC { _ = try await client.call(ref, EveryType.of(ref).read, create: EveryType.of(ref).initial, persistent: true) }
    }
}
