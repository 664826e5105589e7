internal import CrucialCore
internal import NIOCore

/// Every way an object changes, as one value: the input of `BoxState/step(_:in:)`.
///
/// A primary's events come from its clients (a call, a removal) and from what happens to
/// their parked calls (a timeout, a closed connection, a client gone); a replica's from its
/// primary (a call applied, a whole state installed, a removal); a recovering server's from
/// its disk (a record replayed, a snapshot's object). The event runner
/// (`ObjectStore.run(_:on:routedIn:refine:)`) finds or creates the box, steps
/// the event under the box's lock and hands the `Decision`'s effects to the sinks.
enum ObjectEvent: Sendable {
    // MARK: On the object's primary (or a lone server)

    /// A client's call.
    case invoke(Invoke, Call)
    /// The object was just made here by a call that carries its creation (on a replica: by
    /// the primary's first change of it).
    case created(Create)
    /// The bounded wait of a parked call expired.
    case timedOut(WaiterID)
    /// A connection with calls parked on the object closed.
    case connectionClosed(ConnectionID)
    /// A client holding something of the object (permits), or waiting on it detached, is gone.
    case clientGone(UInt64)
    /// A lone server recovered the object from disk: the calls it replayed have no connection.
    case withdrawDetached
    /// The calls parked here are answered with the error but stay in the object's state:
    /// their clients retry them where the object is served now (or after a restart), where
    /// they take their parties over.
    case detached(CrucialError)
    /// A change did not reach every replica: the next call sends them the whole state first.
    case replicationFailed
    /// The object goes (see `Removal`).
    case removed(Removal)
    /// A plugin brought new code for the object's type: the object moves to it, its state
    /// decoded by the new code (`factory`) from the old code's snapshot.
    case codeReplaced(build: String, factory: TypeRegistry.Factory)

    // MARK: On a replica

    /// The primary's call, which brought the object to `version`, run by build `codeBuild`
    /// of its type's code.
    case replicated(Invoke, version: ObjectVersion, codeBuild: String)
    /// The whole state, from the primary (after an event, or a change a replica missed) or
    /// from the member that held the object before a view change.
    case installed(ObjectState, version: ObjectVersion)

    // MARK: In recovery

    /// A record of the operation log (a snapshot's object is an `install` record).
    case replayed(LogRecord)
}

/// Why an object goes.
enum Removal: Sendable, Equatable {
    /// A client removed it. In a cluster (on its primary) a replicated object leaves a
    /// tombstone at its next version, here and on its replicas.
    case called
    /// Its primary removed it at `version` (`zero`: on a lone server, in recovery): a copy
    /// newer than that (re-created since) stays.
    case at(ObjectVersion)
    /// This member no longer keeps a copy: it lives on other members now.
    case moved
    /// A newer copy of its whole state arrived and takes its place.
    case replaced
}

/// What the store knows around one event, read under the object's lock just before its
/// `BoxState/step(_:in:)`: the step itself asks nothing of the store, the cluster or the
/// log, so the tests drive it with any context they like.
struct StepContext {
    /// In a cluster: the view the event was routed in (0 on a single server).
    var routedIn: UInt64 = 0
    /// The view changed since the call was routed: refuse with WRONG_VIEW.
    var viewChanged = false
    /// A replica's answer instead of applying anything: the change comes from an older view.
    var refusal: Outcome?
    /// Every copy of the object is on members that are away.
    var away: CrucialError?
    /// The store is part of a cluster, which keeps `rf` copies of a replicated object.
    var clustered = false
    /// The object is persistent and persistence runs: its changes are logged.
    var logged = false
    /// The log fails: changes to persistent objects are refused with this.
    var logFailure: CrucialError?
    /// The store's object state is over its limit: calls that may add state are refused with this.
    var memoryFull: CrucialError?
    /// The box was made for this event (a state installed or replayed into a new copy),
    /// rather than found in the store.
    var madeForEvent = false
    /// The version a new copy starts from: its tombstone's, when the object was removed before.
    var base = ObjectVersion.zero
    /// The box was just made and placed, with its creation event, for this event (a call, or
    /// a replica's first change of an object).
    var justCreated = false
}

/// What one event on an object decided, as values: the answer, and what the store must do
/// for it. Made under the object's lock by `BoxState/step(_:in:)`; the runner then queues
/// the log record and the replicas' changes (still under the lock, since their order is the
/// object's order), takes a removed box out of its shard, and carries out everything else
/// once the lock is released.
struct Decision {
    /// The answer; nil when the call parked on the object (or the event answers no one).
    var outcome: Outcome?
    /// What the event did to parked calls and timers (carried out after the lock).
    var effects = Effects()
    /// Changes to send to the object's other replicas, in this order, each at its version:
    /// a whole-state sync first when an earlier change did not reach them all.
    var replicate: [(Replicate.Operation, ObjectVersion)] = []
    /// The answer waits for the replication already under way (a read that may have seen
    /// changes not yet on every replica, or a retry whose first attempt may not have reached them).
    var awaitsEarlierReplication = false
    /// The record to append to the operation log.
    var log: LogRecord.Operation?
    /// The answer waits for the object's last log record (a retry answered from the table).
    var awaitsLastRecord = false
    /// The box left the store (`BoxState/removed` is now set): the runner takes it out of
    /// its shard and its session.
    var retired = false
    /// The object was removed at this version: the store keeps a tombstone of it.
    var tombstone: ObjectVersion?
    /// Forget the object's tombstone if it is older than the copy now.
    var clearsTombstone = false
    /// A newer copy replaces this one: the runner places a box made from this state.
    var successor: (ObjectState, ObjectVersion)?
    /// Nothing to apply: the event found nothing to change (a record the copy already
    /// reflects, an older copy, code already running).
    var unchanged = false

    init(_ outcome: Outcome?) { self.outcome = outcome }

    /// Nothing to do but answer with `error`.
    static func refuse(_ error: CrucialError) -> Decision { Decision(.error(error)) }

    /// Nothing changed; answered with `outcome` (a replica's ok, by default).
    static func unchanged(_ outcome: Outcome? = .void) -> Decision {
        var decision = Decision(outcome)
        decision.unchanged = true
        return decision
    }
}
