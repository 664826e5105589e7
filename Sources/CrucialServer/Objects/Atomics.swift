package import CrucialCore

/// Shared code of `AtomicInt` and `AtomicLong`: a wrapping integer with the
/// methods of `java.util.concurrent.atomic.AtomicLong`.
package class AtomicInteger<T: FixedWidthInteger & SignedInteger & Sendable> {
    var value: T

    static var methodNames: [String] {
        [
            "get", "set", "getAndSet", "compareAndSet", "addAndGet", "getAndAdd", "incrementAndGet",
            "decrementAndGet", "getAndIncrement", "getAndDecrement", "accumulateAndGet",
        ]
    }

    init(value: T) { self.value = value }

    static func parse(_ typeName: String, _ initial: Value) throws(CrucialError) -> T {
        switch initial {
        case .null: return 0
        case .int(let i):
            guard let v = T(exactly: i) else {
                throw CrucialError(.badInitialState, "\(typeName) initial value \(i) does not fit in \(T.self)")
            }
            return v
        default:
            throw CrucialError(.badInitialState, "\(typeName) initial state must be an int, got \(initial.kindName)")
        }
    }

    private func arg(_ call: Call, _ i: Int, _ name: String) throws(CrucialError) -> T {
        let raw = try call.int(i, name)
        guard let v = T(exactly: raw) else {
            throw .badArguments("\(call.ref.type).\(call.method): \(name) \(raw) does not fit in \(T.self)")
        }
        return v
    }

    func run(_ call: inout Call) throws(CrucialError) -> Response {
        func result(_ v: T) -> Response { .value(.int(Int64(v))) }
        switch call.method {
        case "get":
            try call.arity(0, "get()")
            return result(value)
        case "set":
            try call.arity(1, "set(newValue)")
            value = try arg(call, 0, "newValue")
            return .void
        case "getAndSet":
            try call.arity(1, "getAndSet(newValue)")
            let old = value
            value = try arg(call, 0, "newValue")
            return result(old)
        case "compareAndSet":
            try call.arity(2, "compareAndSet(expect, update)")
            let expect = try arg(call, 0, "expect"), update = try arg(call, 1, "update")
            guard value == expect else { return .value(.bool(false)) }
            value = update
            return .value(.bool(true))
        case "addAndGet":
            try call.arity(1, "addAndGet(delta)")
            value &+= try arg(call, 0, "delta")
            return result(value)
        case "getAndAdd":
            try call.arity(1, "getAndAdd(delta)")
            let old = value
            value &+= try arg(call, 0, "delta")
            return result(old)
        case "incrementAndGet":
            try call.arity(0, "incrementAndGet()")
            value &+= 1
            return result(value)
        case "decrementAndGet":
            try call.arity(0, "decrementAndGet()")
            value &-= 1
            return result(value)
        case "getAndIncrement":
            try call.arity(0, "getAndIncrement()")
            defer { value &+= 1 }
            return result(value)
        case "getAndDecrement":
            try call.arity(0, "getAndDecrement()")
            defer { value &-= 1 }
            return result(value)
        case "accumulateAndGet":
            try call.arity(2, "accumulateAndGet(x, op)")
            let x = try arg(call, 0, "x")
            switch try call.string(1, "op") {
            case "sum": value &+= x
            case "max": value = max(value, x)
            case "min": value = min(value, x)
            case "product": value &*= x
            case let op: throw .badArguments("\(call.ref.type).accumulateAndGet: unknown op \"\(op)\" (sum, max, min, product)")
            }
            return result(value)
        default:
            throw call.unknownMethod(Self.methodNames)
        }
    }
}

/// A 32-bit integer with `java.util.concurrent.atomic.AtomicInteger`'s methods (wrapping arithmetic).
package final class AtomicInt: AtomicInteger<Int32>, SharedObject {
    package static let typeName = "AtomicInt"
    package static var hasFixedSize: Bool { true }
    package required init(initial: Value) throws(CrucialError) { super.init(value: try Self.parse(Self.typeName, initial)) }
    package func invoke(_ call: inout Call) throws(CrucialError) -> Response { try run(&call) }
    package func snapshot() -> Value { .int(Int64(value)) }
}

