/// A shared `java.util.concurrent.CyclicBarrier`: `parties` threads meet at
/// ``await()``, then all proceed and the barrier resets for the next round.
/// The wait happens on the server: no polling.
///
/// ```swift
/// let barrier = CyclicBarrier("iteration", parties: n)
/// try await barrier.await()
/// ```
public struct CyclicBarrier: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A barrier for `parties` callers, created on first use; a proxy asking for other parties than the existing barrier's fails with BAD_INITIAL_STATE.
    /// `persistent`: it outlives the application and is kept on `rf` members of a cluster,
    /// its waiting parties included (a party survives its primary's loss: its retry takes
    /// its place on the next primary).
    public init(_ key: String = "", parties: Int, persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(
            type: BuiltinType.cyclicBarrier.typeName, key: key, initial: .int(Int64(parties)), persistent: persistent, client: client)
    }

    /// A new barrier for `parties` callers, as `java.util.concurrent.CyclicBarrier(parties)`
    /// makes one: `CyclicBarrier(parties: parties)`, with a unique key of its own.
    public init(_ parties: Int, persistent: Bool = false, client: CrucialClient = .shared) {
        self.init(parties: parties, persistent: persistent, client: client)
    }

    /// Waits until all parties arrived; returns the arrival index (`parties - 1`
    /// for the first, 0 for the last). Throws BROKEN_BARRIER if the barrier breaks.
    ///
    /// A waiting party is part of the barrier's state: a persistent barrier's primary may
    /// fail while it waits, and its retry takes the same place on the next primary. The
    /// client keeps itself alive meanwhile (as for semaphore permits): a party whose client
    /// is gone is withdrawn once its keep-alive lease lapses.
    @discardableResult
    public func `await`() async throws -> Int {
        handle.client.keepClientAlive()
        return try await handle.call(BarrierMethod.`await`()).int()
    }

    /// As ``await()``, but fails with TIMEOUT (and breaks the barrier, as in Java) after `timeout`.
    @discardableResult
    public func `await`(timeout: Duration) async throws -> Int {
        handle.client.keepClientAlive()
        return try await handle.call(BarrierMethod.`await`(timeoutMillis: Millis(timeout))).int()
    }

    /// Breaks the current round (its waiters get BROKEN_BARRIER) and starts afresh.
    public func reset() async throws { _ = try await handle.call(BarrierMethod.reset) }
    /// Whether the barrier is broken (a wait timed out, or `reset` interrupted one).
    public func isBroken() async throws -> Bool { try await handle.call(BarrierMethod.isBroken).bool() }
    /// The number of parties that open the barrier.
    public func parties() async throws -> Int { try await handle.call(BarrierMethod.getParties).int() }
    /// The Java name of ``parties()``.
    @available(*, deprecated, renamed: "parties()")
    public func getParties() async throws -> Int { try await parties() }
    /// The parties waiting now.
    public func numberWaiting() async throws -> Int { try await handle.call(BarrierMethod.getNumberWaiting).int() }
    /// The Java name of ``numberWaiting()``.
    @available(*, deprecated, renamed: "numberWaiting()")
    public func getNumberWaiting() async throws -> Int { try await numberWaiting() }
}

