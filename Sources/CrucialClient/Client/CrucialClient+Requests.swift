import Synchronization
internal import CrucialTransport

/// Routing and retries: every request goes to the primary of its object in the view this
/// client knows (any server, alone), and is sent again when its connection failed or the
/// member it reached no longer holds the object.
extension CrucialClient {
    /// The cluster view calls are routed with; nil while talking to a server on its own.
    package var view: View? { routing.withLock { $0?.view } }

    /// Adopts `view` if it is newer than the one held; returns whether it was.
    @discardableResult
    func learn(_ view: View?) -> Bool {
        guard let view, !view.members.isEmpty else { return false }
        return routing.withLock { r in
            guard (r?.view.id ?? 0) < view.id else { return false }
            r = (view, HashRing(members: view.members))
            return true
        }
    }

    /// Asks another member (or a configured server) for its view after `failed` did not answer.
    private func refreshView(excluding failed: String?) async {
        var candidates = routing.withLock { $0?.view.members.map(\.address) ?? [] }
        candidates += configuration.servers.filter { !candidates.contains($0) }
        for address in candidates where address != failed {
            guard let c = try? await connect(to: address) else { continue }
            learn(c.hello.view)
            c.close()
            return
        }
    }

    /// Sends the frame `build` makes for a fresh request id and the view it is routed
    /// with, to the primary of `ref` in a cluster (else to any server). Retries calls a
    /// failed connection lost (the servers de-duplicate them) and calls a member refused
    /// for belonging elsewhere, once it knows where: in a cluster until
    /// ``Configuration/failoverTimeout``, else ``Configuration/retries`` times.
    func send(to ref: ObjectRef? = nil, _ build: (_ id: UInt64, _ viewID: UInt64) -> Frame) async throws -> Frame {
        var attempt = 0
        let started = ContinuousClock.now
        while true {
            let id = newRequestID()
            let route = routing.withLock { r in r.map { ($0.view.id, ref.flatMap($0.ring.primary(for:))?.address) } }
            let viewID = route?.0 ?? 0, address = route?.1
            let clustered = route != nil
            func mayRetry() -> Bool {
                clustered ? ContinuousClock.now - started < configuration.failoverTimeout : attempt < configuration.retries
            }
            do {
                let c = try await connection(to: address)
                let frame = try await c.request(build(id, viewID), id: id)
                guard case .result(let reply) = frame else { return frame }
                switch reply.outcome {
                case .wrongView(let v):
                    // A newer view: route again at once. An older one: that member is catching up.
                    if learn(v) || v.id > viewID { continue }
                    guard mayRetry() else { return frame }
                case .error(let e) where Self.refusedForNow(e, clustered: clustered):
                    guard mayRetry() else { return frame }
                default:
                    return frame
                }
            } catch let error as CrucialError where Self.isConnectionFailure(error) && mayRetry() {
                if clustered { await refreshView(excluding: address) }
            }
            let cap: Duration = clustered ? .milliseconds(500) : .seconds(2)
            try await Task.sleep(for: min(configuration.retryBackoff * (1 << min(attempt, 10)), cap))
            attempt += 1
        }
    }

    /// Whether `error` refused a call without doing it, so that it goes again: a view change
    /// under way (WRONG_VIEW), or in a cluster a member that cannot serve until it renews its
    /// lease or until the members away with an object's copies are back (UNAVAILABLE).
    static func refusedForNow(_ error: CrucialError, clustered: Bool) -> Bool {
        error.code == .wrongView || (clustered && error.code == .unavailable)
    }

    /// Whether `error` is a connection that could not be made or was lost: the call may have
    /// gone unsent or its answer been lost, and goes again (the server de-duplicates it).
    static func isConnectionFailure(_ error: CrucialError) -> Bool {
        error.code == .connectionLost || error.code == .connectionFailed
    }

    /// Calls `method` on `ref`. `create` makes the object on first use.
    /// Mutating calls are de-duplicated by the server when retried; pass
    /// `readOnly: true` for calls that may safely run twice.
    package func invoke(
        _ ref: ObjectRef, _ method: String, _ args: [Value] = [], create: Create? = nil, readOnly: Bool = false, typeVersion: String = ""
    ) async throws -> Value {
        try ref.validate()
        let create = prepared(create)
        // One lock for the sequence number and the first attempt's acknowledgement mark;
        // a retry reads the mark again (answers may have come meanwhile).
        let (seq, firstAcked): (UInt64, UInt64) = readOnly ? (0, 0) : seqs.withLock { ($0.allocate(), $0.ackedBelow) }
        defer { if seq != 0 { seqs.withLock { $0.complete(seq) } } }
        return try await invoke(
            ref, method, args, create: create, seq: seq, firstAcked: firstAcked, sentBefore: 0, typeVersion: typeVersion)
    }

    /// `create` as the call sends it: in this client's session, which is kept alive from
    /// the first ephemeral object on.
    func prepared(_ create: Create?) -> Create? {
        guard var create else { return nil }
        if create.session == 0 { create.session = session }
        if !create.persistent { keepSessionAlive() }
        return create
    }

    /// Sends the call with sequence number `seq` (0: a read, not de-duplicated) until it is
    /// answered for good (see ``send(to:_:)``). `sentBefore`: how often it went out already
    /// (a pipelined call sent again); from the second sending on, the acknowledgement mark
    /// is read afresh instead of `firstAcked`.
    func invoke(
        _ ref: ObjectRef, _ method: String, _ args: [Value], create: Create?, seq: UInt64, firstAcked: UInt64, sentBefore: Int,
        typeVersion: String = ""
    ) async throws -> Value {
        var attempts = sentBefore
        let frame = try await send(to: ref) { id, viewID in
            attempts += 1
            let acked = seq == 0 ? 0 : attempts == 1 ? firstAcked : seqs.withLock { $0.ackedBelow }
            return .invoke(
                Invoke(
                    id: id, ref: ref, method: method, args: args, create: create, clientID: clientID, seq: seq, ackedBelow: acked,
                    viewID: viewID, typeVersion: typeVersion))
        }
        return try value(answering: ref, frame).get()
    }

    /// The value (or the error) a call's final answer carries.
    func value(answering ref: ObjectRef, _ frame: Frame) -> Result<Value, CrucialError> {
        guard case .result(let reply) = frame else {
            return .failure(CrucialError(.protocolViolation, "server answered an Invoke with a \(frame) frame"))
        }
        switch reply.outcome {
        case .value(let v): return .success(v)
        case .error(let e): return .failure(e)
        case .wrongView(let view):
            return .failure(
                CrucialError(.wrongView, "no member of view \(view.id) took the call on \(ref) within \(configuration.failoverTimeout)"))
        }
    }

    /// Removes an object; answers whether it existed.
    @discardableResult
    public func remove(_ ref: ObjectRef) async throws -> Bool {
        try ref.validate()
        let frame = try await send(to: ref) { id, _ in .remove(id: id, ref: ref) }
        guard case .result(let reply) = frame else { throw CrucialError(.protocolViolation, "unexpected answer to Remove") }
        switch reply.outcome {
        case .value(let v): return v.boolValue ?? false
        case .error(let e): throw e
        case .wrongView: throw CrucialError(.wrongView, "server does not own \(ref)")
        }
    }

    /// Checks a server answers.
    public func ping() async throws {
        _ = try await send { id, _ in .ping(id: id) }
    }
}
