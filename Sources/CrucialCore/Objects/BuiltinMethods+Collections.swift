// The methods of the built-in collections and synchronization objects (see ``BuiltinType``).

// MARK: - Collections

/// `SharedList`: `java.util.List`'s methods.
package enum ListMethod: String, BuiltinMethod {
    case add, insert, addAll, get, set, removeAt, remove, contains, indexOf, size, isEmpty, clear, getAll, subList

    package var signature: MethodSignature {
        switch self {
        case .add: .write("element")
        case .insert: .write("element", "at")
        case .addAll: .write("elements")
        case .get: .read("index")
        case .set: .write("index", "element")
        case .removeAt: .shrink("index")
        case .remove: .shrink("element")
        case .contains, .indexOf: .read("element")
        case .size, .isEmpty, .getAll: .read()
        case .clear: .shrink()
        case .subList: .read("from", "to")
        }
    }

    package var result: String {
        switch self {
        case .add: "bool: true (appended)"
        case .insert: "null: inserted before position `at` (0 to size)"
        case .addAll: "bool: whether the list changed (`elements`, a list, appended)"
        case .get: "the element at `index`"
        case .set: "the element before"
        case .removeAt: "the element removed"
        case .remove: "bool: whether `element` was there (its first occurrence is removed)"
        case .contains: "bool"
        case .indexOf: "int: the first index of `element`, or -1"
        case .size: "int"
        case .isEmpty: "bool"
        case .clear: "null"
        case .getAll: "list: every element, in order"
        case .subList: "list: the elements at `from` up to, not including, `to`"
        }
    }
}

/// `SharedSet`: `java.util.Set`'s methods.
package enum SetMethod: String, BuiltinMethod {
    case add, addAll, remove, contains, size, isEmpty, clear, getAll

    package var signature: MethodSignature {
        switch self {
        case .add: .write("element")
        case .addAll: .write("elements")
        case .remove: .shrink("element")
        case .contains: .read("element")
        case .size, .isEmpty, .getAll: .read()
        case .clear: .shrink()
        }
    }

    package var result: String {
        switch self {
        case .add: "bool: whether `element` was not there yet"
        case .addAll: "bool: whether the set changed"
        case .remove: "bool: whether `element` was there"
        case .contains: "bool"
        case .size: "int"
        case .isEmpty: "bool"
        case .clear: "null"
        case .getAll: "list: every element, in the order of values (see Values)"
        }
    }
}

/// `SharedMap`, and the map methods of `SharedSortedMap`.
package enum MapMethod: String, BuiltinMethod {
    case put, get, getOrDefault, remove, containsKey, size, isEmpty, clear, keys, values, entries
    case putIfAbsent, replace, compareAndReplace, merge, putAll, mergeAll

    package var signature: MethodSignature {
        switch self {
        case .put, .putIfAbsent, .replace: .write("key", "value")
        case .get, .containsKey: .read("key")
        case .getOrDefault: .read("key", "defaultValue")
        case .remove: .shrink("key")
        case .size, .isEmpty, .keys, .values, .entries: .read()
        case .clear: .shrink()
        case .compareAndReplace: .write("key", "expect", "update")
        case .merge: .write("key", "value", "op")
        case .putAll: .write("entries")
        case .mergeAll: .write("entries", "op")
        }
    }

    package var result: String {
        switch self {
        case .put: "the value before, or null"
        case .get: "the value, or null"
        case .getOrDefault: "the value, or `defaultValue`"
        case .remove: "the value removed, or null"
        case .containsKey: "bool"
        case .size: "int"
        case .isEmpty: "bool"
        case .clear: "null"
        case .keys: "list: the keys (`SharedMap`: in no set order, the same as `values` and `entries` of the same state; sorted: ascending)"
        case .values: "list: the values, in the order of `keys`"
        case .entries: "list of [key, value] pairs, in the order of `keys`"
        case .putIfAbsent: "the value there (nothing changes), or null (`value` is put)"
        case .replace: "the value before, or null (then nothing is put)"
        case .compareAndReplace: "bool: whether the value was `expect` (it is `update` now)"
        case .merge: "the merged value: `op` (\"sum\", \"min\", \"max\", \"replace\", \"append\") of the old value and `value`; an absent key takes `value`"
        case .putAll: "null; `entries` is a list of [key, value] pairs"
        case .mergeAll: "null; each [key, value] pair of `entries` is merged with `op`"
        }
    }
}

