/// The methods of `AtomicInt` and `AtomicLong` (those of `java.util.concurrent.atomic.AtomicLong`).
/// Arithmetic wraps on overflow, as in Java.
public protocol AtomicIntegerProxy: SharedProxy {
    associatedtype Number: FixedWidthInteger & SignedInteger & Sendable
}

extension AtomicIntegerProxy {
    private func number(_ v: Value) throws -> Number {
        let i = try v.int64()
        guard let n = Number(exactly: i) else {
            throw CrucialError(.decodingFailed, "server value \(i) does not fit in \(Number.self)")
        }
        return n
    }

    private func op(_ method: AtomicIntegerMethod) async throws -> Number { try number(await handle.call(method)) }

    /// The current value.
    public func get() async throws -> Number { try await op(.get) }
    /// Sets the value.
    public func set(_ newValue: Number) async throws { _ = try await handle.call(AtomicIntegerMethod.set(newValue: Int64(newValue))) }
    /// Sets `newValue`; returns the value before.
    public func getAndSet(_ newValue: Number) async throws -> Number { try await op(.getAndSet(newValue: Int64(newValue))) }
    /// Sets `update` if the value is `expect`; answers whether it did.
    public func compareAndSet(_ expect: Number, _ update: Number) async throws -> Bool {
        try await handle.call(AtomicIntegerMethod.compareAndSet(expect: Int64(expect), update: Int64(update))).bool()
    }
    /// Adds `delta`; returns the result.
    @discardableResult
    public func addAndGet(_ delta: Number) async throws -> Number { try await op(.addAndGet(delta: Int64(delta))) }
    /// Adds `delta`; returns the value before.
    @discardableResult
    public func getAndAdd(_ delta: Number) async throws -> Number { try await op(.getAndAdd(delta: Int64(delta))) }
    /// Adds one; returns the result.
    @discardableResult
    public func incrementAndGet() async throws -> Number { try await op(.incrementAndGet) }
    /// Subtracts one; returns the result.
    @discardableResult
    public func decrementAndGet() async throws -> Number { try await op(.decrementAndGet) }
    /// Adds one; returns the value before.
    @discardableResult
    public func getAndIncrement() async throws -> Number { try await op(.getAndIncrement) }
    /// Subtracts one; returns the value before.
    @discardableResult
    public func getAndDecrement() async throws -> Number { try await op(.getAndDecrement) }
    /// Combines `x` into the value on the server ("sum", "max", "min" or "product") and returns the result.
    @discardableResult
    public func accumulateAndGet(_ x: Number, _ op: String) async throws -> Number {
        try await self.op(.accumulateAndGet(x: Int64(x), op: AccumulateOperation(named: op, for: "\(handle.ref.type).accumulateAndGet")))
    }
}

/// A shared 32-bit integer.
///
/// ```swift
/// let hits = AtomicInt("hits")
/// try await hits.incrementAndGet()
/// ```
public struct AtomicInt: AtomicIntegerProxy, Codable {
    /// The integer type of the value.
    public typealias Number = Int32
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A proxy for the object named `key`; `initial` is its value if this call creates it. Persistent objects outlive the application (kept on disk and on `rf` replicas).
    public init(_ key: String = "", initial: Int32 = 0, persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.atomicInt.typeName, key: key, initial: .int(Int64(initial)), persistent: persistent, client: client)
    }
}

/// A shared 64-bit integer: the paper's counter.
///
/// ```swift
/// let counter = AtomicLong("counter", initial: 0)
/// try await counter.addAndGet(inside)
/// ```
public struct AtomicLong: AtomicIntegerProxy, Codable {
    /// The integer type of the value.
    public typealias Number = Int64
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A proxy for the object named `key`; `initial` is its value if this call creates it. Persistent objects outlive the application (kept on disk and on `rf` replicas).
    public init(_ key: String = "", initial: Int64 = 0, persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.atomicLong.typeName, key: key, initial: .int(initial), persistent: persistent, client: client)
    }
}

