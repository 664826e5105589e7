public import CrucialShared

// What CrucialClient adds to CrucialShared: it carries the calls of every proxy, its own
// built-in ones and those `@Shared` writes, and proxies made here take a client.

extension CrucialClient: SharedCaller {
    /// A call of a proxy (`SharedCaller`).
    public func callShared(
        _ ref: ObjectRef, _ method: String, _ args: [Value], initial: Value?, persistent: Bool, readOnly: Bool, typeVersion: String
    ) async throws -> Value {
        try await invoke(
            ref, method, args, create: initial.map { Create(initial: $0, persistent: persistent) }, readOnly: readOnly, typeVersion: typeVersion)
    }

    /// A proxy's `remove()` (`SharedCaller`).
    public func removeShared(_ ref: ObjectRef) async throws -> Bool { try await remove(ref) }
}

extension SharedObjectHandle {
    /// A handle on the object (`type`, `key`), made with `initial` on first use; `client`
    /// nil: the one in effect where each call runs (``CrucialClient/shared``).
    public convenience init(type: String, key: String, initial: Value, persistent: Bool = false, client: CrucialClient?) {
        CrucialContext.registerCaller
        self.init(type: type, key: key, initial: initial, persistent: persistent, caller: client)
    }

    /// The client given at creation, else the one in effect where the call runs
    /// (``CrucialClient/shared``: inside a cloud thread, the one reaching the driver's servers).
    public var client: CrucialClient { boundCaller as? CrucialClient ?? .shared }

    /// Calls a built-in method: its wire name, arguments and kind come from its declaration
    /// (``BuiltinMethods``), which the servers decode calls with too.
    func call<M: BuiltinMethods>(_ method: M) async throws -> Value {
        try await call(method.name.rawValue, method.arguments, readOnly: method.kind.isRead)
    }
}

extension SharedObjectProxy {
    /// The object `key`, created from `initial` by the first call if it does not exist yet.
    ///
    /// - Parameters:
    ///   - key: the object's name (its type is the `@Shared` type's).
    ///   - initial: the state a first call creates it with.
    ///   - persistent: whether the object outlives the application (see the README's "Lifetime").
    ///   - client: the client to call through; nil = ``CrucialClient/shared`` where each call runs.
    public init(_ key: String, _ initial: Object, persistent: Bool = false, client: CrucialClient? = nil) {
        CrucialContext.registerCaller
        self.init(key, initial, persistent: persistent, caller: client)
    }

    /// An object named after the property that holds it: declare that property `@SharedKey`.
    public init(_ initial: Object, persistent: Bool = false, client: CrucialClient? = nil) {
        self.init("", initial, persistent: persistent, client: client)
    }
}
