internal import CrucialCore

/// What a member knows of the cluster's past: the last view it served, and the *holes*
/// that members left when they departed without handing their objects over.
///
/// Every acknowledged change of an object is on all of its replicas, so as long as one
/// replica of the last view an object was complete in is still (or again) in the view,
/// the object's newest state is there. When all of them departed at once (crashed, cut
/// off, dropped by etcd while alive), the object's state is on members that are away:
/// serving it from scratch would silently roll it back. Those objects are in a hole and
/// answered UNAVAILABLE until one of their replicas is back, its copies merged again by
/// version. A replica that comes back *without* its data (an empty data directory: its
/// disk was lost and the member replaced) is *lost*, not back: once every replica of an
/// object is lost, the object is answered DATA_LOSS until an operator accepts the loss
/// (``LossAcceptance``), never created afresh behind the users' backs.
///
/// Departures are counted from the newest view any member of the new view served (every
/// member reports its own in TransferDone, so all of them compute the same holes), minus
/// those that left gracefully, having handed everything over first. A pure value:
/// the view-change logic is tested without sockets.
struct ViewHistory: Sendable, Equatable {
    /// The last view this member served (with its members' incarnations).
    var stable: View?
    var holes: [Hole] = []

    /// The sender's part of a TransferDone: its stable view and holes, and which members of
    /// that view left it gracefully (`leftGracefully`: they handed their objects over).
    /// `empty`: the sender holds no data of an earlier incarnation.
    func report(
        id: UInt64, viewID: UInt64, from: String, leftGracefully: (View.Member) -> Bool, into view: View, empty: Bool = false
    ) -> TransferDone {
        let present = Set(view.members.map(\.id))
        let left = (stable?.members ?? []).filter { !present.contains($0.id) && leftGracefully($0) }.map(\.id)
        return TransferDone(
            id: id, viewID: viewID, from: from, stableViewID: stable?.id ?? 0, stableMembers: stable?.members.map(\.id) ?? [],
            holes: holes, left: left, empty: empty)
    }

    /// The history once `view` is served, from every member's report (this one's included).
    func completing(_ view: View, reports: [TransferDone]) -> ViewHistory {
        let present = Set(view.members.map(\.id))
        var holes: Set<Hole> = []
        // The newest view anyone served: its members' holes are current (a member back from
        // a long absence reports holes long resolved), and departures count from it.
        if let newest = reports.filter({ $0.stableViewID != 0 }).max(by: { $0.stableViewID < $1.stableViewID }) {
            let current = reports.filter { $0.stableViewID == newest.stableViewID }
            for r in current { holes.formUnion(r.holes) }
            let left = Set(current.flatMap(\.left))
            let departed = newest.stableMembers.filter { !present.contains($0) && !left.contains($0) }
            if !departed.isEmpty { holes.insert(Hole(members: newest.stableMembers.sorted(), absent: departed.sorted())) }
        }
        // A member back in the view brought whatever it holds: it is no longer away. One back
        // without any data (it says it is empty) is lost instead.
        let empty = Set(reports.filter(\.empty).map(\.from))
        var merged: Set<Hole> = []
        for h in holes {
            var hole = Hole(members: h.members, absent: [], lost: h.lost)
            for m in h.absent {
                if !present.contains(m) {
                    hole.absent.append(m)
                } else if empty.contains(m) {
                    hole.lost.append(Hole.Lost(id: m, view: view.id))
                }
            }
            // Lost members matter only to persistent objects, with `rf` copies: fewer lost, and
            // none absent, and every object had a copy elsewhere.
            if !hole.absent.isEmpty || hole.lost.count >= Int(view.rf) { merged.insert(hole) }
        }
        return ViewHistory(stable: view, holes: Self.sorted(merged))
    }

    /// The history without the holes `acceptance` settles for every object: those with no
    /// member absent, whose every loss is accepted. (A hole with a member still absent keeps
    /// its accepted losses: an object whose copies were on them and on the absent member
    /// waits for that member, which may bring it back.)
    func pruned(by acceptance: LossAcceptance) -> ViewHistory {
        ViewHistory(stable: stable, holes: holes.filter { !$0.absent.isEmpty || $0.lost.contains { $0.view > acceptance.upTo } })
    }

    private static func sorted(_ holes: Set<Hole>) -> [Hole] {
        func key(_ h: Hole) -> String { "\(h.members.joined(separator: ","))|\(h.absent.joined(separator: ","))|\(h.lost.map { "\($0.id)@\($0.view)" }.joined(separator: ","))" }
        return holes.sorted { key($0) < key($1) }
    }
}

/// What operators accepted of the losses (kept in etcd, so that every member applies the same).
struct LossAcceptance: Sendable, Equatable {
    /// Every loss found in a view up to this one is accepted (`crucial cluster accept-loss`; 0: none).
    var upTo: UInt64 = 0
    /// Single objects accepted as lost (`crucial objects forget`), each for the losses found
    /// up to its view: a later loss of the same object is refused again.
    var objects: [ObjectRef: UInt64] = [:]

    /// Whether the loss of `member` (found in its view) is accepted for `ref`.
    func covers(_ member: Hole.Lost, of ref: ObjectRef) -> Bool { member.view <= max(upTo, objects[ref] ?? 0) }
}

/// Why every copy of an object is missing.
enum Absence: Equatable {
    /// Some of its replicas are away and may come back with it.
    case away(holders: [String])
    /// Its replicas came back without their data, and the loss is not accepted.
    case lost(holders: [String], lost: [String])
}

/// The holes of a history with their rings, for the per-call check.
struct HoleIndex: Sendable {
    private let entries: [(hole: Hole, ring: HashRing, absent: Set<String>, lost: [String: UInt64])]
    let acceptance: LossAcceptance

    init(_ holes: [Hole], acceptance: LossAcceptance = LossAcceptance()) {
        entries = holes.map { h in
            (
                h, HashRing(members: h.members.map { View.Member(id: $0, address: "") }), Set(h.absent),
                Dictionary(h.lost.map { ($0.id, $0.view) }, uniquingKeysWith: max)
            )
        }
        self.acceptance = acceptance
    }

    var isEmpty: Bool { entries.isEmpty }

    /// Why `ref` (kept on `copies` members) has no copy in the view, or nil when some copy is
    /// present (or the loss of every one is accepted). A hole where some of its replicas are
    /// away says so first: they may come back with it.
    func absence(of ref: ObjectRef, copies: Int) -> Absence? {
        var lost: Absence?
        for e in entries {
            let holders = e.ring.replicas(for: ref, count: copies).map(\.id).sorted()
            guard !holders.isEmpty, holders.allSatisfy({ e.absent.contains($0) || e.lost[$0] != nil }) else { continue }
            if holders.contains(where: e.absent.contains) { return .away(holders: holders) }
            let unaccepted = holders.filter { !acceptance.covers(Hole.Lost(id: $0, view: e.lost[$0] ?? 0), of: ref) }
            if lost == nil, !unaccepted.isEmpty { lost = .lost(holders: holders, lost: unaccepted) }
        }
        return lost
    }

    /// The members away with every copy of `ref` (kept on `copies` members), or nil when
    /// some copy is present.
    func absentHolders(of ref: ObjectRef, copies: Int) -> [String]? {
        if case .away(let holders) = absence(of: ref, copies: copies) { return holders }
        return nil
    }
}