/// A shared fair `java.util.concurrent.Semaphore`.
public struct Semaphore: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A semaphore starting with `permits`. Its permits belong to the client that took
    /// them and come back when that client is gone (its keep-alives stopped: it crashed or
    /// was closed; or its application session ended), so a crashed cloud thread cannot
    /// starve the others. `ownerless: true` gives java.util.concurrent's semantics instead:
    /// permits belong to nobody and a dead client's are never given back.
    /// `persistent`: it outlives the application and is kept on `rf` members of a cluster,
    /// its holders and queue included.
    public init(_ key: String = "", permits: Int, ownerless: Bool = false, persistent: Bool = false, client: CrucialClient = .shared) {
        let initial: Value = ownerless ? .record(["permits": .int(Int64(permits)), "ownerless": .bool(true)]) : .int(Int64(permits))
        handle = SharedObjectHandle(type: BuiltinType.semaphore.typeName, key: key, initial: initial, persistent: persistent, client: client)
    }

    /// A new semaphore with `permits`, as `java.util.concurrent.Semaphore(permits)` makes
    /// one: `Semaphore(permits: permits)`, with a unique key of its own.
    public init(_ permits: Int, ownerless: Bool = false, persistent: Bool = false, client: CrucialClient = .shared) {
        self.init(permits: permits, ownerless: ownerless, persistent: persistent, client: client)
    }

    /// Waits until `permits` are available and takes them.
    public func acquire(_ permits: Int = 1) async throws {
        handle.client.keepClientAlive()
        _ = try await handle.call(SemaphoreMethod.acquire(permits: Count(permits)))
    }

    /// Takes `permits` if available now (or within `timeout`); answers whether it did.
    public func tryAcquire(_ permits: Int = 1, timeout: Duration? = nil) async throws -> Bool {
        handle.client.keepClientAlive()
        return try await handle.call(SemaphoreMethod.tryAcquire(permits: Count(permits), timeoutMillis: timeout.map(Millis.init))).bool()
    }

    /// Gives back `permits`: the caller's own first; any more are new permits (as in Java).
    public func release(_ permits: Int = 1) async throws { _ = try await handle.call(SemaphoreMethod.release(permits: Count(permits))) }
    /// The permits free now.
    public func availablePermits() async throws -> Int { try await handle.call(SemaphoreMethod.availablePermits).int() }
    /// Takes every available permit; returns how many.
    @discardableResult
    public func drainPermits() async throws -> Int {
        handle.client.keepClientAlive()
        return try await handle.call(SemaphoreMethod.drainPermits).int()
    }
    /// The acquires waiting now.
    public func queueLength() async throws -> Int { try await handle.call(SemaphoreMethod.getQueueLength).int() }
    /// The Java name of ``queueLength()``.
    @available(*, deprecated, renamed: "queueLength()")
    public func getQueueLength() async throws -> Int { try await queueLength() }
}

/// A shared `java.util.concurrent.CountDownLatch`.
public struct CountDownLatch: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A latch counting down from `count`, created on first use. `persistent`: it outlives
    /// the application and is kept on `rf` members of a cluster.
    public init(_ key: String = "", count: Int, persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(
            type: BuiltinType.countDownLatch.typeName, key: key, initial: .int(Int64(count)), persistent: persistent, client: client)
    }

    /// A new latch counting down from `count`, as `java.util.concurrent.CountDownLatch(count)`
    /// makes one: `CountDownLatch(count: count)`, with a unique key of its own.
    public init(_ count: Int, persistent: Bool = false, client: CrucialClient = .shared) {
        self.init(count: count, persistent: persistent, client: client)
    }

    /// Counts down by one; at zero every waiter proceeds.
    public func countDown() async throws { _ = try await handle.call(LatchMethod.countDown) }
    /// The count now.
    public func count() async throws -> Int { try await handle.call(LatchMethod.getCount).int() }
    /// The Java name of ``count()``.
    @available(*, deprecated, renamed: "count()")
    public func getCount() async throws -> Int { try await count() }
    /// Waits until the count reaches zero.
    public func `await`() async throws { _ = try await handle.call(LatchMethod.`await`()) }
    /// Waits at most `timeout`; answers whether the count reached zero.
    public func `await`(timeout: Duration) async throws -> Bool {
        try await handle.call(LatchMethod.`await`(timeoutMillis: Millis(timeout))).bool()
    }
}

/// A shared value set once: ``get()`` waits on the server until some thread calls ``set(_:)``.
///
/// ```swift
/// let result = SharedFuture<Double>("result-\(i)")
/// try await result.set(partial)          // in the cloud thread
/// let value = try await result.get()     // in the driver
/// ```
public struct SharedFuture<T: Codable & Sendable>: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A future named `key`, created unset on first use. `persistent`: it outlives the
    /// application and is kept on `rf` members of a cluster.
    public init(_ key: String = "", persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.sharedFuture.typeName, key: key, initial: .null, persistent: persistent, client: client)
    }

    /// Sets the value; throws ILLEGAL_STATE if it was already set.
    public func set(_ value: T) async throws { _ = try await handle.call(FutureMethod.set(value: encodeArgument(value))) }
    /// Sets the value unless already set; answers whether it did.
    public func trySet(_ value: T) async throws -> Bool { try await handle.call(FutureMethod.trySet(value: encodeArgument(value))).bool() }
    /// Waits for the value.
    public func get() async throws -> T { try await handle.call(FutureMethod.get()).decode() }
    /// Waits at most `timeout`, then fails with TIMEOUT.
    public func get(timeout: Duration) async throws -> T { try await handle.call(FutureMethod.get(timeoutMillis: Millis(timeout))).decode() }
    /// Whether the value is set.
    public func isDone() async throws -> Bool { try await handle.call(FutureMethod.isDone).bool() }
}
