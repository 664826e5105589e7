internal import CrucialCore
internal import CrucialTransport
internal import Foundation
internal import Logging
internal import NIOCore

/// Serves the requests of one connection once its handshake is done: each frame goes to the
/// store, the cluster or the admin calls, and its answer comes back as a value (or later,
/// through the connection's ``Responder``, for a call that parks or waits for replicas or
/// the disk). It knows nothing of channels: the connection handler feeds it frames and
/// writes what it returns, and the tests drive it directly.
///
/// Confined to its connection's event loop, like the handler that owns it.
final class RequestDispatcher {
    private let store: ObjectStore
    private let settings: ConnectionSettings
    private let connection: ConnectionID
    private let logger: Logger
    /// Delivers late answers (from any thread).
    private let responder: any Responder
    /// Whether the client proved an admin secret (or the server has none).
    let isAdmin: Bool
    /// How a client proves the admin secret, for the refusals of admin requests: a client
    /// proves a secret by connecting with it as its token.
    static let adminHint =
        "connect with the server's admin secret (its --admin-token, or an admin line of --credentials) as your token: "
        + "`crucial --auth-token`, $CRUCIAL_AUTH_TOKEN, or the client's Configuration.authToken"
    /// Called with a frame that must wait until the cluster serves a view again (a view
    /// change is under way): the owner hands it back to ``serve(_:)`` then, on its loop.
    private let later: (Frame, Cluster) -> Void
    /// Requests answered later (parked, replicated, waiting for fsync), for the in-flight limit.
    let inFlight = AtomicCounter()
    /// Objects on which this connection may have parked calls.
    private(set) var parkedOn: Set<ObjectRef> = []
    private var upload: PluginUpload?
    /// The run of cloud threads the client named in its Hello (0: none).
    private let run: UInt64
    /// Why every request is refused: the run was cancelled as the connection opened.
    private let cancelled: CrucialError?
    /// The metric handles of the methods this connection called: no lock per call.
    private var operationMetrics: [String: [String: ServerMetrics.Operation]] = [:]
    /// The handles of the last call: a connection mostly repeats one method, and comparing
    /// two short strings is cheaper than hashing them for the dictionary.
    private var lastMetrics: ServerMetrics.Operation?

    init(
        store: ObjectStore, settings: ConnectionSettings, connection: ConnectionID, logger: Logger, isAdmin: Bool,
        responder: any Responder, run: UInt64 = 0, close: @escaping @Sendable () -> Void = {}, later: @escaping (Frame, Cluster) -> Void
    ) {
        self.run = run
        self.cancelled = run == 0 ? nil : settings.runs.register(run, connection, close: close)
        self.store = store
        self.settings = settings
        self.connection = connection
        self.logger = logger
        self.isAdmin = isAdmin
        self.responder = responder
        self.later = later
    }

    /// The connection closed: its parked calls are withdrawn, a half-uploaded plugin dropped.
    func closed() {
        if run != 0 { settings.runs.unregister(run, connection) }
        store.connectionClosed(connection, parkedOn: parkedOn)
        parkedOn.removeAll()
        upload?.discard()
        upload = nil
    }

    private func answer(_ id: UInt64, _ outcome: Outcome) -> Frame { .result(Reply(id: id, outcome: outcome)) }

