import CrucialCore
import Foundation
@testable import CrucialServerCore
import Testing

/// Every event other than a client's call, stepped on a copy's state with hand-made
/// contexts: no box, no store, no log, no socket (``ObjectStepTests`` drives the call).
@Suite("Every other event of an object, as a state machine")
struct ObjectEventTests {
    private let recorder = Recorder()

    private func state(_ type: String, initial: Value = .null, persistent: Bool = true, session: UInt64 = 0) throws -> BoxState {
        let object = try TypeRegistry.builtins.make(type, initial: initial) { "unknown" }
        return BoxState(ref: ObjectRef(type: type, key: "k"), object: object, persistent: persistent, session: session)
    }

    /// Parks a call of `client` on `box` (connection 1, request `request`).
    private func park(_ box: inout BoxState, _ method: String, _ args: [Value] = [], client: UInt64, request: UInt64) -> Decision {
        let invoke = Invoke(id: request, ref: box.ref, method: method, args: args, clientID: client, seq: request)
        let waiter = Waiter(id: WaiterID(connection: ConnectionID(1), request: request), clientID: client, seq: request, responder: recorder)
        return box.step(.invoke(invoke, Call(ref: box.ref, method: method, args: args, waiter: waiter)), in: StepContext())
    }

    private let cluster = StepContext(routedIn: 7, clustered: true, logged: true)

    @Test("A creation starts from the tombstone's version, is the object's first record, and a failing log takes the copy out")
    func created() throws {
        var b = try state("AtomicLong", initial: 3)
        var context = cluster
        context.base = ObjectVersion(view: 2, index: 9)
        let d = b.step(.created(Create(initial: 3, persistent: true)), in: context)
        #expect(d.outcome == .void && d.log == .create(initial: 3) && b.version == ObjectVersion(view: 2, index: 9))
        #expect(!b.footprintStale && b.footprint > 0)
        var failing = StepContext(logged: true)
        failing.logFailure = CrucialError(.resourceExhausted, "disk full")
        var c = try state("AtomicLong")
        let refused = c.step(.created(Create(initial: 0, persistent: true)), in: failing)
        #expect(refused.outcome == .error(CrucialError(.resourceExhausted, "disk full")) && refused.retired && c.removed && refused.log == nil)
    }

    @Test("A client gone gives its permits back: the whole state goes to the replicas and the log, and a waiting acquire is woken")
    func clientGone() throws {
        var s = try state("Semaphore", initial: 1)
        #expect(park(&s, "acquire", client: 5, request: 1).outcome == .void)
        #expect(park(&s, "acquire", client: 6, request: 2).outcome == nil)  // parked behind client 5
        let d = s.step(.clientGone(5), in: cluster)
        #expect(d.effects.wakeups.map(\.0.id.request) == [2])
        #expect(d.replicate.map(\.1) == [ObjectVersion(view: 7, index: 1)] && s.version == ObjectVersion(view: 7, index: 1))
        guard case .install(let logged)? = d.log else {
            Issue.record("expected the whole state in the log, got \(String(describing: d.log))")
            return
        }
        #expect(logged == s.exported)
        // Routed in a view this member no longer serves: nothing changes, and the caller routes it again.
        var moved = cluster
        moved.viewChanged = true
        let again = s.step(.clientGone(6), in: moved)
        #expect(again.outcome?.errorCode == .wrongView && again.replicate.isEmpty && s.version == ObjectVersion(view: 7, index: 1))
    }

    @Test("A recovered lone server withdraws the detached calls: the barrier forgets the party")
    func withdrawDetached() throws {
        var b = try state("CyclicBarrier", initial: 2)
        let record = LogRecord(
            lsn: 1, ref: b.ref, operation: .invoke(method: "await", args: [], clientID: 3, seq: 1, connection: 4, request: 1))
        #expect(!b.step(.replayed(record), in: StepContext()).unchanged)
        #expect(b.object.waiterCount == 1)
        let d = b.step(.withdrawDetached, in: StepContext(logged: true))
        #expect(b.object.waiterCount == 0 && d.log != nil)
    }

    @Test("Detaching answers the parked calls here but keeps their parties in the state, to be taken over")
    func detached() throws {
        var b = try state("CyclicBarrier", initial: 3)
        #expect(park(&b, "await", client: 3, request: 1).outcome == nil)
        let before = b.object.snapshot()
        let d = b.step(.detached(CrucialError(.wrongView, "moved")), in: cluster)
        #expect(d.effects.wakeups.map(\.1) == [.error(CrucialError(.wrongView, "moved"))])
        #expect(b.object.snapshot() == before && d.log == nil && d.replicate.isEmpty && b.version == .zero)
    }

