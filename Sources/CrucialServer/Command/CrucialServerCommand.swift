public import ArgumentParser
public import CrucialCore
import Logging
import ServiceLifecycle
import Synchronization

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
    public static let configuration = CommandConfiguration(
        commandName: "crucial-server",
        abstract: "Runs a Crucial distributed-shared-object server.",
        discussion: """
            Prints "crucial-server listening on HOST:PORT" on standard output once it accepts
            connections. SIGTERM or SIGINT stop it gracefully: parked calls are answered with
            SHUTTING_DOWN and connections are closed.
            """)

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

    @Option(help: "Shared secret clients must send (default: $CRUCIAL_AUTH_TOKEN; none = no authentication).")
    var authToken: String?

    @Option(help: "This server's name in logs and handshakes.")
    var serverID = "crucial-server"

    @Option(name: .customLong("plugin"), help: "A plugin to load at start-up: a shared library exporting @Shared types (repeatable).")
    var plugins: [String] = []

    @Option(help: "Token that grants admin operations such as loading plugins (default: $CRUCIAL_ADMIN_TOKEN). Without it and without --auth-token, every client may.")
    var adminToken: String?

    @Option(help: "Where uploaded plugins are stored (default: a directory under the system's temporary one).")
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

    @Option(help: "Copies of each persistent object in a cluster (ephemeral and synchronization objects keep one).")
    var rf = 2

    @Option(help: "Seconds after which etcd drops a silent member from the view (how fast a crash is noticed).")
    var leaseTtl = 5

    @Option(help: "Name of the cluster; servers of one cluster share it, and several clusters can share one etcd.")
    var cluster = "default"

    @Option(help: "Seconds an application session lives without a keep-alive (unless its client asks for another lease); its ephemeral objects are then removed.")
    var sessionLease = 30.0

    public init() {}

    private static let userTypes = Mutex<[any SharedType.Type]>([])

    /// Runs the command line with `types` known besides the built-in ones.
    public static func main(registering first: any SharedType.Type, _ more: any SharedType.Type...) async {
        await main(registering: [first] + more)
    }

    /// Runs the command line (`arguments`, default the process's) with `types` known
    /// besides the built-in ones.
    public static func main(registering types: [any SharedType.Type], arguments: [String]? = nil) async {
        userTypes.withLock { $0 = types }
        guard let arguments else { return await main() }
        do {
            var command = try parseAsRoot(arguments)
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
        if etcd != nil, dataDir != nil {
            throw ValidationError("--data-dir with --etcd is not supported yet: a cluster keeps persistent objects on --rf nodes instead")
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
    }

    public func run() async throws {
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "crucial.server")
        let token = authToken ?? ProcessInfoEnvironment.get("CRUCIAL_AUTH_TOKEN")
        let admin = adminToken ?? ProcessInfoEnvironment.get("CRUCIAL_ADMIN_TOKEN")
        let server = CrucialServer(
            configuration: .init(
                host: host, port: port, maxFrameSize: maxFrameSize, authToken: token?.isEmpty == true ? nil : token,
                threads: threads, serverID: serverID, sessionLease: .milliseconds(Int64(sessionLease * 1000)),
                adminToken: admin?.isEmpty == true ? nil : admin, pluginDirectory: pluginDir,
                persistence: dataDir.map { PersistenceConfiguration(directory: $0, fsync: fsync, compactAfterBytes: compactAfter) },
                cluster: etcd.map { etcd in
                    let address = advertise ?? "\(host):\(port)"
                    return ClusterConfiguration(
                        etcd: etcd, nodeID: nodeId ?? address, advertise: address, rf: rf, leaseTTL: leaseTtl, clusterName: cluster,
                        exitWhenEvicted: true)
                }),
            registry: Self.registry, logger: logger)
        for path in plugins {
            do {
                let types = try server.store.loadPlugin(path: path)
                logger.notice("plugin loaded", metadata: ["path": "\(path)", "types": "\(types.joined(separator: ", "))"])
            } catch {
                throw ValidationError("--plugin \(path): \(error.message)")
            }
        }
        let address = try await server.start()
        ParentWatch.start()
        print("crucial-server listening on \(host):\(address.port ?? port)")
        fflush(nil)  // stdout is block-buffered when piped; whoever waits for this line needs it now
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
