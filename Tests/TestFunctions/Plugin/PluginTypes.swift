public import CrucialShared

/// A type only a plugin brings: servers learn it when the plugin is loaded.
@Shared(name: "plugin.Histogram")
public struct Histogram {
    var buckets: [Int]
    var width: Double

    public init(buckets: Int, width: Double) {
        self.buckets = Array(repeating: 0, count: buckets)
        self.width = width
    }

    /// Counts each sample in its bucket; samples beyond the last go to the last.
    public mutating func add(_ samples: [Double]) throws -> Int {
        for x in samples {
            guard x >= 0, x.isFinite else { throw HistogramError.negative(x) }
            buckets[min(buckets.count - 1, Int(x / width))] += 1
        }
        return buckets.reduce(0, +)
    }

    public func counts() -> [Int] { buckets }
}

public enum HistogramError: Error, CustomStringConvertible {
    case negative(Double)
    public var description: String {
        switch self {
        case .negative(let x): "sample \(x) is not a non-negative number"
        }
    }
}

/// A counter whose code the tests replace while it serves (CrucialTestPluginV2 and V3
/// bring other builds of it). Each answer says which build computed it.
@Shared(name: "plugin.Tally")
public struct Tally {
    var count: Int

    public init() { count = 0 }

    /// Adds `n`; answers the new count and this build's number (1).
    public mutating func add(_ n: Int) -> [Int] {
        count += n
        return [count, 1]
    }

    public func total() -> Int { count }
}

@_cdecl("crucial_plugin_entry")
public func crucialPluginEntry() -> UnsafeRawPointer {
    CrucialPlugin.export(Histogram.self, Tally.self)
}
