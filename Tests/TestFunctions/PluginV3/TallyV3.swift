public import CrucialShared

/// A third build of `plugin.Tally` that cannot take over: its state needs a property the
/// earlier builds' states lack, and its method table differs (a new method).
@Shared(name: "plugin.Tally")
public struct Tally {
    var count: Int
    var label: String

    public init() {
        count = 0
        label = ""
    }

    public mutating func add(_ n: Int) -> [Int] {
        count += n
        return [count, 3]
    }

    public func total() -> Int { count }

    public mutating func rename(_ label: String) { self.label = label }
}

@_cdecl("crucial_plugin_entry")
public func crucialPluginEntry() -> UnsafeRawPointer {
    CrucialPlugin.export(Tally.self)
}
