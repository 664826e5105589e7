/// The built-in object types and every method of each: its wire name, its kind and its
/// parameters. This is the one place a built-in method is declared. The server's objects
/// switch over these enums (exhaustively: a method added here does not build until the
/// server runs it), check arity against them, and take each method's kind from them; the
/// client's proxies call through them, so a name or a kind cannot differ between the two.
///
/// docs/PROTOCOL.md describes each method's arguments, result and errors.
package enum BuiltinType: String, CaseIterable, Sendable {
    case atomicInt = "AtomicInt"
    case atomicLong = "AtomicLong"
    case atomicBoolean = "AtomicBoolean"
    case atomicDouble = "AtomicDouble"
    case atomicReference = "AtomicReference"
    case atomicByteArray = "AtomicByteArray"
    case atomicDoubleArray = "AtomicDoubleArray"
    case atomicMatrix = "AtomicMatrix"
    case sharedList = "SharedList"
    case sharedSet = "SharedSet"
    case sharedMap = "SharedMap"
    case sharedSortedMap = "SharedSortedMap"
    case cyclicBarrier = "CyclicBarrier"
    case semaphore = "Semaphore"
    case countDownLatch = "CountDownLatch"
    case sharedFuture = "SharedFuture"

    /// The name in ``ObjectRef/type``.
    package var typeName: String { rawValue }

    /// Every method of the type, by wire name (built once: servers look methods up here on
    /// every call).
    package var methods: [String: MethodSignature] { Self.tables[self] ?? [:] }

    private static let tables = Dictionary(uniqueKeysWithValues: allCases.map { ($0, $0.declaredMethods) })

    private var declaredMethods: [String: MethodSignature] {
        switch self {
        case .atomicInt, .atomicLong: AtomicIntegerMethod.table
        case .atomicBoolean, .atomicReference: AtomicValueMethod.table
        case .atomicDouble: AtomicDoubleMethod.table
        case .atomicByteArray: ByteArrayMethod.table
        case .atomicDoubleArray: DoubleArrayMethod.table
        case .atomicMatrix: MatrixMethod.table
        case .sharedList: ListMethod.table
        case .sharedSet: SetMethod.table
        case .sharedMap: MapMethod.table
        case .sharedSortedMap: SortedMapMethod.table
        case .cyclicBarrier: BarrierMethod.table
        case .semaphore: SemaphoreMethod.table
        case .countDownLatch: LatchMethod.table
        case .sharedFuture: FutureMethod.table
        }
    }

    /// Synchronization objects park calls and arm timers: a cluster keeps one copy of each,
    /// even a persistent one.
    package var isSynchronizer: Bool {
        switch self {
        case .cyclicBarrier, .semaphore, .countDownLatch, .sharedFuture: true
        default: false
        }
    }
}

/// A method's kind and parameters. A parameter named with a trailing `?` may be left out,
/// and so may every one after it.
package struct MethodSignature: Sendable, Equatable {
    package let kind: MethodKind
    package let parameters: [String]

    /// How many arguments a call must pass, and may.
    package let arity: ClosedRange<Int>

    package init(_ kind: MethodKind, _ parameters: [String]) {
        self.kind = kind
        self.parameters = parameters
        self.arity = (parameters.firstIndex { $0.hasSuffix("?") } ?? parameters.count)...parameters.count
    }

    /// The name of parameter `i`, without its `?`.
    package func parameter(_ i: Int) -> String {
        guard i < parameters.count else { return "argument \(i + 1)" }
        let p = parameters[i]
        return p.hasSuffix("?") ? String(p.dropLast()) : p
    }

    /// `name(p1, p2?)`, for messages.
    package func display(_ name: String) -> String { "\(name)(\(parameters.joined(separator: ", ")))" }

    package static func read(_ parameters: String...) -> MethodSignature { MethodSignature(.read, parameters) }
    package static func write(_ parameters: String...) -> MethodSignature { MethodSignature(.write, parameters) }
    package static func shrink(_ parameters: String...) -> MethodSignature { MethodSignature(.shrink, parameters) }
    /// A call that may wait on the server until others act.
    package static func blocking(_ access: MethodKind.Access, _ parameters: String...) -> MethodSignature {
        MethodSignature(MethodKind(access, blocks: true), parameters)
    }
}

/// The methods of one built-in type (or of a family of them), as an enum of wire names.
package protocol BuiltinMethod: RawRepresentable, CaseIterable, Hashable, Sendable where RawValue == String {
    var signature: MethodSignature { get }
}

extension BuiltinMethod {
    /// Every method by wire name.
    package static var table: [String: MethodSignature] {
        Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, $0.signature) })
    }

    package var kind: MethodKind { signature.kind }
}

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
}

/// `AtomicBoolean` and `AtomicReference`.
package enum AtomicValueMethod: String, BuiltinMethod {
    case get, set, getAndSet, compareAndSet

    /// The integers' signature of the same method: one table for the methods they share.
    package var signature: MethodSignature { AtomicIntegerMethod(rawValue: rawValue)!.signature }
}

/// `AtomicDouble` (Guava's).
package enum AtomicDoubleMethod: String, BuiltinMethod {
    case get, set, getAndSet, compareAndSet, addAndGet, getAndAdd

    /// The integers' signature of the same method: one table for the methods they share.
    package var signature: MethodSignature { AtomicIntegerMethod(rawValue: rawValue)!.signature }
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
}

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
}

// MARK: - Reference

extension BuiltinType {
    /// The table as Markdown: one row per type, its methods with their parameters and kinds.
    /// docs/PROTOCOL.md holds it between `<!-- builtin-methods -->` markers, and a test
    /// checks it is current (`crucial types --markdown` prints it).
    package static var markdownReference: String {
        var lines = [
            "| type | method(parameters) | kind |",
            "| --- | --- | --- |",
        ]
        for type in allCases {
            for (name, signature) in type.methods.sorted(by: { $0.key < $1.key }) {
                lines.append("| `\(type.typeName)` | `\(signature.display(name))` | \(signature.kind) |")
            }
        }
        return lines.joined(separator: "\n")
    }
}
