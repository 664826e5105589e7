// How a built-in method's arguments travel: each parameter's Swift type says how a client
// puts it on the wire and how a server reads it back, with the errors a client of any
// language gets for a wrong one (docs/PROTOCOL.md, "Built-in types").

/// The arguments of one call as a server reads them: the ``SharedCall`` a user type's dispatch
/// reads too, with typed reads that fail with BAD_ARGUMENTS naming the type, the method, the
/// position and the parameter.
extension SharedCall {
    /// The argument at `index`, of type `T` (the generated decoders call this).
    @inline(__always)
    package func read<T: WireArgument>(_ index: Int, _ parameter: String) throws(CrucialError) -> T {
        try T(from: self, at: index, parameter)
    }

    /// The argument at `index`, as it came.
    package func value(_ index: Int, _ parameter: String) throws(CrucialError) -> Value {
        guard index < args.count else { throw .badArguments("\(typeName).\(method): missing argument \(index + 1) (\(parameter))") }
        return args[index]
    }

    /// The error for an argument that is not `expected`.
    package func mismatch(_ index: Int, _ parameter: String, _ expected: String) -> CrucialError {
        .badArguments("\(typeName).\(method): argument \(index + 1) (\(parameter)) must be \(expected), got \(args[index].kindName) \(args[index])")
    }

    /// `Type.method`, for messages.
    package var name: String { "\(typeName).\(method)" }
}

/// A type a built-in method's parameter may have.
package protocol WireArgument: Sendable {
    /// The argument's form on the wire, for docs/PROTOCOL.md's table ("int", "doubles").
    static var wireName: String { get }
    /// Whether the argument may be left out (with every one after it) or be null.
    static var isOptional: Bool { get }
    /// The argument as a client sends it.
    var wireValue: Value { get }
    /// Reads argument `index` of a call, or fails with BAD_ARGUMENTS naming `parameter`.
    init(from arguments: SharedCall, at index: Int, _ parameter: String) throws(CrucialError)
}

extension WireArgument {
    package static var isOptional: Bool { false }
}

extension Value: WireArgument {
    package static var wireName: String { "any value" }
    package var wireValue: Value { self }
    package init(from arguments: SharedCall, at index: Int, _ parameter: String) throws(CrucialError) {
        self = try arguments.value(index, parameter)
    }
}

/// An argument that is one kind of value (an int, a bool): read by the one shared reader.
package protocol WireScalar: WireArgument {
    /// What the argument must be, for messages ("an int").
    static var expected: String { get }
    /// The argument, if `value` is of this kind.
    init?(wire value: Value)
}

extension WireScalar {
    package init(from arguments: SharedCall, at index: Int, _ parameter: String) throws(CrucialError) {
        guard let x = Self(wire: try arguments.value(index, parameter)) else { throw arguments.mismatch(index, parameter, Self.expected) }
        self = x
    }
}

extension Int64: WireScalar {
    package static var wireName: String { "int" }
    package static var expected: String { "an int" }
    package var wireValue: Value { .int(self) }
    /// Only an `int` (not a double with an integer value).
    package init?(wire value: Value) {
        guard case .int(let x) = value else { return nil }
        self = x
    }
}

extension Double: WireScalar {
    package static var wireName: String { "number" }
    package static var expected: String { "a number" }
    package var wireValue: Value { .double(self) }
    package init?(wire value: Value) {
        guard let d = value.doubleValue else { return nil }
        self = d
    }
}

extension Bool: WireScalar {
    package static var wireName: String { "bool" }
    package static var expected: String { "a bool" }
    package var wireValue: Value { .bool(self) }
    package init?(wire value: Value) {
        guard let b = value.boolValue else { return nil }
        self = b
    }
}

extension String: WireScalar {
    package static var wireName: String { "string" }
    package static var expected: String { "a string" }
    package var wireValue: Value { .string(self) }
    package init?(wire value: Value) {
        guard let s = value.stringValue else { return nil }
        self = s
    }
}

/// An element type whose arrays are an argument type (an array type has one conformance).
package protocol WireArrayElement: Sendable {
    static var arrayWireName: String { get }
    static func arrayValue(_ array: [Self]) -> Value
    static func array(from value: Value) -> [Self]?
    /// What the argument must be, for messages ("bytes").
    static var arrayExpected: String { get }
}

extension UInt8: WireArrayElement {
    package static var arrayWireName: String { "bytes" }
    package static var arrayExpected: String { "bytes" }
    package static func arrayValue(_ array: [UInt8]) -> Value { .bytes(array) }
    package static func array(from value: Value) -> [UInt8]? { value.bytesValue }
}

extension Double: WireArrayElement {
    package static var arrayWireName: String { "doubles" }
    package static var arrayExpected: String { "an array of numbers" }
    package static func arrayValue(_ array: [Double]) -> Value { .doubles(array) }
    package static func array(from value: Value) -> [Double]? { value.doublesValue }
}

extension Value: WireArrayElement {
    package static var arrayWireName: String { "list" }
    package static var arrayExpected: String { "a list" }
    package static func arrayValue(_ array: [Value]) -> Value { .list(array) }
    package static func array(from value: Value) -> [Value]? { value.listValue }
}

extension Array: WireArgument where Element: WireArrayElement {
    package static var wireName: String { Element.arrayWireName }
    package var wireValue: Value { Element.arrayValue(self) }
    package init(from arguments: SharedCall, at index: Int, _ parameter: String) throws(CrucialError) {
        guard let a = Element.array(from: try arguments.value(index, parameter)) else {
            throw arguments.mismatch(index, parameter, Element.arrayExpected)
        }
        self = a
    }
}

