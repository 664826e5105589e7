public import ArgumentParser
public import CrucialCore
internal import CrucialProcess
internal import Foundation
import Logging
import ServiceLifecycle
import Synchronization
internal import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// `crucial-server`: runs one DSO server in the foreground.
///
/// A server that knows a user's `@Shared` types is a three-line program:
///
/// ```swift
/// import CrucialServer
/// import MyTypes
/// await CrucialServerCommand.main(registering: GlobalCentroids.self, Model.self)
/// ```
/// It takes the same flags as `crucial-server`.
public struct CrucialServerCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "crucial-server",
        abstract: "Runs a Crucial distributed-shared-object server.",
        discussion: """
            Prints "crucial-server listening on HOST:PORT" on standard output once it accepts
            connections. SIGTERM or SIGINT stop it gracefully: parked calls are answered with
            SHUTTING_DOWN and connections are closed.
            """,
        version: CrucialVersion.description)

    @Option(help: "A YAML file of settings, keyed by these flags' names (default: $CRUCIAL_CONFIG). Flags win over CRUCIAL_* variables (one per flag: CRUCIAL_DATA_DIR for --data-dir), which win over the file.")
    var config: String?

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free port and prints it.")
    var port = CrucialDefaults.port

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "Largest frame accepted, in bytes.")
    var maxFrameSize = CrucialDefaults.maxFrameSize

    @Option(help: "Event-loop threads (default: one per core).")
    var threads: Int?

    @Option(help: "Shared secret clients must prove in the handshake; it never travels (default: $CRUCIAL_AUTH_TOKEN; none = no authentication).")
    var authToken: String?

    @Option(help: "File holding the --auth-token secret (trailing whitespace dropped), so that it is not on the command line (default: $CRUCIAL_AUTH_TOKEN_FILE).")
    var authTokenFile: String?

    @Option(help: "File of more secrets, one `NAME client|admin SECRET` per line (per-application tokens, several admins).")
    var credentials: String?

    @Option(help: "This server's name in logs and handshakes.")
    var serverID = "crucial-server"

    @Option(name: .customLong("plugin"), help: "A plugin to load at start-up: a shared library exporting @Shared types (repeatable).")
    var plugins: [String] = []

    @Option(help: "Secret that grants admin operations: loading plugins, acting as a cluster member (default: $CRUCIAL_ADMIN_TOKEN). With no secret at all, every client may.")
    var adminToken: String?

    @Option(help: "File holding the --admin-token secret (default: $CRUCIAL_ADMIN_TOKEN_FILE).")
    var adminTokenFile: String?

    @Option(help: "PEM certificate (chain) for TLS on client and peer connections; needs --tls-key.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(help: "PEM certificates this server trusts when it connects to other members (default: --tls-cert itself).")
    var tlsCa: String?

    @Option(help: "Serve GET /metrics (Prometheus) and GET /health on this port (0: a free one, printed); default: none.")
    var metricsPort: Int?

    @Option(help: "Address the metrics endpoint listens on.")
    var metricsHost = "127.0.0.1"

    @Option(help: "Log format: text, or json (one object per line, with every metadata field).")
    var logFormat = LogFormat.text

    @Option(help: "Most open connections (clients and peers); more are refused in their handshake.")
    var maxConnections = 10_000

    @Option(help: "Most requests of one connection waiting for their answer (parked, replicating); past it, calls that would park get RESOURCE_EXHAUSTED.")
    var maxInFlight = 10_000

    @Option(help: "Most calls parked on one object (barrier, semaphore, latch, future waits).")
    var maxWaitersPerObject = 100_000

    @Option(help: "Most ephemeral objects one application session may own.")
    var maxObjectsPerSession = 1_000_000

    @Option(help: "Most estimated bytes of object state, e.g. 512M or 8G (default: half the machine's memory); over it, calls that add state are refused.")
    var maxStateBytes: ByteCount?

    @Option(help: "Seconds after which a connection with no traffic and nothing parked is closed (0 = never).")
    var idleTimeout = 600.0

    @Option(help: "Seconds a new connection has to complete its handshake.")
    var handshakeTimeout = 10.0

    @Option(help: "Seconds a client may leave its answers unread before it is disconnected.")
    var writeTimeout = 60.0

    @Option(help: "Where uploaded plugins are stored and loaded from at start-up (default: plugins in --data-dir, else a temporary directory removed at shutdown).")
    var pluginDir: String?

    @Option(help: "Directory for persistent objects: an operation log and snapshots (default: none, everything in memory).")
    var dataDir: String?

    @Option(help: "When the operation log reaches the disk: always (before answering), everysec, never.")
    var fsync = FsyncPolicy.everysec

    @Option(help: "Compact the operation log into a snapshot once it exceeds this many bytes.")
    var compactAfter = 64 << 20

    @Option(help: "etcd client URL (e.g. http://127.0.0.1:2379): join the cluster whose members register there. Without it the server runs on its own.")
    var etcd: String?

    @Option(help: "This server's unique name in the cluster (default: its --advertise address).")
    var nodeId: String?

    @Option(help: "The host:port clients and other servers reach this one at (default: --host and the bound port).")
    var advertise: String?

    @Option(help: "Copies of each persistent object in a cluster, synchronizers included (ephemeral objects keep one).")
    var rf = 2

    @Option(help: "Seconds after which etcd drops a silent member from the view (how fast a crash is noticed).")
    var leaseTtl = 5

    @Flag(inversion: .prefixedNo, help: "End a member's etcd lease as soon as its port refuses connections (its process is gone) instead of waiting for the lease to lapse.")
    var fastFailover = true

    @Option(help: "Name of the cluster; servers of one cluster share it, and several clusters can share one etcd.")
    var cluster = "default"

    @Option(help: "Seconds an application session lives without a keep-alive (unless its client asks for another lease); its ephemeral objects are then removed.")
    var sessionLease = 30.0

    /// The command with its defaults (ArgumentParser fills in the flags).
    public init() {}

    private static let userTypes = Mutex<[any SharedType.Type]>([])
    /// Faults a test server injects in its cluster part (``main(registering:faults:)``).
    private static let faults = Mutex<ClusterFaults>([])

    /// Runs the command line with `types` known besides the built-in ones.
    public static func main(registering first: any SharedType.Type, _ more: any SharedType.Type...) async {
        await main(registering: [first] + more)
    }

    /// Runs the command line (`arguments`, default the process's) with `types` known
    /// besides the built-in ones.
    public static func main(registering types: [any SharedType.Type], arguments: [String]? = nil) async {
        await main(registering: types, arguments: arguments, faults: [])
    }

    /// ``main(registering:arguments:)`` for a test's own server, which injects `faults` in
    /// this node's cluster part so that a test has a broken cluster to catch.
    package static func main(registering types: [any SharedType.Type], arguments: [String]? = nil, faults: ClusterFaults) async {
        userTypes.withLock { $0 = types }
        self.faults.withLock { $0 = faults }
        do {
            // Flags, then CRUCIAL_* variables, then the config file (SettingSources).
            let resolved: [String]
            do {
                resolved = try SettingSources.arguments(
                    commandLine: arguments ?? Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment
                ) { try String(contentsOfFile: $0, encoding: .utf8) }
            } catch {
                throw ValidationError(error.description)
            }
            var command = try parseAsRoot(resolved)
            if var async = command as? any AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch {
            exit(withError: error)
        }
    }

    static var registry: TypeRegistry {
        var registry = TypeRegistry.builtins
        for type in userTypes.withLock({ $0 }) { registry.register(shared: type) }
        return registry
    }

    /// Checks the flags before the server starts; a mistake names the flag.
    public func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard maxFrameSize >= 1024, maxFrameSize <= Int(Int32.max) else {
            throw ValidationError("--max-frame-size must be in 1024...\(Int32.max), got \(maxFrameSize)")
        }
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard compactAfter >= 4096 else { throw ValidationError("--compact-after must be at least 4096 bytes, got \(compactAfter)") }
        guard (1...16).contains(rf) else { throw ValidationError("--rf must be in 1...16, got \(rf)") }
        guard (1...3600).contains(leaseTtl) else { throw ValidationError("--lease-ttl must be in 1...3600 seconds, got \(leaseTtl)") }
        if etcd == nil, nodeId != nil || advertise != nil {
            throw ValidationError("--node-id and --advertise need --etcd (they describe this server's place in a cluster)")
        }
        if let etcd, !(etcd.hasPrefix("http://") || etcd.hasPrefix("https://")) {
            throw ValidationError("--etcd must be an http:// or https:// URL, got \(etcd)")
        }
        if etcd != nil, port == 0, advertise == nil {
            throw ValidationError("a cluster member with --port 0 needs --advertise HOST:PORT... or a fixed --port")
        }
        if let advertise {
            do { _ = try parseAddress(advertise) } catch { throw ValidationError("--advertise: \(error.message)") }
        }
        guard sessionLease > 0, sessionLease <= 86_400 else {
            throw ValidationError("--session-lease must be in (0, 86400] seconds, got \(sessionLease)")
        }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if tlsCa != nil, tlsCert == nil { throw ValidationError("--tls-ca needs --tls-cert and --tls-key") }
        if let metricsPort, !(0...65535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be in 0...65535, got \(metricsPort)")
        }
        for (name, value) in [
            ("--max-connections", maxConnections), ("--max-in-flight", maxInFlight), ("--max-waiters-per-object", maxWaitersPerObject),
            ("--max-objects-per-session", maxObjectsPerSession),
        ] where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        for (name, value) in [("--handshake-timeout", handshakeTimeout), ("--write-timeout", writeTimeout)] where !(value > 0 && value <= 86_400) {
            throw ValidationError("\(name) must be in (0, 86400] seconds, got \(value)")
        }
        guard idleTimeout >= 0, idleTimeout <= 86_400 else {
            throw ValidationError("--idle-timeout must be in [0, 86400] seconds (0 = never), got \(idleTimeout)")
        }
    }

    private var limits: Limits {
        Limits(
            maxConnections: maxConnections, maxInFlightPerConnection: maxInFlight, maxWaitersPerObject: maxWaitersPerObject,
            maxObjectsPerSession: maxObjectsPerSession, maxStateBytes: maxStateBytes?.bytes,
            idleTimeout: idleTimeout == 0 ? nil : .milliseconds(Int64(idleTimeout * 1000)),
            handshakeTimeout: .milliseconds(Int64(handshakeTimeout * 1000)), writeTimeout: .milliseconds(Int64(writeTimeout * 1000)))
    }

    /// Starts the server and serves until SIGTERM or SIGINT.
    public func run() async throws {
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        let format = logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        var logger = Logger(label: "crucial.server")
        // A cluster member names itself in every line: members often log to one place.
        if etcd != nil { logger[metadataKey: "node"] = "\(nodeId ?? advertise ?? "\(host):\(port)")" }
        let secrets = SecretSources(
            authToken: authToken, authTokenFile: authTokenFile, adminToken: adminToken, adminTokenFile: adminTokenFile, credentials: credentials)
        let (token, admin, more) = try secrets.load()
        if ([token, admin].compactMap { $0 } + more.map(\.secret)).contains(where: { $0.utf8.count < 16 }) {
            logger.warning("a secret is shorter than 16 bytes: use a long random one (e.g. `openssl rand -hex 32`)")
        }
        let server = CrucialServer(
            configuration: .init(
                host: host, port: port, maxFrameSize: maxFrameSize, authToken: token,
                threads: threads, serverID: serverID, sessionLease: .milliseconds(Int64(sessionLease * 1000)),
                adminToken: admin, pluginDirectory: pluginDir,
                persistence: dataDir.map { PersistenceConfiguration(directory: $0, fsync: fsync, compactAfterBytes: compactAfter) },
                cluster: etcd.map { etcd in
                    let address = advertise ?? "\(host):\(port)"
                    var configuration = ClusterConfiguration(
                        etcd: etcd, nodeID: nodeId ?? address, advertise: address, rf: rf, leaseTTL: leaseTtl, clusterName: cluster,
                        fastFailover: fastFailover)
                    configuration.faults = Self.faults.withLock { $0 }
                    return configuration
                },
                credentials: more, limits: limits,
                tls: tlsCert.map { ServerTLS(certificatePath: $0, privateKeyPath: tlsKey ?? "", trustRootsPath: tlsCa) },
                metricsHost: metricsHost, metricsPort: metricsPort),
            registry: Self.registry, logger: logger, metrics: .prometheus(), coordination: EtcdClient.factory)
        for path in plugins {
            do {
                let report = try server.store.loadPlugin(path: path)
                logger.notice("plugin loaded", metadata: ["path": "\(path)", "types": "\(report.types.joined(separator: ", "))"])
            } catch {
                throw ValidationError("--plugin \(path): \(error.message)")
            }
        }
        let address: SocketAddress
        do {
            address = try await server.start()
        } catch let error as CrucialError where error.code == .invalidArgument {
            throw ValidationError(error.message)
        }
        ParentWatch.start()
        if let metrics = server.metricsAddress {
            print("crucial-server metrics on http://\(metricsHost):\(metrics.port ?? 0)/metrics")
        }
        print("crucial-server listening on \(host):\(address.port ?? port)")
        fflush(nil)  // stdout is block-buffered when piped; whoever waits for this line needs it now
        SystemdNotifier.notify("READY=1\nSTATUS=serving on \(host):\(address.port ?? port)\nMAINPID=\(getpid())")
        let reloader = secrets.reloadingOnSIGHUP(server, logger: logger)
        defer { reloader.cancel() }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

enum ProcessInfoEnvironment {
    static func get(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        return String(cString: raw)
    }
}

extension FsyncPolicy: ExpressibleByArgument {}

enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// A size in bytes with an optional K, M, G or T suffix (powers of 1024).
struct ByteCount: ExpressibleByArgument {
    let bytes: Int

    init?(argument: String) {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = argument.uppercased()
        if digits.hasSuffix("B") { digits.removeLast() }
        var scale = 1
        if let last = digits.last, let unit = units[last] {
            scale = unit
            digits.removeLast()
        }
        guard let n = Int(digits), n > 0 else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        self.bytes = bytes
    }
}
