/// A shared fixed-length byte array (wrapping arithmetic).
public struct AtomicByteArray: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// An array of `length` zero bytes.
    public init(_ key: String = "", length: Int, persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.atomicByteArray.typeName, key: key, initial: .int(Int64(length)), persistent: persistent, client: client)
    }

    /// An array holding `initial`.
    public init(_ key: String = "", initial: [UInt8], persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.atomicByteArray.typeName, key: key, initial: .bytes(initial), persistent: persistent, client: client)
    }

    private func byte(_ v: Value) throws -> UInt8 {
        guard let b = UInt8(exactly: try v.int64()) else { throw CrucialError(.decodingFailed, "server sent a non-byte \(v)") }
        return b
    }

    /// The number of elements.
    public func length() async throws -> Int { try await handle.call(ByteArrayMethod.length).int() }
    /// The element at `index`; OUT_OF_RANGE outside `0..<length()`.
    public func get(_ index: Int) async throws -> UInt8 { try byte(await handle.call(ByteArrayMethod.get(index: Index(index)))) }
    /// Sets the element at `index`.
    public func set(_ index: Int, _ value: UInt8) async throws {
        _ = try await handle.call(ByteArrayMethod.set(index: Index(index), value: Int64(value)))
    }
    /// Sets the element at `index`; returns the one before.
    public func getAndSet(_ index: Int, _ value: UInt8) async throws -> UInt8 {
        try byte(await handle.call(ByteArrayMethod.getAndSet(index: Index(index), value: Int64(value))))
    }
    /// Sets the element at `index` to `update` if it is `expect`; answers whether it did.
    public func compareAndSet(_ index: Int, _ expect: UInt8, _ update: UInt8) async throws -> Bool {
        try await handle.call(ByteArrayMethod.compareAndSet(index: Index(index), expect: Int64(expect), update: Int64(update))).bool()
    }
    /// Adds `delta` to the element at `index`; returns the result.
    @discardableResult
    public func addAndGet(_ index: Int, _ delta: Int) async throws -> UInt8 {
        try byte(await handle.call(ByteArrayMethod.addAndGet(index: Index(index), delta: Int64(delta))))
    }
    /// Adds `delta` to the element at `index`; returns the element before.
    @discardableResult
    public func getAndAdd(_ index: Int, _ delta: Int) async throws -> UInt8 {
        try byte(await handle.call(ByteArrayMethod.getAndAdd(index: Index(index), delta: Int64(delta))))
    }
    /// Every element, in one call.
    public func elements() async throws -> [UInt8] { try await handle.call(ByteArrayMethod.getAll).bytes() }
    /// The Java name of ``elements()``.
    @available(*, deprecated, renamed: "elements()")
    public func getAll() async throws -> [UInt8] { try await elements() }
    /// Replaces every element, in one call (the length must match).
    public func setAll(_ bytes: [UInt8]) async throws { _ = try await handle.call(ByteArrayMethod.setAll(bytes: bytes)) }
}

/// A shared fixed-length array of doubles; ``add(_:)`` adds a whole vector on the
/// server, the way cloud threads aggregate gradients.
///
/// ```swift
/// let gradient = AtomicDoubleArray("gradient", length: 100)
/// try await gradient.add(localGradient)
/// ```
public struct AtomicDoubleArray: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// An array of `length` zeros, created on first use.
    public init(_ key: String = "", length: Int, persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.atomicDoubleArray.typeName, key: key, initial: .int(Int64(length)), persistent: persistent, client: client)
    }

    /// A proxy for the object named `key`, created on first use with this initial state.
    public init(_ key: String = "", initial: [Double], persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.atomicDoubleArray.typeName, key: key, initial: .doubles(initial), persistent: persistent, client: client)
    }

    /// The number of elements.
    public func length() async throws -> Int { try await handle.call(DoubleArrayMethod.length).int() }
    /// The element at `index`; OUT_OF_RANGE outside `0..<length()`.
    public func get(_ index: Int) async throws -> Double { try await handle.call(DoubleArrayMethod.get(index: Index(index))).double() }
    /// Sets the element at `index`.
    public func set(_ index: Int, _ value: Double) async throws { _ = try await handle.call(DoubleArrayMethod.set(index: Index(index), value: value)) }
    /// Sets the element at `index`; returns the one before.
    public func getAndSet(_ index: Int, _ value: Double) async throws -> Double {
        try await handle.call(DoubleArrayMethod.getAndSet(index: Index(index), value: value)).double()
    }
    /// Sets the element at `index` to `update` if it is `expect`; answers whether it did.
    public func compareAndSet(_ index: Int, _ expect: Double, _ update: Double) async throws -> Bool {
        try await handle.call(DoubleArrayMethod.compareAndSet(index: Index(index), expect: expect, update: update)).bool()
    }
    /// Adds `delta` to the element at `index`; returns the result.
    @discardableResult
    public func addAndGet(_ index: Int, _ delta: Double) async throws -> Double {
        try await handle.call(DoubleArrayMethod.addAndGet(index: Index(index), delta: delta)).double()
    }
    /// Adds `delta` to the element at `index`; returns the element before.
    @discardableResult
    public func getAndAdd(_ index: Int, _ delta: Double) async throws -> Double {
        try await handle.call(DoubleArrayMethod.getAndAdd(index: Index(index), delta: delta)).double()
    }
    /// Adds `deltas` element-wise (same length as the array).
    public func add(_ deltas: [Double]) async throws { _ = try await handle.call(DoubleArrayMethod.add(deltas: deltas)) }
    /// Adds `deltas` element-wise and returns the new contents.
    public func addAndGetAll(_ deltas: [Double]) async throws -> [Double] {
        try await handle.call(DoubleArrayMethod.addAndGetAll(deltas: deltas)).doubles()
    }
    /// Every element, in one call.
    public func elements() async throws -> [Double] { try await handle.call(DoubleArrayMethod.getAll).doubles() }
    /// The Java name of ``elements()``.
    @available(*, deprecated, renamed: "elements()")
    public func getAll() async throws -> [Double] { try await elements() }
    /// Replaces every element, in one call (the length must match).
    public func setAll(_ values: [Double]) async throws { _ = try await handle.call(DoubleArrayMethod.setAll(values: values)) }
}

