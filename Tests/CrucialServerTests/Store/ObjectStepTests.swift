import CrucialCore
@testable import CrucialServerCore
import Testing

/// The per-object state machine, driven with hand-made contexts: no store, no cluster, no
/// log, no socket. Each test checks the decision's values and what the step did to the box.
@Suite("One call on an object, as a state machine")
struct ObjectStepTests {
    private let recorder = Recorder()

    private func box(_ type: String, initial: Value = .null, persistent: Bool = true) throws -> BoxState {
        let ref = ObjectRef(type: type, key: "k")
        let object = try TypeRegistry.builtins.make(type, initial: initial) { "unknown" }
        return BoxState(ref: ref, object: object, persistent: persistent)
    }

    private func step(
        _ box: inout BoxState, _ method: String, _ args: [Value] = [], create: Create? = nil, client: UInt64 = 0, seq: UInt64 = 0,
        request: UInt64 = 1, in context: StepContext = StepContext()
    ) -> Decision {
        let invoke = Invoke(id: request, ref: box.ref, method: method, args: args, create: create, clientID: client, seq: seq)
        let waiter = Waiter(id: WaiterID(connection: ConnectionID(1), request: request), clientID: client, seq: seq, responder: recorder)
        let call = Call(ref: box.ref, method: method, args: args, waiter: waiter)
        return box.step(.invoke(invoke, call), in: context)
    }

    private let cluster = StepContext(routedIn: 7, clustered: true)

    @Test("On a single server a write is answered now: nothing to replicate, log or wait for")
    func singleServerWrite() throws {
        var b = try box("AtomicLong", initial: 1)
        let d = step(&b, "addAndGet", [2])
        #expect(d.outcome == .value(3))
        #expect(d.replicate.isEmpty && d.log == nil && !d.awaitsEarlierReplication && !d.awaitsLastRecord)
        #expect(b.version == .zero)
    }

    @Test("With persistence a write is logged and a read is not")
    func logging() throws {
        var b = try box("AtomicLong", initial: 1)
        let d = step(&b, "incrementAndGet", request: 9, in: StepContext(logged: true))
        guard case .invoke(let method, _, _, _, let connection, let request)? = d.log else {
            Issue.record("expected an invoke record, got \(String(describing: d.log))")
            return
        }
        #expect(method == "incrementAndGet" && connection == 1 && request == 9)
        #expect(step(&b, "get", in: StepContext(logged: true)).log == nil)
    }

