// Monte Carlo π (Listing 1 of the Crucial paper): each thread draws random points in
// the unit square and adds those inside the quarter circle to a shared counter.
// apps/montecarlo/plain runs it with plain threads, apps/montecarlo/crucial on Crucial.
import ArgumentParser
import Foundation
import Synchronization

// A counter named and shaped after java.util.concurrent's, as the paper's Java program uses it.
final class AtomicLong: Sendable {
    private let value = Atomic<Int64>(0)
    @discardableResult func addAndGet(_ delta: Int64) -> Int64 { value.wrappingAdd(delta, ordering: .relaxed).newValue }
    func get() -> Int64 { value.load(ordering: .relaxed) }
}

struct Estimator: Sendable {
    var iterations: Int
    var seed: UInt64
    var counter: AtomicLong

    func run() async throws {
        var state = seed
        var inside: Int64 = 0
        for _ in 0..<iterations {
            state &+= 0x9E37_79B9_7F4A_7C15
            let x = Double(mix(state) >> 11) / 9_007_199_254_740_992
            state &+= 0x9E37_79B9_7F4A_7C15
            let y = Double(mix(state) >> 11) / 9_007_199_254_740_992
            if x * x + y * y <= 1 { inside += 1 }
        }
        counter.addAndGet(inside)
    }

    func mix(_ z0: UInt64) -> UInt64 {
        var z = (z0 ^ (z0 >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@main
struct MonteCarlo: AsyncParsableCommand {
    @Option(help: "Threads.") var threads = 8
    @Option(help: "Points drawn by each thread.") var iterations = 10_000_000

    func run() async throws {
        let counter = AtomicLong()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<threads {
                let estimator = Estimator(iterations: iterations, seed: UInt64(t + 1), counter: counter)
                group.addTask { try await estimator.run() }
            }
            for try await _ in group { print("a thread finished") }
        }
        let total = Double(threads) * Double(iterations)
        let pi = 4 * Double(counter.get()) / total
        print(String(format: "pi = %.9f from %.0f points in %.2f s", pi, total, Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000))
        guard abs(pi - Double.pi) < 20 / total.squareRoot() else { throw ValidationError("π is off: \(pi)") }
    }
}
