package import CrucialCore

extension MergeOperation {
    /// `old` merged with `new`; BAD_ARGUMENTS for values this operation does not combine.
    func apply(_ old: Value, _ new: Value, _ call: Call) throws(CrucialError) -> Value {
        switch self {
        case .replace: return new
        case .min: return new < old ? new : old
        case .max: return old < new ? new : old
        case .sum:
            switch (old, new) {
            case (.int(let a), .int(let b)): return .int(a &+ b)
            case (.doubles(var a), _):
                guard let b = new.doublesValue, b.count == a.count else { break }
                addElementwise(&a, b)
                return .doubles(a)
            case (.ints(let a), .ints(let b)) where a.count == b.count:
                return .ints(zip(a, b).map { $0 &+ $1 })
            default:
                if let a = old.doubleValue, let b = new.doubleValue { return .double(a + b) }
            }
        case .append:
            switch (old, new) {
            case (.string(let a), .string(let b)): return .string(a + b)
            case (.bytes(let a), .bytes(let b)): return .bytes(a + b)
            case (.list(let a), _): if let b = new.listValue { return .list(a + b) }
            case (.doubles(let a), _): if let b = new.doublesValue { return .doubles(a + b) }
            case (.ints(let a), .ints(let b)): return .ints(a + b)
            default: break
            }
        }
        throw .badArguments("\(call.ref.type).\(call.method): cannot \(rawValue) a \(new.kindName) into a \(old.kindName)")
    }
}

/// A list with `java.util.List`'s methods.
package final class SharedList: BuiltinObject {
    package typealias Method = ListMethod
    package static let builtin = BuiltinType.sharedList
    var items: [Value]

    package init(initial: Value) throws(CrucialError) {
        if initial == .null {
            items = []
            return
        }
        guard let l = initial.listValue else {
            throw CrucialError(.badInitialState, "SharedList initial state must be a list, got \(initial.kindName)")
        }
        items = l
    }

    package func snapshot() -> Value { .list(items) }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .add(let element):
            items.append(element)
            return .value(.bool(true))
        case .insert(let element, let at):
            items.insert(element, at: try call.position(at, below: items.count + 1))
            return .void
        case .addAll(let l):
            items.append(contentsOf: l)
            return .value(.bool(!l.isEmpty))
        case .get(let index):
            return .value(items[try call.position(index, below: items.count)])
        case .set(let index, let element):
            let i = try call.position(index, below: items.count)
            defer { items[i] = element }
            return .value(items[i])
        case .removeAt(let index):
            return .value(items.remove(at: try call.position(index, below: items.count)))
        case .remove(let element):
            guard let i = items.firstIndex(of: element) else { return .value(.bool(false)) }
            items.remove(at: i)
            return .value(.bool(true))
        case .contains(let element):
            return .value(.bool(items.contains(element)))
        case .indexOf(let element):
            return .value(.int(Int64(items.firstIndex(of: element) ?? -1)))
        case .size:
            return .value(.int(Int64(items.count)))
        case .isEmpty:
            return .value(.bool(items.isEmpty))
        case .clear:
            items.removeAll()
            return .void
        case .getAll:
            return .value(.list(items))
        case .subList(let from, let to):
            let from = try call.position(from, below: items.count + 1)
            let to = try call.position(to, below: items.count + 1)
            guard from <= to else { throw CrucialError(.outOfRange, "SharedList.subList: from \(from) > to \(to)") }
            return .value(.list(Array(items[from..<to])))
        }
    }
}

/// A set with `java.util.Set`'s methods.
package final class SharedSet: BuiltinObject {
    package typealias Method = SetMethod
    package static let builtin = BuiltinType.sharedSet
    var items: Set<Value>

    package init(initial: Value) throws(CrucialError) {
        if initial == .null {
            items = []
            return
        }
        guard let l = initial.listValue else {
            throw CrucialError(.badInitialState, "SharedSet initial state must be a list, got \(initial.kindName)")
        }
        items = Set(l)
    }

    package func snapshot() -> Value { .list(items.sorted()) }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .add(let element):
            return .value(.bool(items.insert(element).inserted))
        case .addAll(let elements):
            let before = items.count
            items.formUnion(elements)
            return .value(.bool(items.count != before))
        case .remove(let element):
            return .value(.bool(items.remove(element) != nil))
        case .contains(let element):
            return .value(.bool(items.contains(element)))
        case .size:
            return .value(.int(Int64(items.count)))
        case .isEmpty:
            return .value(.bool(items.isEmpty))
        case .clear:
            items.removeAll()
            return .void
        case .getAll:
            return .value(.list(items.sorted()))
        }
    }
}

/// Storage for the two map types: a hash map, or a map sorted by key.
protocol MapStorage {
    init()
    subscript(key: Value) -> Value? { get set }
    var count: Int { get }
    var entries: [(key: Value, value: Value)] { get }
    mutating func removeAll()
}

extension Dictionary: MapStorage where Key == Value, Value == CrucialCore.Value {
    var entries: [(key: CrucialCore.Value, value: CrucialCore.Value)] { map { ($0.key, $0.value) } }
    mutating func removeAll() { removeAll(keepingCapacity: false) }
}

/// Keys kept sorted in an array; lookups by binary search.
struct SortedStorage: MapStorage {
    var keys: [Value] = []
    var values: [Value] = []

    init() {}