    /// Serves one request; returns its answer, or nil when it is answered later (through
    /// the responder).
    func serve(_ frame: Frame) -> Frame? {
        if let cancelled { return answer(frame.requestID ?? 0, .error(cancelled)) }
        switch frame {
        case .invoke(let invoke):
            return serve(invoke, frame)
        case .remove(let id, let ref):
            return remove(id, ref, frame)
        case .replicate(let replicate):
            if let refusal = memberRefusal() { return answer(replicate.id, .error(refusal)) }
            guard let cluster = settings.cluster else { return nil }
            cluster.apply(replicate) { [responder] outcome in responder.respond(Reply(id: replicate.id, outcome: outcome)) }
            return nil
        case .transferDone(let report):
            if let refusal = memberRefusal() { return answer(report.id, .error(refusal)) }
            settings.cluster?.transferDone(report)
            return answer(report.id, .void)
        case .offer(let id, _, let entries):
            if let refusal = memberRefusal() { return answer(id, .error(refusal)) }
            return answer(id, .value(.ints(store.wanted(entries).map { Int64($0) })))
        case .ping(let id):
            return answer(id, .void)
        case .listObjects(let id, let prefix, let after, let limit):
            let page = store.list(typePrefix: prefix, after: after, limit: Int(limit))
            return .objectList(id: id, objects: page.objects, more: page.more)
        case .serverInfo(let id):
            return answer(id, .value(serverInfo()))
        case .keepAlive(let id, let session, let leaseMillis, let client):
            guard session != 0 || client != 0 else {
                return answer(id, .error(CrucialError(.badRequest, "KeepAlive names no session and no client (both 0)")))
            }
            let lease = store.keepAlive(session: session, client: client, lease: leaseMillis == 0 ? nil : .milliseconds(Int64(leaseMillis)))
            return answer(id, .value(.int(lease.nanosecondsClamped / 1_000_000)))
        case .endSession(let id, let session):
            let removed = store.endSession(session)
            logger.info(
                "session ended; its ephemeral objects were removed", metadata: ["session": "\(String(session, radix: 16))", "removed": "\(removed)"])
            return answer(id, .value(.int(Int64(removed))))
        case .loadPlugin(let id, let name, let offset, let chunk, let last, let checkOnly):
            return answer(id, loadPlugin(name, offset: offset, chunk: chunk, last: last, checkOnly: checkOnly))
        case .getObject(let id, let ref):
            guard let state = store.snapshot(ref) else {
                // Missing here, perhaps because its copies are away or lost: as a call would be told.
                let absent = settings.cluster?.absence(of: ref, copies: 1, persistent: nil)
                return answer(id, .error(absent ?? CrucialError(.notFound, "\(ref) does not exist")))
            }
            return answer(id, .value(state))
        case .acceptLoss(let id, let ref):
            return acceptLoss(id, ref)
        case .cancelRun(let id, let run, let reason):
            guard run != 0 else { return answer(id, .error(CrucialError(.badRequest, "CancelRun names no run (0)"))) }
            let closed = settings.runs.cancel(run, reason: reason)
            logger.notice(
                "run of cloud threads cancelled; its connections were closed",
                metadata: ["run": "\(String(run, radix: 16))", "closed": "\(closed)", "reason": "\(reason)"])
            return answer(id, .value(.int(Int64(closed))))
        case .hello, .authenticate:
            return answer(0, .error(CrucialError(.badRequest, "the handshake is already done")))
        case .helloReply, .result, .objectList, .challenge:
            return answer(frame.requestID ?? 0, .error(CrucialError(.badRequest, "a client may not send \(frame.kindName) frames")))
        }
    }

    private func serve(_ invoke: Invoke, _ frame: Frame) -> Frame? {
        var routedIn: UInt64 = 0
        if let cluster = settings.cluster {
            switch cluster.route(invoke.ref, clientView: invoke.viewID) {
            case .serve(let viewID): routedIn = viewID
            case .wrongView(let view): return answer(invoke.id, .wrongView(view))
            case .wait:
                later(frame, cluster)
                return nil
            case .unavailable(let error): return answer(invoke.id, .error(error))
            }
        }
        let started = ContinuousClock.now
        let waiter = Waiter(
            id: WaiterID(connection: connection, request: invoke.id), clientID: invoke.clientID, seq: invoke.seq,
            responder: LateAnswer(
                base: responder, inFlight: inFlight, metrics: settings.metrics, type: invoke.ref.type, method: invoke.method,
                started: started))
        let waiting = inFlight.add()
        let completion = store.invoke(invoke, waiter: waiter, routedIn: routedIn, waiting: waiting)
        let handles = metricHandles(invoke.ref.type, invoke.method, completion.outcome)
        let outcome: Outcome
        switch completion {
        case .done(let o): outcome = o
        case .parked:
            // Counted as parked and not timed (a barrier may wait for minutes); the answer
            // goes out later through the responder.
            settings.metrics.parked(handles)
            parkedOn.insert(invoke.ref)
            return nil
        case .waitingForReplicas, .waitingForDisk:
            // Counted and timed by the responder when the answer goes out.
            return nil
        }
        inFlight.subtract()
        settings.metrics.operation(handles, outcome, since: started)
        if case .error(let error) = outcome { logFailure(invoke, error) }
        return answer(invoke.id, outcome)
    }

