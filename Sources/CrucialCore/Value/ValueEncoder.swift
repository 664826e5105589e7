internal import FoundationEssentials

/// Encodes any `Encodable` into a ``Value``.
///
/// Structs and classes become records, arrays become lists, and `[Double]`,
/// `[Int64]`/`[Int]`, `[UInt8]` and `Data` take their packed forms.
///
/// ```swift
/// let v = try ValueEncoder().encode(Point(x: 1, y: 2))   // .record(["x": 1.0, "y": 2.0])
/// ```
public struct ValueEncoder: Sendable {
    /// An encoder.
    public init() {}

    /// Encodes `value`; throws `EncodingError` for values that cannot be represented
    /// (for example an `UInt64` above `Int64.max`).
    public func encode<T: Encodable>(_ value: T) throws -> Value {
        if let packed = Self.packed(value) { return packed }
        let encoder = _ValueEncoder(codingPath: [])
        try value.encode(to: encoder)
        return encoder.storage.materialize()
    }

    /// The packed form of well-known homogeneous arrays, if `value` is one.
    static func packed(_ value: some Encodable) -> Value? {
        switch value {
        case let v as Value: return v
        case let a as [Double]: return .doubles(a)
        case let a as [Int64]: return .ints(a)
        case let a as [Int]: return .ints(a.map(Int64.init))
        case let a as [UInt8]: return .bytes(a)
        case let d as Data: return .bytes([UInt8](d))
        default: return nil
        }
    }
}

/// The tree an encoder fills in; containers share nodes by reference, as nested
/// containers must stay writable after they have been handed out.
final class EncodingNode {
    enum Content {
        case empty
        case value(Value)
        case record([String: EncodingNode])
        case list([EncodingNode])
    }
    var content: Content = .empty

    func materialize() -> Value {
        switch content {
        case .empty: return .record([:])
        case .value(let v): return v
        case .record(let r): return .record(r.mapValues { $0.materialize() })
        case .list(let l): return .list(l.map { $0.materialize() })
        }
    }
}

