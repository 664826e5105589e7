// The methods of the built-in value types: atomics and arrays (see ``BuiltinType``). Each case
// is one method, declared here once (``BuiltinMethods``): its doc comment's first words are
// its kind, the rest what it answers.

// MARK: - Atomics

/// `AtomicInt` and `AtomicLong`: `java.util.concurrent.atomic.AtomicLong`'s methods
/// (`AtomicInt` refuses arguments that do not fit in 32 bits).
@BuiltinMethods
package enum AtomicIntegerMethod {
    /// read: the value
    case get
    /// write: null
    case set(newValue: Int64)
    /// write: the value before
    case getAndSet(newValue: Int64)
    /// write: bool: whether the value was `expect` (it is `update` now)
    case compareAndSet(expect: Int64, update: Int64)
    /// write: the value after (arithmetic wraps, as in Java)
    case addAndGet(delta: Int64)
    /// write: the value before
    case getAndAdd(delta: Int64)
    /// write: the value after (arithmetic wraps, as in Java)
    case incrementAndGet
    /// write: the value after (arithmetic wraps, as in Java)
    case decrementAndGet
    /// write: the value before
    case getAndIncrement
    /// write: the value before
    case getAndDecrement
    /// write: the value after combining `x` by `op`
    case accumulateAndGet(x: Int64, op: AccumulateOperation)
}

/// `AtomicBoolean`.
@BuiltinMethods
package enum AtomicBooleanMethod {
    /// read: bool: the value
    case get
    /// write: null
    case set(newValue: Bool)
    /// write: bool: the value before
    case getAndSet(newValue: Bool)
    /// write: bool: whether the value was `expect` (it is `update` now)
    case compareAndSet(expect: Bool, update: Bool)
}

/// `AtomicReference`: any value; `compareAndSet` compares values as docs/PROTOCOL.md's Values say.
@BuiltinMethods
package enum AtomicReferenceMethod {
    /// read: the value
    case get
    /// write: null
    case set(newValue: Value)
    /// write: the value before
    case getAndSet(newValue: Value)
    /// write: bool: whether the value was `expect` (it is `update` now)
    case compareAndSet(expect: Value, update: Value)
}

/// `AtomicDouble` (Guava's).
@BuiltinMethods
package enum AtomicDoubleMethod {
    /// read: double: the value
    case get
    /// write: null
    case set(newValue: Double)
    /// write: double: the value before
    case getAndSet(newValue: Double)
    /// write: bool: whether the value was `expect`, bit for bit (it is `update` now)
    case compareAndSet(expect: Double, update: Double)
    /// write: double: the value after
    case addAndGet(delta: Double)
    /// write: double: the value before
    case getAndAdd(delta: Double)
}

// MARK: - Arrays

/// `AtomicByteArray`.
@BuiltinMethods
package enum ByteArrayMethod {
    /// read: int: the number of bytes
    case length
    /// read: int: the byte at `index` (0 to 255)
    case get(index: Index)
    /// write: null
    case set(index: Index, value: Int64)
    /// write: int: the byte before
    case getAndSet(index: Index, value: Int64)
    /// write: bool: whether the byte was `expect` (it is `update` now)
    case compareAndSet(index: Index, expect: Int64, update: Int64)
    /// write: int: the byte after (adds wrap modulo 256)
    case addAndGet(index: Index, delta: Int64)
    /// write: int: the byte before (adds wrap modulo 256)
    case getAndAdd(index: Index, delta: Int64)
    /// read: bytes: every byte
    case getAll
    /// write: null; `bytes` must have the array's length
    case setAll(bytes: [UInt8])
}

/// `AtomicDoubleArray`: element-wise adds, for gradients.
@BuiltinMethods
package enum DoubleArrayMethod {
    /// read: int: the number of elements
    case length
    /// read: double: the element at `index`
    case get(index: Index)
    /// write: null
    case set(index: Index, value: Double)
    /// write: double: the element before
    case getAndSet(index: Index, value: Double)
    /// write: bool: whether the element was `expect`, bit for bit (it is `update` now)
    case compareAndSet(index: Index, expect: Double, update: Double)
    /// write: double: the element after
    case addAndGet(index: Index, delta: Double)
    /// write: double: the element before
    case getAndAdd(index: Index, delta: Double)
    /// write: null: adds `deltas` (of the array's length) element-wise
    case add(deltas: [Double])
    /// write: doubles: every element after adding `deltas` element-wise
    case addAndGetAll(deltas: [Double])
    /// read: doubles: every element
    case getAll
    /// write: null; `values` must have the array's length
    case setAll(values: [Double])
}

/// `AtomicMatrix`.
@BuiltinMethods
package enum MatrixMethod {
    /// read: ints: [rows, cols]
    case shape
    /// read: double: the element at (`row`, `col`)
    case get(row: Index, col: Index)
    /// write: null
    case set(row: Index, col: Index, value: Double)
    /// write: double: the element after
    case addAndGet(row: Index, col: Index, delta: Double)
    /// read: doubles: row `index`
    case row(index: Index)
    /// write: null; `values` must have the matrix's number of columns
    case setRow(index: Index, values: [Double])
    /// read: list: one doubles value per row
    case getAll
    /// write: null: adds `matrix` element-wise (doubles of rows × cols, row after row, or a list of rows)
    case merge(matrix: Value)
    /// write: null: `matrix`, as for `merge`, replaces every element
    case setAll(matrix: Value)
}
