import CrucialClient
import CrucialExamples
import Foundation
import Synchronization
import Testing

/// A call on a persistent semaphore, latch or future, as the checker sees it. Outputs are
/// `Int64`: 1 and 0 for booleans, the value got from a future (0: not set).
enum SyncInput: Sendable, Hashable {
    case tryAcquire, release
    case countDown, getCount, latchAwait(blocking: Bool)
    case trySet(Int64), get(blocking: Bool)
}

/// The sequential specifications of the three synchronizers.
extension Model where State == Int64, Input == SyncInput, Output == Int64 {
    /// A semaphore with `permits`: a tryAcquire that answers true takes one (never when none
    /// is free: no over-admission), false only when none is free; a release gives one back.
    static func semaphore(permits: Int64) -> Model {
        Model(initial: permits) { free, input, output in
            switch input {
            case .tryAcquire:
                switch output {
                case 1?: free > 0 ? free - 1 : nil
                case 0?: free == 0 ? free : nil
                default: max(free - 1, 0)  // unknown: it may have taken one
                }
            case .release: free + 1
            default: nil
            }
        }
    }

    /// A latch counting down from `count`: the count never goes back up, and an await
    /// answers true only once it is 0 (a blocking one is released then, once).
    static func latch(count: Int64) -> Model {
        Model(initial: count) { left, input, output in
            switch input {
            case .countDown: max(0, left - 1)
            case .getCount: output == nil || output == left ? left : nil
            case .latchAwait: output == nil || output == (left == 0 ? 1 : 0) ? left : nil
            default: nil
            }
        }
    }

    /// A future: set once (a trySet answers true for the first only), and every get after
    /// it sees that value (a blocking one is released then, with it).
    static var future: Model {
        Model(initial: 0) { value, input, output in
            switch input {
            case .trySet(let v):
                switch output {
                case 1?: value == 0 ? v : nil
                case 0?: value != 0 ? value : nil
                default: value == 0 ? v : value
                }
            case .get: output == nil || output == value ? value : nil
            default: nil
            }
        }
    }
}

/// Persistent semaphores, latches and futures stay linearizable across their primary's crash
/// (the checker of ``Linearizability``), and the checker catches a cluster that does not
/// replicate them. Real processes: the crash is a SIGKILL, the clients real ones that retry.
@Suite("Synchronizers stay linearizable across a member's crash (real processes)", .serialized, .timeLimit(.minutes(4)))
struct SynchronizerLinearizabilityTests {
    typealias Recorded = History<SyncInput, Int64>

    /// What the clients did: on semaphores, latches and futures.
    struct Histories {
        var semaphores = Recorded()
        var latches = Recorded()
        var futures = Recorded()
        var answered: Int { [semaphores, latches, futures].reduce(0) { $0 + $1.operations.filter { $0.output != nil }.count } }
    }

    static let permits: Int64 = 2
    static let latchCount: Int64 = 100

    /// Collects the calls of the clients, timed from one origin.
    final class Recorder: Sendable {
        enum Kind { case semaphore, latch, future }
        private struct State {
            var histories = Histories()
            var crashedAt = UInt64.max
            var afterCrash = 0
            var answered = 0
        }
        let origin = ContinuousClock.now
        private let state = Mutex(State())

        func now() -> UInt64 { UInt64((ContinuousClock.now - origin) / .nanoseconds(1)) }

        func record(_ kind: Kind, _ object: String, _ input: SyncInput, _ call: UInt64, _ output: Int64?) {
            let op = Recorded.Operation(object: object, input: input, output: output, call: call, response: output == nil ? .max : now())
            state.withLock { s in
                switch kind {
                case .semaphore: s.histories.semaphores.operations.append(op)
                case .latch: s.histories.latches.operations.append(op)
                case .future: s.histories.futures.operations.append(op)
                }
                guard output != nil else { return }
                s.answered += 1
                if call >= s.crashedAt { s.afterCrash += 1 }
            }
        }

        func crashed() {
            let now = now()
            state.withLock { $0.crashedAt = now }
        }

