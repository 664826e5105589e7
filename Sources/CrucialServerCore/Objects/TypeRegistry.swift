package import CrucialCore

/// The object types a server can create, by type name.
public struct TypeRegistry: Sendable {
    // Untyped `throws`: Swift 6.3's SILGen crashes on a typed-throws closure that
    // calls a generic initialiser here. Factories only ever throw CrucialError.
    package typealias Factory = @Sendable (Value) throws -> any SharedObject

    private var factories: [String: Factory] = [:]
    /// The code of each user type: its fingerprint and where it came from.
    private var codes: [String: TypeCode] = [:]
    /// An empty registry (``builtins`` has the built-in types).
    public init() {}

    /// A registry holding every built-in type.
    public static var builtins: TypeRegistry {
        var r = TypeRegistry()
        for type in builtinTypes { r.register(type) }
        return r
    }

    package mutating func register<T: SharedObject>(_ type: T.Type) {
        factories[T.typeName] = { initial in try T(initial: initial) }
    }

    /// Registers a factory under `typeName` (plugins register their types this way),
    /// replacing the one registered before, if any.
    package mutating func register(typeName: String, factory: @escaping Factory, code: TypeCode? = nil) {
        factories[typeName] = factory
        codes[typeName] = code
    }

    package func factory(for type: String) -> Factory? { factories[type] }

    /// The code registered for a user type (nil for built-in types).
    package func code(of type: String) -> TypeCode? { codes[type] }

    /// Every user type's code, by type name.
    package var userTypes: [String: TypeCode] { codes }

    /// A new object of `type` made from `initial`: UNKNOWN_TYPE with the message
    /// `unknown` makes when no such type is registered, BAD_INITIAL_STATE (or the
    /// factory's own error) when it refuses `initial`.
    func make(_ type: String, initial: Value, unknown: () -> String) throws(CrucialError) -> any SharedObject {
        guard let factory = factories[type] else { throw CrucialError(.unknownType, unknown()) }
        do {
            return try factory(initial)
        } catch {
            throw error as? CrucialError ?? CrucialError(.badInitialState, "\(type): \(error)")
        }
    }

    /// The type names known, sorted.
    public var typeNames: [String] { factories.keys.sorted() }
}

let builtinTypes: [any SharedObject.Type] = [
    AtomicInt.self, AtomicLong.self, AtomicBoolean.self, AtomicDouble.self, AtomicReference.self,
    AtomicByteArray.self, AtomicDoubleArray.self, AtomicMatrix.self,
    SharedList.self, SharedSet.self, SharedMap.self, SharedSortedMap.self,
    CyclicBarrier.self, Semaphore.self, CountDownLatch.self, SharedFuture.self,
]

/// The code a server runs for a user type: what a client's ``Invoke/typeVersion`` is
/// checked against, and what `crucial plugin ls` shows.
package struct TypeCode: Sendable, Equatable {
    /// `SharedType.crucialFingerprint`: a hash of the method table (names, parameter and
    /// result types, kinds). Empty for a type that has none (a hand-written conformance).
    package var fingerprint: String
    /// Where the code came from: a plugin's file, or "linked into this server".
    package var origin: String
    /// The shipped methods, by wire name.
    package var methods: [String]
    /// The build of the code: a plugin's ``Plugin/build``, empty for linked code. Two
    /// members whose builds of a type differ do not apply each other's calls of it.
    package var build: String

    package init(fingerprint: String, origin: String, methods: [String], build: String = "") {
        self.fingerprint = fingerprint
        self.origin = origin
        self.methods = methods.sorted()
        self.build = build
    }

    /// The refusal for a call made by a client built with `theirs`, nil when the versions
    /// agree (or either side has none).
    package func mismatch(_ theirs: String, type: String) -> CrucialError? {
        guard !theirs.isEmpty, !fingerprint.isEmpty, theirs != fingerprint else { return nil }
        return CrucialError(
            .typeVersionMismatch,
            "\(type): the caller was built with version \(theirs) of the type, this server runs version \(fingerprint) "
                + "(\(origin); methods: \(methods.joined(separator: ", "))); load the caller's build on the servers "
                + "(crucial plugin load) or rebuild the caller against the servers' code")
    }
}
