import CrucialCore
@testable import CrucialServerCore
import Testing

/// The view-change bookkeeping that decides which objects are unavailable, without sockets.
@Suite("Cluster history: holes left by departures")
struct ViewHistoryTests {
    func view(_ id: UInt64, _ ids: [String]) -> View {
        View(id: id, members: ids.map { View.Member(id: $0, address: "", incarnation: id) }, rf: 2)
    }

    func report(_ h: ViewHistory, from: String, into v: View, left: Set<String> = [], empty: Bool = false) -> TransferDone {
        h.report(id: 0, viewID: v.id, from: from, leftGracefully: { left.contains($0.id) }, into: v, empty: empty)
    }

    @Test("Members that depart ungracefully leave a hole; a graceful one does not; a member back closes it")
    func departures() {
        let s = view(10, ["a", "b", "c"])
        let stable = ViewHistory(stable: s)
        let crash = view(11, ["a"])
        let after = stable.completing(crash, reports: [report(stable, from: "a", into: crash)])
        #expect(after.holes == [Hole(members: ["a", "b", "c"], absent: ["b", "c"])])
        // With rf 2, an object on b and c is unavailable; one with a copy on a is not.
        let index = HoleIndex(after.holes)
        let ring = HashRing(members: s.members)
        let refs = (0..<200).map { ObjectRef(type: "AtomicLong", key: "k\($0)") }
        for ref in refs {
            let holders = Set(ring.replicas(for: ref, count: 2).map(\.id))
            #expect((index.absentHolders(of: ref, copies: 2) != nil) == !holders.contains("a"))
            #expect((index.absentHolders(of: ref, copies: 1) != nil) == (ring.primary(for: ref)?.id != "a"))
        }
        // b comes back: objects b held are whole again; those on c alone (one copy) are not.
        let back = view(12, ["a", "b"])
        let later = after.completing(back, reports: [report(after, from: "a", into: back), report(ViewHistory(stable: s), from: "b", into: back)])
        #expect(later.holes == [Hole(members: ["a", "b", "c"], absent: ["c"])])

        let graceful = stable.completing(view(11, ["a", "c"]), reports: [report(stable, from: "a", into: view(11, ["a", "c"]), left: ["b"])])
        #expect(graceful.holes.isEmpty)
    }

    @Test("Departures count from the newest view any member served; a returner's stale holes are ignored")
    func newestStableView() {
        let old = ViewHistory(stable: view(5, ["a", "b", "c", "d"]), holes: [Hole(members: ["a", "d"], absent: ["d"])])
        let current = ViewHistory(stable: view(9, ["a", "b", "c"]))
        let v = view(10, ["a", "b", "c"])
        // d is gone since view 5, and left gracefully as far as view 9's members know: no hole.
        let next = current.completing(v, reports: [report(current, from: "a", into: v), report(current, from: "b", into: v), report(old, from: "c", into: v)])
        #expect(next.holes.isEmpty)
        #expect(next.stable == v)
    }

    @Test("A cluster that lost every member at once and got them all back has no hole (etcd outage, full restart)")
    func allBack() {
        let s = view(20, ["a", "b", "c"])
        let h = ViewHistory(stable: s)
        let alone = view(30, ["a"])
        let lonely = h.completing(alone, reports: [report(h, from: "a", into: alone)])
        #expect(!lonely.holes.isEmpty)
        let all = view(32, ["a", "b", "c"])
        let whole = lonely.completing(all, reports: [report(lonely, from: "a", into: all), report(h, from: "b", into: all), report(h, from: "c", into: all)])
        #expect(whole.holes.isEmpty)
    }

    @Test("A member back without its data is lost, not back: its objects are refused as lost until the loss is accepted, never served afresh")
    func emptyReturnIsLost() {
        let s = view(10, ["a", "b", "c"])
        let stable = ViewHistory(stable: s)
        let crash = view(11, ["a"])
        let holed = stable.completing(crash, reports: [report(stable, from: "a", into: crash)])
        // b comes back with an empty data directory; c is still away.
        let back = view(12, ["a", "b"])
        let half = holed.completing(back, reports: [report(holed, from: "a", into: back), report(ViewHistory(), from: "b", into: back, empty: true)])
        #expect(half.holes == [Hole(members: ["a", "b", "c"], absent: ["c"], lost: [Hole.Lost(id: "b", view: 12)])])
        let ring = HashRing(members: s.members)
        let refs = (0..<300).map { ObjectRef(type: "AtomicLong", key: "k\($0)") }
        let onBC = refs.filter { Set(ring.replicas(for: $0, count: 2).map(\.id)) == ["b", "c"] }
        let onB = refs.filter { ring.replicas(for: $0, count: 1).map(\.id) == ["b"] }
        #expect(!onBC.isEmpty && !onB.isEmpty)
        // Copies on b and c: c may bring them back: unavailable. One copy on b alone: lost.
        for ref in onBC { #expect(HoleIndex(half.holes).absence(of: ref, copies: 2) == .away(holders: ["b", "c"])) }
        for ref in onB { #expect(HoleIndex(half.holes).absence(of: ref, copies: 1) == .lost(holders: ["b"], lost: ["b"])) }
        // c comes back empty too: what was on b and c is lost.
        let all = view(13, ["a", "b", "c"])
        let gone = half.completing(
            all, reports: [report(half, from: "a", into: all), report(half, from: "b", into: all), report(ViewHistory(), from: "c", into: all, empty: true)])
        for ref in onBC { #expect(HoleIndex(gone.holes).absence(of: ref, copies: 2) == .lost(holders: ["b", "c"], lost: ["b", "c"])) }
        // One object forgotten (its losses up to view 13), then every loss accepted: nothing refused, the hole goes.
        let one = LossAcceptance(objects: [onBC[0]: 13])
        #expect(HoleIndex(gone.holes, acceptance: one).absence(of: onBC[0], copies: 2) == nil)
        #expect(HoleIndex(gone.holes, acceptance: one).absence(of: onBC[1], copies: 2) != nil)
        let every = LossAcceptance(upTo: 13)
        #expect(refs.allSatisfy { HoleIndex(gone.holes, acceptance: every).absence(of: $0, copies: 2) == nil })
        #expect(gone.pruned(by: every).holes.isEmpty)
        // An acceptance made before a loss does not cover it.
        #expect(HoleIndex(gone.holes, acceptance: LossAcceptance(upTo: 12)).absence(of: onBC[0], copies: 2) == .lost(holders: ["b", "c"], lost: ["c"]))
        #expect(!gone.pruned(by: LossAcceptance(upTo: 12)).holes.isEmpty)
    }

    @Test("A hole with a member still away keeps its accepted losses: what that member may bring back is still waited for")
    func acceptedLossWithAnAbsentMember() {
        let hole = Hole(members: ["a", "b", "c"], absent: ["c"], lost: [Hole.Lost(id: "b", view: 12)])
        let h = ViewHistory(stable: view(12, ["a", "b"]), holes: [hole])
        let accepted = LossAcceptance(upTo: 12)
        #expect(h.pruned(by: accepted).holes == [hole])
        let ring = HashRing(members: view(10, ["a", "b", "c"]).members)
        let onBC = (0..<300).map { ObjectRef(type: "AtomicLong", key: "k\($0)") }.first { Set(ring.replicas(for: $0, count: 2).map(\.id)) == ["b", "c"] }!
        #expect(HoleIndex(h.holes, acceptance: accepted).absence(of: onBC, copies: 2) == .away(holders: ["b", "c"]))
    }
}
