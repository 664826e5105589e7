import Synchronization
internal import CrucialCore
public import Logging
public import NIOCore
internal import Foundation
internal import NIOPosix
internal import NIOSSL
internal import CrucialTransport

/// A Crucial DSO server: a SwiftNIO TCP server in front of an `ObjectStore`.
///
/// The CrucialServer library makes it a swift-service-lifecycle `Service` (it stops
/// gracefully on the group's shutdown) and gives it etcd and Prometheus; this core drives
/// it directly:
///
/// ```swift
/// let server = CrucialServer(configuration: .init(host: "127.0.0.1", port: 0))
/// let address = try await server.start()
/// ...
/// try await server.shutdown()
/// ```
public final class CrucialServer: Sendable {
    private enum State {
        case idle
        /// Serving; through memory alone (``startInProcess()``) when there is no channel.
        case running(serverChannel: (any Channel)?)
        case stopped
    }

    /// What the server was made with.
    public let configuration: Configuration
    package let store: ObjectStore
    /// The runs of cloud threads connected to this server, and those cancelled.
    package let runs = RunRegistry()
    /// This server's metrics (also served on `metricsPort`).
    public let metrics: ServerMetrics
    private let metricsChannel = Mutex<(any Channel)?>(nil)
    private let group: MultiThreadedEventLoopGroup
    let logger: Logger
    private let state = Mutex(State.idle)
    private let children = LockedBox([ObjectIdentifier: any Channel]())
    /// The secrets new connections may prove (``reloadCredentials(_:)``).
    private let credentialSet = CredentialSet([])
    /// Connection ids go into the operation log; a random start keeps those of
    /// different runs of the server apart.
    private let nextConnection = LockedBox<UInt64>(UInt64.random(in: 1 << 32...1 << 62))
    /// This node's part in a cluster, and its membership tasks.
    let clusterState = Mutex<
        (cluster: Cluster, membership: Membership, lease: LockedBox<Int64>, tasks: [Task<Void, Never>])?
    >(nil)

    /// Makes a cluster member's etcd client (nil: this server cannot join a cluster).
    private let coordination: CoordinationStoreFactory?

    /// A configuration; every argument has a default that suits a local development server.
    ///
    /// A server made here keeps its metrics nowhere and cannot join a cluster
    /// (`configuration.cluster` is refused at ``start()``): the CrucialServer library's
    /// `CrucialServerCommand` (what `crucial-server` runs) adds etcd and Prometheus.
    public convenience init(configuration: Configuration, registry: TypeRegistry = .builtins, logger: Logger = Logger(label: "crucial.server")) {
        self.init(configuration: configuration, registry: registry, logger: logger, metrics: ServerMetrics(), coordination: nil)
    }

    /// A server whose metrics go to `metrics` and whose cluster membership (when
    /// `configuration.cluster` is set) goes through the stores `coordination` makes.
    package init(
        configuration: Configuration, registry: TypeRegistry, logger: Logger, metrics: ServerMetrics, coordination: CoordinationStoreFactory?
    ) {
        self.configuration = configuration
        self.logger = logger
        self.coordination = coordination
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
        self.metrics = metrics
        self.store = ObjectStore(
            registry: registry, timerLoop: group.next(), defaultSessionLease: configuration.sessionLease, limits: configuration.limits,
            metrics: metrics)
    }

    /// Loads the plugins uploaded to an earlier run with this plugin directory, in the
    /// order they were loaded then (before the data directory is replayed, which may hold
    /// objects of their types).
    func loadStoredPlugins() throws(CrucialError) {
        guard !configuration.pluginDirectoryIsTemporary else { return Self.removeDeadServersPluginDirectories() }
        let directory = PluginDirectory(path: configuration.pluginDirectory)
        for path in try directory.stored() {
            guard FileManager.default.fileExists(atPath: path) else {
                logger.warning("a stored plugin is missing; its types are not loaded", metadata: ["path": "\(path)"])
                continue
            }
            let report: PluginLoadReport
            do { report = try store.loadPlugin(path: path) } catch {
                throw CrucialError(error.code, "the stored plugin \(path) (\(PluginDirectory.manifestName)) does not load: \(error.message)")
            }
            logger.notice("stored plugin loaded", metadata: ["path": "\(path)", "types": "\(report.types.joined(separator: ", "))"])
        }
    }

