import CrucialCore
@testable import CrucialServerCore
import NIOCore
import NIOPosix
import Testing

/// The one runner, on a store without a cluster or a log: where events go, what replaces
/// what, and what a retired box leaves behind.
@Suite("The event runner, in a store")
struct EventRunnerTests {
    private let ref = ObjectRef(type: "CyclicBarrier", key: "b")

    /// Applies `operation` as a primary in view 1 would send it, at `version`.
    private func apply(_ store: ObjectStore, _ operation: Replicate.Operation, at version: ObjectVersion) async -> Outcome {
        let replicate = Replicate(id: 1, viewID: 1, ref: ref, version: version, operation: operation)
        return await withCheckedContinuation { done in store.apply(replicate, currentView: { nil }, done: { done.resume(returning: $0) }) }
    }

    @Test("A newer whole state takes the copy's place at once: its parked call is told to retry, the new state is there, no tombstone stays")
    func installReplacesInPlace() async {
        var h = Harness()
        #expect(h.call("CyclicBarrier", "b", "await", initial: 3, conn: 1, client: 1, seq: 1) == nil)
        h.store.tombstones.withLock { $0[ref] = ObjectVersion(view: 0, index: 1) }
        let newer = ObjectState(state: .int(2), persistent: false)
        #expect(await apply(h.store, .install(newer), at: ObjectVersion(view: 1, index: 5)) == .void)
        #expect(h.recorder.all.map(\.outcome) == [.error(CrucialError(.wrongView, "\(ref) was replaced by a newer copy; retry"))])
        #expect(h.store.snapshot(ref) == .int(2) && h.store.count == 1)
        #expect(h.store.tombstones.withLock { $0[ref] } == nil)
        // An older state changes nothing.
        #expect(await apply(h.store, .install(ObjectState(state: .int(9), persistent: false)), at: ObjectVersion(view: 1, index: 4)) == .void)
        #expect(h.store.snapshot(ref) == .int(2))
    }

    @Test("A removal retires the box: out of its shard and its session, its parked calls answered NOT_FOUND, and a new call makes a new one")
    func removalRetires() {
        var h = Harness()
        #expect(h.call("CyclicBarrier", "b", "await", initial: 2, conn: 1, client: 1, seq: 1) == nil)
        #expect(h.store.remove(ref))
        #expect(h.recorder.all.map(\.outcome.errorCode) == [.notFound])
        #expect(h.store.count == 0 && !h.store.remove(ref))
        #expect(h.call("CyclicBarrier", "b", "getParties", initial: 4) == .value(4))
    }

    @Test("An event for a box that left the store is not applied")
    func eventOnRetiredBox() {
        var h = Harness()
        #expect(h.call("AtomicLong", "c", "incrementAndGet") == .value(1))
        let box = h.store.allBoxes()[0]
        #expect(h.store.remove(box.ref))
        #expect(h.store.run(.replicationFailed, on: .box(box)) == nil)
        #expect(h.store.run(.removed(.called), on: .existing(box.ref)) == nil)
    }

    @Test("The first creation wins a race: two makers, one box")
    func creationRace() async {
        let store = ObjectStore(timerLoop: MultiThreadedEventLoopGroup.singleton.next())
        let ref = ObjectRef(type: "AtomicLong", key: "raced")
        await withTaskGroup(of: Void.self) { group in
            for client in 1...8 {
                group.addTask {
                    let invoke = Invoke(
                        id: UInt64(client), ref: ref, method: "incrementAndGet", create: Create(initial: 0), clientID: UInt64(client), seq: 1)
                    let waiter = Waiter(
                        id: WaiterID(connection: ConnectionID(UInt64(client)), request: 1), clientID: UInt64(client), seq: 1, responder: Recorder())
                    _ = store.invoke(invoke, waiter: waiter)
                }
            }
        }
        #expect(store.snapshot(ref) == .int(8) && store.count == 1)
    }
}

extension Outcome {
    fileprivate var errorCode: CrucialError.Code? {
        if case .error(let e) = self { return e.code }
        return nil
    }
}