    @Test("A failed replication makes the next call send the whole state; an ephemeral object has no replicas to sync")
    func replicationFailed() throws {
        var p = try state("AtomicLong")
        #expect(p.step(.replicationFailed, in: cluster).unchanged && p.needsSync)
        var e = try state("AtomicLong", persistent: false)
        _ = e.step(.replicationFailed, in: cluster)
        #expect(!e.needsSync)
    }

    @Test("A client's removal answers parked calls NOT_FOUND and is logged; in a cluster it is numbered, sent and leaves a tombstone")
    func removedByCall() throws {
        var b = try state("CyclicBarrier", initial: 2)
        #expect(park(&b, "await", client: 3, request: 1).outcome == nil)
        b.version = ObjectVersion(view: 5, index: 2)
        let d = b.step(.removed(.called), in: cluster)
        #expect(d.retired && b.removed && d.log == .remove)
        #expect(d.effects.wakeups.map(\.1.errorCode) == [.notFound])
        #expect(d.tombstone == ObjectVersion(view: 7, index: 3) && d.replicate.map(\.1) == [ObjectVersion(view: 7, index: 3)])
        var lone = try state("AtomicLong")
        let single = lone.step(.removed(.called), in: StepContext())
        #expect(single.retired && single.tombstone == nil && single.log == nil && single.replicate.isEmpty)
        var failing = StepContext(logged: true)
        failing.logFailure = CrucialError(.resourceExhausted, "disk full")
        var kept = try state("AtomicLong")
        #expect(kept.step(.removed(.called), in: failing).outcome?.errorCode == .resourceExhausted && !kept.removed)
    }

    @Test("A replica's removal: an older copy goes with a tombstone, one re-created since stays; a move and a replacement tell callers to retry")
    func removedOtherwise() throws {
        var old = try state("AtomicLong")
        old.version = ObjectVersion(view: 3, index: 4)
        let d = old.step(.removed(.at(ObjectVersion(view: 3, index: 5))), in: cluster)
        #expect(d.retired && d.tombstone == ObjectVersion(view: 3, index: 5) && old.version == ObjectVersion(view: 3, index: 5))
        var newer = try state("AtomicLong")
        newer.version = ObjectVersion(view: 4, index: 1)
        #expect(newer.step(.removed(.at(ObjectVersion(view: 3, index: 5))), in: cluster).unchanged && !newer.removed)
        var stale = cluster
        stale.refusal = .error(CrucialError(.wrongView, "older view"))
        #expect(newer.step(.removed(.at(ObjectVersion(view: 9, index: 9))), in: stale).outcome?.errorCode == .wrongView && !newer.removed)

        var moving = try state("CyclicBarrier", initial: 2)
        #expect(park(&moving, "await", client: 3, request: 1).outcome == nil)
        let moved = moving.step(.removed(.moved), in: cluster)
        #expect(moved.retired && moved.log == .drop && moved.effects.wakeups.map(\.1.errorCode) == [.wrongView])
        var replaced = try state("AtomicLong")
        let r = replaced.step(.removed(.replaced), in: cluster)
        #expect(r.retired && r.log == nil)
    }

    @Test("New code decodes the old state: the object moves to it, the state is logged and the replicas get it with the next call")
    func codeReplaced() throws {
        var b = try state("AtomicLong", initial: 4)
        let factory: TypeRegistry.Factory = { initial in try AtomicLong(initial: initial) }
        let d = b.step(.codeReplaced(build: "v2", factory: factory), in: cluster)
        #expect(d.outcome == .void && b.needsSync && b.footprintStale)
        #expect(d.log == .install(b.exported) && b.object.snapshot() == .int(4))
        let refusing: TypeRegistry.Factory = { _ in throw CrucialError(.badInitialState, "cannot decode") }
        var c = try state("AtomicLong", initial: 4)
        #expect(c.step(.codeReplaced(build: "v2", factory: refusing), in: cluster).outcome?.errorCode == .badInitialState && !c.needsSync)
    }

    @Test("A replica applies its primary's call detached: one change behind and the same build, else it asks for the state")
    func replicated() throws {
        var b = try state("CyclicBarrier", initial: 3)
        b.version = ObjectVersion(view: 7, index: 1)
        let wait = Invoke(id: 40, ref: b.ref, method: "await", clientID: 3, seq: 1)
        let d = b.step(.replicated(wait, version: ObjectVersion(view: 7, index: 2), codeBuild: ""), in: cluster)
        #expect(d.outcome == .void && b.version == ObjectVersion(view: 7, index: 2) && b.object.waiterCount == 1)
        #expect(d.effects.wakeups.isEmpty && d.effects.timers.isEmpty && d.clearsTombstone)
        // On a copy just made for it (its first change), the tombstone it started from stays.
        var first = try state("CyclicBarrier", initial: 3)
        var made = cluster
        made.justCreated = true
        #expect(!first.step(.replicated(wait, version: ObjectVersion(view: 7, index: 1), codeBuild: ""), in: made).clearsTombstone)
        #expect(d.log == .invoke(method: "await", args: [], clientID: 3, seq: 1, connection: 0, request: 40))
        let gap = b.step(.replicated(wait, version: ObjectVersion(view: 7, index: 4), codeBuild: ""), in: cluster)
        #expect(gap.outcome?.errorCode == .illegalState && b.version == ObjectVersion(view: 7, index: 2))
        var stale = cluster
        stale.refusal = .error(CrucialError(.wrongView, "older view"))
        let refused = b.step(.replicated(wait, version: ObjectVersion(view: 7, index: 3), codeBuild: ""), in: stale)
        #expect(refused.outcome?.errorCode == .wrongView && b.version == ObjectVersion(view: 7, index: 2))
    }

