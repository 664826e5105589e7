import CrucialCore
@testable import CrucialServerCore
import NIOCore
import Testing

/// Persistent synchronizers on `rf` copies, in process: their waiting parties are part of the
/// replicated state, a party's retry takes its place on the next primary, and the events only
/// the primary sees (timeouts, closed connections, clients gone) reach the replicas as well.
@Suite("Replicated synchronizers, in process", .timeLimit(.minutes(2)))  // a hang fails, never a slow machine
struct ReplicatedSynchronizerTests {
    /// A key of `type` whose primary in `view` is `primary`.
    static func ref(_ type: BuiltinType, primary: String, in view: View) -> ObjectRef {
        let ring = HashRing(members: view.members)
        let key = (0...).lazy.map { "\(type.typeName.lowercased())-\($0)" }.first { ring.primary(for: ObjectRef(type: type.typeName, key: $0))?.id == primary }!
        return ObjectRef(type: type.typeName, key: key)
    }

    /// Waits (bounded: a hang fails) until `condition` holds.
    static func eventually(_ what: String, _ condition: () -> Bool) async throws {
        for _ in 0..<500 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("never: \(what)")
        throw CrucialError(.timeout, what)
    }

    /// The state of `ref` on every member holding it.
    /// A call parked on a member that crashed: it fails (its connection cut) or is answered
    /// with an error (drained while the member shut down), whichever comes first; it is never
    /// released by the crash.
    static func expectCutOff(_ call: Task<Outcome, any Error>, sourceLocation: SourceLocation = #_sourceLocation) async {
        guard let outcome = try? await call.value else { return }
        if case .error = outcome { return }
        Issue.record("a call parked on the crashed member was answered \(outcome)", sourceLocation: sourceLocation)
    }

    static func states(_ c: InProcessCluster, _ ref: ObjectRef) -> [String: Value] { c.copies(of: ref) }

