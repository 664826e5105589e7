import Synchronization
package import CrucialCore
package import NIOCore

/// The objects of one server, sharded over independently locked maps.
///
/// The shard lock is held only to find, insert or take out a box; an object changes under
/// its box's lock alone, through the event runner (`Store/EventRunner.swift`). Effects
/// (wake-ups, timers) are carried out after that lock is released, so a responder never
/// runs under an object lock.
package final class ObjectStore: Sendable {
    let shards: [LockedBox<[ObjectRef: ObjectBox]>]
    /// The types this store knows and the plugins that brought some of them: one lock,
    /// since a plugin's load changes both.
    let types: Mutex<(registry: TypeRegistry, plugins: [Plugin])>

    /// The types this store can create: linked in, and loaded from plugins.
    package var registry: TypeRegistry { types.withLock { $0.registry } }

    /// The plugins loaded so far.
    package var plugins: [Plugin] { types.withLock { $0.plugins } }
    /// Runs timeouts of bounded waits and the session reaper.
    let timerLoop: any EventLoop
    let sessions = Mutex(SessionTable())
    /// The log of persistent objects and its data directory, once recovery made them.
    let persistence = Mutex<Persistence?>(nil)
    /// The operation log: the sink of persistent objects' changes, once persistence started.
    var log: OperationLog? { persistence.withLock { $0?.log } }
    /// The lease of a session that did not ask for one.
    package let defaultSessionLease: Duration
    /// Set when the server is part of a cluster.
    let replicationBox = Mutex<(any Replication)?>(nil)
    var replication: (any Replication)? { replicationBox.withLock { $0 } }
    /// What clients may use of this store.
    package let limits: Limits
    /// The estimated bytes of all object state (see ``refreshFootprints()``).
    let stateBytesCounter = AtomicCounter()
    /// Changes sent to replicas and not yet applied by all of them.
    let replicationsPending = AtomicCounter()
    /// In a cluster: the versions at which replicated objects were removed. An older copy
    /// arriving later (from a member back after a restart) does not revive the object, and
    /// a new object of the same name continues from the tombstone's version.
    let tombstones = Mutex<[ObjectRef: ObjectVersion]>([:])
    let metrics: ServerMetrics

    package init(
        registry: TypeRegistry = .builtins, timerLoop: any EventLoop, shardCount: Int = 64,
        defaultSessionLease: Duration = .seconds(30), limits: Limits = Limits(), metrics: ServerMetrics = ServerMetrics()
    ) {
        self.limits = limits
        self.metrics = metrics
        self.types = Mutex((registry, []))
        self.timerLoop = timerLoop
        self.shards = (0..<max(1, shardCount)).map { _ in LockedBox([:]) }
        self.defaultSessionLease = defaultSessionLease
    }

    /// Every box, shard by shard.
    func allBoxes() -> [ObjectBox] { shards.flatMap { $0.withLock { Array($0.values) } } }

    /// By the ring's FNV-1a hash: `hashValue` is SipHash, and the shard's dictionary hashes
    /// the ref again anyway (two SipHashes per call were 2 % of a server's time, perf).
    func shard(_ ref: ObjectRef) -> LockedBox<[ObjectRef: ObjectBox]> {
        shards[Int(HashRing.hash(ref) % UInt64(shards.count))]
    }

    /// Runs `invoke` for `waiter`; the ``Completion`` says whether it is answered now or
    /// later (through the waiter's responder).
    ///
    /// In a cluster, `routedIn` is the view in which this node found itself the
    /// object's primary; the call is refused with WRONG_VIEW if the view changed since.
    ///
    /// `waiting`: requests of the caller's connection already waiting for their answers;
    /// at ``Limits/maxInFlightPerConnection`` a call that would park is refused.
    ///
    /// The call is an event (`.invoke`) for the runner: under the object's lock the context
    /// is read, the object's step decides, and what it decided is queued in the object's
    /// order (its log record, its changes to the replicas: both only join a queue).
    /// Everything that answers someone or touches a socket (the wake-ups, timers, late
    /// answers) happens after the lock.
    package func invoke(_ invoke: Invoke, waiter: Waiter, routedIn: UInt64 = 0, waiting: Int = 0) -> Completion {
        let ref = invoke.ref
        guard !ref.type.isEmpty, !ref.key.isEmpty else {
            return .done(.error(CrucialError(.badRequest, "invoke \(invoke.id) has an empty object type or key")))
        }
        guard !invoke.method.isEmpty else {
            return .done(.error(CrucialError(.badRequest, "invoke \(invoke.id) on \(ref) names no method")))
        }
        var call = Call(ref: ref, method: invoke.method, args: invoke.args, waiter: waiter)
        call.maxWaiters = limits.maxWaitersPerObject
        call.connectionWaiting = waiting
        call.maxConnectionWaiting = limits.maxInFlightPerConnection
        let replication = self.replication
        let ran = run(.invoke(invoke, call), on: .creating(ref, make: { self.make(for: invoke) }), routedIn: routedIn) { context, state in
            if let replication {
                // Read under the box lock, so that no view change slips between the check and the change.
                context.viewChanged = replication.viewID != routedIn
                context.away = replication.unavailability(of: state.ref, copies: state.replicates ? replication.rf : 1)
            }
            context.memoryFull = stateMemoryFull(state.ref)
        }
        switch ran {
        case .success(let ran): return complete(ran, waiter: waiter)
        case .failure(let error): return .done(.error(error))
        case nil: return .done(.error(CrucialError(.internal, "\(ref) could not be found or created")))
        }
    }

    /// After the lock: carries out the decision's effects at once, or once the replicas
    /// applied it and its record is safe (fsynced under fsync=always), then answers through
    /// the waiter (an event has none). Nothing the call caused is visible before then.
    func complete(_ ran: Ran, waiter: Waiter?) -> Completion {
        let (decision, pending, box) = (ran.decision, ran.pending, ran.box)
        let effects = decision.effects
        var durable: EventLoopFuture<Outcome?>?
        if let lsn = pending.lsn, let log {
            let promise = (pending.replicated?.eventLoop ?? timerLoop).makePromise(of: Outcome?.self)
            log.whenSafe(lsn) { failure in promise.succeed(failure.map { .error($0) }) }
            durable = promise.futureResult
        }
        let waitFor: EventLoopFuture<Outcome?>
        switch (pending.replicated, durable) {
        case (nil, nil):
            carryOut(effects, box: box)
            return decision.outcome.map(Completion.done) ?? .parked
        case (let r?, nil): waitFor = r
        case (nil, let d?): waitFor = d
        case (let r?, let d?): waitFor = r.and(d).map { $1 ?? $0 }
        }
        let sent = ContinuousClock.now
        let replicates = pending.replicated != nil
        if replicates { replicationsPending.add() }
        let outcome = decision.outcome
        waitFor.whenComplete { done in
            if replicates {
                self.replicationsPending.subtract()
                self.metrics.replication.recordNanoseconds((ContinuousClock.now - sent).nanosecondsClamped)
            }
            // Never inline: a replica link that dies while a later call on this
            // object flushes to it (under the object's lock) fails this future on
            // that very thread, and taking the lock again there would deadlock.
            waitFor.eventLoop.execute {
                self.carryOut(effects, box: box)
                let instead: Outcome?
                switch done {
                case .success(let o): instead = o
                case .failure(let e): instead = .error(e as? CrucialError ?? CrucialError(.internal, "\(e)"))
                }
                if instead != nil, replicates { _ = self.run(.replicationFailed, on: .box(box)) }
                if let waiter, let answer = instead ?? outcome {
                    waiter.responder.respondAfterWaiting(Reply(id: waiter.id.request, outcome: answer))
                }
            }
        }
        if outcome == nil { return .parked }
        return replicates ? .waitingForReplicas : .waitingForDisk
    }

    /// How to make an unknown type known, given its name: the server's own flags, or (a
    /// program's local stack, which ``Crucial`` sets) the program's `sharedTypes`.
    static let unknownTypeAdvice = Mutex<@Sendable (String) -> String>({ _ in
        "a @Shared type must be linked into the server (CrucialServerCommand.main(registering:)) or loaded from a plugin"
    })

    /// Replaces the advice an UNKNOWN_TYPE gives, for every store of this process.
    package static func adviseOnUnknownTypes(_ advice: @escaping @Sendable (String) -> String) {
        unknownTypeAdvice.withLock { $0 = advice }
    }

    /// A new box for the object `invoke` calls, which is not here, with its creation event;
    /// or why there is none: an unknown type, another version of its code, copies away or
    /// lost, no creation in the call, a limit.
    private func make(for invoke: Invoke) -> Result<(ObjectBox, creation: ObjectEvent?), CrucialError> {
        let ref = invoke.ref
        let registry = self.registry
        let unknown = {
            "no object type \"\(ref.type)\" on this server: \(Self.unknownTypeAdvice.withLock { $0 }(ref.type)); "
                + "it knows: \(registry.typeNames.joined(separator: ", "))"
        }
        // An unknown type is UNKNOWN_TYPE even when the call carries no Create.
        guard registry.factory(for: ref.type) != nil else { return .failure(CrucialError(.unknownType, unknown())) }
        if !invoke.typeVersion.isEmpty, let mismatch = registry.code(of: ref.type)?.mismatch(invoke.typeVersion, type: ref.type) {
            return .failure(mismatch)
        }
        let replication = self.replication
        // Not here, but maybe on members that are away with every copy (not yet known), or
        // lost with them (never created afresh behind the users' backs: DATA_LOSS).
        let copies = invoke.create.map { $0.persistent ? replication?.rf ?? 1 : 1 } ?? 1
        if let absent = replication?.absence(of: ref, copies: copies, persistent: invoke.create?.persistent) { return .failure(absent) }
        guard let create = invoke.create else {
            return .failure(CrucialError(.notFound, "\(ref) does not exist (it was removed, or never created)"))
        }
        if let full = stateMemoryFull(ref) { return .failure(full) }
        if !create.persistent, create.session != 0 {
            let owned = sessions.withLock { $0.sessions[create.session]?.objects.count ?? 0 }
            if owned >= limits.maxObjectsPerSession {
                return .failure(
                    CrucialError(
                        .resourceExhausted,
                        "cannot create \(ref): its session \(String(create.session, radix: 16)) already owns \(owned) objects, "
                            + "this server's limit (--max-objects-per-session)"))
            }
        }
        do throws(CrucialError) {
            let box = try registry.box(ref, initial: create.initial, persistent: create.persistent, session: create.session, unknown: unknown)
            return .success((box, .created(create)))
        } catch {
            return .failure(error)
        }
    }

    /// The error for a call that would add state while the store is over `maxStateBytes`.
    private func stateMemoryFull(_ ref: ObjectRef) -> CrucialError? {
        let used = stateBytesCounter.load()
        guard used >= limits.maxStateBytes else { return nil }
        return CrucialError(
            .resourceExhausted,
            "\(ref): object state takes about \(used) bytes, over this server's limit of \(limits.maxStateBytes) "
                + "(--max-state-bytes); remove objects, or read only")
    }

    // MARK: Persistence (Persistence/Recovery.swift, Persistence/Persistence.swift)

    /// Restores the persistent objects of `configuration.directory`, then logs every
    /// change to them. Call before serving, after every type (plugins too) is known.
    ///
    /// The calls parked on a synchronizer when the server stopped come back detached (their
    /// connections are gone). A lone server withdraws them: their clients, if alive, call
    /// again. A cluster member (`clustered`) keeps them, since they are part of a state the
    /// other copies share: the primary withdraws those whose client does not come back.
    package func startPersistence(_ configuration: PersistenceConfiguration, clustered: Bool = false) throws(CrucialError) -> RecoveryReport {
        try Recovery(store: self).run(configuration, clustered: clustered)
    }

    /// Writes a snapshot of every persistent object and drops the logs it covers.
    /// Operations go on meanwhile; each object is copied under its own lock.
    package func compact() throws(CrucialError) { try persistence.withLock { $0 }?.compact(self) }

    /// Compacts when the current log outgrew its limit (called periodically).
    package func compactIfDue() throws(CrucialError) { try persistence.withLock { $0 }?.compactIfDue(self) }

    /// Writes what is pending and closes the log.
    package func stopPersistence() {
        persistence.withLock { current in
            defer { current = nil }
            return current
        }?.close()
    }
}
