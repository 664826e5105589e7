internal import CrucialTransport

/// Admin calls: an object's state, the objects a server holds, plugins.
extension CrucialClient {
    /// The state of an object (admin): what its type sends as initial state.
    public func state(of ref: ObjectRef) async throws -> Value {
        try ref.validate()
        return try expectOK(try await send(to: ref) { id, _ in .getObject(id: id, ref: ref) }, "GetObject")
    }

    /// The former name of ``state(of:)``.
    @available(*, deprecated, renamed: "state(of:)")
    public func getObject(_ ref: ObjectRef) async throws -> Value { try await state(of: ref) }

    /// Uploads a plugin (a shared library exporting `@Shared` types) to the server this
    /// client talks to, which loads it without restarting and stores it for its next start;
    /// returns what the server did. A type the server knows already gets the plugin's code,
    /// each of its objects carried over through its state; a server that cannot carry
    /// every object over refuses the load and keeps the old code (BAD_REQUEST, saying why).
    /// Needs the server's admin token as this client's `authToken` (or a server with no tokens).
    @discardableResult
    public func loadPlugin(_ bytes: [UInt8], name: String, chunkSize: Int = 1 << 20) async throws -> PluginLoad {
        try await loadPlugin(bytes, name: name, checkOnly: false, chunkSize: chunkSize)
    }

    /// Checks a plugin as ``loadPlugin(_:name:chunkSize:)`` would load it, on the server this
    /// client reaches, and keeps nothing: the answer says what a load would replace and carry
    /// over, and a refusal is the one a load would get (the first phase of `crucial plugin
    /// load` across a cluster: every member checks before any loads).
    @discardableResult
    public func checkPlugin(_ bytes: [UInt8], name: String, chunkSize: Int = 1 << 20) async throws -> PluginLoad {
        try await loadPlugin(bytes, name: name, checkOnly: true, chunkSize: chunkSize)
    }

    private func loadPlugin(_ bytes: [UInt8], name: String, checkOnly: Bool, chunkSize: Int) async throws -> PluginLoad {
        guard !bytes.isEmpty else { throw CrucialError(.invalidArgument, "plugin \(name) is empty") }
        let c = try await connection()  // every chunk on one connection: the server assembles per connection
        var offset = 0
        var answer = Value.null
        while offset < bytes.count {
            let end = min(bytes.count, offset + max(1, chunkSize))
            let id = newRequestID()
            let frame = try await c.request(
                .loadPlugin(
                    id: id, name: name, offset: UInt64(offset), chunk: Array(bytes[offset..<end]), last: end == bytes.count, checkOnly: checkOnly),
                id: id)
            answer = try expectOK(frame, "LoadPlugin")
            offset = end
        }
        return PluginLoad(answer)
    }

    @discardableResult
    func expectOK(_ frame: Frame, _ request: String) throws -> Value {
        guard case .result(let reply) = frame else { throw CrucialError(.protocolViolation, "unexpected answer to \(request)") }
        switch reply.outcome {
        case .value(let v): return v
        case .error(let e): throw e
        case .wrongView: throw CrucialError(.wrongView, "server is in another view")
        }
    }

    /// The objects the server holds, optionally only types starting with `typePrefix`, in
    /// (type, key) order (fetched in pages of 1,000).
    public func listObjects(typePrefix: String = "") async throws -> [ObjectInfo] {
        var all: [ObjectInfo] = []
        var after: ObjectRef?
        while true {
            let page = try await listObjects(typePrefix: typePrefix, after: after, limit: 1000)
            all += page.objects
            guard page.more, let last = page.objects.last else { return all }
            after = last.ref
        }
    }

    /// One page of the objects the server holds: those after `after` (nil: from the first),
    /// in (type, key) order compared as UTF-8 bytes, at most `limit`; `more` says whether
    /// others follow the last of them.
    public func listObjects(typePrefix: String = "", after: ObjectRef?, limit: Int) async throws -> (objects: [ObjectInfo], more: Bool) {
        guard limit > 0 else { throw CrucialError(.invalidArgument, "listObjects: limit must be positive, got \(limit)") }
        let frame = try await send { id, _ in .listObjects(id: id, typePrefix: typePrefix, after: after, limit: UInt32(clamping: limit)) }
        switch frame {
        case .objectList(_, let objects, let more): return (objects, more)
        case .result(let r):
            if case .error(let e) = r.outcome { throw e }
            throw CrucialError(.protocolViolation, "unexpected answer to ListObjects")
        default: throw CrucialError(.protocolViolation, "unexpected answer to ListObjects")
        }
    }