extension Optional: WireArgument where Wrapped: WireArgument {
    package static var wireName: String { Wrapped.wireName }
    package static var isOptional: Bool { true }
    package var wireValue: Value { self?.wireValue ?? .null }
    /// Absent or null: nil.
    package init(from arguments: SharedCall, at index: Int, _ parameter: String) throws(CrucialError) {
        guard index < arguments.args.count, arguments.args[index] != .null else {
            self = nil
            return
        }
        self = try Wrapped(from: arguments, at: index, parameter)
    }
}

/// A count (permits, k): an int, not negative.
package struct Count: WireArgument, Hashable {
    package let value: Int
    package init(_ value: Int) { self.value = value }
    package static var wireName: String { "int ≥ 0" }
    package var wireValue: Value { .int(Int64(value)) }
    package init(from arguments: SharedCall, at index: Int, _ parameter: String) throws(CrucialError) {
        let x = try Int64(from: arguments, at: index, parameter)
        guard x >= 0, let n = Int(exactly: x) else {
            throw .badArguments("\(arguments.name): argument \(index + 1) (\(parameter)) must not be negative, got \(x)")
        }
        value = n
    }
}

/// A position in the object (a list's, an array's, a matrix row's): an int the object checks
/// against its size, with OUT_OF_RANGE naming the parameter.
package struct Index: WireArgument, Hashable {
    package let value: Int64
    /// The parameter it came as, for the object's message ("index", "row").
    package let parameter: String

    package init(_ value: Int) {
        self.value = Int64(value)
        parameter = "index"
    }

    package static var wireName: String { "int" }
    package var wireValue: Value { .int(value) }
    package init(from arguments: SharedCall, at index: Int, _ parameter: String) throws(CrucialError) {
        value = try Int64(from: arguments, at: index, parameter)
        self.parameter = parameter
    }

    /// The position, if it is in `0..<count`; OUT_OF_RANGE otherwise (`name`: `Type.method`).
    package func checked(below count: Int, _ name: @autoclosure () -> String) throws(CrucialError) -> Int {
        guard value >= 0, value < count else {
            throw CrucialError(.outOfRange, "\(name()): \(parameter) \(value) is out of range 0..<\(count)")
        }
        return Int(value)
    }
}

/// A bounded wait in milliseconds (optional: absent or null waits for ever).
package struct Millis: WireArgument, Hashable {
    package let milliseconds: Int64

    /// `duration` in whole milliseconds, rounded up so that a short wait is not none.
    package init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        milliseconds = max(0, seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    package var duration: Duration { .milliseconds(milliseconds) }

    package static var wireName: String { "int (ms) ≥ 0" }
    package var wireValue: Value { .int(milliseconds) }
    package init(from arguments: SharedCall, at index: Int, _ parameter: String) throws(CrucialError) {
        let ms = try Int64(from: arguments, at: index, parameter)
        guard ms >= 0 else { throw .badArguments("\(arguments.name): \(parameter) must not be negative, got \(ms)") }
        milliseconds = ms
    }
}

/// A parameter that names one of a fixed set of operations ("sum", "max"): a string.
package protocol WireOperation: WireArgument, RawRepresentable<String>, CaseIterable {}

extension WireOperation {
    /// The strings it may be: `"sum"/"max"` (no `|`: the reference is a Markdown table).
    package static var wireName: String { allCases.map { "\"\($0.rawValue)\"" }.joined(separator: "/") }
    package var wireValue: Value { .string(rawValue) }
    package init(from arguments: SharedCall, at index: Int, _ parameter: String) throws(CrucialError) {
        self = try Self(named: String(from: arguments, at: index, parameter), for: arguments.name, parameter)
    }

    /// The operation called `name`; BAD_ARGUMENTS naming the method (`Type.method`) and the ones there are otherwise.
    package init(named name: String, for method: String, _ parameter: String = "op") throws(CrucialError) {
        guard let op = Self(rawValue: name) else {
            throw .badArguments("\(method): unknown \(parameter) \"\(name)\" (\(Self.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self = op
    }
}

/// How `accumulateAndGet` combines its argument into an integer.
package enum AccumulateOperation: String, WireOperation {
    case sum, max, min, product
}

/// How `SharedMap.merge(_:_:_:)` combines a new value with the existing one, on the server
/// (docs/PROTOCOL.md says how each treats each kind of value).
public enum MergeOperation: String, Sendable, CaseIterable, WireOperation {
    /// Numbers add (int + int stays int); numeric arrays add element-wise.
    case sum
    /// The smaller of the two, in the order of values.
    case min
    /// The larger of the two, in the order of values.
    case max
    /// The new value replaces the old one.
    case replace
    /// Strings, bytes, lists and arrays concatenate.
    case append
}

/// A list of [key, value] pairs (a map's `putAll`, `mergeAll`).
package struct Entries: WireArgument {
    package let pairs: [(key: Value, value: Value)]

    package init(_ pairs: [(key: Value, value: Value)]) { self.pairs = pairs }

    package static var wireName: String { "list of [key, value] pairs" }
    package var wireValue: Value { .list(pairs.map { .list([$0.key, $0.value]) }) }
    package init(from arguments: SharedCall, at index: Int, _ parameter: String) throws(CrucialError) {
        var pairs: [(key: Value, value: Value)] = []
        for pair in try [Value](from: arguments, at: index, parameter) {
            guard case .list(let kv) = pair, kv.count == 2 else {
                throw .badArguments("\(arguments.name): \(parameter) must be [key, value] pairs")
            }
            pairs.append((kv[0], kv[1]))
        }
        self.pairs = pairs
    }
}
