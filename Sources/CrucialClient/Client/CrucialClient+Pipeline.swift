internal import CrucialTransport
internal import NIOCore

/// Pipelines as Redis clients know them: many calls written to a server's connection at
/// once, without waiting for each answer, and one wait for all of them.
extension CrucialClient {
    /// One call of a ``pipeline(_:)``: a method of a shared object with its arguments,
    /// not sent yet.
    ///
    /// The method goes by its wire name: for the built-in types the names docs/PROTOCOL.md
    /// lists (the proxies' method names), for a `@Shared` type its Swift method's name, with
    /// each argument encoded as the proxy does (`try ValueEncoder().encode(x)`).
    public struct Call: Sendable {
        /// The object called.
        public let handle: SharedObjectHandle
        /// The method's wire name.
        public let method: String
        /// Its arguments.
        public let args: [Value]
        /// Whether it is sent again as is, not de-duplicated (a read).
        public let readOnly: Bool

        /// `method` of `object` with `args`. `readOnly`: whether the call may run twice when it
        /// is sent again (a read, not de-duplicated); nil takes it from the built-in type's
        /// table of methods, and false for other types.
        public init(_ object: some SharedProxy, _ method: String, _ args: [Value] = [], readOnly: Bool? = nil) {
            self.init(object.handle, method, args, readOnly: readOnly)
        }

        /// The same through the object's handle.
        public init(_ handle: SharedObjectHandle, _ method: String, _ args: [Value] = [], readOnly: Bool? = nil) {
            self.handle = handle
            self.method = method
            self.args = args
            self.readOnly = readOnly ?? BuiltinType(rawValue: handle.ref.type)?.kind(of: method)?.isRead ?? false
        }
    }

    /// Sends every call at once and returns their results in the calls' order; throws the
    /// first failure (in that order) once every call has ended.
    ///
    /// ```swift
    /// let counters = (0..<16).map { AtomicLong("hits-\($0)", initial: 0) }
    /// let values = try await CrucialClient.shared.pipeline(counters.map { .init($0, "incrementAndGet") })
    /// ```
    ///
    /// The calls for one server are written to one connection together, in one system call,
    /// and the task waits once for all their answers: no task and no thread switch per call
    /// (``batch(_:_:)`` runs a closure per element instead, each as a task of its own). Calls
    /// on one object are applied in the pipeline's order, unless one of them has to be sent
    /// again (its connection failed, or the object moved to another member): each call is
    /// retried and de-duplicated on its own, like any other. The calls go through this client,
    /// whatever client their proxies name. More calls than ``Configuration/maxPendingCalls``
    /// at once fail, beyond that limit, with PENDING_LIMIT.
    public func pipeline(_ calls: [Call]) async throws -> [Value] {
        try await pipelineResults(calls).map { try $0.get() }
    }

    /// ``pipeline(_:)``, with each call's own outcome instead of the first failure.
    public func pipelineResults(_ calls: [Call]) async -> [Result<Value, CrucialError>] {
        guard !calls.isEmpty else { return [] }
        var results = [Result<Value, CrucialError>?](repeating: nil, count: calls.count)
        var creates = [Create?](repeating: nil, count: calls.count)
        for (i, call) in calls.enumerated() {
            if let error = call.handle.initialError {
                results[i] = .failure(error)
                continue
            }
            do throws(CrucialError) { try call.handle.ref.validate() } catch {
                results[i] = .failure(error)
                continue
            }
            creates[i] = prepared(call.handle.creation)
        }
        // One lock for every sequence number, one for every route.
        let (seqNumbers, firstAcked) = seqs.withLock { t in
            (calls.indices.map { results[$0] == nil && !calls[$0].readOnly ? t.allocate() : 0 }, t.ackedBelow)
        }
        let (routes, clustered): ([(viewID: UInt64, address: String?)], Bool) = routing.withLock { r in
            (calls.map { call in r.map { ($0.view.id, $0.ring.primary(for: call.handle.ref)?.address) } ?? (0, nil) }, r != nil)
        }

        // Write each server's calls to one of its connections, then wait once for all.
        var sent: [(index: Int, answer: EventLoopFuture<Frame>)] = []
        var again: [Int] = []
        var byAddress: [String?: [Int]] = [:]
        var order: [String?] = []
        for i in calls.indices where results[i] == nil {
            if byAddress[routes[i].address] == nil { order.append(routes[i].address) }
            byAddress[routes[i].address, default: []].append(i)
        }
        for address in order {
            let indices = byAddress[address] ?? []
            guard let c = try? await connection(to: address) else {
                again += indices  // the retrying path reports why, or connects after all
                continue
            }
            for i in indices {
                let call = calls[i]
                let id = newRequestID()
                let frame = Frame.invoke(
                    Invoke(
                        id: id, ref: call.handle.ref, method: call.method, args: call.args, create: creates[i], clientID: clientID,
                        seq: seqNumbers[i], ackedBelow: seqNumbers[i] == 0 ? 0 : firstAcked, viewID: routes[i].viewID))
                sent.append((i, c.send(frame, id: id)))
            }
        }
        if let first = sent.first {
            let answers = (try? await EventLoopFuture.whenAllComplete(sent.map(\.answer), on: first.answer.eventLoop).get()) ?? []
            for ((i, _), answer) in zip(sent, answers) {
                switch answer {
                case .success(let frame):
                    if needsSendingAgain(frame, clustered: clustered) {
                        again.append(i)
                    } else {
                        results[i] = value(answering: calls[i].handle.ref, frame)
                    }
                case .failure(let error as CrucialError) where Self.isConnectionFailure(error):
                    again.append(i)
                case .failure(let error):
                    results[i] = .failure(error as? CrucialError ?? CrucialError(.internal, "\(error)"))
                }
            }
        }

        // The few sent again go the way of single calls (routing, back-off, time limits), each with its sequence number.
        if !again.isEmpty {
            resent.add(again.count, ordering: .relaxed)
            let retried = await withTaskGroup(of: (Int, Result<Value, CrucialError>).self) { group in
                for i in again {
                    let call = calls[i], create = creates[i], seq = seqNumbers[i]
                    group.addTask {
                        do {
                            return (
                                i,
                                .success(
                                    try await self.invoke(
                                        call.handle.ref, call.method, call.args, create: create, seq: seq, firstAcked: firstAcked, sentBefore: 1))
                            )
                        } catch {
                            return (i, .failure(error as? CrucialError ?? CrucialError(.internal, "\(error)")))
                        }
                    }
                }
                return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            for (i, result) in retried { results[i] = result }
        }
        seqs.withLock { t in for seq in seqNumbers where seq != 0 { t.complete(seq) } }
        for (i, result) in results.enumerated() {
            if case .success = result, creates[i] != nil { calls[i].handle.markCreated() }
        }
        return results.map { $0 ?? .failure(CrucialError(.internal, "a pipelined call was never answered")) }
    }

    /// Whether `frame`, the answer to a call, asks for the call to be sent again, as
    /// ``send(to:_:)`` would: to another member (a newer view, learnt here), or once the
    /// cluster serves it again (``refusedForNow(_:clustered:)``).
    private func needsSendingAgain(_ frame: Frame, clustered: Bool) -> Bool {
        guard case .result(let reply) = frame else { return false }
        switch reply.outcome {
        case .wrongView(let v):
            learn(v)
            return true
        case .error(let e): return Self.refusedForNow(e, clustered: clustered)
        case .value: return false
        }
    }
}
