// The methods of the built-in collections and synchronization objects (see ``BuiltinType``),
// each declared here once (``BuiltinMethods``): a doc comment's first words are the method's
// kind, the rest what it answers.

// MARK: - Collections

/// `SharedList`: `java.util.List`'s methods.
@BuiltinMethods
package enum ListMethod {
    /// write: bool: true (appended)
    case add(element: Value)
    /// write: null: inserted before position `at` (0 to size)
    case insert(element: Value, at: Index)
    /// write: bool: whether the list changed (`elements` appended)
    case addAll(elements: [Value])
    /// read: the element at `index`
    case get(index: Index)
    /// write: the element before
    case set(index: Index, element: Value)
    /// shrink: the element removed
    case removeAt(index: Index)
    /// shrink: bool: whether `element` was there (its first occurrence is removed)
    case remove(element: Value)
    /// read: bool
    case contains(element: Value)
    /// read: int: the first index of `element`, or -1
    case indexOf(element: Value)
    /// read: int
    case size
    /// read: bool
    case isEmpty
    /// shrink: null
    case clear
    /// read: list: every element, in order
    case getAll
    /// read: list: the elements at `from` up to, not including, `to`
    case subList(from: Index, to: Index)
}

/// `SharedSet`: `java.util.Set`'s methods.
@BuiltinMethods
package enum SetMethod {
    /// write: bool: whether `element` was not there yet
    case add(element: Value)
    /// write: bool: whether the set changed
    case addAll(elements: [Value])
    /// shrink: bool: whether `element` was there
    case remove(element: Value)
    /// read: bool
    case contains(element: Value)
    /// read: int
    case size
    /// read: bool
    case isEmpty
    /// shrink: null
    case clear
    /// read: list: every element, in the order of values (see Values)
    case getAll
}

/// `SharedMap`, and the map methods of `SharedSortedMap`.
@BuiltinMethods
package enum MapMethod {
    /// write: the value before, or null
    case put(key: Value, value: Value)
    /// read: the value, or null
    case get(key: Value)
    /// read: the value, or `defaultValue`
    case getOrDefault(key: Value, defaultValue: Value)
    /// shrink: the value removed, or null
    case remove(key: Value)
    /// read: bool
    case containsKey(key: Value)
    /// read: int
    case size
    /// read: bool
    case isEmpty
    /// shrink: null
    case clear
    /// read: list: the keys (`SharedMap`: in no set order, the same as `values` and `entries` of the same state; sorted: ascending)
    case keys
    /// read: list: the values, in the order of `keys`
    case values
    /// read: list of [key, value] pairs, in the order of `keys`
    case entries
    /// write: the value there (nothing changes), or null (`value` is put)
    case putIfAbsent(key: Value, value: Value)
    /// write: the value before, or null (then nothing is put)
    case replace(key: Value, value: Value)
    /// write: bool: whether the value was `expect` (it is `update` now)
    case compareAndReplace(key: Value, expect: Value, update: Value)
    /// write: the merged value: `op` of the old value and `value`; an absent key takes `value`
    case merge(key: Value, value: Value, op: MergeOperation)
    /// write: null
    case putAll(entries: Entries)
    /// write: null; each pair of `entries` is merged with `op`, all or none
    case mergeAll(entries: Entries, op: MergeOperation)
}

/// `SharedSortedMap`: every map method, and those that use the order of the keys.
@BuiltinMethods
package enum SortedMapMethod {
    case map(MapMethod)
    /// read: the smallest key, or null
    case firstKey
    /// read: the largest key, or null
    case lastKey
    /// read: list of the [key, value] pairs of the `k` largest keys, largest first
    case top(k: Count)
    /// read: list of the [key, value] pairs of the `k` smallest keys, smallest first
    case head(k: Count)
    /// read: list of the [key, value] pairs with `from` ≤ key < `to`, ascending
    case range(from: Value, to: Value)
    /// read: the largest key ≤ `key`, or null
    case floorKey(key: Value)
    /// read: the smallest key ≥ `key`, or null
    case ceilingKey(key: Value)
}

// MARK: - Synchronizers

/// `CyclicBarrier`.
@BuiltinMethods
package enum BarrierMethod {
    /// blocking write: int: the arrival index, parties − 1 for the first to arrive down to 0 for the last, once all
    /// arrived; BROKEN_BARRIER if it breaks meanwhile; TIMEOUT past `timeoutMillis` (the barrier breaks, as in Java)
    case await(timeoutMillis: Millis? = nil)
    /// write: null: the waiting calls fail with BROKEN_BARRIER and the barrier starts afresh
    case reset
    /// read: bool
    case isBroken
    /// read: int
    case getParties
    /// read: int: calls waiting now
    case getNumberWaiting
}

/// `Semaphore` (fair; permits belong to their client unless it is ownerless).
@BuiltinMethods
package enum SemaphoreMethod {
    /// blocking write: null, once `permits` (default 1) are granted, in arrival order
    case acquire(permits: Count? = nil)
    /// blocking write: bool: whether `permits` (default 1) were granted within `timeoutMillis` (absent or 0: at once)
    case tryAcquire(permits: Count? = nil, timeoutMillis: Millis? = nil)
    /// write: null: gives back `permits` (default 1), the caller's own first
    case release(permits: Count? = nil)
    /// read: int
    case availablePermits
    /// write: int: the free permits, taken
    case drainPermits
    /// read: int: calls waiting
    case getQueueLength
}

/// `CountDownLatch`.
@BuiltinMethods
package enum LatchMethod {
    /// write: null
    case countDown
    /// read: int
    case getCount
    /// blocking read: bool: true once the count is 0; false past `timeoutMillis` (waiting changes nothing: a read,
    /// unlike a barrier's await)
    case await(timeoutMillis: Millis? = nil)
}

/// `SharedFuture`.
@BuiltinMethods
package enum FutureMethod {
    /// write: null; ILLEGAL_STATE if the future is set already
    case set(value: Value)
    /// write: bool: whether it was not set yet (it is now)
    case trySet(value: Value)
    /// blocking read: the value, once set; TIMEOUT past `timeoutMillis` (0: at once)
    case get(timeoutMillis: Millis? = nil)
    /// read: bool
    case isDone
}
