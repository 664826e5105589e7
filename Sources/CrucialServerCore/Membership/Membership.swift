internal import CrucialCore
internal import Foundation
internal import Logging

/// Cluster membership from etcd.
///
/// A member registers `<root>members/<node id>` = its address, under a lease it keeps
/// alive; a crashed or partitioned member's lease lapses and etcd deletes its key. A
/// view is the member set at an etcd revision, and its id is the revision of the
/// change that made it: every member derives the same views with the same ids,
/// because each reads the set at its own registration's revision and then applies the
/// watched changes in revision order. A member's *incarnation* is the revision of its
/// key's last put: a member that restarts, or registers again after its lease lapsed,
/// is a new incarnation of its node id.
///
/// A member that leaves gracefully deletes its key and puts `<root>left/<node id>` =
/// its incarnation in one transaction: the others see that it handed everything over.
///
/// What operators accepted of lost objects is there too, the same for every member:
/// `<root>loss-accepted` = the view up to which every loss is accepted, and
/// `<root>forgotten/<type>/<key>` (hex) = the view up to which that object's loss is.
final class Membership: Sendable {
    let etcd: any CoordinationStore
    let clusterName: String
    let root: String
    var membersPrefix: String { root + "members/" }
    var leftPrefix: String { root + "left/" }
    var lossAcceptedKey: String { root + "loss-accepted" }
    var collectionKey: String { root + "tombstones-collected" }
    var forgottenPrefix: String { root + "forgotten/" }
    let nodeID: String
    let address: String
    let rf: UInt32
    let leaseTTL: Int
    /// The data directory holding this member's ``MemberRecord``; nil for a member in memory only.
    let dataDirectory: String?
    private let logger: Logger

    init(
        store: CoordinationStoreFactory, endpoint: String, cluster: String, nodeID: String, address: String, rf: UInt32, leaseTTL: Int,
        dataDirectory: String?, logger: Logger
    ) {
        self.etcd = store(endpoint, .seconds(max(1, min(5, leaseTTL))))
        self.clusterName = cluster
        self.root = "/crucial/\(cluster)/"
        self.nodeID = nodeID
        self.address = address
        self.rf = rf
        self.leaseTTL = leaseTTL
        self.dataDirectory = dataDirectory
        self.logger = logger
    }

    /// What a registration gives: the lease to keep alive, this incarnation, and the first view.
    struct Registration: Sendable {
        let lease: Int64
        let incarnation: UInt64
        let view: View
        /// Graceful departures known so far: node id → the incarnation that left.
        let left: [String: UInt64]
        /// When the lease was granted: it lasts `leaseTTL` from (at the latest) then.
        let grantedAt: ContinuousClock.Instant
        /// The losses operators accepted so far.
        var acceptance = LossAcceptance()
        /// The last collection of tombstones.
        var collection: TombstoneCollection?
    }

    /// Why this member may not register (another member has its node id), or nil.
    /// Called before listening, so that a refused server never accepts a connection.
    func refusal() async throws -> CrucialError? {
        let (existing, _) = try await etcd.range(prefix: membersPrefix + nodeID)
        guard let clash = existing.first(where: { $0.key == membersPrefix + nodeID }) else { return nil }
        if let record = try dataDirectory.flatMap({ dir throws(CrucialError) in try MemberRecord.load(directory: dir) }),
            record.nodeID == nodeID, record.leases.contains(clash.lease)
        {
            return nil  // our own key from before a restart: taken over in register()
        }
        let hint =
            dataDirectory == nil
            ? "a restarted member comes back under its id at once only with the --data-dir it ran with; else its old entry goes after its lease (\(leaseTTL) s)"
            : "this data directory did not register it (its \(MemberRecord.fileName) names no such lease)"
        return CrucialError(
            .illegalState,
            "node id \(nodeID) is already registered in etcd by \(String(decoding: clash.value, as: UTF8.self)); give every server its own --node-id (\(hint))")
    }

    /// Registers this member, taking over its own key from before a restart or a lapse.
    func register() async throws -> Registration {
        if let refusal = try await refusal() { throw refusal }
        let (existing, _) = try await etcd.range(prefix: membersPrefix + nodeID)
        let old = existing.first { $0.key == membersPrefix + nodeID }?.lease
        let grantedAt = ContinuousClock.now
        let lease = try await etcd.grantLease(ttl: leaseTTL)
        if let dir = dataDirectory {
            // Recorded before the key is put under it: the proof of identity for the next restart.
            var record = try MemberRecord.load(directory: dir) ?? MemberRecord(cluster: clusterName, nodeID: nodeID)
            record.add(lease: lease)
            try record.save(directory: dir)
        }
        let revision = try await etcd.put(membersPrefix + nodeID, Array(address.utf8), lease: lease)
        if let old, old != 0, old != lease {
            // The key is under the new lease now; the old one (of the previous process) has nothing left.
            try? await etcd.revoke(lease: old)
        }
        let (kvs, _) = try await etcd.range(prefix: root, revision: revision)
        let (members, left) = parse(kvs)
        var registration = Registration(
            lease: lease, incarnation: UInt64(revision), view: View(id: UInt64(revision), members: members, rf: rf), left: left,
            grantedAt: grantedAt)
        for kv in kvs { apply(kv, deleted: false, to: &registration.acceptance) }
        registration.collection = kvs.first { $0.key == collectionKey }.flatMap { try? JSONDecoder().decode(TombstoneCollection.self, from: Data($0.value)) }
        return registration
    }

