// The methods of the built-in value types: atomics and arrays (see ``BuiltinType``).

// MARK: - Atomics

/// `AtomicInt` and `AtomicLong`: `java.util.concurrent.atomic.AtomicLong`'s methods.
package enum AtomicIntegerMethod: String, BuiltinMethod {
    case get, set, getAndSet, compareAndSet, addAndGet, getAndAdd
    case incrementAndGet, decrementAndGet, getAndIncrement, getAndDecrement, accumulateAndGet

    package var signature: MethodSignature {
        switch self {
        case .get: .read()
        case .set, .getAndSet: .write("newValue")
        case .compareAndSet: .write("expect", "update")
        case .addAndGet, .getAndAdd: .write("delta")
        case .incrementAndGet, .decrementAndGet, .getAndIncrement, .getAndDecrement: .write()
        case .accumulateAndGet: .write("x", "op")
        }
    }

    package var result: String {
        switch self {
        case .get: "the value"
        case .set: "null"
        case .getAndSet, .getAndAdd, .getAndIncrement, .getAndDecrement: "the value before"
        case .compareAndSet: "bool: whether the value was `expect` (it is `update` now)"
        case .addAndGet, .incrementAndGet, .decrementAndGet: "the value after (arithmetic wraps, as in Java)"
        case .accumulateAndGet: "the value after combining `x` by `op`: \"sum\", \"max\", \"min\" or \"product\""
        }
    }
}

/// `AtomicBoolean` and `AtomicReference`.
package enum AtomicValueMethod: String, BuiltinMethod {
    case get, set, getAndSet, compareAndSet

    /// The integers' signature of the same method: one table for the methods they share.
    package var signature: MethodSignature { AtomicIntegerMethod(rawValue: rawValue)!.signature }

    package var result: String {
        switch self {
        case .get: "the value"
        case .set: "null"
        case .getAndSet: "the value before"
        case .compareAndSet: "bool: whether the value was `expect` (it is `update` now)"
        }
    }
}

/// `AtomicDouble` (Guava's).
package enum AtomicDoubleMethod: String, BuiltinMethod {
    case get, set, getAndSet, compareAndSet, addAndGet, getAndAdd

    /// The integers' signature of the same method: one table for the methods they share.
    package var signature: MethodSignature { AtomicIntegerMethod(rawValue: rawValue)!.signature }

    package var result: String {
        switch self {
        case .get: "double: the value"
        case .set: "null"
        case .getAndSet, .getAndAdd: "double: the value before"
        case .compareAndSet: "bool: whether the value was `expect`, bit for bit (it is `update` now)"
        case .addAndGet: "double: the value after"
        }
    }
}

// MARK: - Arrays

/// `AtomicByteArray`.
package enum ByteArrayMethod: String, BuiltinMethod {
    case length, get, set, getAndSet, compareAndSet, addAndGet, getAndAdd, getAll, setAll

    package var signature: MethodSignature {
        switch self {
        case .length, .getAll: .read()
        case .get: .read("index")
        case .set, .getAndSet: .write("index", "value")
        case .compareAndSet: .write("index", "expect", "update")
        case .addAndGet, .getAndAdd: .write("index", "delta")
        case .setAll: .write("bytes")
        }
    }

    package var result: String {
        switch self {
        case .length: "int: the number of bytes"
        case .get: "int: the byte at `index` (0 to 255)"
        case .set: "null"
        case .getAndSet, .getAndAdd: "int: the byte before"
        case .compareAndSet: "bool: whether the byte was `expect` (it is `update` now)"
        case .addAndGet: "int: the byte after (adds wrap modulo 256)"
        case .getAll: "bytes: every byte"
        case .setAll: "null; `bytes` must have the array's length"
        }
    }
}

/// `AtomicDoubleArray`: element-wise adds, for gradients.
package enum DoubleArrayMethod: String, BuiltinMethod {
    case length, get, set, getAndSet, compareAndSet, addAndGet, getAndAdd, add, addAndGetAll, getAll, setAll

    package var signature: MethodSignature {
        switch self {
        case .add, .addAndGetAll: .write("deltas")
        case .setAll: .write("values")
        // The element methods both arrays have: one signature each, the byte array's.
        case .length, .getAll, .get, .set, .getAndSet, .compareAndSet, .addAndGet, .getAndAdd:
            ByteArrayMethod(rawValue: rawValue)!.signature
        }
    }

    package var result: String {
        switch self {
        case .length: "int: the number of elements"
        case .get: "double: the element at `index`"
        case .set: "null"
        case .getAndSet, .getAndAdd: "double: the element before"
        case .compareAndSet: "bool: whether the element was `expect`, bit for bit (it is `update` now)"
        case .addAndGet: "double: the element after"
        case .add: "null: adds `deltas` (doubles of the array's length) element-wise"
        case .addAndGetAll: "doubles: every element after adding `deltas` element-wise"
        case .getAll: "doubles: every element"
        case .setAll: "null; `values` must have the array's length"
        }
    }
}

/// `AtomicMatrix`.
package enum MatrixMethod: String, BuiltinMethod {
    case shape, get, set, addAndGet, row, setRow, getAll, merge, setAll

    package var signature: MethodSignature {
        switch self {
        case .shape, .getAll: .read()
        case .get: .read("row", "col")
        case .set: .write("row", "col", "value")
        case .addAndGet: .write("row", "col", "delta")
        case .row: .read("index")
        case .setRow: .write("index", "values")
        case .merge: .write("matrix")
        case .setAll: .write("matrix")
        }
    }

    package var result: String {
        switch self {
        case .shape: "ints: [rows, cols]"
        case .get: "double: the element at (`row`, `col`)"
        case .set, .setRow: "null"
        case .addAndGet: "double: the element after"
        case .row: "doubles: row `index`"
        case .getAll: "list: one doubles value per row"
        case .merge: "null: adds `matrix` element-wise (doubles of rows × cols, row after row, or a list of rows)"
        case .setAll: "null: `matrix` as for `merge` replaces every element"
        }
    }
}
