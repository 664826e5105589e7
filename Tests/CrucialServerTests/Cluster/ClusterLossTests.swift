import CrucialCore
@testable import CrucialServerCore
import Testing

/// Losing every copy of objects, and forgetting removed ones, in process: members back
/// without their data make their objects DATA_LOSS until an operator accepts it; tombstones
/// go once no member that could revive an object is away.
@Suite("Lost objects and collected tombstones, in process", .timeLimit(.minutes(2)))  // a hang fails, never a slow machine
struct ClusterLossTests {
    @Test("Members back with empty data directories: what had every copy on them answers DATA_LOSS, creating calls too, until an operator accepts")
    func lostUntilAccepted() async throws {
        let c = InProcessCluster(["a", "b", "c"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b", "c"])
        try await ClusterViewChangeTests.fill(c, in: v1)
        let ring = HashRing(members: v1.members)
        let onBC = ClusterViewChangeTests.refs.filter { Set(ring.replicas(for: $0, count: 2).map(\.id)) == ["b", "c"] }
        let elsewhere = ClusterViewChangeTests.refs.filter { !onBC.contains($0) }
        #expect(!onBC.isEmpty && !elsewhere.isEmpty)
        func code(_ o: Outcome) -> CrucialError.Code? { if case .error(let e) = o { e.code } else { nil } }
        c.crash("b")
        c.crash("c")
        let v2 = try await c.serve(2, ["a"])
        for ref in onBC { #expect(code(try await c.call(ref, "get", in: v2)) == .unavailable, "\(ref)") }
        // An ephemeral object whose one copy is on b: away too, and the refusal says what
        // brings it back (b paused, not crashed) and that persistence would have kept it.
        let ephemeral = try #require((0..<200).map { ObjectRef(type: "AtomicLong", key: "e\($0)") }.first { ring.primary(for: $0)?.id == "b" })
        guard case .error(let away) = try await c.call(ephemeral, "get", in: v2, persistent: false) else {
            Issue.record("an ephemeral object on b was served while b is away")
            return
        }
        #expect(away.code == .unavailable)
        #expect(away.message.contains("one that crashed or restarted lost them") && away.message.contains("make it persistent"), "\(away.message)")
        // b and c come back with nothing (new processes, empty data directories).
        c.add("b", incarnation: 2)
        c.add("c", incarnation: 2)
        let v3 = try await c.serve(3, ["a", "b", "c"])
        for ref in onBC {
            #expect(code(try await c.call(ref, "get", in: v3)) == .dataLoss, "\(ref) with a Create")
            #expect(code(try await c.call(ref, "get", in: v3, creating: false)) == .dataLoss, "\(ref) without")
        }
        for (i, ref) in ClusterViewChangeTests.refs.enumerated() where elsewhere.contains(ref) {
            #expect(try await c.call(ref, "get", in: v3) == .value(.int(Int64(i + 1))), "\(ref) had a copy on a")
        }
        // One forgotten: it is created afresh; the others are still refused.
        _ = try await c.nodes["a"]!.cluster.acceptLoss(of: onBC[0])
        #expect(try await c.call(onBC[0], "incrementAndGet", in: v3) == .value(.int(1)))
        if onBC.count > 1 { #expect(code(try await c.call(onBC[1], "get", in: v3)) == .dataLoss) }
        // Every loss accepted: everything is served, the holes are gone.
        let (upTo, members) = try await c.nodes["b"]!.cluster.acceptLoss(of: nil)
        #expect(upTo == 3 && members == ["b", "c"])
        for ref in onBC.dropFirst() { #expect(try await c.call(ref, "get", in: v3) == .value(.int(0))) }
        #expect(c.nodes.values.allSatisfy { $0.cluster.holes.isEmpty })
    }

    @Test("Tombstones are collected in a view with no hole: every replica drops them, and a removed object stays removed")
    func tombstonesCollected() async throws {
        let c = InProcessCluster(["a", "b", "c"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b", "c"])
        try await ClusterViewChangeTests.fill(c, in: v1)
        for ref in ClusterViewChangeTests.refs { #expect(try await c.remove(ref, in: v1) == .value(.bool(true))) }
        #expect(c.nodes.values.map { $0.store.tombstoneCount }.reduce(0, +) == ClusterViewChangeTests.refs.count * 2)
        var collected = 0
        for node in c.nodes.values { collected += await node.cluster.collectTombstones() }
        #expect(collected == ClusterViewChangeTests.refs.count)
        #expect(c.nodes.values.allSatisfy { $0.store.tombstoneCount == 0 })
        #expect(c.collection.withLock { $0 } == TombstoneCollection(view: 1, members: ["a", "b", "c"], rf: 2))
        func code(_ o: Outcome) -> CrucialError.Code? { if case .error(let e) = o { e.code } else { nil } }
        for ref in ClusterViewChangeTests.refs { #expect(code(try await c.call(ref, "get", in: v1, creating: false)) == .notFound) }
        // Created again, it starts afresh.
        #expect(try await c.call(ClusterViewChangeTests.refs[0], "incrementAndGet", in: v1) == .value(.int(1)))
    }

    @Test("No tombstone is collected while a hole exists (a member away may bring an older copy back)")
    func noCollectionWithAHole() async throws {
        let c = InProcessCluster(["a", "b", "c"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b", "c"])
        try await ClusterViewChangeTests.fill(c, in: v1)
        c.crash("b")
        c.crash("c")
        let v2 = try await c.serve(2, ["a"])
        let ring = HashRing(members: v1.members)
        let withCopyOnA = ClusterViewChangeTests.refs.filter { ring.replicas(for: $0, count: 2).contains { $0.id == "a" } }
        for ref in withCopyOnA { #expect(try await c.remove(ref, in: v2) == .value(.bool(true))) }
        #expect(await c.nodes["a"]!.cluster.collectTombstones() == 0)
        #expect(c.nodes["a"]!.store.tombstoneCount == withCopyOnA.count)
    }

    @Test("A member away while tombstones were collected discards its copies when it comes back: a removed object is not revived")
    func awayDuringCollection() async throws {
        let c = InProcessCluster(["a", "b", "c"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b", "c"])
        try await ClusterViewChangeTests.fill(c, in: v1)
        // c is cut off (its process and its copies live on); the others go on without it.
        c.unreachable("c")
        let v2 = try await c.serve(2, ["a", "b"])
        let ring = HashRing(members: v1.members)
        let onC = ClusterViewChangeTests.refs.filter { ring.replicas(for: $0, count: 2).contains { $0.id == "c" } }
        #expect(!onC.isEmpty)
        for ref in onC { #expect(try await c.remove(ref, in: v2) == .value(.bool(true))) }
        for node in ["a", "b"] { await c.nodes[node]!.cluster.collectTombstones() }
        #expect(c.nodes["a"]!.store.tombstoneCount + c.nodes["b"]!.store.tombstoneCount == 0)
        #expect(onC.allSatisfy { c.nodes["c"]!.store.snapshot($0) != nil }, "c still holds its old copies")
        // c registers again: it learns of the collection and discards what it held.
        c.reachable("c")
        c.nodes["c"]!.cluster.discardStaleCopies(after: c.collection.withLock { $0 })
        let v3 = try await c.serve(3, ["a", "b", "c"])
        func code(_ o: Outcome) -> CrucialError.Code? { if case .error(let e) = o { e.code } else { nil } }
        for ref in onC { #expect(code(try await c.call(ref, "get", in: v3, creating: false)) == .notFound, "\(ref) came back") }
        for (i, ref) in ClusterViewChangeTests.refs.enumerated() where !onC.contains(ref) {
            #expect(try await c.call(ref, "get", in: v3) == .value(.int(Int64(i + 1))))
        }
    }
}
