import Synchronization
import CrucialCore
@testable import CrucialServerCore
import NIOCore
import NIOPosix
import Testing
import CrucialShared

/// Collects the late answers a store delivers.
final class Recorder: Responder {
    let replies = Mutex<[Reply]>([])
    func respond(_ reply: Reply) { replies.withLock { $0.append(reply) } }
    var all: [Reply] { replies.withLock { $0 } }
}

/// An in-process store with helpers to call it as connection `conn` would.
struct Harness {
    let store = ObjectStore(timerLoop: MultiThreadedEventLoopGroup.singleton.next())
    let recorder = Recorder()
    var nextID: UInt64 = 0

    mutating func call(
        _ type: String, _ key: String, _ method: String, _ args: [Value] = [], initial: Value = .null, conn: UInt64 = 1,
        client: UInt64 = 0, seq: UInt64 = 0
    ) -> Outcome? {
        nextID += 1
        let invoke = Invoke(
            id: nextID, ref: ObjectRef(type: type, key: key), method: method, args: args, create: Create(initial: initial),
            clientID: client, seq: seq)
        let waiter = Waiter(id: WaiterID(connection: ConnectionID(conn), request: nextID), clientID: client, seq: seq, responder: recorder)
        return store.invoke(invoke, waiter: waiter).outcome
    }
}

/// A linked user type, for the replica's check of code builds.
@Shared(name: "test.Tally")
struct StoreTally {
    var count = 0
    mutating func add(_ n: Int) -> Int {
        count += n
        return count
    }
}

@Suite("Object store, without sockets")
struct ObjectStoreTests {
    @Test("A replica refuses a call its primary ran with another build of the type's code, asking for the state instead")
    func replicaRefusesAnotherBuild() async {
        var registry = TypeRegistry.builtins
        registry.register(shared: StoreTally.self)
        let store = ObjectStore(registry: registry, timerLoop: MultiThreadedEventLoopGroup.singleton.next())
        let ref = ObjectRef(type: "test.Tally", key: "t")
        func apply(_ index: UInt64, codeBuild: String, create: Bool = false) async -> Outcome {
            let invoke = Invoke(
                id: index, ref: ref, method: "add", args: [.int(1)], create: create ? Create(initial: .record(["count": .int(0)])) : nil,
                clientID: 9, seq: index)
            let replicate = Replicate(
                id: index, viewID: 1, ref: ref, version: ObjectVersion(view: 1, index: index), operation: .invoke(invoke), codeBuild: codeBuild)
            return await withCheckedContinuation { done in store.apply(replicate, currentView: { nil }, done: { done.resume(returning: $0) }) }
        }
        #expect(await apply(1, codeBuild: "", create: true) == .void)  // linked code: build ""
        let refused = await apply(2, codeBuild: "feedfacefeedface")
        guard case .error(let error) = refused else {
            Issue.record("applied a call made with another build: \(refused)")
            return
        }
        #expect(error.code == .illegalState)
        #expect(error.message.contains("runs build (linked) of test.Tally, the primary build feedfacefeedface; send its state"))
        #expect(store.snapshot(ref) == .record(["count": .int(1)]))
        #expect(await apply(2, codeBuild: "") == .void)
        #expect(store.snapshot(ref) == .record(["count": .int(2)]))
    }

    @Test("A retried call with the same (client, seq) is applied once")
    func retriesAreDeduplicated() {
        var h = Harness()
        #expect(h.call("AtomicLong", "c", "addAndGet", [1], client: 5, seq: 1) == .value(1))
        #expect(h.call("AtomicLong", "c", "addAndGet", [1], client: 5, seq: 1) == .value(1))
        #expect(h.call("AtomicLong", "c", "addAndGet", [1], client: 5, seq: 2) == .value(2))
        #expect(h.call("AtomicLong", "c", "addAndGet", [1], client: 6, seq: 1) == .value(3))
        #expect(h.call("AtomicLong", "c", "get") == .value(3))
        #expect(h.store.snapshot(ObjectRef(type: "AtomicLong", key: "c")) == .int(3))
    }

