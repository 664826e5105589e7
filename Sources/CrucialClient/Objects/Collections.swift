/// A shared list with `java.util.List`'s methods.
public struct SharedList<Element: Codable & Sendable>: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A proxy for the object named `key`, created empty on first use. Persistent objects outlive the application.
    public init(_ key: String = "", persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.sharedList.typeName, key: key, initial: .list([]), persistent: persistent, client: client)
    }

    /// Appends `element`.
    public func add(_ element: Element) async throws { _ = try await handle.call(ListMethod.add(element: encodeArgument(element))) }
    /// Inserts `element` at `index` (`0...size()`).
    public func insert(_ element: Element, at index: Int) async throws {
        _ = try await handle.call(ListMethod.insert(element: encodeArgument(element), at: Index(index)))
    }
    /// Adds every element of `elements`, in one call.
    public func addAll(_ elements: [Element]) async throws { _ = try await handle.call(ListMethod.addAll(elements: elements.map(encodeArgument))) }
    /// The element at `index`; OUT_OF_RANGE outside `0..<size()`.
    public func get(_ index: Int) async throws -> Element { try await handle.call(ListMethod.get(index: Index(index))).decode() }
    /// Replaces the element at `index`; returns the old one.
    @discardableResult
    public func set(_ index: Int, _ element: Element) async throws -> Element {
        try await handle.call(ListMethod.set(index: Index(index), element: encodeArgument(element))).decode()
    }
    /// Removes the element at `index`; returns it.
    @discardableResult
    public func remove(at index: Int) async throws -> Element { try await handle.call(ListMethod.removeAt(index: Index(index))).decode() }
    /// Removes the first occurrence of `element`; answers whether there was one.
    @discardableResult
    public func remove(_ element: Element) async throws -> Bool { try await handle.call(ListMethod.remove(element: encodeArgument(element))).bool() }
    /// Whether `element` is there.
    public func contains(_ element: Element) async throws -> Bool {
        try await handle.call(ListMethod.contains(element: encodeArgument(element))).bool()
    }
    /// The index of the first occurrence of `element`, or nil.
    public func firstIndex(of element: Element) async throws -> Int? {
        let i = try await handle.call(ListMethod.indexOf(element: encodeArgument(element))).int()
        return i < 0 ? nil : i
    }
    /// The number of elements.
    public func size() async throws -> Int { try await handle.call(ListMethod.size).int() }
    /// Whether there are none.
    public func isEmpty() async throws -> Bool { try await handle.call(ListMethod.isEmpty).bool() }
    /// Removes every element.
    public func clear() async throws { _ = try await handle.call(ListMethod.clear) }
    /// Every element, in one call.
    public func elements() async throws -> [Element] { try await handle.call(ListMethod.getAll).list().map { try $0.decode() } }
    /// The Java name of ``elements()``.
    @available(*, deprecated, renamed: "elements()")
    public func getAll() async throws -> [Element] { try await elements() }
    /// The elements in `range`.
    public func subList(_ range: Range<Int>) async throws -> [Element] {
        try await handle.call(ListMethod.subList(from: Index(range.lowerBound), to: Index(range.upperBound)))
            .list().map { try $0.decode() }
    }
}

/// A shared set with `java.util.Set`'s methods (elements compare by their encoded form).
public struct SharedSet<Element: Codable & Hashable & Sendable>: SharedProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A proxy for the object named `key`, created empty on first use. Persistent objects outlive the application.
    public init(_ key: String = "", persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.sharedSet.typeName, key: key, initial: .list([]), persistent: persistent, client: client)
    }

    /// Answers whether `element` was new.
    @discardableResult
    public func add(_ element: Element) async throws -> Bool { try await handle.call(SetMethod.add(element: encodeArgument(element))).bool() }
    /// Adds every element of `elements`, in one call.
    @discardableResult
    public func addAll(_ elements: [Element]) async throws -> Bool {
        try await handle.call(SetMethod.addAll(elements: elements.map(encodeArgument))).bool()
    }
    /// Removes `element`; answers whether it was there.
    @discardableResult
    public func remove(_ element: Element) async throws -> Bool { try await handle.call(SetMethod.remove(element: encodeArgument(element))).bool() }
    /// Whether `element` is there.
    public func contains(_ element: Element) async throws -> Bool {
        try await handle.call(SetMethod.contains(element: encodeArgument(element))).bool()
    }
    /// The number of elements.
    public func size() async throws -> Int { try await handle.call(SetMethod.size).int() }
    /// Whether there are none.
    public func isEmpty() async throws -> Bool { try await handle.call(SetMethod.isEmpty).bool() }
    /// Removes every element.
    public func clear() async throws { _ = try await handle.call(SetMethod.clear) }
    /// Every element, in one call.
    public func elements() async throws -> Set<Element> { Set(try await handle.call(SetMethod.getAll).list().map { try $0.decode() }) }
    /// The Java name of ``elements()``.
    @available(*, deprecated, renamed: "elements()")
    public func getAll() async throws -> Set<Element> { try await elements() }
}