    /// Records a collection of tombstones made in `collection.view` (never replacing a newer one).
    func record(_ collection: TombstoneCollection) async throws {
        let (kvs, _) = try await etcd.range(prefix: collectionKey)
        let current = kvs.first { $0.key == collectionKey }.flatMap { try? JSONDecoder().decode(TombstoneCollection.self, from: Data($0.value)) }
        guard (current?.view ?? 0) < collection.view else { return }
        _ = try await etcd.put(collectionKey, Array(try JSONEncoder().encode(collection)))
    }

    /// Follows one key of the operators' acceptance of losses into `acceptance`; false for other keys.
    @discardableResult
    private func apply(_ kv: CoordinationKeyValue, deleted: Bool, to acceptance: inout LossAcceptance) -> Bool {
        let value = UInt64(String(decoding: kv.value, as: UTF8.self)) ?? 0
        if kv.key == lossAcceptedKey {
            acceptance.upTo = deleted ? 0 : value
            return true
        }
        guard kv.key.hasPrefix(forgottenPrefix) else { return false }
        let parts = kv.key.dropFirst(forgottenPrefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let type = Self.unhex(parts[0]), let key = Self.unhex(parts[1]) else { return true }
        acceptance.objects[ObjectRef(type: type, key: key)] = deleted ? nil : value
        return true
    }

    /// Records that every loss found up to view `upTo` is accepted (never lowering what is
    /// there), and forgets the single objects' acceptances it covers.
    func acceptLosses(upTo: UInt64) async throws {
        let (kvs, _) = try await etcd.range(prefix: lossAcceptedKey)
        let current = kvs.first { $0.key == lossAcceptedKey }.flatMap { UInt64(String(decoding: $0.value, as: UTF8.self)) } ?? 0
        if upTo > current { _ = try await etcd.put(lossAcceptedKey, Array(String(upTo).utf8)) }
        try await etcd.delete(prefix: forgottenPrefix)
    }

    /// Records that the loss of `ref` found up to view `upTo` is accepted.
    func forget(_ ref: ObjectRef, upTo: UInt64) async throws {
        _ = try await etcd.put(forgottenPrefix + Self.hex(ref.type) + "/" + Self.hex(ref.key), Array(String(upTo).utf8))
    }

    private static func hex(_ s: String) -> String { s.utf8.map { String(format: "%02x", $0) }.joined() }

    private static func unhex(_ s: Substring) -> String? {
        guard s.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            guard let b = UInt8(s[i..<j], radix: 16) else { return nil }
            bytes.append(b)
            i = j
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func parse(_ kvs: [CoordinationKeyValue]) -> (members: [View.Member], left: [String: UInt64]) {
        var members: [View.Member] = []
        var left: [String: UInt64] = [:]
        for kv in kvs {
            if kv.key.hasPrefix(membersPrefix) {
                members.append(
                    View.Member(
                        id: String(kv.key.dropFirst(membersPrefix.count)), address: String(decoding: kv.value, as: UTF8.self),
                        incarnation: UInt64(kv.modRevision)))
            } else if kv.key.hasPrefix(leftPrefix) {
                left[String(kv.key.dropFirst(leftPrefix.count))] = UInt64(String(decoding: kv.value, as: UTF8.self))
            }
        }
        return (members.sorted { $0.id < $1.id }, left)
    }

    /// How a keep-alive loop ended.
    enum Lapse: Sendable {
        /// etcd answered that the lease is gone: this incarnation is out of the views.
        case expired
        /// Someone (the view without this member) asked to register again.
        case asked
        case cancelled
    }

    /// Keeps `lease` alive until it lapses, reporting each renewal's deadline (the time of
    /// the request plus the TTL etcd granted: etcd cannot drop the lease before then).
    /// A failed renewal is retried every 250 ms; the deadline just stops moving.
    func keepAlive(
        _ lease: Int64, onRenewed: @Sendable (ContinuousClock.Instant) -> Void, shouldStop: @Sendable () -> Bool
    ) async -> Lapse {
        var failures = 0
        var next = ContinuousClock.now + .milliseconds(leaseTTL * 1000 / 4)
        while !Task.isCancelled {
            while ContinuousClock.now < next {
                if shouldStop() { return .asked }
                try? await Task.sleep(for: .milliseconds(50))
                if Task.isCancelled { return .cancelled }
            }
            let sent = ContinuousClock.now
            do {
                let ttl = try await etcd.keepAlive(lease: lease)
                if ttl <= 0 {
                    logger.error("this member's etcd lease lapsed: it left the cluster's view; registering again", metadata: ["lease": "\(lease)"])
                    return .expired
                }
                onRenewed(sent + .seconds(ttl))
                if failures > 0 { logger.notice("etcd keep-alive works again", metadata: ["failures": "\(failures)"]) }
                failures = 0
                next = sent + .milliseconds(leaseTTL * 1000 / 4)
            } catch {
                failures += 1
                if failures == 1 || failures % 20 == 0 {
                    logger.warning("etcd keep-alive failed", metadata: ["error": "\(error)", "failures": "\(failures)"])
                }
                next = ContinuousClock.now + .milliseconds(250)
            }
        }
        return .cancelled
    }

    /// What the watch reports: a new view, with the graceful departures known so far.
    struct Change: Sendable {
        let view: View
        let left: [String: UInt64]
    }

    /// Calls `onChange` with every view after `first`, in order, and `onAcceptance` with
    /// every change of the operators' acceptance of losses, until cancelled. A broken watch
    /// is resumed from the last revision seen.
    func watch(
        after first: Registration, onChange: @escaping @Sendable (Change) async -> Void,
        onAcceptance: @escaping @Sendable (LossAcceptance) async -> Void = { _ in }
    ) async {
        let current = WatchState(
            byID: Dictionary(uniqueKeysWithValues: first.view.members.map { ($0.id, $0) }), left: first.left,
            revision: Int64(first.view.id), acceptance: first.acceptance)
        while !Task.isCancelled {
            do {
                try await etcd.watch(prefix: root, from: current.revision + 1) { events in
                    var changed = false
                    var accepted = false
                    for event in events {
                        if self.apply(event.kv, deleted: event.deleted, to: &current.acceptance) {
                            accepted = true
                            current.revision = max(current.revision, event.kv.modRevision)
                            continue
                        }
                        let key = event.kv.key
                        if key.hasPrefix(self.membersPrefix) {
                            let id = String(key.dropFirst(self.membersPrefix.count))
                            current.byID[id] =
                                event.deleted
                                ? nil
                                : View.Member(
                                    id: id, address: String(decoding: event.kv.value, as: UTF8.self), incarnation: UInt64(event.kv.modRevision))
                            changed = true
                        } else if key.hasPrefix(self.leftPrefix), !event.deleted {
                            current.left[String(key.dropFirst(self.leftPrefix.count))] = UInt64(String(decoding: event.kv.value, as: UTF8.self))
                        }
                        current.revision = max(current.revision, event.kv.modRevision)
                    }
                    if changed {
                        await onChange(Change(view: View(id: UInt64(current.revision), members: current.sorted, rf: self.rf), left: current.left))
                    }
                    if accepted { await onAcceptance(current.acceptance) }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("etcd watch broke; resuming", metadata: ["error": "\(error)", "revision": "\(current.revision)"])
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Leaves the views at once (graceful shutdown, objects handed over): deletes the key and
    /// marks the departure as graceful in one transaction, then revokes the lease.
    func leave(_ lease: Int64, incarnation: UInt64) async {
        do {
            try await etcd.deleteAndPut(delete: membersPrefix + nodeID, put: leftPrefix + nodeID, value: Array(String(incarnation).utf8))
        } catch {
            logger.warning("could not deregister from etcd; this member leaves when its lease lapses", metadata: ["error": "\(error)"])
        }
        try? await etcd.revoke(lease: lease)
    }

    /// Ends `member`'s lease at once (its peers found it dead), if its key is still that
    /// incarnation's: a member that restarted meanwhile is left alone.
    func evict(_ member: View.Member) async throws {
        let (kvs, _) = try await etcd.range(prefix: membersPrefix + member.id)
        guard let kv = kvs.first(where: { $0.key == membersPrefix + member.id }), kv.lease != 0,
            UInt64(kv.modRevision) == member.incarnation
        else { return }
        try await etcd.revoke(lease: kv.lease)
    }
}

/// The member set as the watch sees it (touched by one watch task at a time).
private final class WatchState: @unchecked Sendable {
    var byID: [String: View.Member]
    var left: [String: UInt64]
    var revision: Int64
    var acceptance: LossAcceptance
    init(byID: [String: View.Member], left: [String: UInt64], revision: Int64, acceptance: LossAcceptance) {
        self.byID = byID
        self.left = left
        self.revision = revision
        self.acceptance = acceptance
    }
    var sorted: [View.Member] { byID.values.sorted { $0.id < $1.id } }
}
