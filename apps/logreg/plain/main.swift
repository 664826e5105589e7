// Logistic regression trained by batch gradient descent (§6.2.2 of the Crucial paper):
// each thread computes the gradient of the logistic loss on its share of the points,
// the shared gradient of the iteration sums them, a barrier ends the iteration, and
// every thread then takes the same step. apps/logreg/plain runs it with plain threads,
// apps/logreg/crucial on Crucial.
import AppKernels
import ArgumentParser
import Foundation
import Synchronization

final class GlobalGradient: @unchecked Sendable {
    private let lock = NSLock()
    var sum: [Double]
    var loss = 0.0
    var count = 0

    init(dims: Int) {
        sum = Array(repeating: 0, count: dims)
    }

    func add(_ gradient: [Double], loss partialLoss: Double, count partialCount: Int) {
        lock.lock()
        defer { lock.unlock() }
        for d in sum.indices { sum[d] += gradient[d] }
        loss += partialLoss
        count += partialCount
    }

    func mean() -> [Double] {
        lock.lock()
        defer { lock.unlock() }
        return sum.map { $0 / Double(max(1, count)) } + [loss / Double(max(1, count))]
    }
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

/// A shared double, named and shaped after java.util.concurrent's atomics, as the paper's Java programs use them.
final class AtomicDouble: Sendable {
    private let value = Mutex(0.0)
    func set(_ x: Double) { value.withLock { $0 = x } }
    func get() -> Double { value.withLock { $0 } }
}

/// The shared state of one run: the gradient of each iteration, and the barrier.
struct SharedState: Sendable {
    var gradients: [GlobalGradient]
    var barrier: CyclicBarrier
    var seconds: AtomicDouble

    init(threads: Int, iterations: Int, dims: Int) {
        gradients = (0..<iterations).map { _ in GlobalGradient(dims: dims) }
        barrier = CyclicBarrier(parties: threads)
        seconds = AtomicDouble()
    }
}

struct Worker: Sendable {
    var id: Int
    var dims: Int
    var points: Int
    var iterations: Int
    var rate: Double
    var seed: UInt64
    var shared: SharedState

    func run() async throws {
        let (xs, ys) = Data.points(count: points, dims: dims, seed: seed &+ UInt64(id) &* 7919)
        let matrix = DenseMatrix(xs)
        var weights = [Double](repeating: 0, count: dims)
        await shared.barrier.await()  // every thread has its data: the iterative phase starts
        let start = Date()
        for iteration in 0..<iterations {
            let (gradient, loss) = Kernels.logisticGradient(matrix, ys, weights)
            shared.gradients[iteration].add(gradient, loss: loss, count: points)
            await shared.barrier.await()
            let mean = shared.gradients[iteration].mean()
            for d in 0..<dims { weights[d] -= rate * mean[d] }
        }
        if id == 0 { shared.seconds.set(Date().timeIntervalSince(start)) }
    }
}

/// Labelled points as spark-perf generates them: features ~ N(0, 1), and the label of
/// a point is 1 with the logistic probability of a hidden weight vector.
enum Data {
    static func points(count: Int, dims: Int, seed: UInt64) -> (x: [[Double]], y: [Double]) {
        var hidden = Random(seed: 42)
        let truth = (0..<dims).map { _ in hidden.gaussian() }
        var rng = Random(seed: seed)
        var xs: [[Double]] = [], ys: [Double] = []
        for _ in 0..<count {
            let x = (0..<dims).map { _ in rng.gaussian() }
            let p = 1 / (1 + exp(-zip(truth, x).reduce(0) { $0 + $1.0 * $1.1 }))
            xs.append(x)
            ys.append(rng.unit() < p ? 1 : 0)
        }
        return (xs, ys)
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
struct LogisticRegression: AsyncParsableCommand {
    @Option(help: "Threads.") var threads = 4
    @Option(help: "Features of a point.") var dims = 100
    @Option(help: "Points per thread.") var points = 10_000
    @Option(help: "Iterations of gradient descent.") var iterations = 100
    @Option(help: "Learning rate.") var rate = 1.0
    @Option(help: "Seed of the generated data.") var seed: UInt64 = 1

    func run() async throws {
        let shared = SharedState(threads: threads, iterations: iterations, dims: dims)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in 0..<threads {
                let worker = Worker(id: id, dims: dims, points: points, iterations: iterations, rate: rate, seed: seed, shared: shared)
                group.addTask { try await worker.run() }
            }
            try await group.waitForAll()
        }
        let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        var losses: [Double] = []
        for g in shared.gradients { losses.append(g.mean().last ?? 0) }
        for (i, l) in losses.enumerated() where i % max(1, iterations / 10) == 0 { print(String(format: "iteration %d: loss %.6f", i + 1, l)) }
        print(String(format: "loss = %.9f after %.2f s (%d iterations in %.3f s)", losses.last ?? 0, seconds, iterations, shared.seconds.get()))
        guard losses.count < 2 || losses.last! < losses.first! else { throw ValidationError("the loss did not decrease") }
    }
}