/// `SharedSortedMap`: every map method, and those that use the order of the keys.
package enum SortedMapMethod: BuiltinMethod {
    case map(MapMethod)
    case firstKey, lastKey, top, head, range, floorKey, ceilingKey

    private static let ordered: [SortedMapMethod] = [.firstKey, .lastKey, .top, .head, .range, .floorKey, .ceilingKey]

    package static var allCases: [SortedMapMethod] { MapMethod.allCases.map(SortedMapMethod.map) + ordered }

    package init?(rawValue: String) {
        if let m = MapMethod(rawValue: rawValue) {
            self = .map(m)
        } else if let m = Self.ordered.first(where: { $0.rawValue == rawValue }) {
            self = m
        } else {
            return nil
        }
    }

    package var rawValue: String {
        switch self {
        case .map(let m): m.rawValue
        case .firstKey: "firstKey"
        case .lastKey: "lastKey"
        case .top: "top"
        case .head: "head"
        case .range: "range"
        case .floorKey: "floorKey"
        case .ceilingKey: "ceilingKey"
        }
    }

    package var signature: MethodSignature {
        switch self {
        case .map(let m): m.signature
        case .firstKey, .lastKey: .read()
        case .top, .head: .read("k")
        case .range: .read("from", "to")
        case .floorKey, .ceilingKey: .read("key")
        }
    }

    package var result: String {
        switch self {
        case .map(let m): m.result
        case .firstKey: "the smallest key, or null"
        case .lastKey: "the largest key, or null"
        case .top: "list of the [key, value] pairs of the `k` largest keys, largest first"
        case .head: "list of the [key, value] pairs of the `k` smallest keys, smallest first"
        case .range: "list of the [key, value] pairs with `from` ≤ key < `to`, ascending"
        case .floorKey: "the largest key ≤ `key`, or null"
        case .ceilingKey: "the smallest key ≥ `key`, or null"
        }
    }
}

// MARK: - Synchronizers

/// `CyclicBarrier`.
package enum BarrierMethod: String, BuiltinMethod {
    case await, reset, isBroken, getParties, getNumberWaiting

    package var signature: MethodSignature {
        switch self {
        case .await: .blocking(.write, "timeoutMillis?")
        case .reset: .write()
        case .isBroken, .getParties, .getNumberWaiting: .read()
        }
    }

    package var result: String {
        switch self {
        case .await:
            "int: the arrival index, parties − 1 for the first to arrive down to 0 for the last, once all arrived; "
                + "BROKEN_BARRIER if it breaks meanwhile; TIMEOUT past `timeoutMillis` (the barrier breaks, as in Java)"
        case .reset: "null: the waiting calls fail with BROKEN_BARRIER and the barrier starts afresh"
        case .isBroken: "bool"
        case .getParties: "int"
        case .getNumberWaiting: "int: calls waiting now"
        }
    }
}

/// `Semaphore` (fair; permits belong to their client unless it is ownerless).
package enum SemaphoreMethod: String, BuiltinMethod {
    case acquire, tryAcquire, release, availablePermits, drainPermits, getQueueLength

    package var signature: MethodSignature {
        switch self {
        case .acquire: .blocking(.write, "permits?")
        case .tryAcquire: .blocking(.write, "permits?", "timeoutMillis?")
        case .release: .write("permits?")
        case .availablePermits, .getQueueLength: .read()
        case .drainPermits: .write()
        }
    }

    package var result: String {
        switch self {
        case .acquire: "null, once `permits` (default 1) are granted, in arrival order"
        case .tryAcquire: "bool: whether `permits` (default 1) were granted within `timeoutMillis` (absent or 0: at once)"
        case .release: "null: gives back `permits` (default 1), the caller's own first"
        case .availablePermits: "int"
        case .drainPermits: "int: the free permits, taken"
        case .getQueueLength: "int: calls waiting"
        }
    }
}

/// `CountDownLatch`.
package enum LatchMethod: String, BuiltinMethod {
    case countDown, getCount, await

    package var signature: MethodSignature {
        switch self {
        case .countDown: .write()
        case .getCount: .read()
        // Waiting changes nothing: a latch's await is a read, unlike a barrier's.
        case .await: .blocking(.read, "timeoutMillis?")
        }
    }

    package var result: String {
        switch self {
        case .countDown: "null"
        case .getCount: "int"
        case .await: "bool: true once the count is 0; false past `timeoutMillis`"
        }
    }
}

/// `SharedFuture`.
package enum FutureMethod: String, BuiltinMethod {
    case set, trySet, get, isDone

    package var signature: MethodSignature {
        switch self {
        case .set, .trySet: .write("value")
        case .get: .blocking(.read, "timeoutMillis?")
        case .isDone: .read()
        }
    }

    package var result: String {
        switch self {
        case .set: "null; ILLEGAL_STATE if the future is set already"
        case .trySet: "bool: whether it was not set yet (it is now)"
        case .get: "the value, once set; TIMEOUT past `timeoutMillis` (0: at once)"
        case .isDone: "bool"
        }
    }
}