    /// The index of the first key ≥ `key`.
    func lowerBound(_ key: Value) -> Int {
        var lo = 0, hi = keys.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if keys[mid] < key { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    subscript(key: Value) -> Value? {
        get {
            let i = lowerBound(key)
            return i < keys.count && keys[i] == key ? values[i] : nil
        }
        set {
            let i = lowerBound(key)
            let present = i < keys.count && keys[i] == key
            switch (present, newValue) {
            case (true, let v?): values[i] = v
            case (true, nil):
                keys.remove(at: i)
                values.remove(at: i)
            case (false, let v?):
                keys.insert(key, at: i)
                values.insert(v, at: i)
            case (false, nil): break
            }
        }
    }

    var count: Int { keys.count }
    var entries: [(key: Value, value: Value)] { zip(keys, values).map { ($0, $1) } }
    mutating func removeAll() {
        keys.removeAll()
        values.removeAll()
    }
}

/// The methods shared by `SharedMap` and `SharedSortedMap` (`java.util.Map`, plus server-side `merge`).
struct MapCore<Storage: MapStorage> {
    var map = Storage()

    init(typeName: String, initial: Value) throws(CrucialError) {
        guard initial != .null else { return }
        guard let pairs = initial.listValue else {
            throw CrucialError(.badInitialState, "\(typeName) initial state must be a list of [key, value] pairs")
        }
        for pair in pairs {
            guard case .list(let kv) = pair, kv.count == 2 else {
                throw CrucialError(.badInitialState, "\(typeName) initial state must be a list of [key, value] pairs")
            }
            map[kv[0]] = kv[1]
        }
    }

    static func pairs(_ entries: [(key: Value, value: Value)]) -> Value {
        .list(entries.map { .list([$0.key, $0.value]) })
    }

    func snapshot() -> Value { Self.pairs(map.entries) }

    /// Runs a map method.
    mutating func run(_ method: MapMethod, _ call: inout Call) throws(CrucialError) -> Response {
        switch method {
        case .put(let key, let value):
            let old = map[key]
            map[key] = value
            return .value(old ?? .null)
        case .get(let key):
            return .value(map[key] ?? .null)
        case .getOrDefault(let key, let fallback):
            return .value(map[key] ?? fallback)
        case .remove(let key):
            let old = map[key]
            map[key] = nil
            return .value(old ?? .null)
        case .containsKey(let key):
            return .value(.bool(map[key] != nil))
        case .size:
            return .value(.int(Int64(map.count)))
        case .isEmpty:
            return .value(.bool(map.count == 0))
        case .clear:
            map.removeAll()
            return .void
        case .keys:
            return .value(.list(map.entries.map(\.key)))
        case .values:
            return .value(.list(map.entries.map(\.value)))
        case .entries:
            return .value(Self.pairs(map.entries))
        case .putIfAbsent(let key, let value):
            if let existing = map[key] { return .value(existing) }
            map[key] = value
            return .value(.null)
        case .replace(let key, let value):
            guard let old = map[key] else { return .value(.null) }
            map[key] = value
            return .value(old)
        case .compareAndReplace(let key, let expect, let update):
            guard map[key] == expect else { return .value(.bool(false)) }
            map[key] = update
            return .value(.bool(true))
        case .merge(let key, let value, let op):
            let merged = try map[key].map { old throws(CrucialError) in try op.apply(old, value, call) } ?? value
            map[key] = merged
            return .value(merged)
        case .putAll(let entries):
            for (k, v) in entries.pairs { map[k] = v }
            return .void
        case .mergeAll(let entries, let op):
            // Validate every merge before applying any, so a bad entry changes nothing.
            var staged = Storage()
            for (k, v) in entries.pairs {
                let base = staged[k] ?? map[k]
                staged[k] = try base.map { old throws(CrucialError) in try op.apply(old, v, call) } ?? v
            }
            for (k, v) in staged.entries { map[k] = v }
            return .void
        }
    }
}

/// A hash map with `java.util.Map`'s methods and server-side `merge`.
package final class SharedMap: BuiltinObject {
    package typealias Method = MapMethod
    package static let builtin = BuiltinType.sharedMap
    var core: MapCore<[Value: Value]>

    package init(initial: Value) throws(CrucialError) { core = try MapCore(typeName: Self.builtin.typeName, initial: initial) }

    package func snapshot() -> Value { core.snapshot() }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        try core.run(method, &call)
    }
}

/// A map sorted by key (the ``Value`` order), with `top(k)` and range queries.
package final class SharedSortedMap: BuiltinObject {
    package typealias Method = SortedMapMethod
    package static let builtin = BuiltinType.sharedSortedMap
    var core: MapCore<SortedStorage>
    private var map: SortedStorage { core.map }

    package init(initial: Value) throws(CrucialError) { core = try MapCore(typeName: Self.builtin.typeName, initial: initial) }

    package func snapshot() -> Value { core.snapshot() }

    private func entry(_ i: Int) -> Value { .list([map.keys[i], map.values[i]]) }

    package func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response {
        let n = map.count
        switch method {
        case .map(let m):
            return try core.run(m, &call)
        case .firstKey:
            return .value(map.keys.first ?? .null)
        case .lastKey:
            return .value(map.keys.last ?? .null)
        case .top(let k):
            let k = min(k.value, n)
            return .value(.list((0..<k).map { entry(n - 1 - $0) }))
        case .head(let k):
            let k = min(k.value, n)
            return .value(.list((0..<k).map { entry($0) }))
        case .range(let from, let to):
            let lo = map.lowerBound(from), hi = map.lowerBound(to)
            return .value(.list(lo < hi ? (lo..<hi).map { entry($0) } : []))
        case .floorKey(let key):
            let i = map.lowerBound(key)
            if i < n, map.keys[i] == key { return .value(key) }
            return .value(i > 0 ? map.keys[i - 1] : .null)
        case .ceilingKey(let key):
            let i = map.lowerBound(key)
            return .value(i < n ? map.keys[i] : .null)
        }
    }
}