    /// Removes the temporary plugin directories of servers that died without removing theirs
    /// (killed, crashed): those whose process is gone. Best effort: one whose process id was
    /// taken by another process since stays, and is never read (each server makes its own).
    static func removeDeadServersPluginDirectories() {
        let temporary = NSTemporaryDirectory()
        let prefix = Configuration.temporaryPluginPrefix
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid > 0 else { continue }
            if kill(pid, 0) != 0, errno == ESRCH { try? FileManager.default.removeItem(atPath: "\(temporary)\(name)") }
        }
    }

    /// Binds and starts serving; returns the address bound (with the real port when 0 was asked).
    @discardableResult
    public func start() async throws -> SocketAddress {
        // A cluster member that may not take its node id is refused before it listens.
        var membership: Membership?
        if let c = configuration.cluster {
            guard let coordination else {
                throw CrucialError(
                    .invalidArgument,
                    "this server cannot join the cluster at \(c.etcd): it was built without etcd membership; run crucial-server, or CrucialServerCommand from the CrucialServer library")
            }
            let m = Membership(
                store: coordination, endpoint: c.etcd, cluster: c.clusterName, nodeID: c.nodeID, address: c.advertise, rf: UInt32(c.rf), leaseTTL: c.leaseTTL,
                dataDirectory: configuration.persistence?.directory, logger: logger)
            if let dir = configuration.persistence?.directory, let record = try MemberRecord.load(directory: dir), record.nodeID != c.nodeID {
                throw CrucialError(
                    .invalidArgument,
                    "the data directory \(dir) belongs to member \(record.nodeID), not \(c.nodeID): start it with --node-id \(record.nodeID), or give this member a directory of its own")
            }
            if let refusal = try await m.refusal() { throw refusal }
            membership = m
        }
        try loadStoredPlugins()
        if let persistence = configuration.persistence {
            let started = ContinuousClock.now
            let report = try store.startPersistence(persistence, clustered: configuration.cluster != nil)
            logger.notice(
                "recovered persistent objects",
                metadata: [
                    "dataDir": "\(persistence.directory)", "fsync": "\(persistence.fsync.rawValue)", "report": "\(report)",
                    "took": "\(ContinuousClock.now - started)",
                ])
        }
        let credentials = configuration.allCredentials
        let tlsContext = try configuration.tls?.makeServerContext()
        var cluster: Cluster?
        if let c = configuration.cluster {
            let logger = self.logger
            // Members prove an admin secret to each other when there is one (plain clients cannot write replicas).
            let secret = (credentials.first(where: \.isAdmin) ?? credentials.first)?.secret ?? ""
            let peerTLS = try configuration.tls?.peerTLS()
            let identity = ConnectionIdentity(
                name: "crucial-server \(c.nodeID)", secret: secret, tls: try peerTLS?.makeContext(), serverHostname: peerTLS?.serverHostname)
            let directory = configuration.persistence?.directory
            let history = try directory.flatMap { dir throws(CrucialError) in try MemberRecord.load(directory: dir)?.history }
            let recorder = DispatchQueue(label: "crucial.member-record")
            cluster = Cluster(
                me: View.Member(id: c.nodeID, address: c.advertise), rf: c.rf, leaseTTL: c.leaseTTL, store: store, loop: group.next(),
                identity: identity, logger: logger, history: history,
                onServed: { history in
                    guard let directory else { return }
                    recorder.async {
                        do {
                            var record = try MemberRecord.load(directory: directory) ?? MemberRecord(cluster: c.clusterName, nodeID: c.nodeID)
                            record.record(history)
                            try record.save(directory: directory)
                        } catch {
                            logger.error("cannot keep the cluster's history in the data directory", metadata: ["error": "\(error)"])
                        }
                    }
                },
                fastFailover: c.fastFailover, faults: c.faults,
                onDead: { [membership] member, _ in
                    Task {
                        do { try await membership?.evict(member) } catch {
                            logger.warning("cannot end a dead member's lease; it goes when the lease lapses", metadata: ["member": "\(member.id)", "error": "\(error)"])
                        }
                    }
                },
                recordAcceptance: { [membership] ref, upTo in
                    guard let membership else { return }
                    if let ref { try await membership.forget(ref, upTo: upTo) } else { try await membership.acceptLosses(upTo: upTo) }
                },
                recordCollection: { [membership] collection in try await membership?.record(collection) })
        }
        credentialSet.replace(with: credentials)
        var connectionSettings = ConnectionSettings(
            serverID: configuration.serverID, maxFrameSize: configuration.maxFrameSize, credentialSet: credentialSet,
            pluginDirectory: configuration.pluginDirectory, maxPluginBytes: configuration.maxPluginBytes, cluster: cluster,
            limits: configuration.limits, metrics: metrics)
        connectionSettings.openConnections = { [children] in children.withLock { $0.count } }
        connectionSettings.runs = runs
        let settings = connectionSettings
        let metrics = self.metrics
        let limits = configuration.limits
        let store = self.store
        let logger = self.logger
        let children = self.children
        let nextConnection = self.nextConnection
        let maxFrameSize = configuration.maxFrameSize
        let channel = try await ServerBootstrap(group: group)
            // Hundreds of cloud threads start at once and each opens its connections in the
            // same instant: a short accept queue drops SYNs, and a dropped SYN costs the
            // client a one-second retransmission (the kernel caps this at somaxconn).
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                let id = nextConnection.withLock { n in
                    n += 1
                    return n
                }
                let key = ObjectIdentifier(channel)
                let open = children.withLock { children in
                    children[key] = channel
                    return children.count
                }
                metrics.connections.record(open)
                channel.closeFuture.whenComplete { _ in
                    metrics.connections.record(children.withLock { $0.removeValue(forKey: key); return $0.count })
                }
                // Over the limit, the connection is still served its handshake: its client learns why.
                let refusal =
                    open > limits.maxConnections
                    ? CrucialError(
                        .resourceExhausted, "this server already has \(open - 1) connections, its limit (--max-connections); try again later")
                    : nil
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tlsContext { try pipeline.addHandler(NIOSSLServerHandler(context: tlsContext)) }
                    try pipeline.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameSize: maxFrameSize)))
                    try pipeline.addHandler(
                        ServerConnectionHandler(
                            store: store, settings: settings, connection: ConnectionID(id), logger: logger, refusal: refusal))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        guard let address = channel.localAddress else { throw CrucialError(.internal, "bound server channel has no address") }
        let accepted = state.withLock { state -> Bool in
            guard case .idle = state else { return false }
            state = .running(serverChannel: channel)
            return true
        }
        guard accepted else {
            try await channel.close()
            throw CrucialError(.illegalState, "server was already started or stopped")
        }
        if configuration.persistence != nil {
            // Compaction writes a snapshot: off the event loop.
            channel.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                DispatchQueue.global().async {
                    do { try store.compactIfDue() } catch { logger.error("compaction failed", metadata: ["error": "\(error)"]) }
                }
            }
        }
        let census = scheduleHousekeeping(on: channel.eventLoop, cluster: cluster)
        if let port = configuration.metricsPort {
            let endpoint = try await MetricsEndpoint.start(
                host: configuration.metricsHost, port: port, group: group, metrics: metrics, refresh: census
            ) { [weak self] in
                guard let self else { return "shutting down" }
                return self.notReady
            }
            metricsChannel.withLock { $0 = endpoint }
            logger.info("metrics", metadata: ["address": "http://\(configuration.metricsHost):\(endpoint.localAddress?.port ?? port)/metrics"])
        }
        logger.info("listening", metadata: ["address": "\(address)", "threads": "\(configuration.threads)"])
        if let cluster, let membership {
            try await join(cluster, membership)
        }
        return address
    }

    /// The census of objects (counted against `--max-state-bytes`; the gauges follow) every
    /// second, and the end of sessions whose lease lapsed (their driver died: their
    /// ephemeral objects go) every 250 ms, on `loop`; returns the census, which the metrics
    /// endpoint runs before it answers.
    private func scheduleHousekeeping(on loop: any EventLoop, cluster: Cluster?) -> @Sendable () -> Void {
        let (store, logger) = (self.store, self.logger)
        let census: @Sendable () -> Void = { store.metrics.census(of: store, cluster: cluster) }
        loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            DispatchQueue.global().async(execute: census)
        }
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { _ in
            for (session, removed) in store.expireSessions() {
                logger.info(
                    "session lease lapsed; its ephemeral objects were removed",
                    metadata: ["session": "\(String(session, radix: 16))", "removed": "\(removed)"])
            }
        }
        return census
    }

    /// Serves through memory alone (CrucialTesting's `InProcessServer`, over
    /// ``InProcessTransport``): no listener, and the same housekeeping as ``start()``
    /// (sessions' leases, the census). A server kept in memory only: no data directory, no
    /// cluster, no stored plugins.
    package func startInProcess() throws(CrucialError) {
        guard configuration.cluster == nil, configuration.persistence == nil else {
            throw CrucialError(.invalidArgument, "an in-process server keeps no data directory and joins no cluster: start a crucial-server for those")
        }
        let accepted = state.withLock { state -> Bool in
            guard case .idle = state else { return false }
            state = .running(serverChannel: nil)
            return true
        }
        guard accepted else { throw CrucialError(.illegalState, "server was already started or stopped") }
        _ = scheduleHousekeeping(on: group.next(), cluster: nil)
    }

    /// Where the metrics endpoint listens (nil when it does not).
    public var metricsAddress: SocketAddress? { metricsChannel.withLock { $0?.localAddress } }

    /// Why this server is not ready for calls, or nil when it is (`GET /ready`): starting,
    /// shutting down, or (in a cluster) not serving its view.
    package var notReady: String? {
        switch state.withLock({ $0 }) {
        case .idle: return "starting"
        case .stopped: return "shutting down"
        case .running: return clusterState.withLock { $0?.cluster }?.notReady
        }
    }

    /// The cluster view this server serves (nil when it is on its own).
    package var view: View? { clusterState.withLock { $0?.cluster.view } }

    /// Stops accepting, answers parked calls with SHUTTING_DOWN, closes every
    /// connection and stops the event loops.
    public func shutdown() async throws {
        let previous = state.withLock { state -> State in
            defer { state = .stopped }
            return state
        }
        if case .running = previous, let (cluster, membership, lease, tasks) = clusterState.withLock({ $0 }) {
            // Hand the objects over and leave the view, then give clients a moment to learn where they went.
            await cluster.leave { await membership.leave(lease.withLock { $0 }, incarnation: $0) }
            for _ in 0..<20 where cluster.view?.members.contains(where: { $0.id == cluster.me.id }) ?? false {
                try? await Task.sleep(for: .milliseconds(100))
            }
            for t in tasks { t.cancel() }
            cluster.shutdown()
        }
        if case .running(let serverChannel) = previous {
            logger.info("shutting down", metadata: ["connections": "\(children.withLock { $0.count })"])
            try? await serverChannel?.close()
            try? await metricsChannel.withLock({ $0 })?.close()
            // A member's objects live on elsewhere: its clients retry their parked calls there.
            let clustered = clusterState.withLock { $0 != nil }
            store.drainAllWaiters(
                clustered
                    ? CrucialError(.wrongView, "this member left the cluster; retry on the others")
                    : CrucialError(.shuttingDown, "the server is shutting down"))
            let open = children.withLock { Array($0.values) }
            for child in open { try? await child.close() }
            store.stopPersistence()
        }
        if case .stopped = previous { return }
        if configuration.pluginDirectoryIsTemporary { try? FileManager.default.removeItem(atPath: configuration.pluginDirectory) }
        try await group.shutdownGracefully()
    }

    /// Replaces the secrets clients may prove from now on (what `crucial-server` does on
    /// SIGHUP with its token files and `--credentials` file): connections already
    /// authenticated keep theirs, new handshakes use these. The secret this member proves
    /// to the other members of a cluster stays the one it started with.
    public func reloadCredentials(_ credentials: [Credential]) {
        credentialSet.replace(with: credentials)
    }

    /// Starts the server when it is not yet, then waits for `stop` to return and shuts it
    /// down: the shell of a server's life that `crucial-server`'s `Service` and a
    /// program's own local server share.
    package func serve(until stop: () async throws -> Void) async throws {
        if case .idle = state.withLock({ $0 }) { try await start() }
        try await stop()
        try await shutdown()
    }
}
