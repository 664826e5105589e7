package import CrucialCore

/// One method call as an object sees it: the method, its arguments with typed
/// accessors that produce precise BAD_ARGUMENTS errors, and the effects to carry out.
package struct Call: Sendable {
    package let ref: ObjectRef
    package let method: String
    package let args: [Value]
    /// The method's kind and parameters, for a built-in type (from ``BuiltinType``'s table):
    /// argument errors name the parameter.
    var signature: MethodSignature?
    /// The caller, to keep if the call parks.
    package let waiter: Waiter
    package var effects = Effects()
    /// The most calls one object may keep parked (the server's `--max-waiters-per-object`).
    package var maxWaiters = Int.max
    /// Requests of the caller's connection already waiting for their answers, and the
    /// most it may have (`--max-in-flight`).
    var connectionWaiting = 0
    var maxConnectionWaiting = Int.max

    package init(ref: ObjectRef, method: String, args: [Value], waiter: Waiter) {
        self.ref = ref
        self.method = method
        self.args = args
        self.waiter = waiter
    }

    private var name: String { "\(ref.type).\(method)" }

    /// Parks the call; with a timeout, the store calls the object's `timeout(_:)` when it expires.
    package mutating func park(timeout: Duration? = nil) -> Response {
        if let timeout { effects.timers.append((waiter.id, timeout)) }
        return .parked
    }

    /// Call before keeping `waiter` when `queued` calls are already parked: refuses the
    /// call with RESOURCE_EXHAUSTED at the server's limits on parked calls per object
    /// and waiting requests per connection (the parked ones are untouched).
    package func admitWaiter(queued: Int) throws(CrucialError) {
        guard connectionWaiting < maxConnectionWaiting else {
            throw CrucialError(
                .resourceExhausted,
                "this connection already has \(connectionWaiting) requests waiting for their answers, this server's limit (--max-in-flight)")
        }
        guard queued < maxWaiters else {
            throw CrucialError(
                .resourceExhausted, "\(ref) already has \(queued) parked calls, this server's limit (--max-waiters-per-object)")
        }
    }

    // MARK: Arguments

    /// Checks the number of arguments against `signature`, and keeps it for the accessors' messages.
    mutating func check(_ signature: MethodSignature) throws(CrucialError) {
        self.signature = signature
        let range = signature.arity
        guard range.contains(args.count) else {
            let expected =
                range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)"
            throw .badArguments("\(ref.type).\(signature.display(method)) takes \(expected) argument(s), got \(args.count)")
        }
    }

    /// The name of parameter `i`, for messages.
    func parameter(_ i: Int) -> String { signature?.parameter(i) ?? "argument \(i + 1)" }

    package func value(_ i: Int) throws(CrucialError) -> Value {
        guard i < args.count else { throw .badArguments("\(name): missing argument \(i + 1) (\(parameter(i)))") }
        return args[i]
    }

    private func mismatch(_ i: Int, _ expected: String) -> CrucialError {
        .badArguments("\(name): argument \(i + 1) (\(parameter(i))) must be \(expected), got \(args[i].kindName) \(args[i])")
    }

    package func int(_ i: Int) throws(CrucialError) -> Int64 {
        let v = try value(i)
        guard case .int(let x) = v else { throw mismatch(i, "an int") }
        return x
    }

    /// A non-negative count (permits, k, ...).
    package func count(_ i: Int) throws(CrucialError) -> Int {
        let x = try int(i)
        guard x >= 0, let n = Int(exactly: x) else {
            throw .badArguments("\(name): argument \(i + 1) (\(parameter(i))) must not be negative, got \(x)")
        }
        return n
    }

    /// An index in `0..<count`; out of range is OUT_OF_RANGE, not BAD_ARGUMENTS.
    package func index(_ i: Int, count: Int) throws(CrucialError) -> Int {
        let x = try int(i)
        guard x >= 0, x < count else {
            throw CrucialError(.outOfRange, "\(name): \(parameter(i)) \(x) is out of range 0..<\(count)")
        }
        return Int(x)
    }

    package func double(_ i: Int) throws(CrucialError) -> Double {
        let v = try value(i)
        guard let d = v.doubleValue else { throw mismatch(i, "a number") }
        return d
    }

    package func bool(_ i: Int) throws(CrucialError) -> Bool {
        let v = try value(i)
        guard case .bool(let b) = v else { throw mismatch(i, "a bool") }
        return b
    }

    package func string(_ i: Int) throws(CrucialError) -> String {
        let v = try value(i)
        guard case .string(let s) = v else { throw mismatch(i, "a string") }
        return s
    }

    package func doubles(_ i: Int) throws(CrucialError) -> [Double] {
        let v = try value(i)
        guard let d = v.doublesValue else { throw mismatch(i, "an array of numbers") }
        return d
    }

    package func bytes(_ i: Int) throws(CrucialError) -> [UInt8] {
        let v = try value(i)
        guard let b = v.bytesValue else { throw mismatch(i, "bytes") }
        return b
    }

    package func list(_ i: Int) throws(CrucialError) -> [Value] {
        let v = try value(i)
        guard let l = v.listValue else { throw mismatch(i, "a list") }
        return l
    }

    /// An optional timeout in milliseconds at position `i` (absent or null = wait forever).
    package func timeout(_ i: Int) throws(CrucialError) -> Duration? {
        guard i < args.count, args[i] != .null else { return nil }
        let ms = try int(i)
        guard ms >= 0 else { throw .badArguments("\(name): \(parameter(i)) must not be negative, got \(ms)") }
        return .milliseconds(ms)
    }

    /// The error for a method this type does not have.
    package func unknownMethod(_ known: [String]) -> CrucialError {
        CrucialError(
            .unknownMethod, "\(ref.type) has no method \"\(method)\"; it has: \(known.sorted().joined(separator: ", "))")
    }
}
