import Synchronization
internal import CrucialTransport
internal import NIOCore

/// Application sessions: the ephemeral objects of a driver and its cloud threads live as
/// long as the driver keeps their session alive, and go with ``CrucialClient/endSession()``.
extension CrucialClient {
    /// Runs `request` on every member of the view (sessions live on each), or on the one
    /// server without a cluster. Retries through ``send``'s rules for the lone server.
    private func everyMember<T: Sendable>(_ request: @escaping @Sendable (any FrameConnection, UInt64) async throws -> T) async throws -> [T] {
        guard let members = view?.members else {
            let c = try await connection()
            return [try await request(c, newRequestID())]
        }
        // A member that does not answer is on its way out of the view: the others count.
        var out: [T] = []
        var failure: (any Error)?
        for m in members {
            do { out.append(try await request(try await connection(to: m.address), newRequestID())) } catch { failure = failure ?? error }
        }
        if out.isEmpty, let failure { throw failure }
        return out
    }

    /// Keeps this client's session alive from now on, if the session is its own: done
    /// when it creates its first ephemeral object, or hands its session to a cloud thread.
    func keepSessionAlive() {
        guard ownsSession, !keeper.isRunning else { return }
        keeper.start { [weak self] namesClient in self?.sendKeepAlives(namingClient: namesClient) }
    }

    /// ``keepSessionAlive()``, and the first time also one keep-alive now, answered before
    /// this returns: done before a cloud thread runs, so that the session has its full
    /// lease and the keep-alives an open connection (no task to open one, which a busy
    /// cooperative pool can hold back for seconds) before the thread creates an object in it.
    package func keepSessionAliveFromNow() async {
        guard ownsSession, !keeper.isRunning else { return }
        try? await keepAlive()  // if it fails, the timer's keep-alives go on trying
        keepSessionAlive()
    }

    /// Keeps this client itself alive from now on: done when it takes semaphore permits,
    /// which the servers release once its keep-alives stop (it crashed, or was closed).
    func keepClientAlive() {
        keeper.keepClient { [weak self] namesClient in self?.sendKeepAlives(namingClient: namesClient) }
    }

    /// One round of keep-alives, sent from the keeper's event-loop timer without waiting for
    /// the answers: on the open connection to each member (or to the lone server), or, where
    /// none is open, from a task that opens one. A lost keep-alive is made up by the next:
    /// the lease has room for three.
    private func sendKeepAlives(namingClient: Bool) {
        guard let keepAlive = keepAliveFrame(lease: configuration.sessionLease, namingClient: namingClient) else { return }
        let targets: [String?] = routing.withLock { $0?.view.members.map(\.address) } ?? [nil]
        for address in targets {
            let id = newRequestID()
            let frame = keepAlive(id)
            if let c = pool.openConnection(to: address) {
                _ = c.send(frame, id: id)
            } else {
                Task { _ = try? await self.connection(to: address).request(frame, id: id) }
            }
        }
    }

    /// Tells the servers this client's session (if it is its own) and, once it holds
    /// semaphore permits, this client live for `lease` more.
    public func keepAlive(lease: Duration? = nil) async throws {
        guard let keepAlive = keepAliveFrame(lease: lease ?? configuration.sessionLease, namingClient: keeper.keepsClient) else { return }
        _ = try await everyMember { c, id in try self.expectOK(try await c.request(keepAlive(id), id: id), "KeepAlive") }
    }

    /// The KeepAlive for request id: this client's session if it is its own, and the client
    /// itself when `namingClient`; nil when it names neither.
    private func keepAliveFrame(lease: Duration, namingClient: Bool) -> (@Sendable (UInt64) -> Frame)? {
        let ms = lease.leaseMillis
        let client = namingClient ? clientID : 0
        let session = ownsSession ? self.session : 0
        guard session != 0 || client != 0 else { return nil }
        return { id in .keepAlive(id: id, session: session, leaseMillis: ms, clientID: client) }
    }

    /// Checks, once per client, that the DSO servers take this client: a handshake with each
    /// configured server. Done before the first cloud thread is invoked, so that a wrong
    /// address or token is reported by the driver (UNAUTHENTICATED, CONNECTION_FAILED) rather
    /// than by every function it launched. A refusal by any server fails; a server that does
    /// not answer fails only when none does (a cluster member may be down).
    package func checkServers() async throws {
        guard !checkedServers.load(ordering: .relaxed) else { return }
        var unreachable: [String] = []
        for address in configuration.servers {
            do {
                _ = try await connection(to: address)
            } catch let error as CrucialError where Self.isConnectionFailure(error) {
                unreachable.append("\(address): \(error.message)")
            } catch let error as CrucialError {
                throw CrucialError(error.code, "the DSO server \(address) refused this driver: \(error.message)")
            }
        }
        if unreachable.count == configuration.servers.count, !unreachable.isEmpty {
            throw CrucialError(
                .connectionFailed,
                "the driver reaches none of its DSO servers, which its cloud threads would use: \(unreachable.joined(separator: "; ")). "
                    + "Start one with `crucial-server`, or set CRUCIAL_SERVERS=host:port")
        }
        checkedServers.store(true, ordering: .relaxed)
    }

    /// Cancels a run of cloud threads this client drives (one of them failed): every member
    /// closes the connections of the run's threads and refuses them from now on with
    /// CANCELLED and `reason`, so that their parked calls and their next calls end at once.
    /// Returns how many connections were closed.
    @discardableResult
    package func cancelRun(_ run: UInt64, reason: String) async throws -> Int {
        let counts = try await everyMember { c, id in
            try self.expectOK(try await c.request(.cancelRun(id: id, run: run, reason: reason), id: id), "CancelRun").intValue ?? 0
        }
        return Int(counts.reduce(0, +))
    }

    /// Ends the application session: the servers remove its ephemeral objects (those
    /// its cloud threads created too). Returns how many. Call it when the driver is done;
    /// a driver that dies instead loses them when the lease lapses.
    @discardableResult
    public func endSession() async throws -> Int {
        keeper.stop()
        let counts = try await everyMember { c, id in
            try self.expectOK(try await c.request(.endSession(id: id, session: self.session), id: id), "EndSession").intValue ?? 0
        }
        return Int(counts.reduce(0, +))
    }
}

extension Duration {
    /// A lease in whole milliseconds for the wire: at least 1, at most `UInt32.max`.
    fileprivate var leaseMillis: UInt32 {
        let (seconds, attoseconds) = components
        return UInt32(clamping: max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
    }
}
