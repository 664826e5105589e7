// A random forest (the journal version of the Crucial paper ports Smile's): threads grow
// CART trees (Gini impurity, a bootstrap sample per tree, a random subset of features at
// each split) and add them to a shared forest with their out-of-bag votes; the forest
// predicts by majority vote. Tree t's randomness comes from the seed and t alone, so the
// forest is the same whatever the number of threads.
// apps/randomforest/plain runs it with plain threads, apps/randomforest/crucial on Crucial.
import ArgumentParser
import Crucial
import Foundation

@Shared
final class Forest {
    var trees: [Int: Tree] = [:]
    var oobVotes: [[Int]]
    var labels: [Int]

    init(labels: [Int], classes: Int) {
        oobVotes = Array(repeating: Array(repeating: 0, count: classes), count: labels.count)
        self.labels = labels
    }

    func add(_ index: Int, _ tree: Tree, oob: [[Int]]) {
        trees[index] = tree
        for pair in oob { oobVotes[pair[0]][pair[1]] += 1 }
    }

    func all() -> [Tree] {
        return trees.keys.sorted().map { trees[$0]! }
    }

    func oobError() -> Double {
        return Model.oobError(oobVotes, labels: labels)
    }
}

struct Worker: Runnable {
    var id: Int
    var threads: Int
    var settings: Settings
    var forest: Forest.Shared

    func run() async throws {
        let data = Model.prepare(Dataset.generate(settings), settings)
        for t in stride(from: id, to: settings.trees, by: threads) {
            let (tree, oob) = Model.grow(tree: t, data, settings)
            try await forest.add(t, tree, oob: oob)
        }
    }
}

/// A CART tree as flat arrays: node i splits on `feature[i]` at `threshold[i]` (left: <=),
/// or is a leaf (`feature[i] == -1`) predicting `label[i]`.
struct Tree: Codable, Sendable, Equatable {
    var feature: [Int] = []
    var threshold: [Double] = []
    var left: [Int] = []
    var right: [Int] = []
    var label: [Int] = []

    func predict(_ x: [Double]) -> Int {
        var node = 0
        while feature[node] >= 0 { node = x[feature[node]] <= threshold[node] ? left[node] : right[node] }
        return label[node]
    }
}

struct Settings: Codable, Sendable {
    var samples: Int
    var testSamples: Int
    var informative: Int
    var redundant: Int
    var noise: Int
    var classes: Int
    var trees: Int
    var maxDepth: Int
    var minLeaf: Int
    var featuresPerSplit: Int
    var seed: UInt64
    var features: Int { informative + redundant + noise }
}

/// A classification data set in the manner of scikit-learn's make_classification: each
/// class a Gaussian cluster around a vertex of a hypercube (side 2) in the informative
/// features, redundant features as random linear combinations of them, then noise
/// features; 5 % of the labels are then drawn at random.
/// tools/experiments/randomforest.py generates the same numbers with numpy.
enum Dataset {
    static func generate(_ s: Settings) -> (x: [[Double]], y: [Int]) {
        var rng = Random(seed: s.seed)
        let centres = (0..<s.classes).map { _ in (0..<s.informative).map { _ in rng.unit() < 0.5 ? -1.0 : 1.0 } }
        let mix = (0..<s.redundant).map { _ in (0..<s.informative).map { _ in rng.unit() * 2 - 1 } }
        var x: [[Double]] = [], y: [Int] = []
        for i in 0..<(s.samples + s.testSamples) {
            let cls = i % s.classes
            let informative = centres[cls].map { $0 + rng.gaussian() * 1.5 }
            let redundant = mix.map { w in zip(w, informative).reduce(0) { $0 + $1.0 * $1.1 } }
            let noise = (0..<s.noise).map { _ in rng.gaussian() }
            x.append(informative + redundant + noise)
            y.append(rng.unit() < 0.05 ? Int(rng.next() % UInt64(s.classes)) : cls)
        }
        return (x, y)
    }
}

enum Model {
    /// Grows tree `t` on a bootstrap sample of the training rows; returns it and its
    /// out-of-bag predictions (sample, class).
    /// The training rows as the splits read them: per feature, each row's rank among the
    /// feature's distinct values, and those values in order.
    struct Training: Sendable {
        var x: [[Double]]
        var y: [Int]
        var ranks: [[UInt32]]  // ranks[f][row]
        var values: [[Double]]  // values[f][rank]
    }

    /// Ranks every training row by every feature, once for all the trees.
    static func prepare(_ data: (x: [[Double]], y: [Int]), _ s: Settings) -> Training {
        var ranks: [[UInt32]] = [], values: [[Double]] = []
        for f in 0..<s.features {
            let column = data.x.prefix(s.samples).map { $0[f] }
            var rank = [UInt32](repeating: 0, count: column.count), distinct: [Double] = []
            for row in column.indices.sorted(by: { column[$0] < column[$1] }) {
                if distinct.last != column[row] { distinct.append(column[row]) }
                rank[row] = UInt32(distinct.count - 1)
            }
            ranks.append(rank)
            values.append(distinct)
        }
        return Training(x: data.x, y: data.y, ranks: ranks, values: values)
    }

