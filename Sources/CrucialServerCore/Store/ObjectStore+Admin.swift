import Synchronization
package import CrucialCore
internal import NIOCore
internal import Foundation

/// Removing objects, closed connections, listings, plugins and sessions.
extension ObjectStore {
    /// Removes `ref`; its parked calls are answered with NOT_FOUND. Returns whether it existed.
    @discardableResult
    package func remove(_ ref: ObjectRef) -> Bool {
        guard case .success(let ran) = runNow(.removed(.called), on: .existing(ref)) else { return false }
        return ran.decision.retired
    }

    /// Removes `ref` and calls `done` with whether it existed once the removal is in the
    /// log (a persistent object), or with the error while the disk fails.
    func remove(_ ref: ObjectRef, done: @escaping @Sendable (Outcome) -> Void) {
        guard case .success(let ran) = runNow(.removed(.called), on: .existing(ref)) else { return done(.value(.bool(false))) }
        if case .error(let refusal)? = ran.decision.outcome { return done(.error(refusal)) }
        guard let lsn = ran.pending.lsn, let log else { return done(.value(.bool(true))) }
        log.whenSafe(lsn) { failure in done(failure.map { .error($0) } ?? .value(.bool(true))) }
    }

    /// Forgets the parked calls a closed connection left on `refs`.
    package func connectionClosed(_ connection: ConnectionID, parkedOn refs: some Sequence<ObjectRef>) {
        for ref in refs {
            guard let box = shard(ref).withLock({ $0[ref] }) else { continue }
            handle(.connectionClosed(connection), on: box)
        }
    }

    /// Answers every parked call with `error` (used at shutdown).
    package func drainAllWaiters(_ error: CrucialError) {
        for box in allBoxes() { detachWaiters(of: box, error) }
    }

