import Synchronization
internal import CrucialCore
internal import CrucialTransport
internal import NIOCore

/// Answers calls late, from any thread, on the connection's channel: the answers of one
/// burst go out in one write and one flush (see ``WriteCoalescer``), like those the
/// connection handler answers at once.
struct ChannelResponder: Responder {
    private let writer: WriteCoalescer<ByteBuffer>
    private let allocator: ByteBufferAllocator

    init(channel: any Channel) {
        writer = WriteCoalescer(channel: channel) { _ in }  // a closed connection's answers have no one to go to
        allocator = channel.allocator
    }

    func respond(_ reply: Reply) {
        var buffer = allocator.buffer(capacity: 64)
        WireCodec.encode(.result(reply), into: &buffer)
        writer.write(buffer)
    }
}

/// The responder of one call: counts it out of its connection's in-flight requests, and
/// counts and times an answer that waited for replicas or the disk, as the dispatcher
/// does for the calls it answers at once.
struct LateAnswer: Responder {
    let base: any Responder
    let inFlight: AtomicCounter
    let metrics: ServerMetrics
    /// The call's names: an answer after waiting is for a method its object ran, so they
    /// are names the object vouched for.
    let type: String
    let method: String
    let started: ContinuousClock.Instant

    func respond(_ reply: Reply) {
        inFlight.subtract()
        base.respond(reply)
    }

    func respondAfterWaiting(_ reply: Reply) {
        metrics.operation(metrics.handles(type, method), reply.outcome, since: started)
        respond(reply)
    }
}

/// Settings every connection of a server shares.
struct ConnectionSettings: Sendable {
    let serverID: String
    let maxFrameSize: Int
    /// The secrets clients may prove, as they are now (``CrucialServer/reloadCredentials(_:)``
    /// replaces them; a connection already authenticated keeps its rights).
    let credentialSet: CredentialSet
    let pluginDirectory: String
    let maxPluginBytes: Int
    /// This node's part in a cluster; nil for a server on its own.
    let cluster: Cluster?
    let limits: Limits
    let metrics: ServerMetrics
    /// When the server started, and how many connections it has open (`crucial info`).
    var started = ContinuousClock.now
    var openConnections: @Sendable () -> Int = { 0 }
    /// The runs of cloud threads connected, and those cancelled.
    var runs = RunRegistry()

    /// The secrets clients may prove now. None: no authentication, every client is admin (a
    /// development server).
    var credentials: [Credential] { credentialSet.current }

    init(
        serverID: String, maxFrameSize: Int, credentialSet: CredentialSet, pluginDirectory: String, maxPluginBytes: Int, cluster: Cluster?,
        limits: Limits, metrics: ServerMetrics
    ) {
        self.serverID = serverID
        self.maxFrameSize = maxFrameSize
        self.credentialSet = credentialSet
        self.pluginDirectory = pluginDirectory
        self.maxPluginBytes = maxPluginBytes
        self.cluster = cluster
        self.limits = limits
        self.metrics = metrics
    }

    init(
        serverID: String, maxFrameSize: Int, credentials: [Credential], pluginDirectory: String, maxPluginBytes: Int, cluster: Cluster?,
        limits: Limits, metrics: ServerMetrics
    ) {
        self.init(
            serverID: serverID, maxFrameSize: maxFrameSize, credentialSet: CredentialSet(credentials), pluginDirectory: pluginDirectory,
            maxPluginBytes: maxPluginBytes, cluster: cluster, limits: limits, metrics: metrics)
    }
}

/// A server's secrets, replaceable while it runs (SIGHUP re-reads them).
final class CredentialSet: Sendable {
    private let credentials: Mutex<[Credential]>

    init(_ credentials: [Credential]) { self.credentials = Mutex(credentials) }

    var current: [Credential] { credentials.withLock { $0 } }

    func replace(with new: [Credential]) { credentials.withLock { $0 = new } }
}

extension CrucialServer.Configuration {
    /// Every secret this server accepts: `authToken` (named "default"), `adminToken`
    /// (named "admin") and `credentials`.
    public var allCredentials: [Credential] {
        var all: [Credential] = []
        if let authToken, !authToken.isEmpty { all.append(Credential(name: "default", secret: authToken)) }
        if let adminToken, !adminToken.isEmpty { all.append(Credential(name: "admin", secret: adminToken, isAdmin: true)) }
        return all + credentials
    }
}
