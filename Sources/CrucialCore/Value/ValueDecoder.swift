internal import FoundationEssentials

/// Decodes a ``Value`` back into any `Decodable`.
///
/// Numbers convert between integer and floating-point forms when the value is
/// exactly representable; anything else throws a `DecodingError` naming the path.
public struct ValueDecoder: Sendable {
    /// A decoder.
    public init() {}

    /// Decodes a `T` from `value`.
    public func decode<T: Decodable>(_ type: T.Type, from value: Value) throws -> T {
        if let unpacked = try Self.unpacked(type, from: value, path: []) { return unpacked }
        return try T(from: _ValueDecoder(value: value, codingPath: []))
    }

    /// Fast paths mirroring ``ValueEncoder``'s packed forms.
    static func unpacked<T>(_ type: T.Type, from value: Value, path: [any CodingKey]) throws -> T? {
        if T.self == Value.self { return value as? T }
        if T.self == [Double].self {
            guard let d = value.doublesValue else { throw mismatch(type, value, path) }
            return d as? T
        }
        if T.self == [Int64].self, case .ints(let i) = value { return i as? T }
        if T.self == [Int].self, case .ints(let i) = value { return i.map { Int(truncatingIfNeeded: $0) } as? T }
        if T.self == [UInt8].self {
            guard let b = value.bytesValue else { throw mismatch(type, value, path) }
            return b as? T
        }
        if T.self == Data.self {
            guard let b = value.bytesValue else { throw mismatch(type, value, path) }
            return Data(b) as? T
        }
        return nil
    }

    static func mismatch(_ type: Any.Type, _ value: Value, _ path: [any CodingKey]) -> DecodingError {
        .typeMismatch(type, .init(codingPath: path, debugDescription: "expected \(type), found \(value.kindName)"))
    }
}

final class _ValueDecoder: Decoder {
    let value: Value
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(value: Value, codingPath: [any CodingKey]) {
        self.value = value
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .record(let r) = value else {
            throw ValueDecoder.mismatch([String: Value].self, value, codingPath)
        }
        return KeyedDecodingContainer(KeyedValueDecodingContainer<Key>(record: r, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard let l = value.listValue else { throw ValueDecoder.mismatch([Value].self, value, codingPath) }
        return UnkeyedValueDecodingContainer(items: l, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueDecoding(value: value, codingPath: codingPath)
    }
}

/// Converts a single value to a Swift scalar; shared by every container kind.
private func scalar<T>(_ type: T.Type, _ value: Value, _ path: [any CodingKey]) throws -> T {
    func fail() -> DecodingError { ValueDecoder.mismatch(type, value, path) }
    func integer<I: FixedWidthInteger>(_: I.Type) throws -> I {
        guard let i = value.intValue, let r = I(exactly: i) else {
            if case .int(let raw) = value, I.self == UInt64.self || I.self == UInt.self {
                // UInt64 values above Int64.max are refused by the encoder; anything
                // negative here is a genuine mismatch.
                guard raw >= 0, let r = I(exactly: raw) else { throw fail() }
                return r
            }
            throw fail()
        }
        return r
    }
    let result: Any
    switch type {
    case is Bool.Type:
        guard case .bool(let b) = value else { throw fail() }
        result = b
    case is String.Type:
        guard case .string(let s) = value else { throw fail() }
        result = s
    case is Double.Type:
        guard let d = value.doubleValue else { throw fail() }
        result = d
    case is Float.Type:
        guard let d = value.doubleValue else { throw fail() }
        result = Float(d)
    case is Int.Type: result = try integer(Int.self)
    case is Int8.Type: result = try integer(Int8.self)
    case is Int16.Type: result = try integer(Int16.self)
    case is Int32.Type: result = try integer(Int32.self)
    case is Int64.Type: result = try integer(Int64.self)
    case is UInt.Type: result = try integer(UInt.self)
    case is UInt8.Type: result = try integer(UInt8.self)
    case is UInt16.Type: result = try integer(UInt16.self)
    case is UInt32.Type: result = try integer(UInt32.self)
    case is UInt64.Type: result = try integer(UInt64.self)
    default: throw fail()
    }
    guard let typed = result as? T else { throw fail() }
    return typed
}

private func decodeNested<T: Decodable>(_ type: T.Type, _ value: Value, _ path: [any CodingKey]) throws -> T {
    if let unpacked = try ValueDecoder.unpacked(type, from: value, path: path) { return unpacked }
    return try T(from: _ValueDecoder(value: value, codingPath: path))
}

struct KeyedValueDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let record: [String: Value]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { record.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { record[key.stringValue] != nil }

    private func value(_ key: Key) throws -> Value {
        guard let v = record[key.stringValue] else {
            throw DecodingError.keyNotFound(
                key, .init(codingPath: codingPath, debugDescription: "no value for key \"\(key.stringValue)\""))
        }
        return v
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        if case .null = try value(key) { return true }
        return false
    }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try scalar(type, value(key), codingPath + [key]) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try scalar(type, value(key), codingPath + [key]) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decodeNested(type, value(key), codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        try _ValueDecoder(value: value(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try _ValueDecoder(value: value(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        _ValueDecoder(value: record["super"] ?? .null, codingPath: codingPath + [CodingKeyString("super")])
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        _ValueDecoder(value: record[key.stringValue] ?? .null, codingPath: codingPath + [key])
    }
}

struct UnkeyedValueDecodingContainer: UnkeyedDecodingContainer {
    let items: [Value]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(items: [Value], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private var path: [any CodingKey] { codingPath + [CodingKeyString(intValue: currentIndex) ?? CodingKeyString("?")] }

    private mutating func next<T>(_ type: T.Type) throws -> Value {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                type, .init(codingPath: path, debugDescription: "unkeyed container is at its end (\(items.count) items)"))
        }
        defer { currentIndex += 1 }
        return items[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { return false }
        if case .null = items[currentIndex] {
            currentIndex += 1
            return true
        }
        return false
    }

    private mutating func scalarNext<T>(_ type: T.Type) throws -> T {
        let p = path
        return try scalar(type, next(type), p)
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try scalarNext(type) }
    mutating func decode(_ type: String.Type) throws -> String { try scalarNext(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try scalarNext(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try scalarNext(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try scalarNext(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try scalarNext(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try scalarNext(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try scalarNext(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try scalarNext(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try scalarNext(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try scalarNext(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try scalarNext(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try scalarNext(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try scalarNext(type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let p = path
        return try decodeNested(type, next(type), p)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        let p = path
        return try _ValueDecoder(value: next(type), codingPath: p).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let p = path
        return try _ValueDecoder(value: next([Value].self), codingPath: p).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let p = path
        return _ValueDecoder(value: try next(Value.self), codingPath: p)
    }
}

struct SingleValueDecoding: SingleValueDecodingContainer {
    let value: Value
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool {
        if case .null = value { return true }
        return false
    }
    func decode(_ type: Bool.Type) throws -> Bool { try scalar(type, value, codingPath) }
    func decode(_ type: String.Type) throws -> String { try scalar(type, value, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try scalar(type, value, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { try scalar(type, value, codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try scalar(type, value, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try scalar(type, value, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try scalar(type, value, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try scalar(type, value, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try scalar(type, value, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try scalar(type, value, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try scalar(type, value, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try scalar(type, value, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try scalar(type, value, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try scalar(type, value, codingPath) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeNested(type, value, codingPath) }
}