    @Test("A late copy of a request the client already has the answer to is not applied again")
    func lateDuplicateIsRefused() {
        var h = Harness()
        func inc(seq: UInt64, acked: UInt64) -> Outcome? {
            h.nextID += 1
            let invoke = Invoke(
                id: h.nextID, ref: ObjectRef(type: "AtomicLong", key: "c"), method: "incrementAndGet", create: Create(initial: 0),
                clientID: 7, seq: seq, ackedBelow: acked)
            return h.store.invoke(invoke, waiter: Waiter(id: WaiterID(connection: ConnectionID(1), request: h.nextID), clientID: 7, seq: seq, responder: h.recorder)).outcome
        }
        #expect(inc(seq: 1, acked: 1) == .value(1))
        #expect(inc(seq: 2, acked: 2) == .value(2))  // the client has answer 1: it is dropped
        // A copy of request 1, sent on a connection the client gave up on, arrives now.
        guard case .error(let e)? = inc(seq: 1, acked: 1) else {
            Issue.record("a late duplicate must not be applied")
            return
        }
        #expect(e.code == .illegalState && e.message.contains("late duplicate"))
        #expect(inc(seq: 2, acked: 2) == .value(2))  // a real retry still gets its answer
        #expect(h.call("AtomicLong", "c", "get") == .value(2))
    }

    @Test("Offered copies are wanted only when newer than what is here, copy or tombstone")
    func offers() {
        var h = Harness()
        #expect(h.call("AtomicLong", "here", "addAndGet", [1]) == .value(1))
        let here = ObjectRef(type: "AtomicLong", key: "here"), gone = ObjectRef(type: "AtomicLong", key: "gone")
        h.store.tombstones.withLock { $0[gone] = ObjectVersion(view: 5, index: 3) }
        let wanted = h.store.wanted([
            OfferEntry(ref: here, version: .zero),  // as new as ours
            OfferEntry(ref: here, version: ObjectVersion(view: 2, index: 1)),  // newer
            OfferEntry(ref: gone, version: ObjectVersion(view: 5, index: 2)),  // removed since
            OfferEntry(ref: gone, version: ObjectVersion(view: 6, index: 4)),  // re-created after the removal
            OfferEntry(ref: ObjectRef(type: "AtomicLong", key: "new"), version: ObjectVersion(view: 1, index: 1)),
        ])
        #expect(wanted == [1, 3, 4])
    }

    @Test("A barrier answer delivered late is remembered for the retry")
    func lateAnswerIsRemembered() {
        var h = Harness()
        #expect(h.call("CyclicBarrier", "b", "await", initial: 2, conn: 1, client: 1, seq: 1) == nil)
        #expect(h.call("CyclicBarrier", "b", "await", initial: 2, conn: 2, client: 2, seq: 1) == .value(0))
        #expect(h.recorder.all.map(\.outcome) == [.value(1)])
        // Client 1 lost the answer with its connection and retries: it gets the same answer,
        // and does not park in the next generation.
        #expect(h.call("CyclicBarrier", "b", "await", initial: 2, conn: 3, client: 1, seq: 1) == .value(1))
        #expect(h.call("CyclicBarrier", "b", "getNumberWaiting", initial: 2) == .value(0))
    }

    @Test("Semaphore serves waiters first come, first served")
    func semaphoreFIFO() {
        var h = Harness()
        #expect(h.call("Semaphore", "s", "acquire", [2], initial: 0, conn: 1) == nil)
        #expect(h.call("Semaphore", "s", "acquire", [1], initial: 0, conn: 2) == nil)
        // One permit is not enough for the head (2); the second waiter must not overtake it.
        #expect(h.call("Semaphore", "s", "release", [1]) == .void)
        #expect(h.recorder.all.isEmpty)
        #expect(h.call("Semaphore", "s", "release", [2]) == .void)
        #expect(h.recorder.all.map(\.id) == [1, 2])
        #expect(h.call("Semaphore", "s", "availablePermits") == .value(0))
        // A closed connection's waiter is withdrawn and unblocks those behind it.
        #expect(h.call("Semaphore", "s", "acquire", [5], conn: 7) == nil)
        #expect(h.call("Semaphore", "s", "acquire", [1], conn: 8) == nil)
        #expect(h.call("Semaphore", "s", "release", [1]) == .void)
        h.store.connectionClosed(ConnectionID(7), parkedOn: [ObjectRef(type: "Semaphore", key: "s")])
        #expect(h.recorder.all.last?.id == h.nextID - 1)
    }

