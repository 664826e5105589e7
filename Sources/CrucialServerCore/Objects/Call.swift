package import CrucialCore

/// One method call as an object sees it: the method and its arguments (a built-in type reads
/// them through its ``BuiltinMethods`` enum, a user type through its own), the caller, and
/// the effects to carry out.
package struct Call: Sendable {
    package let ref: ObjectRef
    package let method: String
    package let args: [Value]
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

    /// The error for a call with a number of arguments outside `arity`.
    func wrongArity(_ arity: ClosedRange<Int>, _ signature: MethodSignature) -> CrucialError {
        let expected = arity.lowerBound == arity.upperBound ? "\(arity.lowerBound)" : "\(arity.lowerBound) to \(arity.upperBound)"
        return .badArguments("\(ref.type).\(signature.display(method)) takes \(expected) argument(s), got \(args.count)")
    }

    /// `Type.method`, for messages.
    package var name: String { "\(ref.type).\(method)" }

    /// `index`'s position, if it is in `0..<count`; OUT_OF_RANGE otherwise.
    package func position(_ index: Index, below count: Int) throws(CrucialError) -> Int {
        try index.checked(below: count, name)
    }

    /// The error for a method this type does not have.
    package func unknownMethod(_ known: [String]) -> CrucialError {
        CrucialError(
            .unknownMethod, "\(ref.type) has no method \"\(method)\"; it has: \(known.sorted().joined(separator: ", "))")
    }
}
