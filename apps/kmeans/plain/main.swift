// k-means (Listing 2 of the Crucial paper): threads assign their points to the nearest
// centroid and add their partial sums to shared centroids, a shared delta counts the
// points that changed cluster, and a barrier ends each iteration. A per-thread
// iteration counter lets a restarted thread resume where it stopped.
// apps/kmeans/plain runs it with plain threads, apps/kmeans/crucial on Crucial.
import AppKernels
import ArgumentParser
import Foundation
import Synchronization

final class GlobalCentroids: @unchecked Sendable {
    private let lock = NSLock()
    var sums: [[Double]]
    var counts: [Int]

    init(_ centroids: [[Double]], weight: Int) {
        sums = centroids
        counts = centroids.map { _ in weight }
    }

    func update(_ partial: [[Double]], counts partialCounts: [Int]) {
        lock.lock()
        defer { lock.unlock() }
        for c in sums.indices {
            for d in sums[c].indices { sums[c][d] += partial[c][d] }
            counts[c] += partialCounts[c]
        }
    }

    func centroids() -> [[Double]] {
        lock.lock()
        defer { lock.unlock() }
        return zip(sums, counts).map { sum, n in n == 0 ? [] : sum.map { $0 / Double(n) } }  // [] for an empty cluster
    }
}

// Shared counters named and shaped after java.util.concurrent's, as the paper's Java programs use them.
final class AtomicLong: Sendable {
    private let value = Atomic<Int64>(0)
    @discardableResult func addAndGet(_ delta: Int64) -> Int64 { value.wrappingAdd(delta, ordering: .relaxed).newValue }
    func get() -> Int64 { value.load(ordering: .relaxed) }
    func set(_ v: Int64) { value.store(v, ordering: .relaxed) }
}

final class AtomicDouble: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0.0
    @discardableResult func addAndGet(_ x: Double) -> Double { lock.withLock { value += x; return value } }
    func get() -> Double { lock.withLock { value } }
}

/// Threads meet here each iteration (an actor: a waiting task blocks no thread).
actor CyclicBarrier {
    private let parties: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []
    init(parties: Int) { self.parties = parties }
    func await() async {
        if waiting.count + 1 == parties {
            for w in waiting { w.resume() }
            waiting = []
        } else {
            await withCheckedContinuation { waiting.append($0) }
        }
    }
}

/// The shared state of one run: per iteration the centroids being summed and the delta.
struct SharedState: Sendable {
    var threads: Int
    var centroids: [GlobalCentroids]
    var deltas: [AtomicLong]
    var progress: [AtomicLong]
    var barrier: CyclicBarrier
    var cost: AtomicDouble
    var seconds: AtomicDouble

    init(threads: Int, iterations: Int, initial: [[Double]]) {
        self.threads = threads
        let zero = initial.map { $0.map { _ in 0.0 } }
        centroids = [GlobalCentroids(initial, weight: 1)] + (0..<iterations).map { _ in GlobalCentroids(zero, weight: 0) }
        deltas = (0..<iterations).map { _ in AtomicLong() }
        progress = (0..<threads).map { _ in AtomicLong() }
        barrier = CyclicBarrier(parties: threads)
        cost = AtomicDouble()
        seconds = AtomicDouble()
    }
}

struct Worker: Sendable {
    var id: Int
    var k: Int
    var dims: Int
    var points: Int
    var iterations: Int
    var seed: UInt64
    var shared: SharedState

    func run() async throws {
        let data = Data.points(count: points, dims: dims, k: k, seed: seed &+ UInt64(id) &* 7919)
        let matrix = DenseMatrix(data), norms = Kernels.rowNorms(matrix)
        var membership = [Int](repeating: -1, count: points)
        var iteration = Int(shared.progress[id].get())  // a restarted thread resumes
        if iteration == 0 { await shared.barrier.await() }  // every thread has its data: the iterative phase starts
        let start = Date()
        var current = shared.centroids[iteration].centroids()
        while iteration < iterations {
            let (partial, counts, changed) = Kernels.assign(matrix, norms: norms, centroids: current, membership: &membership)
            shared.centroids[iteration + 1].update(partial, counts: counts)
            shared.deltas[iteration].addAndGet(changed)
            await shared.barrier.await()
            current = zip(shared.centroids[iteration + 1].centroids(), current).map { $0.isEmpty ? $1 : $0 }
            iteration += 1
            shared.progress[id].set(Int64(iteration))
            if shared.deltas[iteration - 1].get() == 0 { break }
        }
        if id == 0 { shared.seconds.addAndGet(Date().timeIntervalSince(start)) }
        shared.cost.addAndGet(data.reduce(0) { $0 + Data.distance($1, current[Data.nearest($1, current)]) })
    }
}

/// Clustered points: `k` centres in [0, 100)^dims, points normally spread around them.
enum Data {
    static func points(count: Int, dims: Int, k: Int, seed: UInt64) -> [[Double]] {
        var centres = Random(seed: 42)
        let means = (0..<k).map { _ in (0..<dims).map { _ in centres.unit() * 100 } }
        var rng = Random(seed: seed)
        return (0..<count).map { _ in
            let m = means[Int(rng.next() % UInt64(k))]
            return m.map { $0 + rng.gaussian() * 5 }
        }
    }

    static func distance(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in a.indices { s += (a[i] - b[i]) * (a[i] - b[i]) }
        return s
    }

    static func nearest(_ p: [Double], _ centroids: [[Double]]) -> Int {
        var best = 0, bestDistance = Double.infinity
        for (c, centroid) in centroids.enumerated() {
            let d = distance(p, centroid)
            if d < bestDistance { (best, bestDistance) = (c, d) }
        }
        return best
    }
}

struct Random {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = (state ^ (state >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Double { Double(next() >> 11) / 9_007_199_254_740_992 }
    mutating func gaussian() -> Double { (-2 * log(max(unit(), 1e-300))).squareRoot() * cos(2 * .pi * unit()) }
}

@main
struct KMeans: AsyncParsableCommand {
    @Option(help: "Threads.") var threads = 4
    @Option(help: "Clusters.") var k = 25
    @Option(help: "Dimensions of a point.") var dims = 100
    @Option(help: "Points per thread.") var points = 10_000
    @Option(help: "Most iterations.") var iterations = 10
    @Option(help: "Seed of the generated data.") var seed: UInt64 = 1

    func run() async throws {
        let initial = Array(Data.points(count: k, dims: dims, k: k, seed: seed))
        let shared = SharedState(threads: threads, iterations: iterations, initial: initial)
        let start = ContinuousClock.now
        // Progress every 200 ms, and once more at the end: a short run may finish between two looks.
        func everyThreadDone() -> Int64 {
            var done = Int64.max
            for p in shared.progress { done = min(done, p.get()) }
            return done
        }
        let reporter = Task { () -> Int64 in
            var last: Int64 = 0
            while (try? await Task.sleep(for: .milliseconds(200))) != nil {
                let done = everyThreadDone()
                if done > last { print("iteration \(done) done by every thread"); last = done }
            }
            return last
        }
        defer { reporter.cancel() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in 0..<threads {
                let worker = Worker(id: id, k: k, dims: dims, points: points, iterations: iterations, seed: seed, shared: shared)
                group.addTask { try await worker.run() }
            }
            try await group.waitForAll()
        }
        reporter.cancel()
        let done = everyThreadDone()
        if done > (await reporter.value) { print("iteration \(done) done by every thread") }
        let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        print(String(format: "objective = %.6e after %.2f s (%lld iterations in %.3f s)", shared.cost.get(), seconds, shared.progress[0].get(), shared.seconds.get()))
    }
}
