public import CrucialShared

/// The second build of CrucialTestPlugin's `plugin.Tally`: the same method table (so the
/// same fingerprint), another body, and a state with one more property, declared with a
/// value: the first build's states lack it and decode with that value.
@Shared(name: "plugin.Tally")
public struct Tally {
    var count: Int
    /// The calls this build has run (absent from the first build's state).
    var calls: Int = 0

    public init() { count = 0 }

    /// Adds `n`; answers the new count and this build's number (2).
    public mutating func add(_ n: Int) -> [Int] {
        count += n
        calls += 1
        return [count, 2]
    }

    public func total() -> Int { count }
}

@_cdecl("crucial_plugin_entry")
public func crucialPluginEntry() -> UnsafeRawPointer {
    CrucialPlugin.export(Tally.self)
}
