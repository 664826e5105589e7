/// A user-defined type whose methods run on the DSO servers.
///
/// Do not conform by hand: mark the type `@Shared` (from `CrucialClient`), which writes
/// the dispatch table below and a client proxy, `T.Shared`, with the same methods as
/// `async throws`:
///
/// ```swift
/// @Shared
/// final class GlobalCentroids {
///     var sums: [[Double]]
///     var counts: [Int]
///     init(k: Int, dims: Int) { ... }
///     func update(_ partial: [[Double]], counts: [Int]) { ... }   // runs on the server
/// }
/// let centroids = GlobalCentroids.Shared("centroids", GlobalCentroids(k: 25, dims: 100))
/// try await centroids.update(partial, counts: counts)
/// ```
///
/// The object's state is its `Codable` form; arguments and results travel as ``Value``s.
/// Servers learn the type by linking it (`TypeRegistry.register(shared:)`) or from a plugin.
public protocol SharedType: Codable, SendableMetatype {
    /// The name clients and servers agree on (``ObjectRef/type``): the type's own name
    /// unless `@Shared(name:)` gives another.
    static var crucialTypeName: String { get }

    /// Every shipped method by wire name, and whether it only reads the state (a
    /// non-`mutating` method of a struct). Reads are not logged by persistent objects.
    static var crucialMethods: [String: MethodKind] { get }

    /// Runs one call on `object`: decodes the arguments, calls the method, encodes its result.
    static func crucialInvoke(_ object: inout Self, _ call: SharedCall) throws -> Value

    /// The type's version as clients and servers compare it: a hash (16 hex digits) of
    /// its method table, each method's name, parameter and result types and kind. A client
    /// sends it with every call; a server running other code for the type refuses the call
    /// (`TYPE_VERSION_MISMATCH`) rather than run a method of another shape. Empty: not checked.
    static var crucialFingerprint: String { get }

    /// The declared value of each stored property that has one (`var merges = 0`), by
    /// coding key, encoded: a state without the key (written before the property was
    /// added) decodes with it. Swift's synthesized `Decodable` ignores such a value and
    /// fails on a missing key; ``crucialDecode(_:)`` fills it in first. An Optional's entry
    /// answers nil: its missing key is a nil. `@Shared` writes this unless the type decodes
    /// itself (its own `CodingKeys` or `init(from:)`).
    static var crucialStateDefaults: [String: @Sendable () throws -> Value?] { get }
}

extension SharedType {
    /// No fingerprint: calls are not checked (`@Shared` writes one).
    public static var crucialFingerprint: String { "" }

    /// No declared values: a missing key fails to decode.
    public static var crucialStateDefaults: [String: @Sendable () throws -> Value?] { [:] }
}

/// What `@Shared`'s ``SharedType/crucialStateDefaults`` is made of.
public enum SharedStateDefault {
    /// A declared value, encoded.
    public static func value<T: Encodable>(_ value: T) throws -> Value? { try ValueEncoder().encode(value) }

    /// An Optional's declared value is not filled in: the synthesized encoding leaves a nil
    /// out, so a missing key is a nil, not the declared value.
    public static func value<T: Encodable>(_ value: T?) throws -> Value? { nil }
}


/// One call of a user-defined method as its dispatch table sees it.
public struct SharedCall: Sendable {
    /// The type's wire name.
    public let typeName: String
    /// The method called.
    public let method: String
    /// The arguments, encoded.
    public let args: [Value]

    /// One call of `method` on a `typeName` object.
    public init(typeName: String, method: String, args: [Value]) {
        self.typeName = typeName
        self.method = method
        self.args = args
    }

    /// Checks the number of arguments.
    public func arity(_ n: Int) throws(CrucialError) {
        guard args.count == n else {
            throw .badArguments("\(typeName).\(method) takes \(n) argument(s), got \(args.count)")
        }
    }

    /// Argument `i`, decoded as `T`.
    public func argument<T: Decodable>(_ i: Int, _ name: String, as type: T.Type = T.self) throws(CrucialError) -> T {
        let arg = try value(i, name)
        do {
            return try ValueDecoder().decode(T.self, from: arg)
        } catch {
            throw .badArguments(
                "\(typeName).\(method): argument \(i + 1) (\(name)) is not a \(T.self): got \(args[i].kindName); \(error)")
        }
    }

    /// A method's result as a ``Value``.
    public func result<T: Encodable>(_ value: T) throws(CrucialError) -> Value {
        do {
            return try ValueEncoder().encode(value)
        } catch {
            throw CrucialError(.internal, "\(typeName).\(method): its result \(T.self) does not encode: \(error)")
        }
    }

    /// The error for a method the type does not ship.
    public func unknownMethod(_ known: some Sequence<String>) -> CrucialError {
        CrucialError(
            .unknownMethod, "\(typeName) has no shipped method \"\(method)\"; it has: \(known.sorted().joined(separator: ", "))")
    }
}

extension SharedType {
    /// Decodes an object from its state.
    public static func crucialDecode(_ state: Value) throws(CrucialError) -> Self {
        do {
            return try ValueDecoder().decode(Self.self, from: withDeclaredValues(state))
        } catch {
            throw CrucialError(.badInitialState, "the state sent for \(crucialTypeName) does not decode: \(error)")
        }
    }

    /// `state` with the declared value of each defaulted property it lacks (see
    /// ``crucialStateDefaults``).
    static func withDeclaredValues(_ state: Value) throws -> Value {
        guard case .record(var fields) = state else { return state }
        let defaults = crucialStateDefaults
        guard !defaults.isEmpty, defaults.keys.contains(where: { fields[$0] == nil }) else { return state }
        for (key, value) in defaults where fields[key] == nil {
            if let encoded = try value() { fields[key] = encoded }
        }
        return .record(fields)
    }

    /// The object's state.
    public func crucialEncode() throws(CrucialError) -> Value {
        do {
            return try ValueEncoder().encode(self)
        } catch {
            throw CrucialError(.internal, "the state of \(Self.crucialTypeName) does not encode: \(error)")
        }
    }

    /// Runs a call and turns an error the user's method threw into ``CrucialError/Code/userError``
    /// with its type and message (``CrucialError``s pass unchanged).
    public static func crucialRun(_ object: inout Self, _ call: SharedCall) throws(CrucialError) -> Value {
        do {
            return try crucialInvoke(&object, call)
        } catch let error as CrucialError {
            throw error
        } catch {
            throw CrucialError(.userError, "\(crucialTypeName).\(call.method) threw \(String(reflecting: type(of: error))): \(error)")
        }
    }
}