/// The methods of ``SharedMap`` and ``SharedSortedMap`` (`java.util.Map`, plus server-side merge).
public protocol SharedMapProxy: SharedProxy {
    associatedtype Key: Codable & Hashable & Sendable
    associatedtype MapValue: Codable & Sendable
}

extension SharedMapProxy {
    /// Stores `value`; returns the previous value.
    @discardableResult
    public func put(_ key: Key, _ value: MapValue) async throws -> MapValue? {
        try await handle.call(MapMethod.put(key: encodeArgument(key), value: encodeArgument(value))).decodeOptional()
    }
    /// The value of `key`, or nil.
    public func get(_ key: Key) async throws -> MapValue? {
        try await handle.call(MapMethod.get(key: encodeArgument(key))).decodeOptional()
    }
    /// The value of `key`, or `defaultValue`.
    public func get(_ key: Key, default defaultValue: MapValue) async throws -> MapValue {
        try await handle.call(MapMethod.getOrDefault(key: encodeArgument(key), defaultValue: encodeArgument(defaultValue))).decode()
    }
    /// Removes `key`; returns its value.
    @discardableResult
    public func remove(_ key: Key) async throws -> MapValue? { try await handle.call(MapMethod.remove(key: encodeArgument(key))).decodeOptional() }
    /// Whether `key` has a value.
    public func containsKey(_ key: Key) async throws -> Bool {
        try await handle.call(MapMethod.containsKey(key: encodeArgument(key))).bool()
    }
    /// The number of elements.
    public func size() async throws -> Int { try await handle.call(MapMethod.size).int() }
    /// Whether there are none.
    public func isEmpty() async throws -> Bool { try await handle.call(MapMethod.isEmpty).bool() }
    /// Removes every element.
    public func clear() async throws { _ = try await handle.call(MapMethod.clear) }
    /// Every key.
    public func keys() async throws -> [Key] { try await handle.call(MapMethod.keys).list().map { try $0.decode() } }
    /// Every value.
    public func values() async throws -> [MapValue] { try await handle.call(MapMethod.values).list().map { try $0.decode() } }
    /// Every entry.
    public func entries() async throws -> [(key: Key, value: MapValue)] {
        try await handle.call(MapMethod.entries).pairs(Key.self, MapValue.self).map { (key: $0.0, value: $0.1) }
    }
    /// Stores `value` only if `key` is absent; returns the existing value, or nil if it stored.
    @discardableResult
    public func putIfAbsent(_ key: Key, _ value: MapValue) async throws -> MapValue? {
        try await handle.call(MapMethod.putIfAbsent(key: encodeArgument(key), value: encodeArgument(value))).decodeOptional()
    }
    /// Replaces the value of `key` only if present; returns the old value.
    @discardableResult
    public func replace(_ key: Key, _ value: MapValue) async throws -> MapValue? {
        try await handle.call(MapMethod.replace(key: encodeArgument(key), value: encodeArgument(value))).decodeOptional()
    }
    /// Replaces the value of `key` only if it is `expect`; answers whether it did.
    public func replace(_ key: Key, expect: MapValue, update: MapValue) async throws -> Bool {
        try await handle.call(MapMethod.compareAndReplace(key: encodeArgument(key), expect: encodeArgument(expect), update: encodeArgument(update))).bool()
    }
    /// Combines `value` into the entry for `key` on the server (or stores it if absent); returns the result.
    @discardableResult
    public func merge(_ key: Key, _ value: MapValue, _ op: MergeOperation) async throws -> MapValue {
        try await handle.call(MapMethod.merge(key: encodeArgument(key), value: encodeArgument(value), op: op)).decode()
    }
    /// Stores every entry of `entries`, in one call.
    public func putAll(_ entries: [Key: MapValue]) async throws {
        _ = try await handle.call(MapMethod.putAll(entries: Entries(entries.map { (try encodeArgument($0.key), try encodeArgument($0.value)) })))
    }
    /// Merges many entries in one call; if any merge is invalid, nothing changes.
    public func mergeAll(_ entries: [Key: MapValue], _ op: MergeOperation) async throws {
        _ = try await handle.call(MapMethod.mergeAll(entries: Entries(entries.map { (try encodeArgument($0.key), try encodeArgument($0.value)) }), op: op))
    }
}

