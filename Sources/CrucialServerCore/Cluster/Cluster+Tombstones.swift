import Synchronization
internal import CrucialCore
internal import Logging
internal import NIOCore

/// A collection of tombstones, as etcd keeps it (`<root>tombstones-collected`): the view it
/// was made in and that view's members. A member of that view that had not served it yet
/// took part for the objects it is a replica of there; any other member that comes back
/// from before it discards its copies (``Cluster/registered(_:)``).
struct TombstoneCollection: Sendable, Equatable, Codable {
    var view: UInt64
    var members: [String]
    var rf: Int
}

/// Collecting the tombstones of removed persistent objects.
///
/// A tombstone keeps a member that comes back with an older copy from reviving a removed
/// object. It is needed only while such a member may exist, so it is collected when none
/// can: in a view where every object has a copy on a present member (no hole of `rf` or more
/// departed members), the
/// primary of each removed object sends the tombstone's collection to the object's other
/// replicas (which also drop a copy that missed the removal), and once all applied it,
/// drops its own. Before the first drop in a view, the view and its members are recorded
/// in etcd: a member that was away (not a member of that view, or not yet serving it) and
/// comes back later discards the copies that collection may have left it stale on, which
/// loses nothing, since every object had a copy on a present member.
extension Cluster {
    /// How many tombstones one round sends at most (the rest wait for the next round).
    static let collectionBatch = 20_000

    /// One round of collection; returns how many tombstones were collected. Does nothing
    /// unless this member serves a view with no hole and its lease is sure.
    @discardableResult
    func collectTombstones() async -> Int {
        let round = state.withLock { s -> (view: View, me: String, ring: HashRing, recorded: Bool)? in
            guard let view = s.view, s.ready, s.inView, !s.leaving, !s.leaseExpired else { return nil }
            // A member away alone leaves a hole no object is in (each has another copy); one
            // with `rf` members gone may hold objects nobody else has.
            guard s.history.holes.allSatisfy({ Set($0.absent + $0.lost.map(\.id)).count < rf }) else { return nil }
            return (view, s.me.id, s.ring, s.collectedIn == view.id)
        }
        guard let round else { return 0 }
        let mine = store.allTombstones().filter { round.ring.primary(for: $0.0)?.id == round.me }.prefix(Self.collectionBatch)
        guard !mine.isEmpty else { return 0 }
        if !round.recorded {
            do {
                try await recordCollection(TombstoneCollection(view: round.view.id, members: round.view.members.map(\.id), rf: rf))
            } catch {
                logger.warning("cannot record a collection of tombstones in etcd; they are kept for now", metadata: ["error": "\(error)"])
                return 0
            }
            state.withLock { $0.collectedIn = round.view.id }
        }
        var acks: [(ObjectRef, ObjectVersion, EventLoopFuture<Outcome?>)] = []
        for (ref, version) in mine {
            let links = state.withLock { s -> [PeerLink]? in
                guard s.view?.id == round.view.id else { return nil }
                return round.ring.replicas(for: ref, count: rf).filter { $0.id != round.me }.map { link(to: $0, in: &s) }
            }
            guard let links else { break }
            let sent = send(.collect, of: ref, at: version, in: round.view.id, to: links)
            acks.append((ref, version, EventLoopFuture.whenAllSucceed(sent, on: loop).map { $0.compactMap { $0 }.first }))
        }
        var collected = 0
        for (ref, version, ack) in acks {
            // Only once every replica dropped it, and only in the view it was sent in.
            let answer: Outcome?? = try? await ack.get()  // nil: failed; .some(nil): every replica applied it
            guard case .some(.none) = answer, viewID == round.view.id else { continue }
            _ = store.collect(ref, at: version)
            collected += 1
        }
        if collected > 0 {
            logger.info("collected tombstones", metadata: ["collected": "\(collected)", "view": "\(round.view.id)", "left": "\(store.tombstoneCount)"])
        }
        return collected
    }

    /// What a member that registers (again) does about a collection of tombstones made while
    /// it was away: nothing if it served that view since; else it discards the copies the
    /// collection may have left it stale on (every copy, unless it was a member of that
    /// view, in which case only those of objects it was not a replica of there: of those it
    /// was, it applied the collection). Called before the member offers its copies to anyone.
    func discardStaleCopies(after collection: TombstoneCollection?) {
        guard let collection else { return }
        let (served, me) = state.withLock { ($0.history.stable?.id ?? 0, $0.me.id) }
        guard served < collection.view else { return }
        let ring = HashRing(members: collection.members.map { View.Member(id: $0, address: "") })
        let wasMember = collection.members.contains(me)
        let stale: (ObjectRef) -> Bool = { ref in
            !wasMember || !ring.replicas(for: ref, count: collection.rf).contains { $0.id == me }
        }
        let (copies, tombstones) = store.discard(where: stale)
        guard copies + tombstones > 0 else { return }
        if !wasMember { state.withLock { $0.empty = true } }
        logger.notice(
            "tombstones were collected while this member was away: it discarded the copies that could revive removed objects (every object had a copy on the members present then)",
            metadata: ["collectedIn": "\(collection.view)", "lastServed": "\(served)", "copies": "\(copies)", "tombstones": "\(tombstones)"])
    }
}