    @Test("A semaphore's permits belong to their client: released when it is gone, kept when ownerless")
    func permitsHaveOwners() async throws {
        var h = Harness()
        let s = ObjectRef(type: "Semaphore", key: "s")
        #expect(h.call("Semaphore", "s", "acquire", [1], initial: 1, client: 1, seq: 1) == .void)
        #expect(h.call("Semaphore", "s", "acquire", [1], initial: 1, conn: 2, client: 2, seq: 1) == nil)
        // Client 1 keeps itself alive for 50 ms, then falls silent: its permit goes to client 2.
        h.store.keepAlive(session: 0, client: 1, lease: .milliseconds(50))
        h.store.keepAlive(session: 0, client: 2, lease: .seconds(60))
        _ = h.store.expireSessions()
        #expect(h.recorder.all.isEmpty)
        try await Task.sleep(for: .milliseconds(80))
        _ = h.store.expireSessions()
        #expect(h.recorder.all.map(\.outcome) == [.void], "client 2 got the dead client's permit")
        #expect(
            h.store.snapshot(s)
                == .record(["permits": .int(0), "holders": .list([.list([.int(2), .int(1)])]), "reclaimed": .list([.int(1)])]))
        // Client 1 was only slow: its release must not add a permit that never existed.
        if case .error(let e)? = h.call("Semaphore", "s", "release", [1], initial: 1, client: 1, seq: 2) {
            #expect(e.code == .illegalState && e.message.contains("keep-alive lease lapsed"), "\(e)")
        } else {
            Issue.record("a release from a client whose permits were reclaimed must be refused")
        }
        #expect(h.call("Semaphore", "s", "availablePermits", initial: 1) == .value(0))
        // Releasing more than one holds adds permits (signalling, as in Java).
        #expect(h.call("Semaphore", "s", "release", [2], initial: 1, client: 2, seq: 2) == .void)
        #expect(h.call("Semaphore", "s", "availablePermits", initial: 1) == .value(2))
        // Once it acquires again, client 1 is an ordinary holder.
        #expect(h.call("Semaphore", "s", "acquire", [1], initial: 1, client: 1, seq: 3) == .void)
        #expect(h.call("Semaphore", "s", "release", [2], initial: 1, client: 1, seq: 4) == .void)
        #expect(h.call("Semaphore", "s", "availablePermits", initial: 1) == .value(3))
        #expect(h.store.snapshot(s) == .int(3))