    @Test("A newer whole state retires the copy for a successor, which takes the state's version and retry table; an older one is ignored")
    func installed() throws {
        var b = try state("CyclicBarrier", initial: 2)
        #expect(park(&b, "await", client: 3, request: 1).outcome == nil)
        b.version = ObjectVersion(view: 5, index: 5)
        let incoming = ObjectState(state: try state("AtomicLong", initial: 9).object.snapshot(), persistent: true)
        #expect(b.step(.installed(incoming, version: ObjectVersion(view: 5, index: 5)), in: cluster).unchanged)
        let d = b.step(.installed(incoming, version: ObjectVersion(view: 6, index: 1)), in: cluster)
        #expect(d.retired && b.removed && d.successor?.1 == ObjectVersion(view: 6, index: 1))
        #expect(d.effects.wakeups.map(\.1.errorCode) == [.wrongView])
        var successor = try state("AtomicLong", initial: 9)
        var fresh = cluster
        fresh.madeForEvent = true
        let placed = successor.step(.installed(incoming, version: ObjectVersion(view: 6, index: 1)), in: fresh)
        #expect(placed.log == .install(incoming) && placed.clearsTombstone && successor.version == ObjectVersion(view: 6, index: 1))
    }

    @Test("Recovery replays a record once, makes a successor for a whole state, and takes a removed copy out with its tombstone")
    func replayed() throws {
        var b = try state("AtomicLong", initial: 0)
        let add = LogRecord(
            lsn: 4, ref: b.ref, operation: .invoke(method: "addAndGet", args: [5], clientID: 1, seq: 1, connection: 1, request: 1),
            version: ObjectVersion(view: 2, index: 3))
        #expect(!b.step(.replayed(add), in: StepContext()).unchanged)
        #expect(b.object.snapshot() == .int(5) && b.lastLSN == 4 && b.version == ObjectVersion(view: 2, index: 3))
        #expect(b.step(.replayed(add), in: StepContext()).unchanged && b.object.snapshot() == .int(5))  // reflected already
        let whole = LogRecord(lsn: 5, ref: b.ref, operation: .install(ObjectState(state: .int(8), persistent: true)))
        let replaced = b.step(.replayed(whole), in: StepContext())
        #expect(replaced.retired && replaced.successor?.0.state == .int(8))
        var fresh = StepContext()
        fresh.madeForEvent = true
        fresh.base = ObjectVersion(view: 1, index: 7)
        var created = try state("AtomicLong")
        _ = created.step(.replayed(LogRecord(lsn: 6, ref: created.ref, operation: .create(initial: 0))), in: fresh)
        #expect(created.version == ObjectVersion(view: 1, index: 7) && created.lastLSN == 6)
        let removal = LogRecord(lsn: 7, ref: created.ref, operation: .remove, version: ObjectVersion(view: 1, index: 8))
        let gone = created.step(.replayed(removal), in: StepContext())
        #expect(gone.retired && gone.tombstone == ObjectVersion(view: 1, index: 8))
    }

    @Test("No box state changes outside the event runner: the objects' mutating methods are called by the steps alone")
    func onlyTheStepsChangeObjects() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let sources = root.appendingPathComponent("Sources/CrucialServerCore")
        let steps: Set<String> = ["ObjectStep.swift", "CopyStep.swift"]
        let mutating = /object\.(invoke\(&|timeout\(|cancelWaiters\(|clientGone\(|withdrawDetached\(|drainWaiters\(|detachWaiters\()/
        var offenders: [String] = []
        var inSteps = 0
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        for file in files where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.contains(mutating) {
                if steps.contains(file.lastPathComponent) { inSteps += 1 } else { offenders.append("\(file.lastPathComponent):\(n + 1)") }
            }
        }
        #expect(files.count > 40, "the sources were not found at \(sources.path)")
        #expect(inSteps >= 7, "the pattern no longer finds the steps' own calls: it would find nothing anywhere")
        #expect(offenders.isEmpty, "an object changed outside the steps: \(offenders)")
    }
}

extension Outcome {
    fileprivate var errorCode: CrucialError.Code? {
        if case .error(let e) = self { return e.code }
        return nil
    }
}