/// A 64-bit integer with `java.util.concurrent.atomic.AtomicLong`'s methods (wrapping arithmetic).
package final class AtomicLong: AtomicInteger<Int64>, SharedObject {
    package static let typeName = "AtomicLong"
    package static var hasFixedSize: Bool { true }
    package required init(initial: Value) throws(CrucialError) { super.init(value: try Self.parse(Self.typeName, initial)) }
    package func invoke(_ call: inout Call) throws(CrucialError) -> Response { try run(&call) }
    package func snapshot() -> Value { .int(value) }
}

/// A boolean with `AtomicBoolean`'s methods.
package final class AtomicBoolean: SharedObject {
    package static let typeName = "AtomicBoolean"
    package static var hasFixedSize: Bool { true }
    var value: Bool

    package init(initial: Value) throws(CrucialError) {
        switch initial {
        case .null: value = false
        case .bool(let b): value = b
        default: throw CrucialError(.badInitialState, "AtomicBoolean initial state must be a bool, got \(initial.kindName)")
        }
    }

    package func snapshot() -> Value { .bool(value) }

    package func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        switch call.method {
        case "get":
            try call.arity(0, "get()")
            return .value(.bool(value))
        case "set":
            try call.arity(1, "set(newValue)")
            value = try call.bool(0, "newValue")
            return .void
        case "getAndSet":
            try call.arity(1, "getAndSet(newValue)")
            let old = value
            value = try call.bool(0, "newValue")
            return .value(.bool(old))
        case "compareAndSet":
            try call.arity(2, "compareAndSet(expect, update)")
            let expect = try call.bool(0, "expect"), update = try call.bool(1, "update")
            guard value == expect else { return .value(.bool(false)) }
            value = update
            return .value(.bool(true))
        default:
            throw call.unknownMethod(["get", "set", "getAndSet", "compareAndSet"])
        }
    }
}

/// A double with Guava's `AtomicDouble` methods; `compareAndSet` compares bit patterns.
package final class AtomicDouble: SharedObject {
    package static let typeName = "AtomicDouble"
    package static var hasFixedSize: Bool { true }
    var value: Double

    package init(initial: Value) throws(CrucialError) {
        switch initial {
        case .null: value = 0
        default:
            guard let d = initial.doubleValue else {
                throw CrucialError(.badInitialState, "AtomicDouble initial state must be a number, got \(initial.kindName)")
            }
            value = d
        }
    }

    package func snapshot() -> Value { .double(value) }

    package func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        switch call.method {
        case "get":
            try call.arity(0, "get()")
            return .value(.double(value))
        case "set":
            try call.arity(1, "set(newValue)")
            value = try call.double(0, "newValue")
            return .void
        case "getAndSet":
            try call.arity(1, "getAndSet(newValue)")
            let old = value
            value = try call.double(0, "newValue")
            return .value(.double(old))
        case "compareAndSet":
            try call.arity(2, "compareAndSet(expect, update)")
            let expect = try call.double(0, "expect"), update = try call.double(1, "update")
            guard value.bitPattern == expect.bitPattern else { return .value(.bool(false)) }
            value = update
            return .value(.bool(true))
        case "addAndGet":
            try call.arity(1, "addAndGet(delta)")
            value += try call.double(0, "delta")
            return .value(.double(value))
        case "getAndAdd":
            try call.arity(1, "getAndAdd(delta)")
            let old = value
            value += try call.double(0, "delta")
            return .value(.double(old))
        default:
            throw call.unknownMethod(["get", "set", "getAndSet", "compareAndSet", "addAndGet", "getAndAdd"])
        }
    }
}

/// Any Codable value, with `AtomicReference`'s methods; `compareAndSet` compares encoded values.
package final class AtomicReference: SharedObject {
    package static let typeName = "AtomicReference"
    var value: Value

    package init(initial: Value) throws(CrucialError) { value = initial }

    package func snapshot() -> Value { value }

    package func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        switch call.method {
        case "get":
            try call.arity(0, "get()")
            return .value(value)
        case "set":
            try call.arity(1, "set(newValue)")
            value = try call.value(0, "newValue")
            return .void
        case "getAndSet":
            try call.arity(1, "getAndSet(newValue)")
            let old = value
            value = try call.value(0, "newValue")
            return .value(old)
        case "compareAndSet":
            try call.arity(2, "compareAndSet(expect, update)")
            guard value == (try call.value(0, "expect")) else { return .value(.bool(false)) }
            value = try call.value(1, "update")
            return .value(.bool(true))
        default:
            throw call.unknownMethod(["get", "set", "getAndSet", "compareAndSet"])
        }
    }
}