final class _ValueEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    let storage: EncodingNode

    init(codingPath: [any CodingKey], storage: EncodingNode = EncodingNode()) {
        self.codingPath = codingPath
        self.storage = storage
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .record = storage.content {} else { storage.content = .record([:]) }
        return KeyedEncodingContainer(KeyedValueEncodingContainer<Key>(node: storage, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .list = storage.content {} else { storage.content = .list([]) }
        return UnkeyedValueEncodingContainer(node: storage, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueEncoding(node: storage, codingPath: codingPath)
    }
}

/// Encodes one value into `node`, used by all three container kinds.
private func encodeValue<T: Encodable>(_ value: T, into node: EncodingNode, path: [any CodingKey]) throws {
    if let packed = ValueEncoder.packed(value) {
        node.content = .value(packed)
        return
    }
    try value.encode(to: _ValueEncoder(codingPath: path, storage: node))
}

private func encodeUInt64(_ v: UInt64, path: [any CodingKey]) throws -> Value {
    guard let i = Int64(exactly: v) else {
        throw EncodingError.invalidValue(
            v, .init(codingPath: path, debugDescription: "UInt64 \(v) exceeds Int64.max and cannot be encoded"))
    }
    return .int(i)
}

struct KeyedValueEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodingNode
    let codingPath: [any CodingKey]

    private func set(_ key: Key, _ value: Value) {
        child(key).content = .value(value)
    }

    private func child(_ key: Key) -> EncodingNode { child(named: key.stringValue) }

    private func child(named name: String) -> EncodingNode {
        guard case .record(var r) = node.content else { return EncodingNode() }
        if let existing = r[name] { return existing }
        let c = EncodingNode()
        node.content = .empty  // drop the enum's reference first, so that the insertion does not copy the dictionary
        r[name] = c
        node.content = .record(r)
        return c
    }

    mutating func encodeNil(forKey key: Key) throws { set(key, .null) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(key, .bool(value)) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(key, .string(value)) }
    mutating func encode(_ value: Double, forKey key: Key) throws { set(key, .double(value)) }
    mutating func encode(_ value: Float, forKey key: Key) throws { set(key, .double(Double(value))) }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(key, .int(Int64(value))) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(key, .int(Int64(value))) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(key, .int(Int64(value))) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(key, .int(Int64(value))) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(key, .int(value)) }
    mutating func encode(_ value: UInt, forKey key: Key) throws {
        set(key, try encodeUInt64(UInt64(value), path: codingPath + [key]))
    }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(key, .int(Int64(value))) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(key, .int(Int64(value))) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(key, .int(Int64(value))) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws {
        set(key, try encodeUInt64(value, path: codingPath + [key]))
    }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try encodeValue(value, into: child(key), path: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let c = child(key)
        c.content = .record([:])
        return KeyedEncodingContainer(KeyedValueEncodingContainer<NestedKey>(node: c, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let c = child(key)
        c.content = .list([])
        return UnkeyedValueEncodingContainer(node: c, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        _ValueEncoder(codingPath: codingPath + [CodingKeyString("super")], storage: child(named: "super"))
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        _ValueEncoder(codingPath: codingPath + [key], storage: child(key))
    }
}

/// A plain string coding key, for positions and `super`.
struct CodingKeyString: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ s: String) { stringValue = s; intValue = nil }
    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

struct UnkeyedValueEncodingContainer: UnkeyedEncodingContainer {
    let node: EncodingNode
    let codingPath: [any CodingKey]

    var count: Int {
        if case .list(let l) = node.content { return l.count }
        return 0
    }

    private func next() -> EncodingNode {
        let c = EncodingNode()
        if case .list(var l) = node.content {
            node.content = .empty  // drop the enum's reference first, so that the append does not copy the array (n appends were n² copies)
            l.append(c)
            node.content = .list(l)
        }
        return c
    }

    private var indexKey: any CodingKey { CodingKeyString(intValue: count) ?? CodingKeyString("?") }

    private func append(_ v: Value) { next().content = .value(v) }

    mutating func encodeNil() throws { append(.null) }
    mutating func encode(_ value: Bool) throws { append(.bool(value)) }
    mutating func encode(_ value: String) throws { append(.string(value)) }
    mutating func encode(_ value: Double) throws { append(.double(value)) }
    mutating func encode(_ value: Float) throws { append(.double(Double(value))) }
    mutating func encode(_ value: Int) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { append(.int(value)) }
    mutating func encode(_ value: UInt) throws { append(try encodeUInt64(UInt64(value), path: codingPath + [indexKey])) }
    mutating func encode(_ value: UInt8) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { append(try encodeUInt64(value, path: codingPath + [indexKey])) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = codingPath + [indexKey]
        try encodeValue(value, into: next(), path: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = codingPath + [indexKey]
        let c = next()
        c.content = .record([:])
        return KeyedEncodingContainer(KeyedValueEncodingContainer<NestedKey>(node: c, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = codingPath + [indexKey]
        let c = next()
        c.content = .list([])
        return UnkeyedValueEncodingContainer(node: c, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let path = codingPath + [indexKey]
        return _ValueEncoder(codingPath: path, storage: next())
    }
}

struct SingleValueEncoding: SingleValueEncodingContainer {
    let node: EncodingNode
    let codingPath: [any CodingKey]

    private func set(_ v: Value) { node.content = .value(v) }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(.bool(value)) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(.double(value)) }
    mutating func encode(_ value: Float) throws { set(.double(Double(value))) }
    mutating func encode(_ value: Int) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { set(.int(value)) }
    mutating func encode(_ value: UInt) throws { set(try encodeUInt64(UInt64(value), path: codingPath)) }
    mutating func encode(_ value: UInt8) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { set(try encodeUInt64(value, path: codingPath)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        try encodeValue(value, into: node, path: codingPath)
    }
}