    @Test("In a cluster a write gets the next version in the view it was routed in and goes to the replicas")
    func clusterWrite() throws {
        var b = try box("AtomicLong", initial: 0)
        b.version = ObjectVersion(view: 3, index: 4)
        let d = step(&b, "incrementAndGet", in: cluster)
        #expect(d.outcome == .value(1))
        #expect(b.version == ObjectVersion(view: 7, index: 5))
        #expect(d.replicate.count == 1)
        if case .invoke(let sent)? = d.replicate.first?.0 { #expect(sent.method == "incrementAndGet") }
        #expect(d.replicate.first?.1 == ObjectVersion(view: 7, index: 5))
        // A read waits for the replication under way instead of sending anything.
        let read = step(&b, "get", in: cluster)
        #expect(read.outcome == .value(1) && read.replicate.isEmpty && read.awaitsEarlierReplication)
        #expect(b.version == ObjectVersion(view: 7, index: 5))
    }

    @Test("A copy just created here sends its creation to the replicas, even with a read")
    func creationIsReplicated() throws {
        var b = try box("AtomicLong", initial: 5)
        let d = step(&b, "get", create: Create(initial: 5, persistent: true), in: cluster)
        #expect(d.outcome == .value(5) && d.replicate.count == 1 && !d.awaitsEarlierReplication)
        #expect(b.version == ObjectVersion(view: 7, index: 1))
    }

    @Test("Persistent synchronizers are replicated like any persistent object; ephemeral objects are not")
    func whatIsReplicated() throws {
        var latch = try box("CountDownLatch", initial: 2)
        #expect(step(&latch, "countDown", in: cluster).replicate.count == 1)
        var barrier = try box("CyclicBarrier", initial: 2)
        let parked = step(&barrier, "await", client: 3, seq: 1, in: cluster)
        #expect(parked.outcome == nil && parked.replicate.count == 1)  // a waiting party is state
        var ephemeral = try box("AtomicLong", initial: 0, persistent: false)
        #expect(step(&ephemeral, "incrementAndGet", in: cluster).replicate.isEmpty)
        #expect(ephemeral.version == .zero)
    }

    @Test("A retried wait takes its own party's place: the barrier does not count it twice")
    func takeOver() throws {
        var barrier = try box("CyclicBarrier", initial: 3)
        #expect(step(&barrier, "await", client: 3, seq: 1, request: 1).outcome == nil)
        let retried = step(&barrier, "await", client: 3, seq: 1, request: 2)
        #expect(retried.outcome == nil && barrier.object.waiterCount == 1)
        // The party is now the retry's: a third party opens the barrier, answering request 2.
        #expect(step(&barrier, "await", client: 4, seq: 1, request: 3).outcome == nil)
        let last = step(&barrier, "await", client: 5, seq: 1, request: 4)
        #expect(last.outcome == .value(.int(0)))
        #expect(last.effects.wakeups.map(\.0.id.request) == [2, 3])
    }

    @Test("An event that changes the state sends the whole state at the next version and logs it; one that does not, nothing")
    func events() throws {
        var semaphore = try box("Semaphore", initial: 0)
        semaphore.version = ObjectVersion(view: 3, index: 4)
        let parked = step(&semaphore, "tryAcquire", [1, 50], client: 2, seq: 1, request: 5, in: cluster)
        #expect(parked.outcome == nil)
        let context = StepContext(routedIn: 7, clustered: true, logged: true)
        let expired = semaphore.step(.timedOut(WaiterID(connection: ConnectionID(1), request: 5)), in: context)
        #expect(expired.effects.wakeups.map(\.1) == [.value(.bool(false))])
        #expect(expired.replicate.map(\.1) == [ObjectVersion(view: 7, index: 6)])
        guard case .install(let state)? = expired.replicate.first?.0, case .install(let logged)? = expired.log else {
            Issue.record("expected the whole state to the replicas and the log")
            return
        }
        #expect(state == logged && state.state == .int(0))
        // The answer is recorded for a retry: the timed-out acquire is not queued again.
        #expect(semaphore.retries.lookup(client: 2, seq: 1, ackedBelow: 0) == .value(.bool(false)))
        // Nothing parked on that connection any more: nothing to send.
        let again = semaphore.step(.connectionClosed(ConnectionID(1)), in: context)
        #expect(again.replicate.isEmpty && again.log == nil && semaphore.version == ObjectVersion(view: 7, index: 6))
        // A latch's waiter is not state: its timeout wakes it and sends nothing.
        var latch = try box("CountDownLatch", initial: 1)
        #expect(step(&latch, "await", [50], request: 6, in: cluster).outcome == nil)
        let latchExpired = latch.step(.timedOut(WaiterID(connection: ConnectionID(1), request: 6)), in: context)
        #expect(latchExpired.effects.wakeups.count == 1 && latchExpired.replicate.isEmpty && latchExpired.log == nil)
    }

    @Test("After a change that missed a replica, the next call sends the whole state first, at the version before it")
    func syncFirst() throws {
        var b = try box("AtomicLong", initial: 10)
        b.version = ObjectVersion(view: 7, index: 2)
        b.needsSync = true
        let d = step(&b, "addAndGet", [1], in: cluster)
        #expect(d.replicate.count == 2)
        guard case .install(let state)? = d.replicate.first?.0 else {
            Issue.record("expected a whole-state sync first")
            return
        }
        #expect(state.state == .int(10))
        #expect(d.replicate.map(\.1) == [ObjectVersion(view: 7, index: 2), ObjectVersion(view: 7, index: 3)])
        #expect(!b.needsSync)
    }

    @Test("A retry gets the recorded answer without running again, and waits for what its first attempt sent")
    func retry() throws {
        var b = try box("AtomicLong", initial: 0)
        let context = StepContext(routedIn: 7, clustered: true, logged: true)
        #expect(step(&b, "incrementAndGet", client: 4, seq: 1, in: context).outcome == .value(1))
        let again = step(&b, "incrementAndGet", client: 4, seq: 1, request: 2, in: context)
        #expect(again.outcome == .value(1))
        #expect(again.log == nil && again.awaitsLastRecord)
        // The replicas may have missed the first attempt: they get the whole state.
        guard case .install(let state)? = again.replicate.first?.0 else {
            Issue.record("expected a whole-state sync for the retry")
            return
        }
        #expect(state.state == .int(1))
        #expect(b.version == ObjectVersion(view: 7, index: 1))
    }

    @Test("Refusals change nothing: a changed view, copies away, a failed log, full memory, an incompatible create")
    func refusals() throws {
        var b = try box("AtomicLong", initial: 0)
        var changed = cluster
        changed.viewChanged = true
        #expect(step(&b, "incrementAndGet", in: changed).outcome?.errorCode == .wrongView)
        var away = cluster
        away.away = CrucialError(.unavailable, "away")
        #expect(step(&b, "incrementAndGet", in: away).outcome?.errorCode == .unavailable)
        let failedLog = StepContext(logged: true, logFailure: CrucialError(.internal, "disk"))
        #expect(step(&b, "incrementAndGet", in: failedLog).outcome?.errorCode == .internal)
        #expect(step(&b, "get", in: failedLog).outcome == .value(0))  // reads go on
        #expect(b.object.snapshot() == .int(0) && b.version == .zero)
        var barrier = try box("CyclicBarrier", initial: 2)
        #expect(step(&barrier, "await", create: Create(initial: 3)).outcome?.errorCode == .badInitialState)
        #expect(barrier.object.waiterCount == 0)

        let full = StepContext(memoryFull: CrucialError(.resourceExhausted, "full"))
        var list = try box("SharedList", initial: .list([]))
        #expect(step(&list, "add", ["x"], in: full).outcome?.errorCode == .resourceExhausted)
        #expect(step(&list, "clear", in: full).outcome == .void)  // shrinking is allowed
        #expect(step(&b, "incrementAndGet", in: full).outcome == .value(1))  // a fixed-size object does not grow
    }

    @Test("A barrier's first party parks; the last wakes it, and the wake-up is a value to carry out")
    func parkAndWake() throws {
        var barrier = try box("CyclicBarrier", initial: 2)
        let first = step(&barrier, "await", client: 3, seq: 1, request: 1)
        #expect(first.outcome == nil && first.effects.wakeups.isEmpty)
        let last = step(&barrier, "await", client: 4, seq: 1, request: 2)
        #expect(last.outcome != nil)
        #expect(last.effects.wakeups.map(\.0.id.request) == [1])
        #expect(recorder.all.isEmpty)  // nobody was answered: the store does that after the lock
        // The woken call's answer is recorded for its retry.
        #expect(barrier.retries.lookup(client: 3, seq: 1, ackedBelow: 0) == last.effects.wakeups.first?.1)
    }

    @Test("A bounded wait asks for a timer instead of arming one")
    func timerAsValue() throws {
        var semaphore = try box("Semaphore", initial: 0)
        let d = step(&semaphore, "tryAcquire", [1, 50])
        #expect(d.outcome == nil)
        #expect(d.effects.timers.map(\.1) == [.milliseconds(50)])
    }
}

extension Outcome {
    fileprivate var errorCode: CrucialError.Code? {
        if case .error(let e) = self { return e.code }
        return nil
    }
}