    static func grow(tree t: Int, _ data: Training, _ s: Settings) -> (Tree, [[Int]]) {
        var rng = Random(seed: s.seed &+ 0x5EED &+ UInt64(t) &* 0x9E37_79B9)
        var inBag = [Bool](repeating: false, count: s.samples)
        let rows = (0..<s.samples).map { _ in
            let r = Int(rng.next() % UInt64(s.samples))
            inBag[r] = true
            return r
        }
        var tree = Tree()
        split(rows, depth: 0, data, s, &rng, &tree)
        let oob = (0..<s.samples).filter { !inBag[$0] }.map { [$0, tree.predict(data.x[$0])] }
        return (tree, oob)
    }

    /// Adds the node for `rows` (and its subtree) to `tree`; returns its index.
    @discardableResult
    static func split(_ rows: [Int], depth: Int, _ data: Training, _ s: Settings, _ rng: inout Random, _ tree: inout Tree) -> Int {
        var counts = [Int](repeating: 0, count: s.classes)
        for r in rows { counts[data.y[r]] += 1 }
        let node = tree.feature.count
        tree.feature.append(-1)
        tree.threshold.append(0)
        tree.left.append(-1)
        tree.right.append(-1)
        tree.label.append(counts.indices.max { counts[$0] < counts[$1] || (counts[$0] == counts[$1] && $0 > $1) }!)
        guard depth < s.maxDepth, rows.count >= 2 * s.minLeaf, counts.filter({ $0 > 0 }).count > 1 else { return node }
        // A random subset of the features (a partial Fisher-Yates shuffle).
        var order = Array(0..<s.features)
        for i in 0..<min(s.featuresPerSplit, s.features) { order.swapAt(i, i + Int(rng.next() % UInt64(s.features - i))) }
        var best: (gini: Double, feature: Int, threshold: Double) = (gini(counts, rows.count), -1, 0)
        for f in order.prefix(s.featuresPerSplit) {
            // The rows by value, as integers `rank << 8 | class` (the order of equal values does
            // not matter: a split falls only between two different values), both sides' class
            // counts and sums of squared counts kept as rows cross over.
            let rank = data.ranks[f], values = data.values[f]
            var sorted = rows.map { rank[$0] << 8 | UInt32(data.y[$0]) }
            radixSort(&sorted, below: UInt32(values.count) << 8)
            var leftCounts = [Int](repeating: 0, count: s.classes), rightCounts = counts
            var leftSquares = 0, rightSquares = counts.reduce(0) { $0 + $1 * $1 }
            for i in 0..<(sorted.count - 1) {
                let y = Int(sorted[i] & 0xFF)
                leftSquares += 2 * leftCounts[y] + 1
                leftCounts[y] += 1
                rightSquares -= 2 * rightCounts[y] - 1
                rightCounts[y] -= 1
                let nLeft = i + 1, nRight = sorted.count - nLeft
                let a = sorted[i] >> 8, b = sorted[i + 1] >> 8
                guard a < b, nLeft >= s.minLeaf, nRight >= s.minLeaf else { continue }
                let leftGini = 1 - Double(leftSquares) / Double(nLeft * nLeft), rightGini = 1 - Double(rightSquares) / Double(nRight * nRight)
                let g = (Double(nLeft) * leftGini + Double(nRight) * rightGini) / Double(sorted.count)
                if g < best.gini - 1e-12 { best = (g, f, (values[Int(a)] + values[Int(b)]) / 2) }
            }
        }
        guard best.feature >= 0 else { return node }
        let goesLeft = rows.filter { data.x[$0][best.feature] <= best.threshold }
        let goesRight = rows.filter { data.x[$0][best.feature] > best.threshold }
        tree.feature[node] = best.feature
        tree.threshold[node] = best.threshold
        let l = split(goesLeft, depth: depth + 1, data, s, &rng, &tree)
        let r = split(goesRight, depth: depth + 1, data, s, &rng, &tree)
        tree.left[node] = l
        tree.right[node] = r
        return node
    }

    /// Sorts `keys` (each less than `limit`) in ascending order: least-significant-digit radix
    /// passes of 11 bits, as many as `limit` needs; the standard sort for a few keys.
    static func radixSort(_ keys: inout [UInt32], below limit: UInt32) {
        guard keys.count > 256 else { return keys.sort() }
        let bits = UInt32.bitWidth - limit.leadingZeroBitCount
        var from = keys, to = keys
        for shift in stride(from: 0, to: bits, by: 11) {
            var start = [Int](repeating: 0, count: 2049)
            for k in from { start[Int((k >> UInt32(shift)) & 2047) + 1] += 1 }
            for b in 1...2048 { start[b] += start[b - 1] }
            for k in from {
                let b = Int((k >> UInt32(shift)) & 2047)
                to[start[b]] = k
                start[b] += 1
            }
            swap(&from, &to)
        }
        keys = from
    }

