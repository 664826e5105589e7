public import CrucialClient

/// The paper's k-means `GlobalCentroids` (Listing 2), reduced: partial sums and
/// counts per cluster, merged on the server.
@Shared
public final class TestCentroids {
    var sums: [[Double]]
    var counts: [Int]
    var updates = 0

    public init(k: Int, dims: Int) {
        sums = Array(repeating: Array(repeating: 0, count: dims), count: k)
        counts = Array(repeating: 0, count: k)
    }

    /// Adds one worker's partial sums and counts.
    public func update(_ partial: [[Double]], counts partialCounts: [Int]) throws {
        guard partial.count == sums.count, partialCounts.count == counts.count else {
            throw CentroidError.shapeMismatch(expected: sums.count, got: partial.count)
        }
        for c in sums.indices {
            guard partial[c].count == sums[c].count else { throw CentroidError.shapeMismatch(expected: sums[c].count, got: partial[c].count) }
            for d in sums[c].indices { sums[c][d] += partial[c][d] }
            counts[c] += partialCounts[c]
        }
        updates += 1
    }

    /// The mean of each cluster (zeros for an empty one).
    public func centroids() -> [[Double]] {
        zip(sums, counts).map { sum, n in n == 0 ? sum.map { _ in 0 } : sum.map { $0 / Double(n) } }
    }

    public func updateCount() -> Int { updates }

    /// Not shipped: private methods stay local.
    private func reset() { updates = 0 }
}

public enum CentroidError: Error, CustomStringConvertible {
    case shapeMismatch(expected: Int, got: Int)
    public var description: String {
        switch self {
        case .shapeMismatch(let expected, let got): "partial has \(got) rows or columns where \(expected) were expected"
        }
    }
}

/// A struct type: `mutating` methods write, the others only read.
@Shared(name: "test.Tally")
public struct Tally: Equatable {
    public var total: Int64 = 0
    public var history: [String] = []

    public init() {}

    @discardableResult
    public mutating func add(_ amount: Int64, note: String = "") -> Int64 {
        total += amount
        if !note.isEmpty { history.append(note) }
        return total
    }

    public func current() -> Int64 { total }

    public func notes(last n: Int) -> [String] { Array(history.suffix(n)) }

    public func snapshot() -> Tally { self }
}