        // Ownerless: a dead client's permits stay taken.
        let ownerless: Value = .record(["permits": .int(1), "ownerless": .bool(true)])
        #expect(h.call("Semaphore", "o", "acquire", [1], initial: ownerless, client: 3, seq: 1) == .void)
        h.store.keepAlive(session: 0, client: 3, lease: .milliseconds(10))
        try await Task.sleep(for: .milliseconds(30))
        _ = h.store.expireSessions()
        #expect(h.call("Semaphore", "o", "availablePermits", initial: ownerless) == .value(0))
        // A proxy asking for the other kind is refused.
        if case .error(let e)? = h.call("Semaphore", "o", "availablePermits", initial: 1) { #expect(e.code == .badInitialState) } else {
            Issue.record("an owned proxy on an ownerless semaphore must be refused")
        }
    }

    @Test("Bounded waits time out")
    func timeouts() async throws {
        var h = Harness()
        #expect(h.call("SharedFuture", "f", "get", [20]) == nil)
        #expect(h.call("CountDownLatch", "l", "await", [20], initial: 1) == nil)
        #expect(h.call("Semaphore", "s", "tryAcquire", [1, 20], initial: 0) == nil)
        for _ in 0..<200 where h.recorder.all.count < 3 { try await Task.sleep(for: .milliseconds(10)) }
        let outcomes = h.recorder.all.sorted { $0.id < $1.id }.map(\.outcome)
        #expect(outcomes.count == 3)
        if case .error(let e)? = outcomes.first { #expect(e.code == .timeout) } else { Issue.record("future get must time out") }
        #expect(outcomes.dropFirst().map { $0 } == [.value(false), .value(false)])
    }

    @Test("Removing an object answers its waiters with NOT_FOUND")
    func removal() {
        var h = Harness()
        #expect(h.call("SharedFuture", "f", "get") == nil)
        #expect(h.store.remove(ObjectRef(type: "SharedFuture", key: "f")))
        guard case .error(let e)? = h.recorder.all.first?.outcome else {
            Issue.record("the waiter must be answered")
            return
        }
        #expect(e.code == .notFound)
        #expect(h.store.count == 0)
    }

    @Test("Every built-in type can be created with a null initial state or its natural one")
    func creation() {
        var h = Harness()
        let initial: [String: Value] = [
            "CyclicBarrier": 2, "Semaphore": 1, "CountDownLatch": 1, "AtomicByteArray": 4, "AtomicDoubleArray": 4,
            "AtomicMatrix": .record(["rows": 2, "cols": 2]),
        ]
        for type in TypeRegistry.builtins.typeNames {
            let outcome = h.call(type, "x", "snapshot-please", initial: initial[type] ?? .null)
            guard case .error(let e)? = outcome else {
                Issue.record("\(type): expected UNKNOWN_METHOD")
                continue
            }
            #expect(e.code == .unknownMethod, "\(type): \(e)")
        }
        #expect(h.store.count == 16)
    }
}

/// A cluster as the store sees it, whose view changes (the node starts leaving) right
/// after a call's view check: what the store replicates, and in which view.
final class ViewChangingReplication: Replication {
    private let reads = Mutex(0)
    private let log = Mutex<[(viewID: UInt64, version: ObjectVersion)]>([])
    var sent: [(viewID: UInt64, version: ObjectVersion)] { log.withLock { $0 } }
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    /// 4 for the call's check, then UInt64.max (what a leaving node answers).
    var viewID: UInt64 {
        reads.withLock { n in
            n += 1
            return n == 1 ? 4 : .max
        }
    }
    var rf: Int { 2 }
    func unavailability(of ref: ObjectRef, copies: Int) -> CrucialError? { nil }
    func absence(of ref: ObjectRef, copies: Int, persistent: Bool?) -> CrucialError? { nil }
    func replicate(
        _ operation: Replicate.Operation, of ref: ObjectRef, copies: Int, codeBuild: String, at version: ObjectVersion, in viewID: UInt64
    ) -> EventLoopFuture<Outcome?> {
        log.withLock { $0.append((viewID, version)) }
        return loop.makeSucceededFuture(nil)
    }
    func eventRoute(of ref: ObjectRef) -> EventRoute { .serve(viewID: 4) }
}

@Suite("Object store in a cluster, without sockets")
struct ReplicationRaceTests {
    @Test("A change is versioned and replicated in the view it was routed in, even when the view changes meanwhile")
    func versionUsesRoutedView() async throws {
        let store = ObjectStore(timerLoop: MultiThreadedEventLoopGroup.singleton.next())
        let replication = ViewChangingReplication()
        store.replicationBox.withLock { $0 = replication }
        let ref = ObjectRef(type: "AtomicLong", key: "c")
        let invoke = Invoke(
            id: 1, ref: ref, method: "incrementAndGet", create: Create(initial: 0, persistent: true), clientID: 1, seq: 1, viewID: 4)
        let recorder = Recorder()
        let waiter = Waiter(id: WaiterID(connection: ConnectionID(1), request: 1), clientID: 1, seq: 1, responder: recorder)
        _ = store.invoke(invoke, waiter: waiter, routedIn: 4)
        // A leaving node's view id (UInt64.max) in a version made this copy look newer than
        // every later one: installed over them, it lost acknowledged changes.
        #expect(replication.sent.map(\.viewID) == [4])
        #expect(replication.sent.map(\.version) == [ObjectVersion(view: 4, index: 1)])
    }
}