    /// Answers the calls parked on `box` here with `error`, without withdrawing them from the
    /// object: their clients retry them on the member that serves the object now, where they
    /// take their parties over (a synchronizer's waiting parties are part of its state).
    func detachWaiters(of box: ObjectBox, _ error: CrucialError) {
        _ = runNow(.detached(error), on: .box(box))
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
            let waiters = box.read { $0.object.waiterCount }
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
                parked += box.read { $0.object.waiterCount }
            }
        }
        return (objects, persistent, parked, sessions.withLock { $0.sessions.count }, stateBytesCounter.load())
    }

    /// Whether `ref` is persistent; nil if it does not exist.
    package func isPersistent(_ ref: ObjectRef) -> Bool? { shard(ref).withLock { $0[ref]?.persistent } }

    /// The state of `ref`, or nil if it does not exist.
    package func snapshot(_ ref: ObjectRef) -> Value? {
        guard let box = shard(ref).withLock({ $0[ref] }) else { return nil }
        return box.read { $0.object.snapshot() }
    }

    package var count: Int { shards.reduce(0) { $0 + $1.withLock { $0.count } } }

    // MARK: Plugins

    /// Loads the plugin at `path` and makes its types creatable. A type this store already
    /// knows gets the plugin's code: see ``install(_:)``.
    @discardableResult
    package func loadPlugin(path: String) throws(CrucialError) -> PluginLoadReport {
        try install(try Plugin.load(path: path))
    }

    /// Makes `plugin`'s types creatable with its code.
    ///
    /// A type known already has its code replaced, all or nothing: first every existing
    /// object of the type must decode, with the new code, the state the old code encodes
    /// (else the load is refused and nothing changes). Then objects made from now on get
    /// the new code, and each existing object moves to it, under its lock: a call in
    /// progress finishes on the code it started with, every later call runs the new code.
    /// A persistent object's new state is logged as a whole, so a replay after a restart
    /// resumes from it; a replicated object's next change first sends its whole state to
    /// the replicas. An object whose state changed between the check and its move into
    /// something the new code does not decode (a narrow race) keeps its old code, and
    /// the report names it.
    @discardableResult
    package func install(_ plugin: Plugin) throws(CrucialError) -> PluginLoadReport {
        try install(plugin, checkOnly: false)
    }

    /// Checks the plugin at `path` as ``loadPlugin(path:)`` would load it, and keeps
    /// nothing: the report says which types it would replace and how many objects would be
    /// carried over; a refusal is the one a load would get. No type changes code.
    package func checkPlugin(path: String) throws(CrucialError) -> PluginLoadReport {
        try install(try Plugin.load(path: path), checkOnly: true)
    }

    private func install(_ plugin: Plugin, checkOnly: Bool) throws(CrucialError) -> PluginLoadReport {
        let index = Dictionary(uniqueKeysWithValues: plugin.typeNames.enumerated().map { ($1, $0) })
        let known = Set(registry.typeNames)
        let replacing = Set(plugin.typeNames.filter { known.contains($0) })
        /// Moves `box` to the plugin's code (`commit`: an event) or only tries (`!commit`: a
        /// read); nil when there was nothing to do, else whether its state decoded.
        func move(_ box: ObjectBox, commit: Bool) -> Result<Bool, CrucialError>? {
            guard let i = index[box.ref.type] else { return nil }
            let factory = plugin.factory(for: i)
            guard commit else {
                return box.read { state -> Result<Bool, CrucialError>? in
                    guard !state.removed, state.object.code?.build != plugin.build else { return nil }
                    do {
                        _ = try factory(state.object.snapshot())
                        return .success(true)
                    } catch {
                        return .failure(error as? CrucialError ?? CrucialError(.badInitialState, "\(error)"))
                    }
                }
            }
            guard case .success(let ran) = run(.codeReplaced(build: plugin.build, factory: factory), on: .box(box)), !ran.decision.unchanged
            else { return nil }
            if case .error(let error)? = ran.decision.outcome { return .failure(error) }
            return .success(true)
        }
        var checked = 0
        if !replacing.isEmpty {
            var refused: [(ObjectRef, String)] = []
            for box in allBoxes() where replacing.contains(box.ref.type) {
                switch move(box, commit: false) {
                case .failure(let error): refused.append((box.ref, error.message))
                case .success: checked += 1
                case nil: break
                }
            }
            if let (ref, reason) = refused.first {
                throw CrucialError(
                    .badRequest,
                    "plugin \(Plugin.uploadedName(plugin.path)) cannot replace the code of \(ref.type): "
                        + "\(refused.count) existing object(s) have a state its code does not decode, as \(ref) (\(reason)); "
                        + "nothing was replaced. Make the new state decode the old: give a property added to the type a declared value "
                        + "(`var merges = 0`, filled into an old state by @Shared) or make it Optional (`var merges: Int?`); "
                        + "a type with its own CodingKeys or init(from:) must decode the missing key itself (`decodeIfPresent`); "
                        + "or remove those objects")
            }
        }
        if checkOnly {
            let known = Set(registry.typeNames)
            var report = PluginLoadReport(plugin: plugin, replaced: plugin.typeNames.filter { known.contains($0) })
            report.converted = checked
            return report
        }
        let replaced = types.withLock { types in
            types.plugins.append(plugin)
            return plugin.register(in: &types.registry)
        }
        var report = PluginLoadReport(plugin: plugin, replaced: replaced)
        guard !replaced.isEmpty else { return report }
        // Twice: a box another thread made with the old code just before the registry
        // changed may reach its shard only after the first pass went by.
        for _ in 0..<2 {
            for box in allBoxes() where replacing.contains(box.ref.type) {
                switch move(box, commit: true) {
                case .success(true): report.converted += 1
                case .failure(let error) where !report.kept.contains(where: { $0.ref == box.ref }):
                    report.kept.append((box.ref, error.message))
                default: break
                }
            }
        }
        return report
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

/// What loading a plugin did.
package struct PluginLoadReport: Sendable {
    package var plugin: Plugin
    /// The types whose code it replaced (the others are new to the server).
    package var replaced: [String]
    /// Objects of those types now running the plugin's code.
    package var converted = 0
    /// Objects that keep their old code: the new code does not decode their state.
    package var kept: [(ref: ObjectRef, reason: String)] = []

    /// Every type the plugin brought.
    package var types: [String] { plugin.typeNames }

    /// The answer to a LoadPlugin: a record of what was loaded, replaced, moved and kept.
    package var value: Value {
        .record([
            "types": .list(plugin.typeNames.map { .string($0) }),
            "replaced": .list(replaced.map { .string($0) }),
            "converted": .int(Int64(converted)),
            "kept": .list(kept.map { .record(["type": .string($0.ref.type), "key": .string($0.ref.key), "reason": .string($0.reason)]) }),
            "build": .string(plugin.build),
            "fingerprints": .record(Dictionary(uniqueKeysWithValues: zip(plugin.typeNames, plugin.codes.map { Value.string($0.fingerprint) }))),
        ])
    }
}