        var answered: Int { state.withLock { $0.answered } }
        var afterCrash: Int { state.withLock { $0.afterCrash } }
        var hasCrashed: Bool { state.withLock { $0.crashedAt != .max } }
        var histories: Histories { state.withLock { $0.histories } }
    }

    /// Runs 12 clients on 2 semaphores (half the calls), 4 latches and 4 futures, most of
    /// them on b, while member b is SIGKILLed a third of the way in; at least `seconds`,
    /// then until 150 calls made after the crash were answered (at most 60 s).
    static func record(_ cluster: TestCluster, seconds: Double) async throws -> Histories {
        // Objects of each kind on b, which crashes, and others: the crash must matter to some.
        let probe = cluster.client(via: "a")
        try await probe.ping()
        let ring = HashRing(members: try #require(probe.view).members)
        probe.close()
        let key: @Sendable (BuiltinType, String, String) -> String = { type, tag, member in
            (0...).lazy.map { "\(tag)-\($0)" }.first { ring.primary(for: ObjectRef(type: type.typeName, key: $0))?.id == member }!
        }
        let semaphores = [key(.semaphore, "semaphore", "b"), key(.semaphore, "semaphore", "c")]
        let latches = ["b", "b", "b", "a"].enumerated().map { key(.countDownLatch, "latch-\($0.offset)", $0.element) }
        let futures = ["b", "b", "b", "c"].enumerated().map { key(.sharedFuture, "future-\($0.offset)", $0.element) }
        let recorder = Recorder()
        let end = recorder.origin + .seconds(60), minimum = recorder.origin + .seconds(seconds)
        let keepGoing: @Sendable () -> Bool = {
            ContinuousClock.now < end && (ContinuousClock.now < minimum || !recorder.hasCrashed || recorder.afterCrash < 150)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<12 {
                group.addTask {
                    let client = cluster.client(via: "a")
                    defer { client.close() }
                    var rng = SplitMix64(seed: UInt64(500 + t))
                    while keepGoing() {
                        switch rng.next() % 4 {
                        case 0, 1:
                            let key = semaphores[rng.next() % 4 == 0 ? 1 : 0]
                            let semaphore = Semaphore(key, permits: Int(permits), persistent: true, client: client)
                            let call = recorder.now()
                            guard let got = try? await semaphore.tryAcquire() else { return recorder.record(.semaphore, key, .tryAcquire, call, nil) }
                            recorder.record(.semaphore, key, .tryAcquire, call, got ? 1 : 0)
                            guard got else { continue }
                            try? await Task.sleep(for: .milliseconds(20 + Int(rng.next() % 50)))  // some are held at the crash
                            let released = recorder.now()
                            // A release that failed may or may not have happened: this client stops.
                            guard (try? await semaphore.release()) != nil else { return recorder.record(.semaphore, key, .release, released, nil) }
                            recorder.record(.semaphore, key, .release, released, 0)
                        case 2:
                            let key = latches[Int(rng.next() % 4)]
                            let latch = CountDownLatch(key, count: Int(latchCount), persistent: true, client: client)
                            let call = recorder.now()
                            switch rng.next() % 8 {
                            case 0...3: recorder.record(.latch, key, .countDown, call, (try? await latch.countDown()).map { 0 })
                            case 4, 5: recorder.record(.latch, key, .getCount, call, (try? await latch.count()).map { Int64($0) })
                            case 6:
                                recorder.record(.latch, key, .latchAwait(blocking: false), call, (try? await latch.await(timeout: .zero)).map { $0 ? 1 : 0 })
                            default:
                                recorder.record(.latch, key, .latchAwait(blocking: true), call, (try? await latch.await(timeout: .seconds(5))).map { $0 ? 1 : 0 })
                            }
                        default:
                            let key = futures[Int(rng.next() % 4)]
                            let future = SharedFuture<Int64>(key, persistent: true, client: client)
                            let call = recorder.now()
                            switch rng.next() % 8 {
                            case 0:
                                let value = Int64(t + 1) * 1_000_000 + Int64(call % 1_000_000)
                                recorder.record(.future, key, .trySet(value), call, (try? await future.trySet(value)).map { $0 ? 1 : 0 })
                            case 1...6:
                                let got: Int64?
                                do { got = try await future.get(timeout: .zero) } catch let e as CrucialError where e.code == .timeout { got = 0 } catch { got = nil }
                                recorder.record(.future, key, .get(blocking: false), call, got)
                            default:
                                recorder.record(.future, key, .get(blocking: true), call, try? await future.get(timeout: .seconds(5)))
                            }
                        }
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds / 3))
                while recorder.answered < 300 {
                    guard ContinuousClock.now < end else { throw CancellationError() }
                    try await Task.sleep(for: .milliseconds(10))
                }
                await cluster["b"]!.kill9()
                recorder.crashed()
            }
            try await group.waitForAll()
        }
        #expect(recorder.afterCrash >= 150, "only \(recorder.afterCrash) calls made after the crash were answered")
        return recorder.histories
    }

    /// The objects of each kind whose history has no linearization.
    static func violations(_ h: Histories) -> [String] {
        Linearizability.violations(h.semaphores, .semaphore(permits: permits)) + Linearizability.violations(h.latches, .latch(count: latchCount))
            + Linearizability.violations(h.futures, .future)
    }

    @Test("Semaphores admit no more holders than permits, latches and futures release each waiter once, across the primary's SIGKILL")
    func linearizable() async throws {
        let cluster = try await TestCluster()
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let histories = try await Self.record(cluster, seconds: 6)
        // 300 before the crash (it waits for them) and 150 made after it (the run waits for them).
        #expect(histories.answered >= 450, "only \(histories.answered) calls were answered")
        #expect(Self.violations(histories) == [])
    }

    @Test("The checker catches a cluster whose synchronizers are not replicated")
    func brokenReplicationIsCaught() async throws {
        let cluster = try await TestCluster(fault: "skip-replication")
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let histories = try await Self.record(cluster, seconds: 6)
        // What b was the primary of restarts from its initial state elsewhere: permits handed out
        // twice, counts going back up, futures set twice.
        let caught = Self.violations(histories)
        print("the checker caught \(caught.count) objects: \(caught.joined(separator: ", "))")
        #expect(!caught.isEmpty)
    }

    @Test("The synchronizers' models accept what they should and reject over-admission, a count going back up, a second set")
    func models() {
        typealias Op = Recorded.Operation
        let fine: [Op] = [
            .init(object: "s", input: .tryAcquire, output: 1, call: 0, response: 10),
            .init(object: "s", input: .tryAcquire, output: 1, call: 0, response: 10),
            .init(object: "s", input: .tryAcquire, output: 0, call: 20, response: 30),
            .init(object: "s", input: .release, output: 0, call: 40, response: 50),
            .init(object: "s", input: .tryAcquire, output: 1, call: 60, response: 70),
        ]
        #expect(Linearizability.violations(History(operations: fine), .semaphore(permits: 2)) == [])
        let overAdmitted = fine.prefix(2) + [Op(object: "s", input: .tryAcquire, output: 1, call: 20, response: 30)]
        #expect(Linearizability.violations(History(operations: Array(overAdmitted)), .semaphore(permits: 2)) == ["s"])
        let latch: [Op] = [
            .init(object: "l", input: .countDown, output: 0, call: 0, response: 10),
            .init(object: "l", input: .latchAwait(blocking: true), output: 1, call: 5, response: 40),
            .init(object: "l", input: .countDown, output: 0, call: 20, response: 30),
            .init(object: "l", input: .getCount, output: 1, call: 50, response: 60),
        ]
        #expect(Linearizability.violations(History(operations: Array(latch.prefix(3))), .latch(count: 2)) == [])
        #expect(Linearizability.violations(History(operations: latch), .latch(count: 2)) == ["l"])
        let future: [Op] = [
            .init(object: "f", input: .trySet(7), output: 1, call: 0, response: 10),
            .init(object: "f", input: .get(blocking: true), output: 7, call: 5, response: 20),
            .init(object: "f", input: .trySet(8), output: 1, call: 30, response: 40),
        ]
        #expect(Linearizability.violations(History(operations: Array(future.prefix(2))), .future) == [])
        #expect(Linearizability.violations(History(operations: future), .future) == ["f"])
    }
}