    /// What the server this client talks to is and holds (`crucial info`).
    public func serverInfo() async throws -> ServerInfo {
        let value = try expectOK(try await send { id, _ in .serverInfo(id: id) }, "ServerInfo")
        guard let info = ServerInfo(value) else { throw CrucialError(.protocolViolation, "ServerInfo answered with \(value)") }
        return info
    }

    /// Accepts (admin) that objects whose every copy was lost are gone: `ref` alone, or (nil)
    /// every object lost so far. Until then they answer DATA_LOSS to every call; from then
    /// on a creating call makes them afresh. Sent to any member of the cluster, which
    /// records it in etcd for all of them; returns the view it covers losses up to and the
    /// lost members whose loss it covered.
    @discardableResult
    public func acceptLoss(of ref: ObjectRef? = nil) async throws -> (upToView: UInt64, lostMembers: [String]) {
        if let ref { try ref.validate() }
        let value = try expectOK(try await send { id, _ in .acceptLoss(id: id, ref: ref) }, "AcceptLoss")
        let r = value.recordValue ?? [:]
        return (UInt64(r["view"]?.intValue ?? 0), (r["members"]?.listValue ?? []).compactMap(\.stringValue))
    }

    /// Calls `method` on `ref` with `args`, as `crucial call` does for debugging: a method
    /// of a built-in type that only reads is sent as a read, anything else as a write
    /// (de-duplicated if sent again). `create` makes the object if it does not exist, with
    /// that initial state, `persistent` or in this client's session. A blocking change (a
    /// semaphore's acquire, a barrier's await) keeps this client alive from then on, as the
    /// typed proxies do: what it holds or waits for is released only when the client is gone.
    public func call(_ ref: ObjectRef, _ method: String, _ args: [Value] = [], create: Value? = nil, persistent: Bool = false) async throws -> Value {
        let kind = BuiltinType(rawValue: ref.type)?.kind(of: method)
        let readOnly = kind?.isRead ?? false
        if let kind, kind.blocks, !readOnly { keepClientAlive() }
        return try await invoke(ref, method, args, create: create.map { Create(initial: $0, persistent: persistent) }, readOnly: readOnly)
    }
}

/// A server's answer to `ServerInfo` (docs/PROTOCOL.md): what `crucial info` prints.
public struct ServerInfo: Sendable, Equatable {
    /// `--server-id`.
    public var serverID: String
    /// Its release (`CrucialVersion.release`).
    public var release: String
    /// The wire protocol's version it speaks.
    public var protocolVersion: Int
    /// How long it has been running.
    public var uptime: Duration
    /// The objects it holds (a cluster member: its copies, primary or not).
    public var objects: Int
    /// How many of them are persistent.
    public var persistentObjects: Int
    /// The calls parked on them.
    public var parkedCalls: Int
    /// The application sessions it knows.
    public var sessions: Int
    /// The estimated bytes of all object state.
    public var stateBytes: Int
    /// Its open connections (clients and peers).
    public var connections: Int
    /// In a cluster, this member's node id; empty for a server on its own.
    public var node: String
    /// The id of the view it serves (0: no cluster).
    public var viewID: UInt64
    /// The view's members, as `id@address`.
    public var members: [String]
    /// Calls it has served since it started, per method that any call named.
    public var calls: [MethodCalls]
    /// The user types it runs (linked in or from plugins), by wire name.
    public var types: [UserType]
    /// In a cluster: objects whose every copy is on members that left without handing it
    /// over (unavailable while one is away) or came back without their data (lost).
    public var holes: [Hole]
    /// Tombstones of removed persistent objects it keeps (until every member has them).
    public var tombstones: Int

    /// Objects whose every copy is on departed members: those whose replicas on the ring of
    /// `members` are all in `absent` or `lost`.
    public struct Hole: Sendable, Equatable {
        /// The node ids of the view the copies were last complete in.
        public var members: [String]
        /// Those not back yet: they may bring the objects back (UNAVAILABLE meanwhile).
        public var absent: [String]
        /// Those back without their data, not accepted by an operator (DATA_LOSS).
        public var lost: [String]
    }

    /// A user type as a server runs it.
    public struct UserType: Sendable, Equatable {
        /// The wire name.
        public var type: String
        /// Its method table's fingerprint: clients built with another are refused.
        public var fingerprint: String
        /// Where the code came from: "plugin FILE, build B" or "linked into this server".
        public var origin: String
        /// A plugin's build (a hash of its bytes); empty for linked code.
        public var build: String
        /// The shipped methods.
        public var methods: [String]
    }

    /// How many calls of one method a server has served.
    public struct MethodCalls: Sendable, Equatable {
        /// The object type.
        public var type: String
        /// The method's wire name.
        public var method: String
        /// Calls so far (answered, or parked).
        public var count: Int
    }