/// A shared boolean.
public struct AtomicBoolean: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A proxy for the object named `key`; `initial` is its value if this call creates it. Persistent objects outlive the application (kept on disk and on `rf` replicas).
    public init(_ key: String = "", initial: Bool = false, persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.atomicBoolean.typeName, key: key, initial: .bool(initial), persistent: persistent, client: client)
    }

    /// The current value.
    public func get() async throws -> Bool { try await handle.call(AtomicBooleanMethod.get).bool() }
    /// Sets the value.
    public func set(_ newValue: Bool) async throws { _ = try await handle.call(AtomicBooleanMethod.set(newValue: newValue)) }
    /// Sets `newValue`; returns the value before.
    public func getAndSet(_ newValue: Bool) async throws -> Bool { try await handle.call(AtomicBooleanMethod.getAndSet(newValue: newValue)).bool() }
    /// Sets `update` if the value is `expect`; answers whether it did.
    public func compareAndSet(_ expect: Bool, _ update: Bool) async throws -> Bool {
        try await handle.call(AtomicBooleanMethod.compareAndSet(expect: expect, update: update)).bool()
    }
}

/// A shared double; `compareAndSet` compares bit patterns (Guava's `AtomicDouble`).
public struct AtomicDouble: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A proxy for the object named `key`; `initial` is its value if this call creates it. Persistent objects outlive the application (kept on disk and on `rf` replicas).
    public init(_ key: String = "", initial: Double = 0, persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.atomicDouble.typeName, key: key, initial: .double(initial), persistent: persistent, client: client)
    }

    /// The current value.
    public func get() async throws -> Double { try await handle.call(AtomicDoubleMethod.get).double() }
    /// Sets the value.
    public func set(_ newValue: Double) async throws { _ = try await handle.call(AtomicDoubleMethod.set(newValue: newValue)) }
    /// Sets `newValue`; returns the value before.
    public func getAndSet(_ newValue: Double) async throws -> Double {
        try await handle.call(AtomicDoubleMethod.getAndSet(newValue: newValue)).double()
    }
    /// Sets `update` if the value is `expect`; answers whether it did.
    public func compareAndSet(_ expect: Double, _ update: Double) async throws -> Bool {
        try await handle.call(AtomicDoubleMethod.compareAndSet(expect: expect, update: update)).bool()
    }
    /// Adds `delta`; returns the result.
    @discardableResult
    public func addAndGet(_ delta: Double) async throws -> Double { try await handle.call(AtomicDoubleMethod.addAndGet(delta: delta)).double() }
    /// Adds `delta`; returns the value before.
    @discardableResult
    public func getAndAdd(_ delta: Double) async throws -> Double { try await handle.call(AtomicDoubleMethod.getAndAdd(delta: delta)).double() }
}

/// A shared reference to any Codable value; `compareAndSet` compares encoded values.
///
/// ```swift
/// let model = AtomicReference<Model?>("model", initial: nil)
/// try await model.set(trained)
/// ```
public struct AtomicReference<T: Codable & Sendable>: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// Throws if `initial` cannot be encoded.
    public init(_ key: String = "", initial: T, persistent: Bool = false, client: CrucialClient = .shared) throws {
        handle = SharedObjectHandle(type: BuiltinType.atomicReference.typeName, key: key, initial: try encodeArgument(initial), persistent: persistent, client: client)
    }

    /// The current value.
    public func get() async throws -> T { try await handle.call(AtomicReferenceMethod.get).decode() }
    /// Sets the value.
    public func set(_ newValue: T) async throws { _ = try await handle.call(AtomicReferenceMethod.set(newValue: encodeArgument(newValue))) }
    /// Sets `newValue`; returns the value before.
    public func getAndSet(_ newValue: T) async throws -> T { try await handle.call(AtomicReferenceMethod.getAndSet(newValue: encodeArgument(newValue))).decode() }
    /// Sets `update` if the value is `expect`; answers whether it did.
    public func compareAndSet(_ expect: T, _ update: T) async throws -> Bool {
        try await handle.call(AtomicReferenceMethod.compareAndSet(expect: encodeArgument(expect), update: encodeArgument(update))).bool()
    }
}
