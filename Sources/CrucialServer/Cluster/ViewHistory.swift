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
/// version.
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
    func report(id: UInt64, viewID: UInt64, from: String, leftGracefully: (View.Member) -> Bool, into view: View) -> TransferDone {
        let present = Set(view.members.map(\.id))
        let left = (stable?.members ?? []).filter { !present.contains($0.id) && leftGracefully($0) }.map(\.id)
        return TransferDone(
            id: id, viewID: viewID, from: from, stableViewID: stable?.id ?? 0, stableMembers: stable?.members.map(\.id) ?? [],
            holes: holes, left: left)
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
        // A member back in the view brought whatever it holds: it is no longer away.
        var merged: Set<Hole> = []
        for h in holes {
            let absent = h.absent.filter { !present.contains($0) }
            if !absent.isEmpty { merged.insert(Hole(members: h.members, absent: absent)) }
        }
        return ViewHistory(stable: view, holes: merged.sorted { ($0.members.joined(separator: ","), $0.absent.joined(separator: ",")) < ($1.members.joined(separator: ","), $1.absent.joined(separator: ",")) })
    }
}

/// The holes of a history with their rings, for the per-call check.
struct HoleIndex: Sendable {
    private let entries: [(hole: Hole, ring: HashRing, absent: Set<String>)]

    init(_ holes: [Hole]) {
        entries = holes.map { h in (h, HashRing(members: h.members.map { View.Member(id: $0, address: "") }), Set(h.absent)) }
    }

    var isEmpty: Bool { entries.isEmpty }

    /// The members away with every copy of `ref` (kept on `copies` members), or nil when
    /// some copy is present.
    func absentHolders(of ref: ObjectRef, copies: Int) -> [String]? {
        for e in entries {
            let holders = e.ring.replicas(for: ref, count: copies).map(\.id)
            if !holders.isEmpty, holders.allSatisfy(e.absent.contains) { return holders }
        }
        return nil
    }
}
