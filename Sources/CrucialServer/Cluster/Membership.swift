internal import CrucialCore
internal import Foundation
internal import Logging

/// Cluster membership from etcd.
///
/// A member registers `<prefix>members/<node id>` = its address, under a lease it keeps
/// alive; a crashed or partitioned member's lease expires and etcd deletes its key. A
/// view is the member set at an etcd revision, and its id is the revision of the
/// change that made it: every member derives the same views with the same ids,
/// because each reads the set at its own registration's revision and then applies the
/// watched changes in revision order.
final class Membership: Sendable {
    let etcd: EtcdClient
    let prefix: String
    let me: View.Member
    let rf: UInt32
    let leaseTTL: Int
    private let logger: Logger

    init(endpoint: String, cluster: String, me: View.Member, rf: UInt32, leaseTTL: Int, logger: Logger) {
        self.etcd = EtcdClient(endpoint: endpoint)
        self.prefix = "/crucial/\(cluster)/members/"
        self.me = me
        self.rf = rf
        self.leaseTTL = leaseTTL
        self.logger = logger
    }

    /// What registration gives: the lease to keep alive and the first view.
    struct Registration: Sendable {
        let lease: Int64
        let view: View
    }

    /// Registers this member; refuses to start when another live member has its id.
    func register() async throws -> Registration {
        let (existing, _) = try await etcd.range(prefix: prefix)
        if let clash = existing.first(where: { $0.key == prefix + me.id }) {
            throw CrucialError(
                .illegalState,
                "node id \(me.id) is already registered in etcd by \(String(decoding: clash.value, as: UTF8.self)); "
                    + "give every server its own --node-id (a crashed one's entry goes after its lease, \(leaseTTL) s)")
        }
        let lease = try await etcd.grantLease(ttl: leaseTTL)
        let revision = try await etcd.put(prefix + me.id, Array(me.address.utf8), lease: lease)
        let (kvs, _) = try await etcd.range(prefix: prefix, revision: revision)
        return Registration(lease: lease, view: View(id: UInt64(revision), members: members(kvs), rf: rf))
    }

    private func members(_ kvs: [EtcdClient.KeyValue]) -> [View.Member] {
        kvs.map { View.Member(id: String($0.key.dropFirst(prefix.count)), address: String(decoding: $0.value, as: UTF8.self)) }
            .sorted { $0.id < $1.id }
    }

    /// Keeps `lease` alive every third of its TTL until cancelled. Returns when the
    /// lease is gone (etcd let it expire): this member is no longer in the views.
    func keepAlive(_ lease: Int64) async {
        var failures = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(leaseTTL * 1000 / 3))
            if Task.isCancelled { return }
            do {
                if try await etcd.keepAlive(lease: lease) <= 0 {
                    logger.critical("this member's etcd lease expired: it left the cluster's view", metadata: ["lease": "\(lease)"])
                    return
                }
                failures = 0
            } catch {
                failures += 1
                logger.warning("etcd keep-alive failed", metadata: ["error": "\(error)", "failures": "\(failures)"])
            }
        }
    }

    /// Calls `onView` with every view after `first`, in order, until cancelled.
    /// A broken watch is resumed from the last revision seen.
    func watch(after first: View, onView: @escaping @Sendable (View) async -> Void) async {
        let current = Members(byID: Dictionary(uniqueKeysWithValues: first.members.map { ($0.id, $0) }), revision: Int64(first.id))
        while !Task.isCancelled {
            do {
                try await etcd.watch(prefix: prefix, from: current.revision + 1) { events in
                    var changed = false
                    for event in events {
                        guard event.kv.key.hasPrefix(self.prefix) else { continue }
                        let id = String(event.kv.key.dropFirst(self.prefix.count))
                        current.apply(id: id, member: event.deleted ? nil : View.Member(id: id, address: String(decoding: event.kv.value, as: UTF8.self)))
                        current.revision = max(current.revision, event.kv.modRevision)
                        changed = true
                    }
                    if changed { await onView(View(id: UInt64(current.revision), members: current.sorted, rf: self.rf)) }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("etcd watch broke; resuming", metadata: ["error": "\(error)", "revision": "\(current.revision)"])
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Leaves the views at once (graceful shutdown): revoking the lease deletes the key.
    func leave(_ lease: Int64) async {
        do { try await etcd.revoke(lease: lease) } catch {
            logger.warning("could not revoke this member's etcd lease; it leaves when the lease expires", metadata: ["error": "\(error)"])
        }
    }
}

/// The member set as the watch sees it (touched by one watch task at a time).
private final class Members: @unchecked Sendable {
    var byID: [String: View.Member]
    var revision: Int64
    init(byID: [String: View.Member], revision: Int64) {
        self.byID = byID
        self.revision = revision
    }
    func apply(id: String, member: View.Member?) { byID[id] = member }
    var sorted: [View.Member] { byID.values.sorted { $0.id < $1.id } }
}
