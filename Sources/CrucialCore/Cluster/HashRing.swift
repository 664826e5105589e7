/// Placement of objects on the members of a view by consistent hashing with virtual nodes.
///
/// Each member owns `virtualNodes` points on a 64-bit ring; an object's replicas are the
/// first `rf` distinct members met clockwise from the hash of its `(type, key)`, the first
/// being its primary. The hash is FNV-1a with a SplitMix64 finaliser: stable across
/// processes and machines (Swift's `Hasher` is seeded per process, so it cannot be used),
/// and it spreads similar keys ("counter:1", "counter:2") over the ring.
///
/// ```swift
/// let ring = HashRing(members: view.members)
/// let replicas = ring.replicas(for: ObjectRef(type: "AtomicLong", key: "hits"), count: 2)
/// ```
package struct HashRing: Sendable, Equatable {
    package static let defaultVirtualNodes = 128

    package let members: [View.Member]
    package let virtualNodes: Int
    /// Ring points in ascending order, each naming the index of its member.
    private let points: [(hash: UInt64, member: Int)]

    package init(members: [View.Member], virtualNodes: Int = HashRing.defaultVirtualNodes) {
        // The order members are listed in must not matter.
        let sorted = Array(Set(members)).sorted { $0.id < $1.id }
        self.members = sorted
        self.virtualNodes = max(1, virtualNodes)
        var points: [(UInt64, Int)] = []
        points.reserveCapacity(sorted.count * self.virtualNodes)
        for (i, member) in sorted.enumerated() {
            for v in 0..<self.virtualNodes { points.append((Self.hash("\(member.id)#\(v)"), i)) }
        }
        // Ties (astronomically unlikely) break by member id, so every process agrees.
        self.points = points.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map { (hash: $0.0, member: $0.1) }
    }

    /// The first `count` distinct members clockwise from `ref`'s hash (fewer if the view is smaller).
    package func replicas(for ref: ObjectRef, count: Int) -> [View.Member] {
        guard !points.isEmpty, count > 0 else { return [] }
        let wanted = min(count, members.count)
        let h = Self.hash(ref)
        // The first point at or after h, wrapping around.
        var low = 0, high = points.count
        while low < high {
            let mid = (low + high) / 2
            if points[mid].hash < h { low = mid + 1 } else { high = mid }
        }
        var chosen: [Int] = []
        var i = low % points.count
        while chosen.count < wanted {
            let m = points[i].member
            if !chosen.contains(m) { chosen.append(m) }
            i = (i + 1) % points.count
        }
        return chosen.map { members[$0] }
    }

    /// The member that orders the operations of `ref`.
    package func primary(for ref: ObjectRef) -> View.Member? { replicas(for: ref, count: 1).first }

    package static func == (a: HashRing, b: HashRing) -> Bool { a.members == b.members && a.virtualNodes == b.virtualNodes }

    // MARK: Hashing

    /// The ring position of `ref`: type and key separated by a byte no type name contains.
    package static func hash(_ ref: ObjectRef) -> UInt64 {
        var h = fnv1a(ref.type.utf8)
        h = fnv1a(CollectionOfOne(0), seed: h)
        return mix(fnv1a(ref.key.utf8, seed: h))
    }

    /// The ring position of a member's virtual node, named `"<member id>#<v>"`.
    package static func hash(_ s: String) -> UInt64 { mix(fnv1a(s.utf8)) }

    private static func fnv1a(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0xCBF2_9CE4_8422_2325) -> UInt64 {
        var h = seed
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    /// SplitMix64's finaliser: every input bit affects every output bit.
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
