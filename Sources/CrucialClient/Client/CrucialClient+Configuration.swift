package import CrucialTransport
#if canImport(Glibc)
internal import Glibc
#endif

extension CrucialClient {
    /// Where a client connects, how it proves who it is, and how it retries.
    ///
    /// ```swift
    /// var configuration = CrucialClient.Configuration(servers: ["10.0.0.5:7420", "10.0.0.6:7420"])
    /// configuration.authToken = "s3cr3t"
    /// let client = CrucialClient(configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// Server addresses, "host:port"; the first reachable one is used.
        public var servers: [String]
        /// Connections in the pool (to each server), each on one of NIO's event loops in turn.
        /// A call made on a loop (a task preferring ``CrucialClient/taskExecutor``) takes a
        /// connection of its loop; other calls are spread over them round-robin.
        public var connections: Int
        /// How many calls may wait for their answers on one connection at once (calls parked
        /// on a barrier or a semaphore count too); one more fails at once with PENDING_LIMIT,
        /// unsent, instead of queueing without bound when a server is slow.
        public var maxPendingCalls: Int
        /// The shared secret proved (never sent) in the handshake to servers that require
        /// one; with it, a server must prove it knows the secret too.
        public var authToken: String
        /// TLS for every connection (servers started with `--tls-cert`); nil = plain TCP.
        public var tls: ClientTLS?
        /// How many times a request is re-sent after its connection failed.
        public var retries: Int
        /// The first retry waits this long; each next one twice as long (at most 2 s).
        public var retryBackoff: Duration
        /// How long opening a connection (TCP, TLS and the handshake) may take.
        public var connectTimeout: Duration
        /// Shown in server logs.
        public var name: String
        /// The application session this client's ephemeral objects belong to; nil = a
        /// new one, kept alive by this client. Cloud threads get their driver's.
        public var session: UInt64?
        /// The run of cloud threads this client is one of (a cloud thread gets its driver's;
        /// nil: none). Named in each handshake: when the run is cancelled, the servers close
        /// this client's connections and refuse new ones with CANCELLED.
        public var run: UInt64?
        /// How long the servers keep this client's session after its last keep-alive
        /// (it sends one every quarter of this while it has created objects).
        public var sessionLease: Duration
        /// In a cluster: how long a call keeps retrying while members fail and objects
        /// move (a crash is noticed after the servers' --lease-ttl).
        public var failoverTimeout: Duration
        /// While calls wait on a connection, a server that sends nothing for this long (it
        /// is pinged meanwhile) is taken for dead or cut off: the connection is closed and
        /// the calls retried (elsewhere, in a cluster; retries are de-duplicated). Also how
        /// long a handshake may take. nil (the default): wait as long as it takes.
        public var heartbeatTimeout: Duration?
        /// What carries the connections: TCP, or (tests) CrucialServer's in-process transport.
        package var transport: any Transport = TCPTransport()

        /// A configuration; every argument has a default that suits a local server.
        public init(
            servers: [String] = ["127.0.0.1:\(CrucialDefaults.port)"], connections: Int = 2, authToken: String = "",
            retries: Int = 5, retryBackoff: Duration = .milliseconds(50), connectTimeout: Duration = .seconds(5),
            name: String = "crucial-client", session: UInt64? = nil, sessionLease: Duration = .seconds(30),
            failoverTimeout: Duration = .seconds(30), tls: ClientTLS? = nil, heartbeatTimeout: Duration? = nil,
            maxPendingCalls: Int = 65_536
        ) {
            self.maxPendingCalls = max(1, maxPendingCalls)
            self.heartbeatTimeout = heartbeatTimeout
            self.tls = tls
            self.failoverTimeout = failoverTimeout
            self.session = session
            self.sessionLease = sessionLease
            self.servers = servers
            self.connections = max(1, connections)
            self.authToken = authToken
            self.retries = max(0, retries)
            self.retryBackoff = retryBackoff
            self.connectTimeout = connectTimeout
            self.name = name
        }

        /// Servers from `CRUCIAL_SERVERS` (comma-separated), the token from
        /// `CRUCIAL_AUTH_TOKEN`, TLS from `CRUCIAL_TLS_CA` (a PEM file to trust) or
        /// `CRUCIAL_TLS=1` (the system's roots); defaults elsewhere.
        public static func fromEnvironment() -> Configuration {
            var c = Configuration()
            if let servers = environment("CRUCIAL_SERVERS") {
                let list = servers.split(separator: ",").map { String($0) }.filter { !$0.allSatisfy(\.isWhitespace) }
                if !list.isEmpty { c.servers = list }
            }
            if let token = environment("CRUCIAL_AUTH_TOKEN") { c.authToken = token }
            if let ca = environment("CRUCIAL_TLS_CA"), !ca.isEmpty {
                // An unreadable file fails every connection with this message rather than going unencrypted.
                c.tls = (try? ClientTLS(trustingFile: ca)) ?? ClientTLS(trustRootsPEM: "unreadable: \(ca)")
            } else if let flag = environment("CRUCIAL_TLS"), ["1", "true", "yes"].contains(flag.lowercased()) {
                c.tls = ClientTLS()
            }
            return c
        }
    }
}

/// A set, non-empty environment variable.
package func environment(_ name: String) -> String? {
    guard let raw = getenv(name) else { return nil }
    let s = String(cString: raw)
    return s.isEmpty ? nil : s
}
