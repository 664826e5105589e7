package import CrucialCore

/// A fixed-length array of bytes with `AtomicIntegerArray`-style methods (wrapping arithmetic).
package final class AtomicByteArray: BuiltinObject {
    package typealias Method = ByteArrayMethod
    package static let builtin = BuiltinType.atomicByteArray
    package static var hasFixedSize: Bool { true }
    var bytes: [UInt8]

    package init(initial: Value) throws(CrucialError) {
        if case .int(let n) = initial {
            guard n >= 0, n <= Int64(CrucialDefaults.maxFrameSize) else {
                throw CrucialError(.badInitialState, "AtomicByteArray length \(n) must be in 0...\(CrucialDefaults.maxFrameSize)")
            }
            bytes = [UInt8](repeating: 0, count: Int(n))
        } else if let b = initial.bytesValue {
            bytes = b
        } else {
            throw CrucialError(.badInitialState, "AtomicByteArray initial state must be bytes or a length, got \(initial.kindName)")
        }
    }

    package func snapshot() -> Value { .bytes(bytes) }

    private func byte(_ raw: Int64, _ parameter: String, _ call: Call) throws(CrucialError) -> UInt8 {
        guard let b = UInt8(exactly: raw) else { throw .badArguments("\(call.name): \(parameter) \(raw) is not a byte (0...255)") }
        return b
    }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        let n = bytes.count
        switch method {
        case .length:
            return .value(.int(Int64(n)))
        case .get(let index):
            return .value(.int(Int64(bytes[try call.position(index, below: n)])))
        case .set(let index, let value):
            let i = try call.position(index, below: n)
            bytes[i] = try byte(value, "value", call)
            return .void
        case .getAndSet(let index, let value):
            let i = try call.position(index, below: n)
            let old = bytes[i]
            bytes[i] = try byte(value, "value", call)
            return .value(.int(Int64(old)))
        case .compareAndSet(let index, let expect, let update):
            let i = try call.position(index, below: n)
            let expect = try byte(expect, "expect", call), update = try byte(update, "update", call)
            guard bytes[i] == expect else { return .value(.bool(false)) }
            bytes[i] = update
            return .value(.bool(true))
        case .addAndGet(let index, let delta), .getAndAdd(let index, let delta):
            let i = try call.position(index, below: n)
            let old = bytes[i]
            bytes[i] = UInt8(truncatingIfNeeded: Int64(old) &+ delta)
            return .value(.int(Int64(method.name == .addAndGet ? bytes[i] : old)))
        case .getAll:
            return .value(.bytes(bytes))
        case .setAll(let b):
            guard b.count == n else {
                throw .badArguments("AtomicByteArray.setAll: got \(b.count) bytes for an array of length \(n)")
            }
            bytes = b
            return .void
        }
    }
}

/// Adds `deltas` into `target` element-wise; shared by arrays and matrices.
func addElementwise(_ target: inout [Double], _ deltas: [Double]) {
    target.withUnsafeMutableBufferPointer { t in
        deltas.withUnsafeBufferPointer { d in
            for i in 0..<min(t.count, d.count) { t[i] += d[i] }
        }
    }
}

/// A fixed-length array of doubles; `add` adds a whole vector element-wise (gradients).
package final class AtomicDoubleArray: BuiltinObject {
    package typealias Method = DoubleArrayMethod
    package static let builtin = BuiltinType.atomicDoubleArray
    package static var hasFixedSize: Bool { true }
    var values: [Double]

    package init(initial: Value) throws(CrucialError) {
        if case .int(let n) = initial {
            guard n >= 0, n <= Int64(CrucialDefaults.maxFrameSize / 8) else {
                throw CrucialError(.badInitialState, "AtomicDoubleArray length \(n) must be in 0...\(CrucialDefaults.maxFrameSize / 8)")
            }
            values = [Double](repeating: 0, count: Int(n))
        } else if let d = initial.doublesValue {
            values = d
        } else {
            throw CrucialError(.badInitialState, "AtomicDoubleArray initial state must be doubles or a length, got \(initial.kindName)")
        }
    }

    package func snapshot() -> Value { .doubles(values) }

    private func vector(_ d: [Double], _ call: Call) throws(CrucialError) -> [Double] {
        guard d.count == values.count else {
            throw .badArguments("AtomicDoubleArray.\(call.method): got \(d.count) values for an array of length \(values.count)")
        }
        return d
    }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        let n = values.count
        switch method {
        case .length:
            return .value(.int(Int64(n)))
        case .get(let index):
            return .value(.double(values[try call.position(index, below: n)]))
        case .set(let index, let value):
            values[try call.position(index, below: n)] = value
            return .void
        case .getAndSet(let index, let value):
            let i = try call.position(index, below: n)
            defer { values[i] = value }
            return .value(.double(values[i]))
        case .compareAndSet(let index, let expect, let update):
            let i = try call.position(index, below: n)
            guard values[i].bitPattern == expect.bitPattern else { return .value(.bool(false)) }
            values[i] = update
            return .value(.bool(true))
        case .addAndGet(let index, let delta), .getAndAdd(let index, let delta):
            let i = try call.position(index, below: n)
            let old = values[i]
            values[i] += delta
            return .value(.double(method.name == .addAndGet ? values[i] : old))
        case .add(let deltas):
            addElementwise(&values, try vector(deltas, call))
            return .void
        case .addAndGetAll(let deltas):
            addElementwise(&values, try vector(deltas, call))
            return .value(.doubles(values))
        case .getAll:
            return .value(.doubles(values))
        case .setAll(let new):
            values = try vector(new, call)
            return .void
        }
    }
}