    private func remove(_ id: UInt64, _ ref: ObjectRef, _ frame: Frame) -> Frame? {
        if store.isPersistent(ref) == true, !isAdmin, settings.credentials.contains(where: \.isAdmin) {
            // Persistent objects outlive applications: deleting one is an operator's act.
            return answer(id, .error(CrucialError(.unauthenticated, "removing persistent \(ref) needs an admin secret: \(Self.adminHint)")))
        }
        let responder = self.responder
        guard let cluster = settings.cluster else {
            store.remove(ref) { responder.respond(Reply(id: id, outcome: $0)) }
            return nil
        }
        switch cluster.route(ref, clientView: 0) {
        case .serve(let viewID):
            if store.isPersistent(ref) == nil, let absent = cluster.absence(of: ref, copies: cluster.rf, persistent: nil) {
                return answer(id, .error(absent))
            }
            let (existed, replicated) = store.removeInCluster(ref, in: viewID)
            guard let replicated else { return answer(id, .value(.bool(existed))) }
            replicated.whenComplete { done in
                let instead: Outcome? =
                    switch done {
                    case .success(let o): o
                    case .failure(let e): .error(e as? CrucialError ?? CrucialError(.internal, "\(e)"))
                    }
                responder.respond(Reply(id: id, outcome: instead ?? .value(.bool(existed))))
            }
            return nil
        case .wrongView(let view): return answer(id, .wrongView(view))
        case .wait:
            later(frame, cluster)
            return nil
        case .unavailable(let error): return answer(id, .error(error))
        }
    }

    /// An operator accepts lost objects (admin only, in a cluster): answered once etcd holds it.
    private func acceptLoss(_ id: UInt64, _ ref: ObjectRef?) -> Frame? {
        guard isAdmin else { return answer(id, .error(CrucialError(.unauthenticated, "accepting lost objects needs an admin secret: \(Self.adminHint)"))) }
        guard let cluster = settings.cluster else {
            return answer(id, .error(CrucialError(.badRequest, "this server is not part of a cluster: it loses no object to departed members")))
        }
        let (responder, logger) = (self.responder, self.logger)
        Task {
            let outcome: Outcome
            do {
                let (upTo, members) = try await cluster.acceptLoss(of: ref)
                logger.notice(
                    "an operator accepted lost objects",
                    metadata: ["object": "\(ref.map { "\($0)" } ?? "(every one)")", "upToView": "\(upTo)", "lostMembers": "\(members.joined(separator: ","))"])
                outcome = .value(.record(["view": .int(Int64(upTo)), "members": .list(members.map { .string($0) })]))
            } catch {
                outcome = .error(error as? CrucialError ?? CrucialError(.unavailable, "etcd did not record the acceptance: \(error); retry"))
            }
            responder.respond(Reply(id: id, outcome: outcome))
        }
        return nil
    }

    /// What `crucial info` shows (docs/PROTOCOL.md, ServerInfo).
    private func serverInfo() -> Value {
        let s = store.summary()
        let view = settings.cluster?.view
        return .record([
            "server_id": .string(settings.serverID), "release": .string(CrucialVersion.release),
            "protocol": .int(Int64(CrucialVersion.wireProtocol)),
            "uptime_ms": .int((ContinuousClock.now - settings.started).nanosecondsClamped / 1_000_000),
            "objects": .int(Int64(s.objects)), "persistent": .int(Int64(s.persistent)), "parked": .int(Int64(s.parked)),
            "sessions": .int(Int64(s.sessions)), "state_bytes": .int(Int64(s.stateBytes)),
            "connections": .int(Int64(settings.openConnections())),
            "node": .string(settings.cluster?.me.id ?? ""), "view": .int(Int64(view?.id ?? 0)),
            "holes": .list((settings.cluster?.unsettledHoles ?? []).map { h in
                .record([
                    "members": .list(h.members.map { .string($0) }), "absent": .list(h.absent.map { .string($0) }),
                    "lost": .list(h.lost.map { .string($0) }),
                ])
            }),
            "tombstones": .int(Int64(store.tombstoneCount)),
            "members": .list((view?.members ?? []).map { .string("\($0.id)@\($0.address)") }),
            "calls": .list(settings.metrics.callCounts().map { .record(["type": .string($0.type), "method": .string($0.method), "count": .int(Int64($0.calls))]) }),
            "types": .list(
                store.registry.userTypes.sorted { $0.key < $1.key }.map { name, code in
                    .record([
                        "type": .string(name), "fingerprint": .string(code.fingerprint), "origin": .string(code.origin),
                        "build": .string(code.build), "methods": .list(code.methods.map(Value.string)),
                    ])
                }),
        ])
    }