    static func gini(_ counts: [Int], _ n: Int) -> Double {
        guard n > 0 else { return 0 }
        return 1 - counts.reduce(0) { $0 + Double($1 * $1) } / Double(n * n)
    }

    static func vote(_ trees: [Tree], _ x: [Double], classes: Int) -> Int {
        var votes = [Int](repeating: 0, count: classes)
        for t in trees { votes[t.predict(x)] += 1 }
        return votes.indices.max { votes[$0] < votes[$1] || (votes[$0] == votes[$1] && $0 > $1) }!
    }

    /// The share of training rows with out-of-bag votes whose majority is wrong.
    static func oobError(_ votes: [[Int]], labels: [Int]) -> Double {
        var wrong = 0, voted = 0
        for (i, v) in votes.enumerated() where v.reduce(0, +) > 0 {
            voted += 1
            let cls = v.indices.max { v[$0] < v[$1] || (v[$0] == v[$1] && $0 > $1) }!
            if cls != labels[i] { wrong += 1 }
        }
        return Double(wrong) / Double(max(1, voted))
    }

    /// FNV-1a of the trees' nodes, in tree order: equal forests, equal fingerprints.
    static func fingerprint(_ trees: [Tree]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: UInt64) {
            var v = v
            for _ in 0..<8 {
                h = (h ^ (v & 0xff)) &* 0x0000_0100_0000_01b3
                v >>= 8
            }
        }
        for t in trees {
            for i in t.feature.indices {
                mix(UInt64(bitPattern: Int64(t.feature[i])))
                mix(t.threshold[i].bitPattern)
                mix(UInt64(bitPattern: Int64(t.label[i])))
            }
        }
        return String(h, radix: 16)
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
struct RandomForest: AsyncParsableCommand, CrucialProgram {
    static var sharedTypes: [any SharedType.Type] { [Forest.self] }
    @Option(help: "Threads.") var threads = 4
    @Option(help: "Trees.") var trees = 64
    @Option(help: "Training rows.") var samples = 20_000
    @Option(help: "Held-out rows.") var testSamples = 5_000
    @Option(help: "Informative features.") var informative = 10
    @Option(help: "Redundant features (combinations of the informative ones).") var redundant = 5
    @Option(help: "Noise features.") var noise = 5
    @Option(help: "Classes.") var classes = 2
    @Option(help: "Most depth of a tree.") var maxDepth = 12
    @Option(help: "Fewest rows in a leaf.") var minLeaf = 2
    @Option(help: "Features tried at each split (0: the square root of their number).") var featuresPerSplit = 0
    @Option(help: "Seed of the data and the trees.") var seed: UInt64 = 1
    @Option(help: "Write the data set to this CSV file (features, then the label) and stop.") var dumpData: String?

    func validate() throws {
        guard (2...256).contains(classes), (1..<(1 << 24)).contains(samples) else {
            throw ValidationError("--classes must be 2 to 256 and --samples 1 to 16,777,215")
        }
    }

    func run() async throws {
        var settings = Settings(
            samples: samples, testSamples: testSamples, informative: informative, redundant: redundant, noise: noise, classes: classes,
            trees: trees, maxDepth: maxDepth, minLeaf: minLeaf, featuresPerSplit: featuresPerSplit, seed: seed)
        if settings.featuresPerSplit == 0 { settings.featuresPerSplit = max(1, Int(Double(settings.features).squareRoot())) }
        if let dumpData {
            let data = Dataset.generate(settings)
            let rows = zip(data.x, data.y).map { x, y in (x.map { "\($0)" } + ["\(y)"]).joined(separator: ",") }
            return try (rows.joined(separator: "\n") + "\n").write(toFile: dumpData, atomically: true, encoding: .utf8)
        }
        let forest = Forest.Shared(Forest(labels: Array(Dataset.generate(settings).y.prefix(samples)), classes: classes))
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in 0..<threads {
                let worker = Worker(id: id, threads: threads, settings: settings, forest: forest)
                group.addTask { try await worker.runInCloud() }
            }
            try await group.waitForAll()
        }
        let seconds = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        let grown = try await forest.all()
        let data = Dataset.generate(settings)
        let test = samples..<(samples + testSamples)
        let correct = test.filter { Model.vote(grown, data.x[$0], classes: classes) == data.y[$0] }.count
        print(String(format: "trained %d trees in %.2f s", grown.count, seconds))
        print(
            String(
                format: "accuracy = %.4f, oob error = %.4f, forest %@", Double(correct) / Double(max(1, testSamples)), try await forest.oobError(),
                Model.fingerprint(grown)))
    }
}
