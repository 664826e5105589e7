package import Synchronization

/// A `Mutex` shared by reference, for what a `Mutex` itself cannot be (it is not copyable):
/// an element of an array, a value a closure or a tuple holds.
package final class LockedBox<Value>: Sendable {
    @usableFromInline let mutex: Mutex<Value>

    package init(_ value: sending Value) { mutex = Mutex(value) }

    /// Runs `body` with the value, under the lock. Inlinable: it is on every call's path
    /// (the store's shards, the client's pool), and an unspecialised generic call costs.
    @inlinable
    package func withLock<Result: ~Copyable, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        try mutex.withLock(body)
    }
}

/// An `Atomic<Int>` shared by reference (counters that several owners update), relaxed:
/// a gauge, not a synchronisation point.
package final class AtomicCounter: Sendable {
    @usableFromInline let value: Atomic<Int>

    package init(_ value: Int = 0) { self.value = Atomic(value) }

    @inlinable
    package func load() -> Int { value.load(ordering: .relaxed) }

    @inlinable
    package func store(_ newValue: Int) { value.store(newValue, ordering: .relaxed) }

    /// Adds `delta` (wrapping) and returns the value before.
    @inlinable @discardableResult
    package func add(_ delta: Int = 1) -> Int { value.wrappingAdd(delta, ordering: .relaxed).oldValue }

    /// Subtracts `delta` (wrapping) and returns the value before.
    @inlinable @discardableResult
    package func subtract(_ delta: Int = 1) -> Int { value.wrappingSubtract(delta, ordering: .relaxed).oldValue }
}
