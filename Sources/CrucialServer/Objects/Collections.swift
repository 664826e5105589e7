package import CrucialCore

/// How `SharedMap.merge` combines an existing value with a new one, on the server.
enum MergeOperation: String, CaseIterable {
    /// Numbers add (int + int stays int); numeric arrays add element-wise.
    case sum
    case min
    case max
    /// The new value replaces the old one.
    case replace
    /// Strings, bytes and lists concatenate.
    case append

    static func parse(_ call: Call, _ i: Int) throws(CrucialError) -> MergeOperation {
        let name = try call.string(i, "op")
        guard let op = MergeOperation(rawValue: name) else {
            throw .badArguments(
                "\(call.ref.type).\(call.method): unknown merge op \"\(name)\" (\(allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return op
    }

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
package final class SharedList: SharedObject {
    package static let typeName = "SharedList"
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

    package func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        switch call.method {
        case "add":
            try call.arity(1, "add(element)")
            items.append(try call.value(0, "element"))
            return .value(.bool(true))
        case "insert":
            try call.arity(2, "insert(element, at)")
            let i = try call.index(1, "at", count: items.count + 1)
            items.insert(try call.value(0, "element"), at: i)
            return .void
        case "addAll":
            try call.arity(1, "addAll(elements)")
            let l = try call.list(0, "elements")
            items.append(contentsOf: l)
            return .value(.bool(!l.isEmpty))
        case "get":
            try call.arity(1, "get(index)")
            return .value(items[try call.index(0, "index", count: items.count)])
        case "set":
            try call.arity(2, "set(index, element)")
            let i = try call.index(0, "index", count: items.count)
            let old = items[i]
            items[i] = try call.value(1, "element")
            return .value(old)
        case "removeAt":
            try call.arity(1, "removeAt(index)")
            return .value(items.remove(at: try call.index(0, "index", count: items.count)))
        case "remove":
            try call.arity(1, "remove(element)")
            guard let i = items.firstIndex(of: try call.value(0, "element")) else { return .value(.bool(false)) }
            items.remove(at: i)
            return .value(.bool(true))
        case "contains":
            try call.arity(1, "contains(element)")
            return .value(.bool(items.contains(try call.value(0, "element"))))
        case "indexOf":
            try call.arity(1, "indexOf(element)")
            return .value(.int(Int64(items.firstIndex(of: try call.value(0, "element")) ?? -1)))
        case "size":
            try call.arity(0, "size()")
            return .value(.int(Int64(items.count)))
        case "isEmpty":
            try call.arity(0, "isEmpty()")
            return .value(.bool(items.isEmpty))
        case "clear":
            try call.arity(0, "clear()")
            items.removeAll()
            return .void
        case "getAll":
            try call.arity(0, "getAll()")
            return .value(.list(items))
        case "subList":
            try call.arity(2, "subList(from, to)")
            let from = try call.index(0, "from", count: items.count + 1)
            let to = try call.index(1, "to", count: items.count + 1)
            guard from <= to else { throw CrucialError(.outOfRange, "SharedList.subList: from \(from) > to \(to)") }
            return .value(.list(Array(items[from..<to])))
        default:
            throw call.unknownMethod([
                "add", "insert", "addAll", "get", "set", "removeAt", "remove", "contains", "indexOf", "size", "isEmpty",
                "clear", "getAll", "subList",
            ])
        }
    }
}

/// A set with `java.util.Set`'s methods.
package final class SharedSet: SharedObject {
    package static let typeName = "SharedSet"
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

    package func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        switch call.method {
        case "add":
            try call.arity(1, "add(element)")
            return .value(.bool(items.insert(try call.value(0, "element")).inserted))
        case "addAll":
            try call.arity(1, "addAll(elements)")
            let before = items.count
            items.formUnion(try call.list(0, "elements"))
            return .value(.bool(items.count != before))
        case "remove":
            try call.arity(1, "remove(element)")
            return .value(.bool(items.remove(try call.value(0, "element")) != nil))
        case "contains":
            try call.arity(1, "contains(element)")
            return .value(.bool(items.contains(try call.value(0, "element"))))
        case "size":
            try call.arity(0, "size()")
            return .value(.int(Int64(items.count)))
        case "isEmpty":
            try call.arity(0, "isEmpty()")
            return .value(.bool(items.isEmpty))
        case "clear":
            try call.arity(0, "clear()")
            items.removeAll()
            return .void
        case "getAll":
            try call.arity(0, "getAll()")
            return .value(.list(items.sorted()))
        default:
            throw call.unknownMethod(["add", "addAll", "remove", "contains", "size", "isEmpty", "clear", "getAll"])
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

    static var mapMethodNames: [String] {
        [
            "put", "get", "getOrDefault", "remove", "containsKey", "size", "isEmpty", "clear", "keys", "values",
            "entries", "putIfAbsent", "replace", "compareAndReplace", "merge", "putAll", "mergeAll",
        ]
    }

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

    private func pairArgument(_ call: Call, _ i: Int) throws(CrucialError) -> [(Value, Value)] {
        var out: [(Value, Value)] = []
        for pair in try call.list(i, "entries") {
            guard case .list(let kv) = pair, kv.count == 2 else {
                throw .badArguments("\(call.ref.type).\(call.method): entries must be [key, value] pairs")
            }
            out.append((kv[0], kv[1]))
        }
        return out
    }

    /// Runs a map method; returns nil for a method this class does not know.
    mutating func runMapMethod(_ call: inout Call) throws(CrucialError) -> Response? {
        switch call.method {
        case "put":
            try call.arity(2, "put(key, value)")
            let key = try call.value(0, "key")
            let old = map[key]
            map[key] = try call.value(1, "value")
            return .value(old ?? .null)
        case "get":
            try call.arity(1, "get(key)")
            return .value(map[try call.value(0, "key")] ?? .null)
        case "getOrDefault":
            try call.arity(2, "getOrDefault(key, defaultValue)")
            let fallback = try call.value(1, "defaultValue")
            return .value(map[try call.value(0, "key")] ?? fallback)
        case "remove":
            try call.arity(1, "remove(key)")
            let key = try call.value(0, "key")
            let old = map[key]
            map[key] = nil
            return .value(old ?? .null)
        case "containsKey":
            try call.arity(1, "containsKey(key)")
            return .value(.bool(map[try call.value(0, "key")] != nil))
        case "size":
            try call.arity(0, "size()")
            return .value(.int(Int64(map.count)))
        case "isEmpty":
            try call.arity(0, "isEmpty()")
            return .value(.bool(map.count == 0))
        case "clear":
            try call.arity(0, "clear()")
            map.removeAll()
            return .void
        case "keys":
            try call.arity(0, "keys()")
            return .value(.list(map.entries.map(\.key)))
        case "values":
            try call.arity(0, "values()")
            return .value(.list(map.entries.map(\.value)))
        case "entries":
            try call.arity(0, "entries()")
            return .value(Self.pairs(map.entries))
        case "putIfAbsent":
            try call.arity(2, "putIfAbsent(key, value)")
            let key = try call.value(0, "key")
            if let existing = map[key] { return .value(existing) }
            map[key] = try call.value(1, "value")
            return .value(.null)
        case "replace":
            try call.arity(2, "replace(key, value)")
            let key = try call.value(0, "key")
            guard let old = map[key] else { return .value(.null) }
            map[key] = try call.value(1, "value")
            return .value(old)
        case "compareAndReplace":
            try call.arity(3, "compareAndReplace(key, expect, update)")
            let key = try call.value(0, "key")
            guard map[key] == (try call.value(1, "expect")) else { return .value(.bool(false)) }
            map[key] = try call.value(2, "update")
            return .value(.bool(true))
        case "merge":
            try call.arity(3, "merge(key, value, op)")
            let key = try call.value(0, "key"), value = try call.value(1, "value")
            let op = try MergeOperation.parse(call, 2)
            let merged = try map[key].map { old throws(CrucialError) in try op.apply(old, value, call) } ?? value
            map[key] = merged
            return .value(merged)
        case "putAll":
            try call.arity(1, "putAll(entries)")
            for (k, v) in try pairArgument(call, 0) { map[k] = v }
            return .void
        case "mergeAll":
            try call.arity(2, "mergeAll(entries, op)")
            let op = try MergeOperation.parse(call, 1)
            let entries = try pairArgument(call, 0)
            // Validate every merge before applying any, so a bad entry changes nothing.
            var staged = Storage()
            for (k, v) in entries {
                let base = staged[k] ?? map[k]
                staged[k] = try base.map { old throws(CrucialError) in try op.apply(old, v, call) } ?? v
            }
            for (k, v) in staged.entries { map[k] = v }
            return .void
        default:
            return nil
        }
    }
}

/// A hash map with `java.util.Map`'s methods and server-side `merge`.
package final class SharedMap: SharedObject {
    package static let typeName = "SharedMap"
    var core: MapCore<[Value: Value]>

    package init(initial: Value) throws(CrucialError) { core = try MapCore(typeName: Self.typeName, initial: initial) }

    package func snapshot() -> Value { core.snapshot() }

    package func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        if let r = try core.runMapMethod(&call) { return r }
        throw call.unknownMethod(MapCore<[Value: Value]>.mapMethodNames)
    }
}

/// A map sorted by key (the ``Value`` order), with `top(k)` and range queries.
package final class SharedSortedMap: SharedObject {
    package static let typeName = "SharedSortedMap"
    var core: MapCore<SortedStorage>
    private var map: SortedStorage { core.map }

    package init(initial: Value) throws(CrucialError) { core = try MapCore(typeName: Self.typeName, initial: initial) }

    package func snapshot() -> Value { core.snapshot() }

    private func entry(_ i: Int) -> Value { .list([map.keys[i], map.values[i]]) }

    package func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        if let r = try core.runMapMethod(&call) { return r }
        let n = map.count
        switch call.method {
        case "firstKey":
            try call.arity(0, "firstKey()")
            return .value(map.keys.first ?? .null)
        case "lastKey":
            try call.arity(0, "lastKey()")
            return .value(map.keys.last ?? .null)
        case "top":
            try call.arity(1, "top(k)")
            let k = min(try call.count(0, "k"), n)
            return .value(.list((0..<k).map { entry(n - 1 - $0) }))
        case "head":
            try call.arity(1, "head(k)")
            let k = min(try call.count(0, "k"), n)
            return .value(.list((0..<k).map { entry($0) }))
        case "range":
            try call.arity(2, "range(from, to)")
            let lo = map.lowerBound(try call.value(0, "from")), hi = map.lowerBound(try call.value(1, "to"))
            return .value(.list(lo < hi ? (lo..<hi).map { entry($0) } : []))
        case "floorKey":
            try call.arity(1, "floorKey(key)")
            let key = try call.value(0, "key")
            let i = map.lowerBound(key)
            if i < n, map.keys[i] == key { return .value(key) }
            return .value(i > 0 ? map.keys[i - 1] : .null)
        case "ceilingKey":
            try call.arity(1, "ceilingKey(key)")
            let i = map.lowerBound(try call.value(0, "key"))
            return .value(i < n ? map.keys[i] : .null)
        default:
            throw call.unknownMethod(MapCore<SortedStorage>.mapMethodNames + ["firstKey", "lastKey", "top", "head", "range", "floorKey", "ceilingKey"])
        }
    }
}
