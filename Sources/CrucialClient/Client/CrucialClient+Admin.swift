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

    /// Calls `method` on `ref` with `args`, as `crucial call` does for debugging: a method
    /// of a built-in type that only reads is sent as a read, anything else as a write
    /// (de-duplicated if sent again). `create` makes the object if it does not exist, with
    /// that initial state, `persistent` or in this client's session.
    public func call(_ ref: ObjectRef, _ method: String, _ args: [Value] = [], create: Value? = nil, persistent: Bool = false) async throws -> Value {
        let readOnly = BuiltinType(rawValue: ref.type)?.methods[method]?.kind.isRead ?? false
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
    }
}