/// A rows × cols matrix of doubles, row-major; `merge` adds a whole matrix element-wise.
package final class AtomicMatrix: BuiltinObject {
    package typealias Method = MatrixMethod
    package static let builtin = BuiltinType.atomicMatrix
    package static var hasFixedSize: Bool { true }
    let rows: Int
    let cols: Int
    var data: [Double]

    package init(initial: Value) throws(CrucialError) {
        guard case .record(let r) = initial, let rows = r["rows"]?.intValue, let cols = r["cols"]?.intValue else {
            throw CrucialError(.badInitialState, "AtomicMatrix initial state must be a record {rows, cols, data?}")
        }
        guard rows >= 0, cols >= 0, rows.multipliedReportingOverflow(by: cols).partialValue <= Int64(CrucialDefaults.maxFrameSize / 8),
            !rows.multipliedReportingOverflow(by: cols).overflow
        else {
            throw CrucialError(.badInitialState, "AtomicMatrix of \(rows) × \(cols) is negative or too large")
        }
        self.rows = Int(rows)
        self.cols = Int(cols)
        if let d = r["data"], d != .null {
            guard let values = d.doublesValue, values.count == self.rows * self.cols else {
                throw CrucialError(.badInitialState, "AtomicMatrix data must hold rows × cols = \(rows * cols) numbers")
            }
            data = values
        } else {
            data = [Double](repeating: 0, count: self.rows * self.cols)
        }
    }

    package func snapshot() -> Value {
        .record(["rows": .int(Int64(rows)), "cols": .int(Int64(cols)), "data": .doubles(data)])
    }

    package func checkCompatible(initial: Value) throws(CrucialError) {
        guard case .record(let r) = initial, r["rows"]?.intValue == Int64(rows), r["cols"]?.intValue == Int64(cols) else {
            throw CrucialError(.badInitialState, "AtomicMatrix exists with shape \(rows) × \(cols); the proxy asks for a different shape")
        }
    }

    /// A whole matrix argument: nested rows or one flat row-major array.
    private func matrix(_ v: Value, _ call: Call) throws(CrucialError) -> [Double] {
        if let flat = v.doublesValue, flat.count == rows * cols { return flat }
        guard case .list(let rowValues) = v, rowValues.count == rows else {
            throw .badArguments("AtomicMatrix.\(call.method): expected a \(rows) × \(cols) matrix")
        }
        var out: [Double] = []
        out.reserveCapacity(rows * cols)
        for row in rowValues {
            guard let d = row.doublesValue, d.count == cols else {
                throw .badArguments("AtomicMatrix.\(call.method): every row must hold \(cols) numbers")
            }
            out.append(contentsOf: d)
        }
        return out
    }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .shape:
            return .value(.ints([Int64(rows), Int64(cols)]))
        case .get(let row, let col):
            let r = try call.position(row, below: rows), c = try call.position(col, below: cols)
            return .value(.double(data[r * cols + c]))
        case .set(let row, let col, let value):
            let r = try call.position(row, below: rows), c = try call.position(col, below: cols)
            data[r * cols + c] = value
            return .void
        case .addAndGet(let row, let col, let delta):
            let r = try call.position(row, below: rows), c = try call.position(col, below: cols)
            data[r * cols + c] += delta
            return .value(.double(data[r * cols + c]))
        case .row(let index):
            let r = try call.position(index, below: rows)
            return .value(.doubles(Array(data[r * cols..<(r + 1) * cols])))
        case .setRow(let index, let d):
            let r = try call.position(index, below: rows)
            guard d.count == cols else { throw .badArguments("AtomicMatrix.setRow: got \(d.count) values for \(cols) columns") }
            data.replaceSubrange(r * cols..<(r + 1) * cols, with: d)
            return .void
        case .getAll:
            return .value(.list((0..<rows).map { r in .doubles(Array(data[r * cols..<(r + 1) * cols])) }))
        case .merge(let m):
            addElementwise(&data, try matrix(m, call))
            return .void
        case .setAll(let m):
            data = try matrix(m, call)
            return .void
        }
    }
}