/// A shared rows × cols matrix of doubles; ``merge(_:)`` adds a whole matrix on the server.
public struct AtomicMatrix: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A zero matrix.
    public init(_ key: String = "", rows: Int, cols: Int, persistent: Bool = false, client: CrucialClient = .shared) {
        let initial: Value = .record(["rows": .int(Int64(rows)), "cols": .int(Int64(cols))])
        handle = SharedObjectHandle(type: BuiltinType.atomicMatrix.typeName, key: key, initial: initial, persistent: persistent, client: client)
    }

    /// A matrix holding `initial` (every row the same length).
    public init(_ key: String = "", initial: [[Double]], persistent: Bool = false, client: CrucialClient = .shared) {
        let cols = initial.first?.count ?? 0
        let value: Value = .record([
            "rows": .int(Int64(initial.count)), "cols": .int(Int64(cols)), "data": .doubles(initial.flatMap { $0 }),
        ])
        handle = SharedObjectHandle(type: BuiltinType.atomicMatrix.typeName, key: key, initial: value, persistent: persistent, client: client)
    }

    /// (rows, cols).
    public func shape() async throws -> (rows: Int, cols: Int) {
        let v = try await handle.call(MatrixMethod.shape).list()
        guard v.count == 2 else { throw CrucialError(.decodingFailed, "shape must have two elements") }
        return (try v[0].int(), try v[1].int())
    }
    /// The element at (`row`, `col`).
    public func get(_ row: Int, _ col: Int) async throws -> Double {
        try await handle.call(MatrixMethod.get(row: Index(row), col: Index(col))).double()
    }
    /// Sets the element at (`row`, `col`).
    public func set(_ row: Int, _ col: Int, _ value: Double) async throws {
        _ = try await handle.call(MatrixMethod.set(row: Index(row), col: Index(col), value: value))
    }
    /// Adds `delta` to the element at (`row`, `col`); returns the result.
    @discardableResult
    public func addAndGet(_ row: Int, _ col: Int, _ delta: Double) async throws -> Double {
        try await handle.call(MatrixMethod.addAndGet(row: Index(row), col: Index(col), delta: delta)).double()
    }
    /// Row `index`.
    public func row(_ index: Int) async throws -> [Double] { try await handle.call(MatrixMethod.row(index: Index(index))).doubles() }
    /// Replaces row `index`.
    public func setRow(_ index: Int, _ values: [Double]) async throws {
        _ = try await handle.call(MatrixMethod.setRow(index: Index(index), values: values))
    }
    /// Every element, in one call.
    public func elements() async throws -> [[Double]] {
        try await handle.call(MatrixMethod.getAll).list().map { try $0.doubles() }
    }
    /// The Java name of ``elements()``.
    @available(*, deprecated, renamed: "elements()")
    public func getAll() async throws -> [[Double]] { try await elements() }
    /// Adds `matrix` element-wise (same shape).
    public func merge(_ matrix: [[Double]]) async throws { _ = try await handle.call(MatrixMethod.merge(matrix: .list(matrix.map(Value.doubles)))) }
    /// Replaces every element, in one call (the length must match).
    public func setAll(_ matrix: [[Double]]) async throws { _ = try await handle.call(MatrixMethod.setAll(matrix: .list(matrix.map(Value.doubles)))) }
}
