public import CrucialCore
public import CrucialTransport
internal import Foundation
internal import NIOCore

extension CrucialServer {
    /// Everything a server is started with (`crucial-server`'s flags, as values).
    public struct Configuration: Sendable {
        /// The address to listen on.
        public var host: String
        /// 0 picks a free port; ``CrucialServer/start()`` returns the one bound.
        public var port: Int
        /// The largest frame accepted, in bytes; a larger length prefix is refused before buffering.
        public var maxFrameSize: Int
        /// When set, clients must prove they know it in the handshake (HMAC
        /// challenge-response: the secret never travels).
        public var authToken: String?
        /// More secrets, each with a name for the logs and a role: per-application
        /// tokens, several admins (`crucial-server --credentials FILE`).
        public var credentials: [Credential]
        /// What clients may use (connections, in-flight requests, waiters, objects, memory, timeouts).
        public var limits: Limits
        /// TLS for client and peer connections; nil = plain TCP.
        public var tls: ServerTLS?
        /// Where `GET /metrics` (Prometheus) and `GET /health` are served; nil = nowhere,
        /// port 0 = a free one (``CrucialServer/metricsAddress``).
        public var metricsHost: String
        /// The port of the metrics endpoint (nil: none; 0: a free one).
        public var metricsPort: Int?
        /// Event-loop threads.
        public var threads: Int
        /// This server's name in handshakes and logs.
        public var serverID: String
        /// How long an application session lives without a keep-alive, unless its
        /// client asks for another lease; then its ephemeral objects are removed.
        public var sessionLease: Duration
        /// Clients proving this token may load plugins and act as cluster members; with no
        /// credential at all every client may (a development server).
        public var adminToken: String?
        /// Where uploaded plugins are stored, with the manifest of those that loaded; a server
        /// starting with the same directory loads them again. Default: `plugins` in the data
        /// directory when there is one, else a temporary directory removed at shutdown.
        public var pluginDirectory: String
        /// The largest plugin accepted.
        public var maxPluginBytes: Int
        /// The plugin directory was made up for this server: nothing stored is loaded from it,
        /// and it is removed at shutdown.
        var pluginDirectoryIsTemporary: Bool
        /// How temporary plugin directories are named: this, the process id, `-`, a random number.
        static let temporaryPluginPrefix = "crucial-plugins-"
        /// Where and how persistent objects are kept on disk; nil = in memory only.
        public var persistence: PersistenceConfiguration?
        /// Membership of a cluster; nil = a server on its own.
        public var cluster: ClusterConfiguration?

        /// A configuration; every argument has a default that suits a local development server.
        public init(
            host: String = "127.0.0.1", port: Int = CrucialDefaults.port, maxFrameSize: Int = CrucialDefaults.maxFrameSize,
            authToken: String? = nil, threads: Int? = nil, serverID: String = "crucial-server",
            sessionLease: Duration = .seconds(30), adminToken: String? = nil, pluginDirectory: String? = nil,
            maxPluginBytes: Int = 1 << 30, persistence: PersistenceConfiguration? = nil, cluster: ClusterConfiguration? = nil,
            credentials: [Credential] = [], limits: Limits = Limits(), tls: ServerTLS? = nil, metricsHost: String = "127.0.0.1",
            metricsPort: Int? = nil
        ) {
            self.credentials = credentials
            self.limits = limits
            self.tls = tls
            self.metricsHost = metricsHost
            self.metricsPort = metricsPort
            self.cluster = cluster
            self.persistence = persistence
            self.sessionLease = sessionLease
            self.adminToken = adminToken
            // A temporary directory is this server's alone: named by the process and a random
            // number, since a later process can get the same id (pid_max is often 32768) and must
            // not find a dead server's uploads in it.
            self.pluginDirectory =
                pluginDirectory ?? persistence.map { "\($0.directory)/plugins" }
                ?? "\(NSTemporaryDirectory())\(Self.temporaryPluginPrefix)\(getpid())-\(String(UInt64.random(in: 1...UInt64.max), radix: 16))"
            self.pluginDirectoryIsTemporary = pluginDirectory == nil && persistence == nil
            self.maxPluginBytes = maxPluginBytes
            self.host = host
            self.port = port
            self.maxFrameSize = maxFrameSize
            self.authToken = authToken
            self.threads = max(1, threads ?? System.coreCount)
            self.serverID = serverID
        }
    }
}