/// A shared hash map.
///
/// ```swift
/// let wordCounts = SharedMap<String, Int>("counts")
/// try await wordCounts.merge("serverless", 1, .sum)
/// ```
public struct SharedMap<Key: Codable & Hashable & Sendable, MapValue: Codable & Sendable>: SharedMapProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A proxy for the object named `key`, created empty on first use. Persistent objects outlive the application.
    public init(_ key: String = "", persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.sharedMap.typeName, key: key, initial: .list([]), persistent: persistent, client: client)
    }
}

/// A shared map kept sorted by key, with ``top(_:)`` and range queries. Keys order
/// as numbers, strings or bytes do; mixed kinds order by kind.
public struct SharedSortedMap<Key: Codable & Hashable & Sendable, MapValue: Codable & Sendable>: SharedMapProxy, Codable {
    /// The object this proxy stands for.
    public let handle: SharedObjectHandle
    /// A proxy over `handle` (what `keyed(_:)` makes).
    public init(handle: SharedObjectHandle) { self.handle = handle }

    /// A proxy for the object named `key`, created empty on first use. Persistent objects outlive the application.
    public init(_ key: String = "", persistent: Bool = false, client: CrucialClient = .shared) {
        handle = SharedObjectHandle(type: BuiltinType.sharedSortedMap.typeName, key: key, initial: .list([]), persistent: persistent, client: client)
    }

    private func entryList(_ v: Value) throws -> [(key: Key, value: MapValue)] {
        try v.pairs(Key.self, MapValue.self).map { (key: $0.0, value: $0.1) }
    }

    /// The `k` entries with the greatest keys, greatest first.
    public func top(_ k: Int) async throws -> [(key: Key, value: MapValue)] {
        try entryList(await handle.call(SortedMapMethod.top(k: Count(k))))
    }
    /// The `k` entries with the smallest keys, smallest first.
    public func head(_ k: Int) async throws -> [(key: Key, value: MapValue)] {
        try entryList(await handle.call(SortedMapMethod.head(k: Count(k))))
    }
    /// The entries with `range.lowerBound <= key < range.upperBound`, in order.
    public func range(from lower: Key, to upper: Key) async throws -> [(key: Key, value: MapValue)] {
        try entryList(await handle.call(SortedMapMethod.range(from: encodeArgument(lower), to: encodeArgument(upper))))
    }
    /// The smallest key, or nil when empty.
    public func firstKey() async throws -> Key? { try await handle.call(SortedMapMethod.firstKey).decodeOptional() }
    /// The greatest key, or nil when empty.
    public func lastKey() async throws -> Key? { try await handle.call(SortedMapMethod.lastKey).decodeOptional() }
    /// The greatest key ≤ `key`.
    public func floorKey(_ key: Key) async throws -> Key? {
        try await handle.call(SortedMapMethod.floorKey(key: encodeArgument(key))).decodeOptional()
    }
    /// The smallest key ≥ `key`.
    public func ceilingKey(_ key: Key) async throws -> Key? {
        try await handle.call(SortedMapMethod.ceilingKey(key: encodeArgument(key))).decodeOptional()
    }
}
