import CrucialCore
import Testing

private func members(_ n: Int) -> [View.Member] {
    (1...n).map { View.Member(id: "node-\($0)", address: "127.0.0.1:\(7420 + $0)") }
}

private let refs = (0..<30_000).map { ObjectRef(type: $0 % 3 == 0 ? "AtomicLong" : "SharedMap", key: "key:\($0)") }

@Suite("Consistent hashing with virtual nodes")
struct HashRingTests {
    @Test("Placement is deterministic and ignores the order members are listed in")
    func deterministic() {
        let a = HashRing(members: members(3)), b = HashRing(members: members(3).reversed())
        for ref in refs.prefix(1000) { #expect(a.replicas(for: ref, count: 2) == b.replicas(for: ref, count: 2)) }
        // Fixed values: a change of hash function would move every object of a running cluster.
        // FNV-1a("AtomicLong" 0x00 "counter") through SplitMix64's finaliser, computed independently.
        #expect(HashRing.hash(ObjectRef(type: "AtomicLong", key: "counter")) == 10_116_746_370_468_241_871)
        #expect(HashRing.hash(ObjectRef(type: "a", key: "bc")) != HashRing.hash(ObjectRef(type: "ab", key: "c")))
    }

    @Test("The test vectors of docs/PROTOCOL.md (tools/ring-vectors.py computes them from the text alone)")
    func protocolVectors() {
        #expect(HashRing.hash(ObjectRef(type: "AtomicLong", key: "hits")) == 0x5D99_01A9_A487_1DB2)
        #expect(HashRing.hash("a#0") == 0x0851_D3F5_70FF_7424)
        let abc = HashRing(members: ["c", "a", "b"].map { View.Member(id: $0, address: "127.0.0.1:1") })
        let abcd = HashRing(members: ["a", "b", "c", "d"].map { View.Member(id: $0, address: "127.0.0.1:1") })
        let vectors: [(String, String, [String], [String])] = [
            ("AtomicLong", "hits", ["b", "c"], ["b", "c", "d"]),
            ("SharedMap", "users", ["a", "c"], ["d", "a", "c"]),
            ("AtomicLong", "counter:1", ["c", "b"], ["c", "d", "b"]),
            ("AtomicLong", "counter:2", ["a", "c"], ["a", "d", "c"]),
            ("CyclicBarrier", "b", ["a", "b"], ["a", "b", "d"]),
        ]
        for (type, key, rf2, rf3) in vectors {
            let ref = ObjectRef(type: type, key: key)
            #expect(abc.replicas(for: ref, count: 2).map(\.id) == rf2, "\(ref)")
            #expect(abcd.replicas(for: ref, count: 3).map(\.id) == rf3, "\(ref)")
        }
    }

    @Test("Replicas are distinct, primary first, and clamp to the view's size")
    func replicas() {
        let ring = HashRing(members: members(3))
        for ref in refs.prefix(2000) {
            let r = ring.replicas(for: ref, count: 2)
            #expect(r.count == 2 && r[0] != r[1])
            #expect(ring.primary(for: ref) == r[0])
            #expect(ring.replicas(for: ref, count: 5).count == 3)
            #expect(Array(ring.replicas(for: ref, count: 3).prefix(2)) == r)
        }
        #expect(HashRing(members: []).replicas(for: refs[0], count: 2).isEmpty)
    }

    @Test("Objects spread evenly: each of 3 nodes is primary for a third, ±10 %")
    func balance() {
        let ring = HashRing(members: members(3))
        var counts: [String: Int] = [:]
        for ref in refs { counts[ring.primary(for: ref)?.id ?? "", default: 0] += 1 }
        for (_, n) in counts { #expect(abs(Double(n) / Double(refs.count) - 1.0 / 3) < 0.1 / 3, "\(counts)") }
    }

    @Test("A joining node takes about 1/(n+1) of the objects, all from others; nothing else moves")
    func minimalMovement() {
        let before = HashRing(members: members(3)), after = HashRing(members: members(4))
        var moved = 0
        for ref in refs {
            let old = before.primary(for: ref), new = after.primary(for: ref)
            if old != new {
                moved += 1
                #expect(new?.id == "node-4")
            }
        }
        #expect(abs(Double(moved) / Double(refs.count) - 0.25) < 0.05, "moved \(moved)")
        // A leaving node's objects go to the others; the others keep theirs.
        for ref in refs.prefix(5000) where after.primary(for: ref)?.id != "node-4" {
            #expect(before.primary(for: ref) == after.primary(for: ref))
        }
    }
}
