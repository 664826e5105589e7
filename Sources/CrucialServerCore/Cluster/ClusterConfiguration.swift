/// How a server takes part in a cluster.
public struct ClusterConfiguration: Sendable {
    /// etcd's client URL, e.g. `http://127.0.0.1:2379` (v3 API through its JSON gateway).
    public var etcd: String
    /// This server's unique name in the cluster.
    public var nodeID: String
    /// The "host:port" clients and other servers reach this one at.
    public var advertise: String
    /// Copies of each persistent object, synchronizers included (ephemeral ones keep one).
    public var rf: Int
    /// Seconds without a keep-alive after which etcd drops a member: the time to notice a crash.
    public var leaseTTL: Int
    /// Servers of one cluster share this name; several clusters can share one etcd.
    public var clusterName: String
    /// A member whose port refuses connections (its process is gone) is declared dead by
    /// its peers at once: its lease is ended so that the view changes without waiting for
    /// it to lapse. false: wait for the lease.
    public var fastFailover: Bool
    /// Faults a test injects in this node (never set by `crucial-server`): see ``ClusterFaults``.
    package var faults: ClusterFaults

    /// A member of the cluster `clusterName` on `etcd`, reachable at `advertise`.
    public init(
        etcd: String, nodeID: String, advertise: String, rf: Int = 2, leaseTTL: Int = 5, clusterName: String = "default",
        fastFailover: Bool = true
    ) {
        self.fastFailover = fastFailover
        self.faults = []
        self.etcd = etcd
        self.nodeID = nodeID
        self.advertise = advertise
        self.rf = rf
        self.leaseTTL = leaseTTL
        self.clusterName = clusterName
    }
}

/// Faults a test can inject in a cluster member, through a server it builds itself
/// (`crucial-test-server`), so that a checker has a broken cluster to catch. No flag or
/// environment variable of `crucial-server` sets them.
package struct ClusterFaults: OptionSet, Sendable {
    package let rawValue: Int
    package init(rawValue: Int) { self.rawValue = rawValue }

    /// Acknowledges changes without sending them to the other replicas: loses data on purpose.
    package static let skipReplication = ClusterFaults(rawValue: 1)
}
