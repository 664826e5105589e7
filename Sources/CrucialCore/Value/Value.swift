/// A dynamically typed value: the form every argument, result and object state
/// takes on the wire and inside the server.
///
/// Swift values become `Value`s through ``ValueEncoder`` and come back through
/// ``ValueDecoder``. Homogeneous numeric arrays have packed forms (``doubles``,
/// ``ints``, ``bytes``) so a 1,000-element gradient costs 8 bytes per element.
///
/// `Value` has a total order (``Comparable``) so that servers can keep sorted
/// maps of values they know nothing about: `null < bool < numbers < string <
/// bytes < arrays < list < record`; integers and doubles compare numerically.
public enum Value: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case doubles([Double])
    case ints([Int64])
    case list([Value])
    case record([String: Value])

    /// A short name of the case, for error messages ("int", "string", ...).
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "bool"
        case .int: "int"
        case .double: "double"
        case .string: "string"
        case .bytes: "bytes"
        case .doubles: "double array"
        case .ints: "int array"
        case .list: "list"
        case .record: "record"
        }
    }
}

extension Value {
    /// The integer, if this is an `int` (or a `double` with an exact integer value).
    public var intValue: Int64? {
        switch self {
        case .int(let v): return v
        case .double(let d):
            guard d.rounded() == d, let v = Int64(exactly: d) else { return nil }
            return v
        default: return nil
        }
    }

    /// The number as a `Double`, if this is an `int` or a `double`.
    public var doubleValue: Double? {
        switch self {
        case .int(let v): Double(v)
        case .double(let d): d
        default: nil
        }
    }

    /// The boolean, if this is a `bool`.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The string, if this is a `string`.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The fields, if this is a `record`.
    public var recordValue: [String: Value]? {
        if case .record(let r) = self { return r }
        return nil
    }

    /// The elements as a list of values, for any array-like case.
    public var listValue: [Value]? {
        switch self {
        case .list(let l): l
        case .doubles(let d): d.map(Value.double)
        case .ints(let i): i.map(Value.int)
        case .bytes(let b): b.map { .int(Int64($0)) }
        default: nil
        }
    }

    /// The elements as doubles, for `doubles`, `ints` or a `list` of numbers.
    public var doublesValue: [Double]? {
        switch self {
        case .doubles(let d): return d
        case .ints(let i): return i.map(Double.init)
        case .list(let l):
            var out: [Double] = []
            out.reserveCapacity(l.count)
            for v in l {
                guard let d = v.doubleValue else { return nil }
                out.append(d)
            }
            return out
        default: return nil
        }
    }

    /// The elements as bytes, for `bytes` or a list/ints of values in 0...255.
    public var bytesValue: [UInt8]? {
        switch self {
        case .bytes(let b): return b
        case .ints(let i):
            var out: [UInt8] = []
            for v in i {
                guard let b = UInt8(exactly: v) else { return nil }
                out.append(b)
            }
            return out
        case .list(let l):
            var out: [UInt8] = []
            for v in l {
                guard let i = v.intValue, let b = UInt8(exactly: i) else { return nil }
                out.append(b)
            }
            return out
        default: return nil
        }
    }
}

extension Value: Comparable {
    private var rank: Int {
        switch self {
        case .null: 0
        case .bool: 1
        case .int, .double: 2
        case .string: 3
        case .bytes: 4
        case .doubles, .ints: 5
        case .list: 6
        case .record: 7
        }
    }

    /// The order of sorted maps: numbers by value, then strings, bytes, and the other kinds by kind.
    public static func < (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.bool(let a), .bool(let b)): return !a && b
        case (.int(let a), .int(let b)): return a < b
        case (.string(let a), .string(let b)): return a < b
        case (.bytes(let a), .bytes(let b)): return a.lexicographicallyPrecedes(b)
        case (.list(let a), .list(let b)): return a.lexicographicallyPrecedes(b)
        case (.int, .double), (.double, .int), (.double, .double):
            // Exact for integers beyond 2^53 would need more care; such keys are rare
            // and the order stays total because ties fall back to the case rank below.
            guard let a = lhs.doubleValue, let b = rhs.doubleValue else { return false }
            if a != b { return a < b }
            if case .int = lhs, case .double = rhs { return true }
            return false
        case (.doubles, _), (.ints, _):
            if lhs.rank == rhs.rank, let a = lhs.listValue, let b = rhs.listValue {
                return a.lexicographicallyPrecedes(b)
            }
            return lhs.rank < rhs.rank
        case (.record(let a), .record(let b)):
            let ka = a.keys.sorted(), kb = b.keys.sorted()
            if ka != kb { return ka.lexicographicallyPrecedes(kb) }
            for k in ka {
                if let x = a[k], let y = b[k], x != y { return x < y }
            }
            return false
        default:
            return lhs.rank < rhs.rank
        }
    }
}

extension Value: CustomStringConvertible {
    /// A short rendering for messages and logs (long bytes and arrays summarised).
    public var description: String {
        switch self {
        case .null: return "nil"
        case .bool(let b): return String(b)
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return String(reflecting: s)
        case .bytes(let b): return "<\(b.count) bytes>"
        case .doubles(let d): return d.description
        case .ints(let i): return i.description
        case .list(let l): return "[" + l.map(\.description).joined(separator: ", ") + "]"
        case .record(let r):
            return "{" + r.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

extension Value: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral, ExpressibleByArrayLiteral
{
    /// `.int`.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// `.double`.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// `.string`.
    public init(stringLiteral value: String) { self = .string(value) }
    /// `.bool`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// `.null`.
    public init(nilLiteral: ()) { self = .null }
    /// `.list`.
    public init(arrayLiteral elements: Value...) { self = .list(elements) }
}

/// `Value` passes through ``ValueEncoder``/``ValueDecoder`` unchanged; other coders
/// (JSON, say) see its natural shape: numbers, strings, arrays and objects.
extension Value: Codable {
    /// Decodes a value from any decoder (JSON, for invocation payloads).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let l = try? c.decode([Value].self) {
            self = .list(l)
        } else {
            self = .record(try c.decode([String: Value].self))
        }
    }

    /// Encodes the value into any encoder.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .bytes(let b): try c.encode(b)
        case .doubles(let d): try c.encode(d)
        case .ints(let i): try c.encode(i)
        case .list(let l): try c.encode(l)
        case .record(let r): try c.encode(r)
        }
    }
}

extension Value {
    /// Roughly the bytes this value takes in memory: what a server counts against its
    /// state-memory limit. Walks the whole value.
    public var estimatedBytes: Int {
        switch self {
        case .null, .bool, .int, .double: 16
        case .string(let s): 32 + s.utf8.count
        case .bytes(let b): 32 + b.count
        case .doubles(let d): 32 + 8 * d.count
        case .ints(let i): 32 + 8 * i.count
        case .list(let l): l.reduce(32) { $0 + $1.estimatedBytes }
        case .record(let r): r.reduce(48) { $0 + 32 + $1.key.utf8.count + $1.value.estimatedBytes }
        }
    }
}
