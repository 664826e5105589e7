import Synchronization
package import CrucialCore
internal import NIOCore

/// Removing objects, closed connections, listings, plugins and sessions.
extension ObjectStore {
    /// Removes `ref`; its parked calls are answered with NOT_FOUND. Returns whether it existed.
    @discardableResult
    package func remove(_ ref: ObjectRef) -> Bool {
        retire(ref) { _ in } != nil
    }

    /// Removes `ref` and calls `done` with whether it existed once the removal is in the
    /// log (a persistent object), or with the error while the disk fails.
    func remove(_ ref: ObjectRef, done: @escaping @Sendable (Outcome) -> Void) {
        if isPersistent(ref) == true, let failure = log?.failure { return done(.error(failure)) }
        guard let box = retire(ref, underLock: { _ in }) else { return done(.value(.bool(false))) }
        guard box.persistent, let log else { return done(.value(.bool(true))) }
        log.whenSafe(box.lastLSN) { failure in done(failure.map { .error($0) } ?? .value(.bool(true))) }
    }

    /// Takes `ref` out of its shard and retires its box: `underLock` runs under the box's
    /// lock before the removal is logged (a cluster numbers it and sends it to the
    /// replicas there, in order with the object's changes). Returns the box, if it existed.
    @discardableResult
    func retire(_ ref: ObjectRef, underLock: (ObjectBox) -> Void) -> ObjectBox? {
        guard let box = shard(ref).withLock({ $0.removeValue(forKey: ref) }) else { return nil }
        if box.session != 0 { sessions.withLock { $0.release(ref, from: box.session) } }
        var effects = Effects()
        box.locked {
            underLock(box)
            logEvent(.remove, on: box)
            box.removed = true
            stateBytesCounter.subtract(box.footprint)
            box.object.drainWaiters(effects: &effects, error: CrucialError(.notFound, "\(ref) was removed"))
        }
        carryOut(effects, box: box)
        return box
    }

    /// Forgets the parked calls a closed connection left on `refs`.
    package func connectionClosed(_ connection: ConnectionID, parkedOn refs: some Sequence<ObjectRef>) {
        for ref in refs {
            guard let box = shard(ref).withLock({ $0[ref] }) else { continue }
            var effects = Effects()
            box.locked {
                guard !box.removed else { return }
                box.object.cancelWaiters(of: connection, effects: &effects)
                record(effects, in: box)
                logEvent(.connectionClosed(connection: connection.raw), on: box)
            }
            carryOut(effects, box: box)
        }
    }

    /// Answers every parked call with `error` (used at shutdown).
    package func drainAllWaiters(_ error: CrucialError) {
        for shard in shards {
            for box in shard.withLock({ Array($0.values) }) {
                var effects = Effects()
                box.locked { box.object.drainWaiters(effects: &effects, error: error) }
                carryOut(effects, box: box)
            }
        }
    }

    /// The objects held, optionally only those whose type starts with `typePrefix`.
    package func list(typePrefix: String = "") -> [ObjectInfo] { list(typePrefix: typePrefix, after: nil, limit: 0).objects }

    /// A page of the objects whose type starts with `typePrefix`, in the order of
    /// ``ObjectRef/precedesInBytes(_:)``: those after `after` (nil: from the first), at most
    /// `limit` (0: all), and whether more follow.
    package func list(typePrefix: String, after: ObjectRef?, limit: Int) -> (objects: [ObjectInfo], more: Bool) {
        var boxes: [ObjectBox] = []
        for shard in shards {
            boxes += shard.withLock { $0.values.filter { box in box.ref.type.hasPrefix(typePrefix) && after.map { $0.precedesInBytes(box.ref) } ?? true } }
        }
        boxes.sort { $0.ref.precedesInBytes($1.ref) }
        let page = limit > 0 ? Array(boxes.prefix(limit)) : boxes
        let objects = page.map { box in
            let waiters = box.locked { box.object.waiterCount }
            return ObjectInfo(ref: box.ref, persistent: box.persistent, waiters: UInt32(clamping: waiters), session: box.session)
        }
        return (objects, page.count < boxes.count)
    }

