package import CrucialCore

/// The object types a server can create, by type name.
public struct TypeRegistry: Sendable {
    // Untyped `throws`: Swift 6.3's SILGen crashes on a typed-throws closure that
    // calls a generic initialiser here. Factories only ever throw CrucialError.
    package typealias Factory = @Sendable (Value) throws -> any SharedObject

    private var factories: [String: Factory] = [:]
    /// Types whose objects park calls (barriers, semaphores...): a cluster keeps one copy of them.
    private var synchronizers: Set<String> = []

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
        if T.isSynchronizer { synchronizers.insert(T.typeName) }
    }

    /// Whether objects of `type` are synchronizers (kept once in a cluster).
    package func isSynchronizer(_ type: String) -> Bool { synchronizers.contains(type) }

    /// Registers a factory under `typeName` (plugins register their types this way).
    package mutating func register(typeName: String, factory: @escaping Factory) {
        factories[typeName] = factory
    }

    package func factory(for type: String) -> Factory? { factories[type] }

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
