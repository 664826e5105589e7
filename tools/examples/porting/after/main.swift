// The program of tools/examples/porting/before on Crucial: the workers are cloud
// threads, the object they share lives on the DSO servers. docs/PORTING.md explains.
import Crucial
import Foundation

@Shared
final class GlobalCentroids {
    var sums: [[Double]]
    var counts: [Int]

    init(k: Int, dims: Int) {
        sums = Array(repeating: Array(repeating: 0, count: dims), count: k)
        counts = Array(repeating: 0, count: k)
    }

    func update(_ partial: [[Double]], counts partialCounts: [Int]) {
        for c in sums.indices {
            for d in sums[c].indices { sums[c][d] += partial[c][d] }
            counts[c] += partialCounts[c]
        }
    }

    func centroids() -> [[Double]] {
        return zip(sums, counts).map { sum, n in sum.map { n == 0 ? 0 : $0 / Double(n) } }
    }
}

/// Assigns its share of points to the nearest of `k` fixed seeds, then adds its partial sums.
struct Worker: Runnable {
    var id: Int
    var points: Int
    var centroids: GlobalCentroids.Shared

    func run() async throws {
        let seeds: [[Double]] = [[0, 0], [10, 0], [0, 10], [10, 10]]
        var partial = seeds.map { $0.map { _ in 0.0 } }
        var counts = seeds.map { _ in 0 }
        var state = UInt64(id + 1)
        for _ in 0..<points {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let x = Double(state >> 40 % 11), y = Double(state >> 20 % 11)
            let c = seeds.indices.min { hypot(seeds[$0][0] - x, seeds[$0][1] - y) < hypot(seeds[$1][0] - x, seeds[$1][1] - y) } ?? 0
            partial[c][0] += x
            partial[c][1] += y
            counts[c] += 1
        }
        try await centroids.update(partial, counts: counts)
    }
}

@main
struct Main: CrucialProgram {
    static var sharedTypes: [any SharedType.Type] { [GlobalCentroids.self] }

    func run() async throws {
        let centroids = GlobalCentroids.Shared(GlobalCentroids(k: 4, dims: 2))
        let workers = (0..<8).map { Worker(id: $0, points: 100_000, centroids: centroids) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in workers { group.addTask { try await worker.runInCloud() } }
            try await group.waitForAll()
        }
        print(try await centroids.centroids())
    }
}
