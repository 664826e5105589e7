@_exported public import CrucialCore
@_exported public import CrucialShared
@_exported public import CrucialTransport
import Synchronization
internal import NIOCore
internal import NIOPosix
internal import NIOSSL

/// A connection to the Crucial DSO layer: a small pool of pipelined
/// connections, reconnection, and retries that servers de-duplicate.
///
/// Most programs never create one: proxies use ``CrucialClient/shared``, which
/// reads its servers from `CRUCIAL_SERVERS` (default `127.0.0.1:7420`).
///
/// ```swift
/// let counter = AtomicLong("counter", initial: 0)          // uses CrucialClient.shared
/// let other = CrucialClient(servers: ["10.0.0.5:7420"])
/// let remote = AtomicLong("counter", initial: 0, client: other)
/// ```
///
/// Its parts: ``Configuration``; a `ConnectionPool`; the routing and retries of
/// `CrucialClient+Requests.swift`; a `SessionKeeper` for keep-alives; and the admin calls of
/// `CrucialClient+Admin.swift`.
public final class CrucialClient: Sendable {
    /// What this client was made with.
    public let configuration: Configuration
    /// This client's identity for retry de-duplication.
    public let clientID: UInt64
    /// The application session its ephemeral objects belong to.
    public let session: UInt64
    /// Whether this client keeps ``session`` alive (false for a cloud thread using its driver's).
    public let ownsSession: Bool
    let group: any EventLoopGroup
    /// One task executor per loop (see ``taskExecutor``).
    package let executors: [EventLoopTaskExecutor]
    private let nextExecutor = Atomic<Int>(0)
    let pool: ConnectionPool
    let keeper: SessionKeeper
    /// The runs of the cloud threads this client drives (see ``CloudRun``).
    package let cloudRuns = CloudRuns()
    /// Whether ``checkServers()`` succeeded once.
    let checkedServers = Atomic<Bool>(false)
    /// In a cluster: the view calls are routed with, and its ring.
    let routing = Mutex<(view: View, ring: HashRing)?>(nil)
    private let nextRequestID = Atomic<UInt64>(0)
    let seqs = Mutex(SeqTracker())
    /// Pipelined calls sent again on their own (see ``pipelineResults(_:)``), for the tests.
    let resent = Atomic<Int>(0)
    package var pipelinedResent: Int { resent.load(ordering: .relaxed) }
    /// The TLS context every connection shares, or why there is none.
    private let tlsContext: Result<NIOSSLContext, CrucialError>?

    /// A client for `configuration`. It shares NIO's process-wide event loops, so it
    /// needs no shutdown; ``close()`` releases its connections.
    public init(configuration: Configuration) {
        CrucialContext.registerCaller
        self.configuration = configuration
        self.clientID = UInt64.random(in: 1...UInt64.max)
        self.session = configuration.session ?? UInt64.random(in: 1...UInt64.max)
        self.ownsSession = configuration.session == nil
        self.group = MultiThreadedEventLoopGroup.singleton
        let loops = Array(group.makeIterator())  // connection slot `i` lives on `loops[i % loops.count]`
        // Only loops that have connections: a task on another would hand each call over.
        self.executors = loops.prefix(max(1, min(configuration.connections, loops.count))).map(EventLoopTaskExecutor.init)
        self.pool = ConnectionPool(size: configuration.connections, loops: loops)
        self.keeper = SessionKeeper(loop: group.next(), lease: configuration.sessionLease)
        self.tlsContext = configuration.tls.map { tls in Result { () throws(CrucialError) in try tls.makeContext() } }
    }

    /// A client for `servers` ("host:port" each).
    public convenience init(servers: [String], authToken: String = "") {
        self.init(configuration: Configuration(servers: servers, authToken: authToken))
    }

    // MARK: The default client

    /// The client proxies use when none is given: the client of the ``CrucialContext`` in
    /// effect (the task's, else the process's, made on first use from the environment,
    /// ``Configuration/fromEnvironment()``); replace the process's with ``useShared(_:)``.
    public static var shared: CrucialClient { CrucialContext.current.client }

    /// Makes `client` the process's (``CrucialContext/setProcessClient(_:)``); the previous
    /// one is closed.
    public static func useShared(_ client: CrucialClient) { CrucialContext.setProcessClient(client) }

    // MARK: Connections

    /// A connection to `address`, or to any server when nil.
    func connection(to address: String? = nil) async throws -> any FrameConnection {
        try await pool.connection(to: address) { loop in
            let c = if let address { try await self.connect(to: address, on: loop) } else { try await self.connectAny(on: loop) }
            self.learn(c.hello.view)
            return c
        }
    }

    /// Opens a connection to `server` on `loop` (nil: any of the client's loops).
    func connect(to server: String, on loop: (any EventLoop)? = nil) async throws -> any FrameConnection {
        let (host, port) = try parseAddress(server)
        let identity = ConnectionIdentity(
            name: configuration.name, secret: configuration.authToken, tls: try tlsContext?.get(),
            serverHostname: configuration.tls?.serverHostname, run: configuration.run ?? 0)
        return try await configuration.transport.connect(
            host: host, port: port, group: loop ?? group, identity: identity, timeout: configuration.connectTimeout,
            heartbeat: configuration.heartbeatTimeout, maxPending: configuration.maxPendingCalls)
    }

    /// Connects to the first server that answers: the configured ones, then the members
    /// of the last view seen.
    private func connectAny(on loop: (any EventLoop)?) async throws -> any FrameConnection {
        var failures: [String] = []
        var servers = configuration.servers
        for m in routing.withLock({ $0?.view.members ?? [] }) where !servers.contains(m.address) { servers.append(m.address) }
        for server in servers {
            do {
                return try await connect(to: server, on: loop)
            } catch let error as CrucialError
                where [.unauthenticated, .unsupportedVersion, .invalidArgument, .cancelled].contains(error.code)
            {
                throw error
            } catch {
                failures.append("\(error)")
            }
        }
        throw CrucialError(
            .connectionFailed,
            "no Crucial server reachable (tried \(configuration.servers.joined(separator: ", "))): "
                + failures.joined(separator: "; ")
                + ". Start one with `crucial-server`, or set CRUCIAL_SERVERS=host:port.")
    }

    /// Closes every connection and stops keeping the session alive; the client
    /// reconnects if used again. The session's ephemeral objects stay until its lease
    /// lapses: call ``endSession()`` first to remove them at once.
    public func close() {
        keeper.stop()
        pool.closeAll()
    }

    /// An executor for tasks that make many calls: a task that prefers it runs on one of the
    /// event loops this client's connections live on, so that a call reaches the socket and
    /// its answer comes back on the thread it was made on, with no thread switch (on Swift's
    /// default executor, each call hands over to the loop's thread and back: two wake-ups).
    /// Each access gives the next loop's executor, round-robin.
    ///
    /// ```swift
    /// try await withTaskExecutorPreference(client.taskExecutor) {
    ///     for _ in 0..<1_000 { _ = try await counter.incrementAndGet() }
    /// }
    /// ```
    ///
    /// A loop runs its connections' I/O too: keep long computations off it (run them in a
    /// task without this preference) or they delay every call made on that loop.
    public var taskExecutor: any TaskExecutor {
        executors[(nextExecutor.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max) % executors.count]
    }

    func newRequestID() -> UInt64 {
        nextRequestID.wrappingAdd(1, ordering: .relaxed).newValue
    }
}
