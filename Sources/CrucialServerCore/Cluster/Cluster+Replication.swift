import Synchronization
internal import CrucialTransport
internal import CrucialCore
internal import Logging
internal import NIOCore

/// Replication: the primary sends each change of a replicated object to its other replicas
/// in order, and a replica applies what it receives.
extension Cluster {
    // MARK: Replication (primary side)

    func replicate(
        _ operation: Replicate.Operation, of ref: ObjectRef, copies: Int, codeBuild: String, at version: ObjectVersion, in viewID: UInt64
    ) -> EventLoopFuture<Outcome?> {
        if faults.contains(.skipReplication) { return loop.makeSucceededFuture(nil) }
        return toOtherReplicas(operation, of: ref, at: version, copies: copies, in: viewID, codeBuild: codeBuild)
    }

    /// Sends `operation` to the replicas of `ref` in view `viewID` other than this node;
    /// nil once all applied it, else the first refusal. A change made in a view this node
    /// no longer serves (the view changed, or it is leaving) is not sent to the next
    /// view's replicas: the client retries, and the change reaches them, if at all, with
    /// the moving of objects, which orders copies by version.
    func toOtherReplicas(
        _ operation: Replicate.Operation, of ref: ObjectRef, at version: ObjectVersion, copies: Int, in viewID: UInt64,
        codeBuild: String = ""
    ) -> EventLoopFuture<Outcome?> {
        let targets = state.withLock { s -> [PeerLink]? in
            guard let view = s.view, view.id == viewID, !s.leaving else { return nil }
            let me = s.me.id
            return s.ring.replicas(for: ref, count: copies).filter { $0.id != me }.map { link(to: $0, in: &s) }
        }
        guard let targets else {
            return loop.makeSucceededFuture(.error(CrucialError(.wrongView, "the cluster's view changed while \(ref) was changed; retry")))
        }
        guard !targets.isEmpty else { return loop.makeSucceededFuture(nil) }
        let acks = send(operation, of: ref, at: version, in: viewID, to: targets, codeBuild: codeBuild)
        return EventLoopFuture.whenAllSucceed(acks, on: loop).map { $0.compactMap { $0 }.first }
    }

    /// Sends `operation` on `ref` to each of `links`; each future holds nil once that
    /// replica applied it, else what the client should be told (a replica that cannot
    /// be reached makes the client retry, by when a new view has gone without it).
    func send(
        _ operation: Replicate.Operation, of ref: ObjectRef, at version: ObjectVersion, in viewID: UInt64, to links: [PeerLink],
        codeBuild: String = ""
    ) -> [EventLoopFuture<Outcome?>] {
        links.map { l in
            l.send { .replicate(Replicate(id: $0, viewID: viewID, ref: ref, version: version, operation: operation, codeBuild: codeBuild)) }
                .map { Self.refusal($0, from: l.member, ref: ref) }
                .recover { .error(CrucialError(.wrongView, "replica \(l.member.id) of \(ref) is unreachable (\($0)); retry")) }
        }
    }

    /// nil for an ok answer, else what the client should be told.
    static func refusal(_ frame: Frame, from member: View.Member, ref: ObjectRef) -> Outcome? {
        guard case .result(let reply) = frame else {
            return .error(CrucialError(.internal, "replica \(member.id) answered a Replicate with \(frame.kindName)"))
        }
        switch reply.outcome {
        case .value: return nil
        case .wrongView(let v): return .wrongView(v)
        case .error(let e) where e.code == .resourceExhausted:
            return .error(CrucialError(.resourceExhausted, "replica \(member.id) of \(ref) cannot take the change: \(e.message)"))
        case .error(let e):
            return .error(CrucialError(.wrongView, "replica \(member.id) refused a change of \(ref): \(e.message); retry"))
        }
    }

    /// The link to `member` (this incarnation of it), made on first use. Called under the state lock.
    func link(to member: View.Member, in s: inout State) -> PeerLink {
        if let l = s.links[member.id], l.member == member { return l }
        s.links[member.id]?.close()
        let l = PeerLink(member: member, loop: loop, identity: identity, transport: transport)
        s.links[member.id] = l
        return l
    }

    // MARK: Replica side

    /// Applies what a primary sent; `done` gets the answer once it may be given (under
    /// `--fsync always`, once the change is on disk here).
    func apply(_ replicate: Replicate, done: @escaping @Sendable (Outcome) -> Void) {
        store.apply(replicate, currentView: { [self] in view }, done: done)
    }

    func transferDone(_ report: TransferDone) {
        state.withLock { s in
            guard report.viewID >= (s.view?.id ?? 0) || s.reports[report.viewID] != nil else { return }
            s.reports[report.viewID, default: [:]][report.from] = report
        }
        checkReady()
    }
}