    init?(_ value: Value) {
        guard case .record(let r) = value, let id = r["server_id"]?.stringValue, let release = r["release"]?.stringValue else { return nil }
        func int(_ key: String) -> Int { Int(r[key]?.intValue ?? 0) }
        serverID = id
        self.release = release
        protocolVersion = int("protocol")
        uptime = .milliseconds(r["uptime_ms"]?.intValue ?? 0)
        objects = int("objects")
        persistentObjects = int("persistent")
        parkedCalls = int("parked")
        sessions = int("sessions")
        stateBytes = int("state_bytes")
        connections = int("connections")
        node = r["node"]?.stringValue ?? ""
        viewID = UInt64(r["view"]?.intValue ?? 0)
        members = (r["members"]?.listValue ?? []).compactMap(\.stringValue)
        calls = (r["calls"]?.listValue ?? []).compactMap { call in
            guard case .record(let c) = call, let type = c["type"]?.stringValue, let method = c["method"]?.stringValue else { return nil }
            return MethodCalls(type: type, method: method, count: Int(c["count"]?.intValue ?? 0))
        }
        holes = (r["holes"]?.listValue ?? []).compactMap { h in
            guard let h = h.recordValue else { return nil }
            func ids(_ key: String) -> [String] { (h[key]?.listValue ?? []).compactMap(\.stringValue) }
            return Hole(members: ids("members"), absent: ids("absent"), lost: ids("lost"))
        }
        tombstones = int("tombstones")
        types = (r["types"]?.listValue ?? []).compactMap { t in
            guard let t = t.recordValue, let type = t["type"]?.stringValue else { return nil }
            return UserType(
                type: type, fingerprint: t["fingerprint"]?.stringValue ?? "", origin: t["origin"]?.stringValue ?? "",
                build: t["build"]?.stringValue ?? "", methods: (t["methods"]?.listValue ?? []).compactMap(\.stringValue))
        }
    }
}

/// What a server did with a plugin (``CrucialClient/loadPlugin(_:name:chunkSize:)``).
public struct PluginLoad: Sendable, Equatable {
    /// The types the plugin brought, by wire name.
    public var types: [String]
    /// Those whose code it replaced (the server knew them already).
    public var replaced: [String]
    /// Objects of the replaced types now running the new code.
    public var converted: Int
    /// Objects that kept their old code, with the reason (a state that changed, between the
    /// server's check and the move, into one the new code does not decode).
    public var kept: [(ref: ObjectRef, reason: String)]
    /// The plugin's build (a hash of its bytes), as `crucial plugin ls` shows it.
    public var build: String
    /// Each type's fingerprint (the version a client must be built with), by wire name.
    public var fingerprints: [String: String]
    /// Whether the server only checked the plugin (``CrucialClient/checkPlugin(_:name:chunkSize:)``):
    /// false from a server of an earlier release, which loaded it instead.
    public var checkedOnly = false

    init(_ value: Value) {
        // Servers before the fingerprints answered the list of types alone.
        if let list = value.listValue {
            self.init(types: list.compactMap(\.stringValue), replaced: [], converted: 0, kept: [], build: "", fingerprints: [:])
            return
        }
        let r = value.recordValue ?? [:]
        let kept: [(ref: ObjectRef, reason: String)] = (r["kept"]?.listValue ?? []).compactMap { k in
            guard let k = k.recordValue, let type = k["type"]?.stringValue, let key = k["key"]?.stringValue else { return nil }
            return (ObjectRef(type: type, key: key), k["reason"]?.stringValue ?? "")
        }
        self.init(
            types: (r["types"]?.listValue ?? []).compactMap(\.stringValue), replaced: (r["replaced"]?.listValue ?? []).compactMap(\.stringValue),
            converted: Int(r["converted"]?.intValue ?? 0), kept: kept, build: r["build"]?.stringValue ?? "",
            fingerprints: (r["fingerprints"]?.recordValue ?? [:]).compactMapValues(\.stringValue))
        checkedOnly = r["checked"]?.boolValue ?? false
    }

    init(
        types: [String], replaced: [String], converted: Int, kept: [(ref: ObjectRef, reason: String)], build: String, fingerprints: [String: String]
    ) {
        self.types = types
        self.replaced = replaced
        self.converted = converted
        self.kept = kept
        self.build = build
        self.fingerprints = fingerprints
    }

    /// Whether two reports say the same (tuples are not `Equatable`, hence by hand).
    public static func == (a: PluginLoad, b: PluginLoad) -> Bool {
        a.types == b.types && a.replaced == b.replaced && a.converted == b.converted && a.build == b.build
            && a.fingerprints == b.fingerprints && a.checkedOnly == b.checkedOnly && a.kept.map(\.ref) == b.kept.map(\.ref) && a.kept.map(\.reason) == b.kept.map(\.reason)
    }
}
