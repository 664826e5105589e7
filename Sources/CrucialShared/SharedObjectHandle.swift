public import CrucialCore
import Synchronization

/// What every proxy holds: the object's reference, the caller that reaches it (a
/// `CrucialClient`), and the initial state sent with the first call so the server can
/// create the object on first use.
public final class SharedObjectHandle: Sendable {
    /// The object's (type, key).
    public let ref: ObjectRef
    /// Whether the object outlives its application.
    public let persistent: Bool
    package let initial: Value
    /// Why the initial state could not be encoded; thrown by the first call.
    package let initialError: CrucialError?
    /// The caller given at creation; nil: the one in effect where each call runs.
    public let boundCaller: (any SharedCaller)?
    /// Whether the object was made without a key: it has a unique one of its own, which
    /// ``keyed(_:)`` (what `@SharedKey` does) replaces with a name.
    public let isAnonymous: Bool
    private let created = Atomic(false)

    /// A handle on the object (`type`, `key`), made with `initial` on first use; `caller`
    /// nil: the one in effect where each call runs (`CrucialClient.shared`). An empty `key`
    /// makes a new object of its own, as a constructor does in a plain program: it gets a
    /// unique key, which travels with the proxy into cloud threads.
    public convenience init(type: String, key: String, initial: Value, persistent: Bool = false, caller: (any SharedCaller)?) {
        self.init(ref: ObjectRef(type: type, key: key), initial: .success(initial), persistent: persistent, caller: caller)
    }

    package init(ref: ObjectRef, initial: Result<Value, CrucialError>, persistent: Bool, caller: (any SharedCaller)?) {
        isAnonymous = ref.key.isEmpty
        self.ref = isAnonymous ? ObjectRef(type: ref.type, key: Self.uniqueKey()) : ref
        switch initial {
        case .success(let v): (self.initial, self.initialError) = (v, nil)
        case .failure(let e): (self.initial, self.initialError) = (.null, e)
        }
        self.persistent = persistent
        self.boundCaller = caller
    }

    /// A key no other object has: `~` and 128 random bits in hex.
    static func uniqueKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bits = [generator.next(), generator.next()] as [UInt64]
        return "~" + bits.map { String($0, radix: 16).leftPadded(to: 16) }.joined()
    }

    /// This handle named `key`, unless it was named already.
    public func keyed(_ key: String) -> SharedObjectHandle {
        guard isAnonymous else { return self }
        return SharedObjectHandle(
            ref: ObjectRef(type: ref.type, key: key), initial: initialError.map { .failure($0) } ?? .success(initial),
            persistent: persistent, caller: boundCaller)
    }

    /// The caller given at creation, else the one in effect where the call runs.
    public func caller() throws -> any SharedCaller { try boundCaller ?? SharedCallers.current() }

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
        guard !(isAnonymous && persistent) else {
            throw CrucialError(
                .invalidArgument,
                "a persistent \(ref.type) needs a key to be found again: name it (`AtomicLong(\"hits\", persistent: true)`, "
                    + "`T.Shared(\"name\", ..., persistent: true)`) or declare the property holding it @SharedKey")
        }
        let create = creation
        let value = try await caller().callShared(
            ref, method, args, initial: create?.initial, persistent: persistent, readOnly: readOnly, typeVersion: typeVersion)
        if create != nil { markCreated() }
        return value
    }

    /// What a call sends to create the object on first use: the initial state until a call
    /// succeeded, then nothing.
    package var creation: Create? { created.load(ordering: .relaxed) ? nil : Create(initial: initial, persistent: persistent) }

    /// A call succeeded: the object exists.
    package func markCreated() { created.store(true, ordering: .relaxed) }

    /// Removes the object from the servers. A later call through a proxy that
    /// already used it fails with NOT_FOUND; a new proxy creates it afresh.
    @discardableResult
    public func remove() async throws -> Bool {
        try await caller().removeShared(ref)
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
            initial: try c.decode(Value.self, forKey: .initial), persistent: try c.decode(Bool.self, forKey: .persistent), caller: nil)
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
    /// A proxy over `handle`.
    init(handle: SharedObjectHandle)
}

extension SharedProxy {
    /// The object's (type, key).
    public var ref: ObjectRef { handle.ref }

    /// This proxy named `key`, unless it was named already: what `@SharedKey` does.
    public func keyed(_ key: String) -> Self { Self(handle: handle.keyed(key)) }

    /// Removes the object from the servers; answers whether it existed.
    @discardableResult
    public func remove() async throws -> Bool { try await handle.remove() }
}


extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
