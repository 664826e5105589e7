import Synchronization
internal import CrucialCore
internal import NIOCore

/// Everything one object's events change: its object, retry table, version, log position
/// and flags. A value: `step(_:in:)` takes it `inout` and returns what must follow as a
/// `Decision`, so the tests drive it without a box, a store, a log or a socket.
struct BoxState {
    let ref: ObjectRef
    let persistent: Bool
    /// The application session owning an ephemeral object (0 = none).
    let session: UInt64
    var object: any SharedObject
    var retries = RetryTable()
    /// Taken out of the store (removed, moved, replaced): a call that finds it looks again.
    var removed = false
    /// The sequence number of the last logged record of a persistent object.
    var lastLSN: UInt64 = 0
    /// In a cluster: how many changes this copy has seen, and the view of the primary
    /// that made the last one.
    var version = ObjectVersion.zero
    /// In a cluster: completes once every replica applied the changes made so far
    /// (its value: nil, or the outcome to answer instead). Reads wait for it too.
    var replicated: EventLoopFuture<Outcome?>?
    /// A change did not reach every replica: the next call sends them the whole state first.
    var needsSync = false
    /// The object's estimated bytes as last counted, and whether it changed since.
    var footprint = 0
    var footprintStale = true

    init(ref: ObjectRef, object: any SharedObject, persistent: Bool, session: UInt64 = 0) {
        self.ref = ref
        self.object = object
        self.persistent = persistent
        self.session = persistent ? 0 : session
    }

    /// Whether a cluster keeps `rf` copies (persistent, synchronizers included) rather than one.
    var replicates: Bool { persistent }

    /// The object's whole state, as it moves to another member or to disk.
    var exported: ObjectState {
        ObjectState(state: object.snapshot(), persistent: persistent, session: session, retries: retries.value)
    }
}

/// One object with its own lock: the unit of serialisation. Calls on different boxes never
/// share a lock, which gives disjoint-access parallelism.
///
/// Its state is read by anyone under the lock (`read(_:)`) and changed by the event
/// runner alone (`change(_:_:)` takes a key only the runner can make): every change of an
/// object is an `ObjectEvent` stepped by `BoxState/step(_:in:)`.
final class ObjectBox: @unchecked Sendable {  // `state` is guarded by `lock`
    let ref: ObjectRef
    let persistent: Bool
    /// The application session owning an ephemeral object (0 = none).
    let session: UInt64
    private let lock = Mutex(())
    private var state: BoxState

    init(ref: ObjectRef, object: any SharedObject, persistent: Bool, session: UInt64 = 0) {
        self.ref = ref
        self.persistent = persistent
        self.session = persistent ? 0 : session
        self.state = BoxState(ref: ref, object: object, persistent: persistent, session: session)
    }

    /// Whether a cluster keeps `rf` copies (persistent, synchronizers included) rather than one.
    var replicates: Bool { persistent }

    /// Reads the state under the object's lock.
    func read<Result, E: Error>(_ body: (borrowing BoxState) throws(E) -> Result) throws(E) -> Result {
        try lock.withLock { (_: inout ()) throws(E) -> sending Result in try body(state) }
    }

    /// Changes the state under the object's lock: the event runner's alone.
    func change<Result, E: Error>(_ key: EventRunner.Key, _ body: (inout BoxState) throws(E) -> Result) throws(E) -> Result {
        try lock.withLock { (_: inout ()) throws(E) -> sending Result in try body(&state) }
    }

    /// Counts the object's estimated bytes again if it changed since the last count; returns
    /// them, or nil for a box taken out of the store. Not an event: it changes no state of the
    /// object, only the memo of its size.
    func measure() -> (bytes: Int, parked: Int)? {
        lock.withLock { _ in
            guard !state.removed else { return nil }
            if state.footprintStale {
                state.footprintStale = false
                state.footprint = state.object.footprint
            }
            return (state.footprint, state.object.waiterCount)
        }
    }
}

/// Whether this member handles an event of an object's primary copy (a timeout, a closed
/// connection, a client gone) now.
enum EventRoute {
    /// It is the object's primary in the view it serves, `viewID`.
    case serve(viewID: UInt64)
    /// Not yet: a view change is under way, or its lease is not sure (ask again shortly).
    case later
    /// Another member is the primary (or this one is leaving): it handles the object's events.
    case elsewhere
}

/// What a cluster does for the store; nil on a single server. The replication sink of the
/// event runner.
protocol Replication: Sendable {
    /// The view this node serves now.
    var viewID: UInt64 { get }
    /// Copies of each replicated object.
    var rf: Int { get }
    /// Why a call on `ref`, whose copy here exists (kept on `copies` members), cannot be
    /// served now, if it cannot (UNAVAILABLE).
    func unavailability(of ref: ObjectRef, copies: Int) -> CrucialError?
    /// Why a call on `ref`, which has no copy here, cannot be served: its copies are away
    /// (UNAVAILABLE) or lost (DATA_LOSS). `persistent`: what the call's creation says, if it has one.
    func absence(of ref: ObjectRef, copies: Int, persistent: Bool?) -> CrucialError?
    /// Sends `operation` (a change of `ref`, kept on `copies` members, made in view `viewID`
    /// by build `codeBuild` of its type's code, which brought it to `version`) to the
    /// object's other replicas in that view, after everything sent them before.
    /// Called under the box lock: it only queues the frames, on each replica's link. The
    /// future's value is nil once all applied it, else the outcome to answer instead
    /// (WRONG_VIEW when this node turned out to be stale, or the view changed since the
    /// call was routed: the client retries).
    func replicate(
        _ operation: Replicate.Operation, of ref: ObjectRef, copies: Int, codeBuild: String, at version: ObjectVersion, in viewID: UInt64
    ) -> EventLoopFuture<Outcome?>
    /// Whether this member handles the events of `ref`'s primary copy now.
    func eventRoute(of ref: ObjectRef) -> EventRoute
}

extension TypeRegistry {
    /// A new box for `ref` holding `initial`, made by its type's code; `unknown` says why
    /// when this store does not know the type.
    func box(_ ref: ObjectRef, initial: Value, persistent: Bool, session: UInt64, unknown: () -> String) throws(CrucialError) -> ObjectBox {
        ObjectBox(ref: ref, object: try make(ref.type, initial: initial, unknown: unknown), persistent: persistent, session: session)
    }
}
