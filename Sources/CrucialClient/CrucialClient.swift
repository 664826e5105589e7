@_exported public import CrucialCore
@_exported public import CrucialTransport
import Synchronization
internal import NIOCore
internal import NIOPosix
internal import NIOSSL

#if canImport(Glibc)
internal import Glibc
#endif

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
public final class CrucialClient: Sendable {
    public struct Configuration: Sendable {
        /// Server addresses, "host:port"; the first reachable one is used.
        public var servers: [String]
        /// Connections in the pool; requests are spread over them round-robin.
        public var connections: Int
        /// The shared secret proved (never sent) in the handshake to servers that require
        /// one; with it, a server must prove it knows the secret too.
        public var authToken: String
        /// TLS for every connection (servers started with `--tls-cert`); nil = plain TCP.
        public var tls: ClientTLS?
        /// How many times a request is re-sent after its connection failed.
        public var retries: Int
        /// The first retry waits this long; each next one twice as long (at most 2 s).
        public var retryBackoff: Duration
        public var connectTimeout: Duration
        /// Shown in server logs.
        public var name: String
        /// The application session this client's ephemeral objects belong to; nil = a
        /// new one, kept alive by this client. Cloud threads get their driver's.
        public var session: UInt64?
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

        public init(
            servers: [String] = ["127.0.0.1:\(CrucialDefaults.port)"], connections: Int = 2, authToken: String = "",
            retries: Int = 5, retryBackoff: Duration = .milliseconds(50), connectTimeout: Duration = .seconds(5),
            name: String = "crucial-client", session: UInt64? = nil, sessionLease: Duration = .seconds(30),
            failoverTimeout: Duration = .seconds(30), tls: ClientTLS? = nil, heartbeatTimeout: Duration? = nil
        ) {
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

    private enum Slot {
        case empty
        case connecting(Task<ClientConnection, any Error>)
        case connected(ClientConnection)
    }

    public let configuration: Configuration
    /// This client's identity for retry de-duplication.
    public let clientID: UInt64
    /// The application session its ephemeral objects belong to.
    public let session: UInt64
    /// Whether this client keeps ``session`` alive (false for a cloud thread using its driver's).
    public let ownsSession: Bool
    private let keepAliveTask = Mutex<Task<Void, Never>?>(nil)
    /// Whether keep-alives name this client (it took semaphore permits).
    private let keepsClient = Mutex(false)
    private let group: any EventLoopGroup
    /// Connections to "any server" (a server on its own, or the first contact of a cluster).
    private let slots: [LockedBox<Slot>]
    private let nextSlot = Mutex(0)
    /// In a cluster: connections per member address, and the view calls are routed with.
    private let memberSlots = Mutex<[String: [LockedBox<Slot>]]>([:])
    private let routing = Mutex<(view: View, ring: HashRing)?>(nil)
    private let nextRequestID = Mutex<UInt64>(0)
    private let seqs = Mutex(SeqTracker())
    /// The TLS context every connection shares, or why there is none.
    private let tlsContext: Result<NIOSSLContext, CrucialError>?

    /// A client for `configuration`. It shares NIO's process-wide event loops, so it
    /// needs no shutdown; ``close()`` releases its connections.
    public init(configuration: Configuration) {
        self.configuration = configuration
        self.clientID = UInt64.random(in: 1...UInt64.max)
        self.session = configuration.session ?? UInt64.random(in: 1...UInt64.max)
        self.ownsSession = configuration.session == nil
        self.group = MultiThreadedEventLoopGroup.singleton
        self.slots = (0..<configuration.connections).map { _ in LockedBox(Slot.empty) }
        self.tlsContext = configuration.tls.map { tls in Result { () throws(CrucialError) in try tls.makeContext() } }
    }

    /// A client for `servers` ("host:port" each).
    public convenience init(servers: [String], authToken: String = "") {
        self.init(configuration: Configuration(servers: servers, authToken: authToken))
    }

    // MARK: The default client

    private static let sharedBox = Mutex<CrucialClient?>(nil)

    /// The process-wide client proxies use when none is given. Created on first
    /// use from the environment (``Configuration/fromEnvironment()``); replace it
    /// with ``useShared(_:)``.
    public static var shared: CrucialClient {
        if let bound = taskBound { return bound }
        return sharedBox.withLock { box in
            if let c = box { return c }
            let c = CrucialClient(configuration: .fromEnvironment())
            box = c
            return c
        }
    }

    /// Overrides ``shared`` for one task tree: the in-process invoker binds the
    /// client of the invocation's DSO endpoint, as a Lambda bootstrap would use it.
    @TaskLocal static var taskBound: CrucialClient?

    /// Makes `client` the process-wide default; the previous one is closed.
    public static func useShared(_ client: CrucialClient) {
        let old = sharedBox.withLock { box in
            defer { box = client }
            return box
        }
        if let old, old !== client { old.close() }
    }

    // MARK: Connections

    /// A connection to `address`, or to any server when nil.
    private func connection(to address: String? = nil) async throws -> ClientConnection {
        let index = nextSlot.withLock { n in
            defer { n = (n + 1) % slots.count }
            return n
        }
        let slot: LockedBox<Slot>
        if let address {
            slot = memberSlots.withLock { pools in
                if let pool = pools[address] { return pool[index % pool.count] }
                let pool = slots.map { _ in LockedBox(Slot.empty) }
                pools[address] = pool
                return pool[index % pool.count]
            }
        } else {
            slot = slots[index]
        }
        enum Found {
            case ready(ClientConnection)
            case pending(Task<ClientConnection, any Error>)
        }
        let found: Found = slot.withLock { state in
            switch state {
            case .connected(let c) where c.isActive:
                return .ready(c)
            case .connecting(let t):
                return .pending(t)
            default:
                let t = Task {
                    let c: ClientConnection
                    if let address { c = try await self.connect(to: address) } else { c = try await self.connectAny() }
                    self.learn(c.hello.view)
                    return c
                }
                state = .connecting(t)
                return .pending(t)
            }
        }
        let task: Task<ClientConnection, any Error>
        switch found {
        case .ready(let c): return c
        case .pending(let t): task = t
        }
        do {
            let c = try await task.value
            slot.withLock { state in
                if case .connecting = state { state = .connected(c) }
            }
            return c
        } catch {
            slot.withLock { state in
                if case .connecting = state { state = .empty }
            }
            throw error
        }
    }

    private func connect(to server: String) async throws -> ClientConnection {
        let (host, port) = try parseAddress(server)
        let identity = ConnectionIdentity(
            name: configuration.name, secret: configuration.authToken, tls: try tlsContext?.get(),
            serverHostname: configuration.tls?.serverHostname)
        return try await ClientConnection.connect(
            host: host, port: port, group: group, identity: identity, timeout: configuration.connectTimeout,
            heartbeat: configuration.heartbeatTimeout)
    }

    /// Connects to the first server that answers: the configured ones, then the members
    /// of the last view seen.
    private func connectAny() async throws -> ClientConnection {
        var failures: [String] = []
        var servers = configuration.servers
        for m in routing.withLock({ $0?.view.members ?? [] }) where !servers.contains(m.address) { servers.append(m.address) }
        for server in servers {
            do {
                return try await connect(to: server)
            } catch let error as CrucialError
                where [.unauthenticated, .unsupportedVersion, .invalidArgument].contains(error.code)
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
        stopKeepAlive()
        for slot in slots + memberSlots.withLock({ $0.values.flatMap { $0 } }) {
            let old = slot.withLock { state -> Slot in
                defer { state = .empty }
                return state
            }
            switch old {
            case .connected(let c): c.close()
            case .connecting(let t): Task { try? await t.value.close() }
            case .empty: break
            }
        }
    }

    // MARK: Requests

    private func newRequestID() -> UInt64 {
        nextRequestID.withLock { n in
            n &+= 1
            return n
        }
    }

    // MARK: Routing

    /// The cluster view calls are routed with; nil while talking to a server on its own.
    package var view: View? { routing.withLock { $0?.view } }

    /// Adopts `view` if it is newer than the one held; returns whether it was.
    @discardableResult
    private func learn(_ view: View?) -> Bool {
        guard let view, !view.members.isEmpty else { return false }
        return routing.withLock { r in
            guard (r?.view.id ?? 0) < view.id else { return false }
            r = (view, HashRing(members: view.members))
            return true
        }
    }

    /// Asks another member (or a configured server) for its view after `failed` did not answer.
    private func refreshView(excluding failed: String?) async {
        var candidates = routing.withLock { $0?.view.members.map(\.address) ?? [] }
        candidates += configuration.servers.filter { !candidates.contains($0) }
        for address in candidates where address != failed {
            guard let c = try? await connect(to: address) else { continue }
            learn(c.hello.view)
            c.close()
            return
        }
    }

    /// Sends the frame `build` makes for a fresh request id and the view it is routed
    /// with, to the primary of `ref` in a cluster (else to any server). Retries calls a
    /// failed connection lost (the servers de-duplicate them) and calls a member refused
    /// for belonging elsewhere, once it knows where: in a cluster until
    /// ``Configuration/failoverTimeout``, else ``Configuration/retries`` times.
    private func send(to ref: ObjectRef? = nil, _ build: (_ id: UInt64, _ viewID: UInt64) -> Frame) async throws -> Frame {
        var attempt = 0
        let started = ContinuousClock.now
        while true {
            let id = newRequestID()
            let route = routing.withLock { r in r.map { ($0.view.id, ref.flatMap($0.ring.primary(for:))?.address) } }
            let viewID = route?.0 ?? 0, address = route?.1
            let clustered = route != nil
            func mayRetry() -> Bool {
                clustered ? ContinuousClock.now - started < configuration.failoverTimeout : attempt < configuration.retries
            }
            do {
                let c = try await connection(to: address)
                let frame = try await c.request(build(id, viewID), id: id)
                guard case .result(let reply) = frame else { return frame }
                switch reply.outcome {
                case .wrongView(let v):
                    // A newer view: route again at once. An older one: that member is catching up.
                    if learn(v) || v.id > viewID { continue }
                    guard mayRetry() else { return frame }
                case .error(let e) where e.code == .wrongView || e.code == .unavailable:
                    // A view change is under way, or the member cannot serve until it renews its lease
                    // or until the members away with an object's copies are back.
                    guard clustered || e.code == .wrongView, mayRetry() else { return frame }
                default:
                    return frame
                }
            } catch let error as CrucialError where (error.code == .connectionLost || error.code == .connectionFailed) && mayRetry() {
                if clustered { await refreshView(excluding: address) }
            }
            let cap: Duration = clustered ? .milliseconds(500) : .seconds(2)
            try await Task.sleep(for: min(configuration.retryBackoff * (1 << min(attempt, 10)), cap))
            attempt += 1
        }
    }

    /// Calls `method` on `ref`. `create` makes the object on first use.
    /// Mutating calls are de-duplicated by the server when retried; pass
    /// `readOnly: true` for calls that may safely run twice.
    package func invoke(
        _ ref: ObjectRef, _ method: String, _ args: [Value] = [], create: Create? = nil, readOnly: Bool = false
    ) async throws -> Value {
        try ref.validate()
        var create = create
        if create != nil {
            if create?.session == 0 { create?.session = session }
            if ownsSession, create?.persistent == false { startKeepAlive() }
        }
        let seq = readOnly ? 0 : seqs.withLock { $0.allocate() }
        defer { if seq != 0 { seqs.withLock { $0.complete(seq) } } }
        let frame = try await send(to: ref) { id, viewID in
            let acked = seq == 0 ? 0 : seqs.withLock { $0.ackedBelow }
            return .invoke(
                Invoke(
                    id: id, ref: ref, method: method, args: args, create: create, clientID: clientID, seq: seq, ackedBelow: acked,
                    viewID: viewID))
        }
        guard case .result(let reply) = frame else {
            throw CrucialError(.protocolViolation, "server answered an Invoke with a \(frame) frame")
        }
        switch reply.outcome {
        case .value(let v): return v
        case .error(let e): throw e
        case .wrongView(let view):
            throw CrucialError(.wrongView, "no member of view \(view.id) took the call on \(ref) within \(configuration.failoverTimeout)")
        }
    }

    /// Removes an object; answers whether it existed.
    @discardableResult
    public func remove(_ ref: ObjectRef) async throws -> Bool {
        try ref.validate()
        let frame = try await send(to: ref) { id, _ in .remove(id: id, ref: ref) }
        guard case .result(let reply) = frame else { throw CrucialError(.protocolViolation, "unexpected answer to Remove") }
        switch reply.outcome {
        case .value(let v): return v.boolValue ?? false
        case .error(let e): throw e
        case .wrongView: throw CrucialError(.wrongView, "server does not own \(ref)")
        }
    }

    /// Checks a server answers.
    public func ping() async throws {
        _ = try await send { id, _ in .ping(id: id) }
    }

    // MARK: Sessions

    /// Runs `request` on every member of the view (sessions live on each), or on the one
    /// server without a cluster. Retries through ``send``'s rules for the lone server.
    private func everyMember<T: Sendable>(_ request: @escaping @Sendable (ClientConnection, UInt64) async throws -> T) async throws -> [T] {
        guard let members = view?.members else {
            let c = try await connection()
            return [try await request(c, newRequestID())]
        }
        // A member that does not answer is on its way out of the view: the others count.
        var out: [T] = []
        var failure: (any Error)?
        for m in members {
            do { out.append(try await request(try await connection(to: m.address), newRequestID())) } catch { failure = failure ?? error }
        }
        if out.isEmpty, let failure { throw failure }
        return out
    }

    /// Keeps this client's session alive from now on, if the session is its own: done
    /// when it creates its first ephemeral object, or hands its session to a cloud thread.
    func keepSessionAlive() {
        if ownsSession { startKeepAlive() }
    }

    /// Keeps this client itself alive from now on: done when it takes semaphore permits,
    /// which the servers release once its keep-alives stop (it crashed, or was closed).
    func keepClientAlive() {
        guard !keepsClient.withLock({ $0 }) else { return }
        keepsClient.withLock { $0 = true }
        stopKeepAlive()  // the loop restarts at once, now naming the client too
        startKeepAlive()
    }

    /// Sends keep-alives every quarter of the lease from the first ephemeral object (or
    /// permit) on.
    private func startKeepAlive() {
        guard keepAliveTask.withLock({ $0 == nil }) else { return }
        let lease = configuration.sessionLease
        let task = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                do { try await self.keepAlive(lease: lease) } catch {}  // the next one retries; the lease has slack
                try? await Task.sleep(for: lease / 4)
            }
        }
        let raced = keepAliveTask.withLock { current -> Bool in
            guard current == nil else { return true }
            current = task
            return false
        }
        if raced { task.cancel() }
    }