    /// What `crucial info` shows of this store: object counts, parked calls, sessions, state.
    package func summary() -> (objects: Int, persistent: Int, parked: Int, sessions: Int, stateBytes: Int) {
        var objects = 0, persistent = 0, parked = 0
        for shard in shards {
            for box in shard.withLock({ Array($0.values) }) {
                objects += 1
                if box.persistent { persistent += 1 }
                parked += box.locked { box.object.waiterCount }
            }
        }
        return (objects, persistent, parked, sessions.withLock { $0.sessions.count }, stateBytesCounter.load())
    }

    /// Whether `ref` is persistent; nil if it does not exist.
    package func isPersistent(_ ref: ObjectRef) -> Bool? { shard(ref).withLock { $0[ref]?.persistent } }

    /// The state of `ref`, or nil if it does not exist.
    package func snapshot(_ ref: ObjectRef) -> Value? {
        guard let box = shard(ref).withLock({ $0[ref] }) else { return nil }
        return box.locked { box.object.snapshot() }
    }

    package var count: Int { shards.reduce(0) { $0 + $1.withLock { $0.count } } }

    // MARK: Plugins

    /// Loads the plugin at `path` and makes its types creatable; returns their names.
    /// A type name this store already knows is refused (restart to replace a plugin).
    @discardableResult
    package func loadPlugin(path: String) throws(CrucialError) -> [String] {
        let plugin = try Plugin.load(path: path)
        let clash: String? = registryBox.withLock { registry in
            if let known = plugin.typeNames.first(where: { registry.factory(for: $0) != nil }) { return known }
            for (i, name) in plugin.typeNames.enumerated() { registry.register(typeName: name, factory: plugin.factory(for: i)) }
            return nil
        }
        if let clash {
            throw CrucialError(
                .badRequest, "plugin \(path) defines \(clash), which this server already knows; restart the server to replace a type's code")
        }
        pluginList.withLock { $0.append(plugin) }
        return plugin.typeNames
    }

    // MARK: Sessions

    /// Keeps `session` and `client` (0: none) alive for `lease` (nil = the default) from
    /// now; returns the lease applied.
    @discardableResult
    package func keepAlive(session: UInt64, client: UInt64 = 0, lease: Duration?) -> Duration {
        let lease = lease ?? defaultSessionLease
        sessions.withLock {
            $0.keepAlive(session, lease: lease, now: .now)
            $0.keepAlive(client: client, session: session, lease: lease, now: .now)
        }
        return lease
    }

    /// Ends `session`: removes its ephemeral objects (returns how many) and releases what
    /// its clients held.
    @discardableResult
    package func endSession(_ session: UInt64) -> Int {
        let (refs, clients) = sessions.withLock { ($0.end(session), $0.endClients(of: session)) }
        release(clients)
        return refs.reduce(0) { $0 + (remove($1) ? 1 : 0) }
    }

    /// Ends the sessions whose lease lapsed, removing their objects, and releases what
    /// lapsed clients held; returns the sessions.
    @discardableResult
    package func expireSessions(now: ContinuousClock.Instant = .now) -> [(session: UInt64, removed: Int)] {
        let (lapsed, clients) = sessions.withLock { s in
            let lapsed = s.expire(now: now)
            return (lapsed, s.expireClients(now: now) + lapsed.flatMap { s.endClients(of: $0.session) })
        }
        release(clients)
        return lapsed.map { ($0.session, $0.objects.reduce(0) { $0 + (remove($1) ? 1 : 0) }) }
    }

    /// Enters a box that arrived from another node into its session's objects.
    func adopt(_ box: ObjectBox) {
        sessions.withLock { $0.adopt(box.ref, by: box.session, lease: defaultSessionLease, now: .now) }
    }

    /// Takes a box that left for another node out of its session's objects.
    func release(_ box: ObjectBox) {
        sessions.withLock { $0.release(box.ref, from: box.session) }
    }

    /// Sessions alive now.
    package var sessionCount: Int { sessions.withLock { $0.sessions.count } }
}
