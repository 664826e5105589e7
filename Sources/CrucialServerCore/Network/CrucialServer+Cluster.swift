internal import CrucialCore
internal import Logging

extension CrucialServer {
    /// Registers in etcd (once listening, so that members told about this node can reach
    /// it), adopts the first view and follows the next ones. A lapsed lease is not the end:
    /// the member stops serving, keeps its objects, and registers again.
    func join(_ cluster: Cluster, _ membership: Membership) async throws {
        store.replicationBox.withLock { $0 = cluster }
        let registration: Membership.Registration
        do {
            registration = try await membership.register()
        } catch {
            try? await shutdown()
            throw error
        }
        logger.notice(
            "joined the cluster",
            metadata: [
                "etcd": "\(membership.etcd.endpoint)", "node": "\(membership.nodeID)", "incarnation": "\(registration.incarnation)",
                "view": "\(registration.view.id)", "rf": "\(membership.rf)",
            ])
        cluster.registered(registration)
        let current = LockedBox(registration.lease)
        let logger = self.logger
        let lease = Task {
            var registration = registration
            while !Task.isCancelled {
                let lapse = await membership.keepAlive(
                    registration.lease, onRenewed: { cluster.leaseRenewed(until: $0) }, shouldStop: { cluster.wantsRegistration })
                if case .cancelled = lapse { return }
                cluster.leaseLapsed()
                while !Task.isCancelled {
                    do {
                        registration = try await membership.register()
                        current.withLock { $0 = registration.lease }
                        logger.notice(
                            "registered again", metadata: ["incarnation": "\(registration.incarnation)", "view": "\(registration.view.id)"])
                        cluster.registered(registration)
                        break
                    } catch {
                        logger.warning("cannot register in etcd yet; trying again", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: .milliseconds(500))
                    }
                }
            }
        }
        let watch = Task { await membership.watch(after: registration, onChange: { cluster.adopt($0) }, onAcceptance: { cluster.accept($0) }) }
        // Tombstones of removed objects go once no member that could bring an older copy back is away.
        let collector = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(2))
                await cluster.collectTombstones()
            }
        }
        clusterState.withLock { $0 = (cluster, membership, current, [lease, watch, collector]) }
    }
}
