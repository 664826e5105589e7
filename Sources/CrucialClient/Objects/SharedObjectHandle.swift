import Synchronization

/// What every proxy holds: the object's reference, the client that reaches it,
/// and the initial state sent with the first call so the server can create the
/// object on first use.
public final class SharedObjectHandle: Sendable {
    /// The object's (type, key).
    public let ref: ObjectRef
    /// Whether the object outlives its application.
    public let persistent: Bool
    let initial: Value
    /// Why the initial state could not be encoded; thrown by the first call.
    let initialError: CrucialError?
    let boundClient: CrucialClient?
    private let created = Atomic(false)

    /// A handle on the object (`type`, `key`), made with `initial` on first use; `client` nil: the one in effect where each call runs.
    public init(type: String, key: String, initial: Value, persistent: Bool = false, client: CrucialClient?) {
        self.ref = ObjectRef(type: type, key: key)
        self.initial = initial
        self.initialError = nil
        self.persistent = persistent
        self.boundClient = client
    }

    init(ref: ObjectRef, initial: Result<Value, CrucialError>, persistent: Bool, client: CrucialClient?) {
        self.ref = ref
        switch initial {
        case .success(let v): (self.initial, self.initialError) = (v, nil)
        case .failure(let e): (self.initial, self.initialError) = (.null, e)
        }
        self.persistent = persistent
        self.boundClient = client
    }

    /// The client given at creation, else the one in effect where the call runs
    /// (``CrucialClient/shared``: inside a cloud thread, the one reaching the driver's servers).
    public var client: CrucialClient { boundClient ?? .shared }

    /// Calls `method` on the object. Until a call succeeded, the initial state
    /// travels along; afterwards the object is known to exist. A read (`readOnly`) is not
    /// de-duplicated when sent again: it must be one that may run twice.
    public func call(_ method: String, _ args: [Value] = [], readOnly: Bool = false) async throws -> Value {
        try await call(method, args, readOnly: readOnly, typeVersion: "")
    }

    /// Calls `method` on an object of a user type built with version `typeVersion` (its
    /// `crucialFingerprint`): a server running other code for the type refuses the call
    /// with `TYPE_VERSION_MISMATCH` instead of running it.
    public func call(_ method: String, _ args: [Value] = [], readOnly: Bool = false, typeVersion: String) async throws -> Value {
        if let initialError { throw initialError }
        let create = creation
        let value = try await client.invoke(ref, method, args, create: create, readOnly: readOnly, typeVersion: typeVersion)
        if create != nil { markCreated() }
        return value
    }

    /// What a call sends to create the object on first use: the initial state until a call
    /// succeeded, then nothing.
    var creation: Create? { created.load(ordering: .relaxed) ? nil : Create(initial: initial, persistent: persistent) }

    /// A call succeeded: the object exists.
    func markCreated() { created.store(true, ordering: .relaxed) }

    /// Calls a built-in method: its wire name and kind come from ``BuiltinType``'s table,
    /// which the servers read too.
    func call<M: BuiltinMethod>(_ method: M, _ args: [Value] = []) async throws -> Value {
        try await call(method.rawValue, args, readOnly: method.kind.isRead)
    }

    /// Removes the object from the servers. A later call through a proxy that
    /// already used it fails with NOT_FOUND; a new proxy creates it afresh.
    @discardableResult
    public func remove() async throws -> Bool {
        try await client.remove(ref)
    }
}

// MARK: Codable: built-in proxies travel inside cloud threads as their key, lifetime and
// initial state; a decoded proxy uses the client in effect where it runs.
extension SharedObjectHandle: Codable {
    private enum CodingKeys: String, CodingKey { case type, key, persistent, initial }

    /// Decodes a handle sent inside a cloud thread; it uses the client in effect where it runs.
    public convenience init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            type: try c.decode(String.self, forKey: .type), key: try c.decode(String.self, forKey: .key),
            initial: try c.decode(Value.self, forKey: .initial), persistent: try c.decode(Bool.self, forKey: .persistent), client: nil)
    }

    /// Encodes the handle as its type, key, lifetime and initial state.
    public func encode(to encoder: any Encoder) throws {
        if let initialError { throw initialError }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ref.type, forKey: .type)
        try c.encode(ref.key, forKey: .key)
        try c.encode(persistent, forKey: .persistent)
        try c.encode(initial, forKey: .initial)
    }
}

/// A client-side stand-in for a shared object: every method runs on the server.
public protocol SharedProxy: Sendable {
    var handle: SharedObjectHandle { get }
}

extension SharedProxy {
    /// The object's (type, key).
    public var ref: ObjectRef { handle.ref }

    /// Removes the object from the servers; answers whether it existed.
    @discardableResult
    public func remove() async throws -> Bool { try await handle.remove() }
}

// MARK: - Conversions at the proxy boundary

extension Value {
    private func mismatch(_ expected: String) -> CrucialError {
        CrucialError(.decodingFailed, "expected \(expected) from the server, got \(kindName) \(self)")
    }

    func int64() throws -> Int64 {
        guard case .int(let i) = self else { throw mismatch("an int") }
        return i
    }

    func int() throws -> Int {
        guard let i = Int(exactly: try int64()) else { throw mismatch("an Int") }
        return i
    }

    func bool() throws -> Bool {
        guard case .bool(let b) = self else { throw mismatch("a bool") }
        return b
    }

    func double() throws -> Double {
        guard let d = doubleValue else { throw mismatch("a number") }
        return d
    }

    func doubles() throws -> [Double] {
        guard let d = doublesValue else { throw mismatch("an array of doubles") }
        return d
    }

    func bytes() throws -> [UInt8] {
        guard let b = bytesValue else { throw mismatch("bytes") }
        return b
    }

    func list() throws -> [Value] {
        guard let l = listValue else { throw mismatch("a list") }
        return l
    }

    func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        do {
            return try ValueDecoder().decode(type, from: self)
        } catch {
            throw CrucialError(.decodingFailed, "cannot decode \(T.self) from the server's \(kindName): \(error)")
        }
    }

    /// nil for `.null`, else the decoded value.
    func decodeOptional<T: Decodable>(_ type: T.Type = T.self) throws -> T? {
        if case .null = self { return nil }
        return try decode(type)
    }

    /// A list of [key, value] pairs.
    func pairs<K: Decodable, V: Decodable>(_ k: K.Type, _ v: V.Type) throws -> [(K, V)] {
        try list().map { pair in
            guard case .list(let kv) = pair, kv.count == 2 else { throw mismatch("[key, value] pairs") }
            return (try kv[0].decode(K.self), try kv[1].decode(V.self))
        }
    }
}

/// Encodes a proxy argument.
func encodeArgument<T: Encodable>(_ value: T) throws -> Value {
    do {
        return try ValueEncoder().encode(value)
    } catch {
        throw CrucialError(.encodingFailed, "cannot encode \(T.self): \(error)")
    }
}

extension Duration {
    /// Milliseconds, rounded up so that a short positive wait never becomes 0 ("do not wait").
    var millisecondsArgument: Value {
        let (s, atto) = components
        let ms = s * 1000 + (atto + 999_999_999_999_999) / 1_000_000_000_000_000
        return .int(max(0, ms))
    }
}