    private func stopKeepAlive() {
        keepAliveTask.withLock { task in
            task?.cancel()
            task = nil
        }
    }

    /// Tells the servers this client's session (if it is its own) and, once it holds
    /// semaphore permits, this client live for `lease` more.
    public func keepAlive(lease: Duration? = nil) async throws {
        let (seconds, attoseconds) = (lease ?? configuration.sessionLease).components
        let ms = UInt32(clamping: max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        let client = keepsClient.withLock { $0 } ? clientID : 0
        let session = ownsSession ? self.session : 0
        guard session != 0 || client != 0 else { return }
        _ = try await everyMember { c, id in
            try self.expectOK(try await c.request(.keepAlive(id: id, session: session, leaseMillis: ms, clientID: client), id: id), "KeepAlive")
        }
    }

    /// Ends the application session: the servers remove its ephemeral objects (those
    /// its cloud threads created too). Returns how many. Call it when the driver is done;
    /// a driver that dies instead loses them when the lease lapses.
    @discardableResult
    public func endSession() async throws -> Int {
        stopKeepAlive()
        let counts = try await everyMember { c, id in
            try self.expectOK(try await c.request(.endSession(id: id, session: self.session), id: id), "EndSession").intValue ?? 0
        }
        return Int(counts.reduce(0, +))
    }

    /// The state of an object (admin): what its type sends as initial state.
    public func getObject(_ ref: ObjectRef) async throws -> Value {
        try ref.validate()
        return try expectOK(try await send(to: ref) { id, _ in .getObject(id: id, ref: ref) }, "GetObject")
    }

    /// Uploads a plugin (a shared library exporting `@Shared` types) to the server this
    /// client talks to, which loads it without restarting; returns the types it brought.
    /// Needs the server's admin token as this client's `authToken` (or a server with no tokens).
    public func loadPlugin(_ bytes: [UInt8], name: String, chunkSize: Int = 1 << 20) async throws -> [String] {
        guard !bytes.isEmpty else { throw CrucialError(.invalidArgument, "plugin \(name) is empty") }
        let c = try await connection()  // every chunk on one connection: the server assembles per connection
        var offset = 0
        var answer = Value.null
        while offset < bytes.count {
            let end = min(bytes.count, offset + max(1, chunkSize))
            let id = newRequestID()
            let frame = try await c.request(
                .loadPlugin(id: id, name: name, offset: UInt64(offset), chunk: Array(bytes[offset..<end]), last: end == bytes.count), id: id)
            answer = try expectOK(frame, "LoadPlugin")
            offset = end
        }
        return (answer.listValue ?? []).compactMap(\.stringValue)
    }

    @discardableResult
    private func expectOK(_ frame: Frame, _ request: String) throws -> Value {
        guard case .result(let reply) = frame else { throw CrucialError(.protocolViolation, "unexpected answer to \(request)") }
        switch reply.outcome {
        case .value(let v): return v
        case .error(let e): throw e
        case .wrongView: throw CrucialError(.wrongView, "server is in another view")
        }
    }

    /// The objects the server holds, optionally only types starting with `typePrefix`.
    public func listObjects(typePrefix: String = "") async throws -> [ObjectInfo] {
        let frame = try await send { id, _ in .listObjects(id: id, typePrefix: typePrefix) }
        switch frame {
        case .objectList(_, let objects): return objects
        case .result(let r):
            if case .error(let e) = r.outcome { throw e }
            throw CrucialError(.protocolViolation, "unexpected answer to ListObjects")
        default: throw CrucialError(.protocolViolation, "unexpected answer to ListObjects")
        }
    }
}

/// A set, non-empty environment variable.
func environment(_ name: String) -> String? {
    guard let raw = getenv(name) else { return nil }
    let s = String(cString: raw)
    return s.isEmpty ? nil : s
}