    /// Why this connection may not send frames only members send, if it may not: without a
    /// cluster, or (with an admin token set) without proving it (plain clients cannot write
    /// replicas); otherwise the auth token suffices.
    private func memberRefusal() -> CrucialError? {
        guard settings.cluster != nil else { return CrucialError(.badRequest, "this server is not part of a cluster") }
        guard isAdmin || !settings.credentials.contains(where: \.isAdmin) else {
            return CrucialError(.unauthenticated, "only cluster members may send this, and members prove the cluster's admin secret: "
                    + "start every member with the same --admin-token (or admin line of --credentials)")
        }
        return nil
    }

    /// One chunk of a plugin upload; the last loads it.
    private func loadPlugin(_ name: String, offset: UInt64, chunk: [UInt8], last: Bool, checkOnly: Bool) -> Outcome {
        guard isAdmin else {
            return .error(CrucialError(.unauthenticated, "loading a plugin needs the admin token: \(Self.adminHint)"))
        }
        do throws(CrucialError) {
            if offset == 0 {
                upload?.discard()
                upload = try PluginUpload(name: name, directory: settings.pluginDirectory, connection: connection)
            }
            guard let current = upload, current.name == name else {
                throw CrucialError(.badRequest, "no upload of plugin \(name) in progress: start at offset 0")
            }
            try current.append(chunk, at: offset, limit: settings.maxPluginBytes)
            guard last else { return .void }
            upload = nil
            let path = try current.finish(directory: settings.pluginDirectory)
            if checkOnly {
                defer { try? FileManager.default.removeItem(atPath: path) }
                let report = try store.checkPlugin(path: path)
                logger.info("plugin checked", metadata: ["path": "\(path)", "replaces": "\(report.replaced.joined(separator: ","))"])
                guard case .record(var answer) = report.value else { return .value(report.value) }
                answer["checked"] = .bool(true)
                return .value(.record(answer))
            }
            let report: PluginLoadReport
            do { report = try store.loadPlugin(path: path) } catch {
                try? FileManager.default.removeItem(atPath: path)
                throw error
            }
            // Stored for the next start: the manifest names it once it is loaded here.
            let directory = PluginDirectory(path: settings.pluginDirectory)
            do {
                try directory.record(path)
                try directory.prune(loaded: store.plugins)
            } catch {
                logger.error("the plugin is loaded but not stored for the next start", metadata: ["path": "\(path)", "error": "\(error)"])
            }
            logger.notice(
                "plugin loaded",
                metadata: [
                    "path": "\(path)", "types": "\(report.types.joined(separator: ", "))", "replaced": "\(report.replaced.joined(separator: ", "))",
                    "converted": "\(report.converted)", "kept": "\(report.kept.map { "\($0.ref)" }.joined(separator: ", "))",
                ])
            return .value(report.value)
        } catch {
            upload?.discard()
            upload = nil
            logger.warning("plugin refused", metadata: ["name": "\(name)", "error": "\(error)"])
            return .error(error)
        }
    }

    /// The handles of a call's type and method. Names no object vouched for (an unknown
    /// type or method, a call on a missing object) count under "(unknown)", so that no
    /// client can grow the metrics with names it makes up.
    private func metricHandles(_ type: String, _ method: String, _ outcome: Outcome?) -> ServerMetrics.Operation {
        var (type, method) = (type, method)
        if case .error(let e) = outcome, [.unknownType, .unknownMethod, .badRequest, .notFound, .dataLoss].contains(e.code) {
            if e.code == .unknownType || e.code == .badRequest { type = "(unknown)" }
            method = "(unknown)"
        }
        if let last = lastMetrics, last.method == method, last.type == type { return last }
        let handles: ServerMetrics.Operation
        if let known = operationMetrics[type]?[method] {
            handles = known
        } else {
            handles = settings.metrics.handles(type, method)
            operationMetrics[type, default: [:]][method] = handles
        }
        lastMetrics = handles
        return handles
    }

    /// Logs a failed request with its id: an internal error as an error, a refusal for a
    /// limit as a notice, the caller's mistakes (bad arguments, unknown objects) at debug.
    private func logFailure(_ invoke: Invoke, _ error: CrucialError) {
        let level: Logger.Level =
            switch error.code {
            case .internal: .error
            case .resourceExhausted, .unauthenticated: .notice
            default: .debug
            }
        logger.log(
            level: level, "request failed",
            metadata: [
                "request": "\(connection.raw)/\(invoke.id)", "object": "\(invoke.ref)", "method": "\(invoke.method)",
                "code": "\(error.code.name)", "error": "\(error.message)",
            ])
    }
}

@available(*, unavailable)
extension RequestDispatcher: Sendable {}
