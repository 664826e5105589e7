internal import CrucialClient
public import CrucialLambda

/// The Monte Carlo estimation of π from Listing 1 of the Crucial paper: each cloud
/// thread draws random points in the unit square and adds the number that fall in
/// the quarter circle to one shared AtomicLong, "counter".
///
/// ```swift
/// let threads = (0..<8).map { CloudThread(PiEstimator(iterations: 10_000_000, seed: UInt64($0 + 1))) }
/// for t in threads { t.start() }
/// for t in threads { try await t.join() }
/// let pi = 4 * Double(try await AtomicLong("counter").get()) / 80_000_000
/// ```
public struct PiEstimator: Runnable {
    public var iterations: Int
    public var seed: UInt64
    /// How many times the thread adds its progress to the shared "points-drawn" counter.
    public var reports: Int

    public init(iterations: Int, seed: UInt64, reports: Int = 1) {
        self.iterations = iterations
        self.seed = seed
        self.reports = reports
    }

    public func run() async throws {
        let counter = AtomicLong("counter", initial: 0)
        let progress = AtomicLong("points-drawn", initial: 0)
        var rng = SplitMix64(seed: seed)
        let chunk = max(1, iterations / max(1, reports))
        var done = 0
        while done < iterations {
            let n = min(chunk, iterations - done)
            try await counter.addAndGet(Self.inside(n, &rng))
            try await progress.addAndGet(Int64(n))
            done += n
        }
    }

    /// How many of `n` random points fall in the quarter circle: the work of one thread.
    public static func inside(_ n: Int, _ rng: inout SplitMix64) -> Int64 {
        var inside: Int64 = 0
        for _ in 0..<n {
            let x = rng.nextUnitDouble(), y = rng.nextUnitDouble()
            if x * x + y * y <= 1 { inside += 1 }
        }
        return inside
    }
}

/// A fast, seedable generator, so each thread draws its own reproducible stream.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func nextUnitDouble() -> Double { Double(next() >> 11) * 0x1p-53 }
}
