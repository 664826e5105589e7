package import CrucialCore

/// Shared code of `AtomicInt` and `AtomicLong`: a wrapping integer with the
/// methods of `java.util.concurrent.atomic.AtomicLong`.
package class AtomicInteger<T: FixedWidthInteger & SignedInteger & Sendable> {
    var value: T

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

    /// `raw` as a `T`, or BAD_ARGUMENTS naming `parameter` (an `AtomicInt` takes 32 bits).
    private func fit(_ raw: Int64, _ parameter: String, _ call: Call) throws(CrucialError) -> T {
        guard let v = T(exactly: raw) else { throw .badArguments("\(call.name): \(parameter) \(raw) does not fit in \(T.self)") }
        return v
    }

    package func run(_ method: AtomicIntegerMethod, _ call: inout Call) throws(CrucialError) -> Response {
        func result(_ v: T) -> Response { .value(.int(Int64(v))) }
        switch method {
        case .get:
            return result(value)
        case .set(let newValue):
            value = try fit(newValue, "newValue", call)
            return .void
        case .getAndSet(let newValue):
            let old = value
            value = try fit(newValue, "newValue", call)
            return result(old)
        case .compareAndSet(let expect, let update):
            let expect = try fit(expect, "expect", call), update = try fit(update, "update", call)
            guard value == expect else { return .value(.bool(false)) }
            value = update
            return .value(.bool(true))
        case .addAndGet(let delta):
            value &+= try fit(delta, "delta", call)
            return result(value)
        case .getAndAdd(let delta):
            let old = value
            value &+= try fit(delta, "delta", call)
            return result(old)
        case .incrementAndGet:
            value &+= 1
            return result(value)
        case .decrementAndGet:
            value &-= 1
            return result(value)
        case .getAndIncrement:
            defer { value &+= 1 }
            return result(value)
        case .getAndDecrement:
            defer { value &-= 1 }
            return result(value)
        case .accumulateAndGet(let x, let op):
            let x = try fit(x, "x", call)
            switch op {
            case .sum: value &+= x
            case .max: value = max(value, x)
            case .min: value = min(value, x)
            case .product: value &*= x
            }
            return result(value)
        }
    }
}

/// A 32-bit integer with `java.util.concurrent.atomic.AtomicInteger`'s methods (wrapping arithmetic).
package final class AtomicInt: AtomicInteger<Int32>, BuiltinObject {
    package typealias Method = AtomicIntegerMethod
    package static let builtin = BuiltinType.atomicInt
    package static var hasFixedSize: Bool { true }
    package required init(initial: Value) throws(CrucialError) { super.init(value: try Self.parse(Self.builtin.typeName, initial)) }
    package func snapshot() -> Value { .int(Int64(value)) }
}

/// A 64-bit integer with `java.util.concurrent.atomic.AtomicLong`'s methods (wrapping arithmetic).
package final class AtomicLong: AtomicInteger<Int64>, BuiltinObject {
    package typealias Method = AtomicIntegerMethod
    package static let builtin = BuiltinType.atomicLong
    package static var hasFixedSize: Bool { true }
    package required init(initial: Value) throws(CrucialError) { super.init(value: try Self.parse(Self.builtin.typeName, initial)) }
    package func snapshot() -> Value { .int(value) }
}

/// A boolean with `AtomicBoolean`'s methods.
package final class AtomicBoolean: BuiltinObject {
    package typealias Method = AtomicBooleanMethod
    package static let builtin = BuiltinType.atomicBoolean
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

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .get:
            return .value(.bool(value))
        case .set(let newValue):
            value = newValue
            return .void
        case .getAndSet(let newValue):
            defer { value = newValue }
            return .value(.bool(value))
        case .compareAndSet(let expect, let update):
            guard value == expect else { return .value(.bool(false)) }
            value = update
            return .value(.bool(true))
        }
    }
}

/// A double with Guava's `AtomicDouble` methods; `compareAndSet` compares bit patterns.
package final class AtomicDouble: BuiltinObject {
    package typealias Method = AtomicDoubleMethod
    package static let builtin = BuiltinType.atomicDouble
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

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .get:
            return .value(.double(value))
        case .set(let newValue):
            value = newValue
            return .void
        case .getAndSet(let newValue):
            defer { value = newValue }
            return .value(.double(value))
        case .compareAndSet(let expect, let update):
            guard value.bitPattern == expect.bitPattern else { return .value(.bool(false)) }
            value = update
            return .value(.bool(true))
        case .addAndGet(let delta):
            value += delta
            return .value(.double(value))
        case .getAndAdd(let delta):
            defer { value += delta }
            return .value(.double(value))
        }
    }
}

/// Any Codable value, with `AtomicReference`'s methods; `compareAndSet` compares encoded values.
package final class AtomicReference: BuiltinObject {
    package typealias Method = AtomicReferenceMethod
    package static let builtin = BuiltinType.atomicReference
    var value: Value

    package init(initial: Value) throws(CrucialError) { value = initial }

    package func snapshot() -> Value { value }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .get:
            return .value(value)
        case .set(let newValue):
            value = newValue
            return .void
        case .getAndSet(let newValue):
            defer { value = newValue }
            return .value(value)
        case .compareAndSet(let expect, let update):
            guard value == expect else { return .value(.bool(false)) }
            value = update
            return .value(.bool(true))
        }
    }
}