    @Test("A barrier's waiting parties are on every copy; after its primary's crash a retry takes its own place and none counts twice")
    func barrierAcrossCrash() async throws {
        let c = InProcessCluster(["a", "b", "c"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b", "c"])
        let barrier = Self.ref(.cyclicBarrier, primary: "a", in: v1)
        // One after the other: the arrival order decides the answers (party 1 arrives first).
        let first = Task { try await c.call(barrier, "await", in: v1, seq: 1, client: 1, initial: 3) }
        try await Self.eventually("party 1 waits on a and its replica") {
            let s = Self.states(c, barrier)
            return s.count == 2 && s.values.allSatisfy { $0.recordValue?["waiting"]?.listValue?.count == 1 }
        }
        let second = Task { try await c.call(barrier, "await", in: v1, seq: 1, client: 2, initial: 3) }
        try await Self.eventually("both parties wait on a and its replica") {
            let s = Self.states(c, barrier)
            return s.count == 2 && s.values.allSatisfy { $0.recordValue?["waiting"]?.listValue?.count == 2 }
        }
        c.crash("a")
        // The parties lost their connection to a: each call failed there.
        for t in [first, second] { await Self.expectCutOff(t) }
        let v2 = try await c.serve(2, ["b", "c"])
        // Party 1 retries on the new primary: it takes its own place.
        let retried = Task { try await c.call(barrier, "await", in: v2, seq: 1, client: 1, initial: 3) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await c.call(barrier, "getNumberWaiting", in: v2, seq: 0, client: 9, initial: 3) == .value(.int(2)))
        // The third party opens it; party 2 has not retried yet: its answer waits in the retry table.
        #expect(try await c.call(barrier, "await", in: v2, seq: 1, client: 3, initial: 3) == .value(.int(0)))
        #expect(try await retried.value == .value(.int(2)))
        #expect(try await c.call(barrier, "await", in: v2, seq: 1, client: 2, initial: 3) == .value(.int(1)))
        #expect(try await c.call(barrier, "getNumberWaiting", in: v2, seq: 0, client: 9, initial: 3) == .value(.int(0)))
    }

    @Test("A semaphore's holders and queue survive its primary's crash: no permit is handed out twice, a retried acquire keeps its place")
    func semaphoreAcrossCrash() async throws {
        let c = InProcessCluster(["a", "b", "c"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b", "c"])
        let semaphore = Self.ref(.semaphore, primary: "b", in: v1)
        #expect(try await c.call(semaphore, "acquire", [1], in: v1, seq: 1, client: 1, initial: 1) == .void)
        // One after the other: the queue's order decides who gets the permit (client 2 first).
        let waiting = Task { try await c.call(semaphore, "acquire", [1], in: v1, seq: 1, client: 2, initial: 1) }
        try await Self.eventually("client 2's acquire is queued on b and its replica") {
            let s = Self.states(c, semaphore)
            return s.count == 2 && s.values.allSatisfy { $0.recordValue?["queue"]?.listValue?.count == 1 }
        }
        let bounded = Task { try await c.call(semaphore, "tryAcquire", [1, 60_000], in: v1, seq: 1, client: 3, initial: 1) }
        try await Self.eventually("two acquires queued on b and its replica") {
            let s = Self.states(c, semaphore)
            return s.count == 2 && s.values.allSatisfy { $0.recordValue?["queue"]?.listValue?.count == 2 }
        }
        c.crash("b")
        for t in [waiting, bounded] { await Self.expectCutOff(t) }
        let v2 = try await c.serve(2, ["a", "c"])
        let retried = Task { try await c.call(semaphore, "acquire", [1], in: v2, seq: 1, client: 2, initial: 1) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await c.call(semaphore, "getQueueLength", in: v2, seq: 0, client: 9, initial: 1) == .value(.int(2)))
        #expect(try await c.call(semaphore, "availablePermits", in: v2, seq: 0, client: 9, initial: 1) == .value(.int(0)))
        // Client 1 still holds its permit on the new primary: its release hands it to client 2, first in line.
        #expect(try await c.call(semaphore, "release", [1], in: v2, seq: 2, client: 1, initial: 1) == .void)
        #expect(try await retried.value == .void)
        #expect(try await c.call(semaphore, "availablePermits", in: v2, seq: 0, client: 9, initial: 1) == .value(.int(0)))
        // Client 3 never retried: its turn comes with the next release, recorded for its retry.
        #expect(try await c.call(semaphore, "release", [1], in: v2, seq: 2, client: 2, initial: 1) == .void)
        #expect(try await c.call(semaphore, "tryAcquire", [1, 60_000], in: v2, seq: 1, client: 3, initial: 1) == .value(.bool(true)))
        #expect(try await c.call(semaphore, "availablePermits", in: v2, seq: 0, client: 9, initial: 1) == .value(.int(0)))
    }

    @Test("A latch counted down and a future set before the primary's crash release every retried waiter once, and go on from there")
    func latchAndFutureAcrossCrash() async throws {
        let c = InProcessCluster(["a", "b", "c"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b", "c"])
        let latch = Self.ref(.countDownLatch, primary: "c", in: v1)
        let future = Self.ref(.sharedFuture, primary: "c", in: v1)
        #expect(try await c.call(latch, "countDown", in: v1, seq: 1, client: 1, initial: 2) == .void)
        _ = try await c.call(future, "isDone", in: v1, seq: 0, client: 1, initial: .null)
        let awaiting = Task { try await c.call(latch, "await", in: v1, seq: 0, client: 2, initial: 2) }
        let getting = Task { try await c.call(future, "get", in: v1, seq: 0, client: 3, initial: .null) }
        try await Task.sleep(for: .milliseconds(50))
        c.crash("c")
        for t in [awaiting, getting] { await Self.expectCutOff(t) }
        let v2 = try await c.serve(2, ["a", "b"])
        #expect(try await c.call(latch, "getCount", in: v2, seq: 0, client: 2, initial: 2) == .value(.int(1)))
        let awaitingAgain = Task { try await c.call(latch, "await", in: v2, seq: 0, client: 2, initial: 2) }
        let gettingAgain = Task { try await c.call(future, "get", in: v2, seq: 0, client: 3, initial: .null) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await c.call(latch, "countDown", in: v2, seq: 2, client: 1, initial: 2) == .void)
        #expect(try await c.call(future, "set", ["done"], in: v2, seq: 2, client: 1, initial: .null) == .void)
        #expect(try await awaitingAgain.value == .value(.bool(true)))
        #expect(try await gettingAgain.value == .value(.string("done")))
        // Set once: a second set is refused on the copy that survived.
        guard case .error(let e) = try await c.call(future, "set", ["again"], in: v2, seq: 3, client: 1, initial: .null) else {
            Issue.record("a second set was accepted")
            return
        }
        #expect(e.code == .illegalState)
    }

    @Test("A timeout, a closed connection and a client gone change the primary's state and the replicas' alike")
    func eventsReachTheReplicas() async throws {
        let c = InProcessCluster(["a", "b"], rf: 2)
        let v1 = try await c.serve(1, ["a", "b"])
        // A bounded wait that expires breaks the barrier, on both copies.
        let barrier = Self.ref(.cyclicBarrier, primary: "a", in: v1)
        guard case .error(let timedOut) = try await c.call(barrier, "await", [50], in: v1, seq: 1, client: 1, initial: 2) else {
            Issue.record("a bounded await with nobody else did not time out")
            return
        }
        #expect(timedOut.code == .timeout)
        try await Self.eventually("the barrier is broken on both copies") {
            Self.states(c, barrier).values.filter { $0.recordValue?["broken"] == .bool(true) }.count == 2
        }
        // A waiting acquire whose connection closes is withdrawn, on both copies.
        let semaphore = Self.ref(.semaphore, primary: "a", in: v1)
        #expect(try await c.call(semaphore, "acquire", [1], in: v1, seq: 1, client: 1, initial: 1) == .void)
        let cut = Task { try await c.call(semaphore, "acquire", [1], in: v1, seq: 1, client: 2, initial: 1) }
        try await Self.eventually("the acquire is queued on both copies") {
            Self.states(c, semaphore).values.filter { $0.recordValue?["queue"] != nil }.count == 2
        }
        c.network.cutAll()
        await #expect(throws: (any Error).self) { try await cut.value }
        try await Self.eventually("the acquire is withdrawn on both copies") {
            Self.states(c, semaphore).values.filter { $0.recordValue?["queue"] == nil }.count == 2
        }
        // Client 1 is gone (its lease lapsed): its permit comes back, on both copies.
        c.nodes["a"]!.store.release([(client: 1, holds: [semaphore])])
        try await Self.eventually("the permit is back on both copies") {
            Self.states(c, semaphore).values.filter { $0.recordValue?["permits"] == .int(1) }.count == 2
        }
    }

    @Test("A detached party whose client never comes back is withdrawn by the new primary once the client's lease lapses")
    func goneClientIsWithdrawn() async throws {
        let c = InProcessCluster(["a", "b", "c"], rf: 2, sessionLease: .milliseconds(200))
        let v1 = try await c.serve(1, ["a", "b", "c"])
        let barrier = Self.ref(.cyclicBarrier, primary: "a", in: v1)
        let parked = Task { try await c.call(barrier, "await", in: v1, seq: 1, client: 1, initial: 2) }
        try await Self.eventually("the party waits on both copies") {
            Self.states(c, barrier).values.filter { $0.recordValue?["waiting"] != nil }.count == 2
        }
        c.crash("a")
        _ = try? await parked.value
        let v2 = try await c.serve(2, ["b", "c"])
        let primary = c.nodes[HashRing(members: v2.members).primary(for: barrier)!.id]!
        try await Task.sleep(for: .milliseconds(300))
        primary.store.expireSessions()
        try await Self.eventually("the gone party is withdrawn") {
            Self.states(c, barrier).values.allSatisfy { $0.recordValue?["waiting"]?.listValue?.isEmpty ?? true }
        }
        // A newcomer waits for a real second party instead of passing with the ghost.
        let newcomer = Task { try await c.call(barrier, "await", in: v2, seq: 1, client: 2, initial: 2) }
        try await Self.eventually("the newcomer waits") {
            Self.states(c, barrier).values.allSatisfy { $0.recordValue?["waiting"]?.listValue?.count == 1 }
        }
        #expect(try await c.call(barrier, "getNumberWaiting", in: v2, seq: 0, client: 9, initial: 2) == .value(.int(1)))
        #expect(try await c.call(barrier, "await", in: v2, seq: 1, client: 3, initial: 2) == .value(.int(0)))
        #expect(try await newcomer.value == .value(.int(1)))
    }
}
