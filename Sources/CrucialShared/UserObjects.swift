public import CrucialCore

/// Makes a type a shared object: its methods run on the DSO servers.
///
/// `@Shared` writes the server-side dispatch table (`SharedType`) and a client proxy,
/// `T.Shared`, with each non-private instance method again, as `async throws`. The type's
/// stored properties are its state and must be `Codable` (conformance is added when
/// missing); methods must be synchronous and not generic, their arguments and results
/// `Codable`. Classes must be `final`. A struct's non-`mutating` methods are reads, and so
/// is any method marked ``ReadOnly()``; every other method is a write.
///
/// A stored `var` declared with a value (`var merges = 0`) takes that value when a state
/// lacks it: an object written by an earlier build of the type decodes into the new one
/// (a plugin load replacing the code of live objects, an old client's initial state).
/// Swift's synthesized `Decodable` alone would fail on the missing key. An Optional
/// property decodes a missing key as nil, whatever its declared value; a type with its
/// own `CodingKeys` or `init(from:)` decodes as it says.
///
/// ```swift
/// @Shared
/// final class GlobalCentroids {
///     var sums: [[Double]]
///     var counts: [Int]
///     init(k: Int, dims: Int) { ... }
///     func update(_ partial: [[Double]], counts: [Int]) { ... }
///     func centroids() -> [[Double]] { ... }
/// }
///
/// let centroids = GlobalCentroids.Shared("centroids", GlobalCentroids(k: 25, dims: 100))
/// try await centroids.update(partial, counts: counts)      // runs on the server
/// ```
///
/// - Parameter name: the type's name on the wire; defaults to the type's own name.
@attached(member, names: named(Shared), named(crucialTypeName), named(crucialMethods), named(crucialFingerprint), named(crucialInvoke), named(crucialStateDefaults))
@attached(extension, conformances: SharedType, Codable)
public macro Shared(name: String? = nil) = #externalMacro(module: "CrucialMacros", type: "SharedMacro")

/// Marks a method of a `@Shared` type as a read: it must not change the object's state.
///
/// Reads are neither written to a persistent object's log nor sent to its replicas, and a
/// client may retry them freely; writes are both. A struct's non-`mutating` methods are
/// reads already (the compiler checks that they change nothing); a class's methods are
/// writes unless marked, since Swift cannot tell whether a class method changes its object:
///
/// ```swift
/// @Shared
/// final class Leaderboard {
///     var scores: [String: Int] = [:]
///     func record(_ player: String, _ score: Int) { scores[player] = max(score, scores[player] ?? 0) }
///     @ReadOnly func top(_ n: Int) -> [String] { ... }   // neither logged nor replicated
/// }
/// ```
///
/// A method marked `@ReadOnly` that changes the state anyway loses that change on a
/// restart or a failover: mark only methods that read.
@attached(peer)
public macro ReadOnly() = #externalMacro(module: "CrucialMacros", type: "ReadOnlyMacro")

/// Names the shared object a stored property holds after the property, as the paper's
/// `@Shared` fields do; `@SharedKey("name")` gives the key explicitly. For user-defined
/// and built-in objects alike: only the attribute is added to the plain program's line.
///
/// ```swift
/// struct Worker: Runnable {
///     @SharedKey var centroids = GlobalCentroids.Shared(GlobalCentroids(k: 25, dims: 100))  // key "centroids"
///     @SharedKey var delta = AtomicLong()                                                   // key "delta"
///     func run() async throws { try await centroids.update(...) }
/// }
/// ```
///
/// The property must be a `var` (the proxy in it never changes); its type is its annotation
/// or the initializer's (`AtomicLong(...)`, `SharedMap<String, Int>(...)`, `T.Shared(...)`).
/// The attribute is not `@Shared` itself because Swift cannot attach a macro that rewrites a
/// property's accessors to a type, and `@Shared` on a type makes it a shared object type.
@attached(accessor, names: named(init), named(get), named(set))
@attached(peer, names: prefixed(_))
public macro SharedKey(_ key: String? = nil) = #externalMacro(module: "CrucialMacros", type: "SharedKeyMacro")

/// The client proxy `@Shared` generates for a type, `T.Shared`.
///
/// A proxy is a reference `(type, key)` plus the initial state that creates the object
/// on first use; it is `Codable`, so a cloud thread can carry it.
public protocol SharedObjectProxy: SharedProxy, Codable {
    associatedtype Object: SharedType
}

extension SharedObjectProxy {
    /// The object `key`, created from `initial` by the first call if it does not exist yet,
    /// reached through `caller` (nil: the one in effect where each call runs). With
    /// `CrucialClient` imported, `init(_:_:persistent:client:)` is the usual way.
    public init(_ key: String, _ initial: Object, persistent: Bool = false, caller: (any SharedCaller)?) {
        let state: Result<Value, CrucialError>
        do { state = .success(try initial.crucialEncode()) } catch { state = .failure(error) }
        self.init(
            handle: SharedObjectHandle(
                ref: ObjectRef(type: Object.crucialTypeName, key: key), initial: state, persistent: persistent, caller: caller))
    }

    /// Calls a shipped method: what the generated proxy methods do.
    public func crucialCall(_ method: String, _ args: [Value], readOnly: Bool) async throws -> Value {
        try await handle.call(method, args, readOnly: readOnly, typeVersion: Object.crucialFingerprint)
    }

    /// Encodes a proxy argument.
    public static func crucialArgument<T: Encodable>(_ value: T, _ name: String) throws -> Value {
        do {
            return try ValueEncoder().encode(value)
        } catch {
            throw CrucialError(.encodingFailed, "\(Object.crucialTypeName): argument \(name) (\(T.self)) does not encode: \(error)")
        }
    }

    /// Decodes a method's result.
    public static func crucialResult<T: Decodable>(_ value: Value, _ method: String, as type: T.Type = T.self) throws -> T {
        do {
            return try ValueDecoder().decode(T.self, from: value)
        } catch {
            throw CrucialError(
                .decodingFailed, "\(Object.crucialTypeName).\(method): the server's \(value.kindName) does not decode as \(T.self): \(error)")
        }
    }
}

// MARK: Codable: a proxy travels as its key, lifetime and initial state.

private enum ProxyCodingKeys: String, CodingKey {
    case type, key, persistent, initial
}

extension SharedObjectProxy {
    /// Encodes the proxy as its handle.
    public func encode(to encoder: any Encoder) throws {
        if let error = handle.initialError { throw error }
        var c = encoder.container(keyedBy: ProxyCodingKeys.self)
        try c.encode(handle.ref.type, forKey: .type)
        try c.encode(handle.ref.key, forKey: .key)
        try c.encode(handle.persistent, forKey: .persistent)
        try c.encode(try ValueDecoder().decode(Object.self, from: handle.initial), forKey: .initial)
    }

    /// Decodes a proxy sent inside a cloud thread.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: ProxyCodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        guard type == Object.crucialTypeName else {
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: c, debugDescription: "a proxy of \(type) cannot decode as \(Object.crucialTypeName).Shared")
        }
        let initial = try c.decode(Object.self, forKey: .initial)
        self.init(
            try c.decode(String.self, forKey: .key), initial, persistent: try c.decode(Bool.self, forKey: .persistent), caller: nil)
    }
}
