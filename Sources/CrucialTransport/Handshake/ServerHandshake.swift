package import CrucialCore

/// The server's side of the handshake as a state machine: it takes the client's frames and
/// returns what to do, and the connection handler carries that out (send, accept, close).
///
/// ```
/// awaitingHello ──Hello──▶ ready                     (no credentials: every client is admin)
///        └───────Hello──▶ awaitingProof ──Authenticate──▶ ready
/// any refusal, or a request before the handshake is done ──▶ closed
/// ```
///
/// With credentials, the server sends a Challenge (a fresh nonce) and the client answers
/// with an HMAC over both nonces and its name (``HandshakeAuth``); the server proves it knows
/// the same secret in its HelloReply. An empty proof is a client without a secret, let in
/// (without admin rights) only when every credential is an admin's.
package struct ServerHandshake {
    package enum Action: Equatable, Sendable {
        /// Send this frame and wait for the client's next.
        case send(Frame)
        /// The client is in: send the reply. `credential` names the secret it proved (nil: none).
        case accept(HelloReply, isAdmin: Bool, credential: String?)
        /// Refused: send the reply (it carries the error), then close.
        case refuse(HelloReply, CrucialError)
        /// A frame out of turn: answer request `id` with the error, then close.
        case fail(id: UInt64, CrucialError)
    }

    private enum State {
        case awaitingHello
        case awaitingProof(hello: Hello, serverNonce: [UInt8])
        case ready
        case closed
    }

    private var state = State.awaitingHello
    private let serverID: String
    private let maxFrameSize: UInt32
    private let credentials: [Credential]
    /// Why this connection is refused whatever it sends (the server is at its connection limit).
    private let refusal: CrucialError?
    /// Why a client of a run is refused (the run was cancelled), checked once it proved its secret.
    private let runRefusal: @Sendable (UInt64) -> CrucialError?
    private let makeNonce: () -> [UInt8]
    /// The name the client gave in its Hello.
    package private(set) var clientName: String?
    /// The run of cloud threads the client named in its Hello (0: none).
    package private(set) var run: UInt64 = 0

    package init(
        serverID: String, maxFrameSize: Int, credentials: [Credential], refusal: CrucialError? = nil,
        runRefusal: @escaping @Sendable (UInt64) -> CrucialError? = { _ in nil }, makeNonce: @escaping () -> [UInt8] = HandshakeAuth.nonce
    ) {
        self.serverID = serverID
        self.maxFrameSize = UInt32(clamping: maxFrameSize)
        self.credentials = credentials
        self.refusal = refusal
        self.runRefusal = runRefusal
        self.makeNonce = makeNonce
    }

    /// Whether the handshake is done and requests may be served.
    package var isReady: Bool {
        if case .ready = state { return true }
        return false
    }

    /// Whether the handshake is still under way (for the handshake timeout).
    package var isPending: Bool {
        switch state {
        case .awaitingHello, .awaitingProof: true
        case .ready, .closed: false
        }
    }

    /// Takes one frame of a client that is not ready yet; `view` is this server's cluster
    /// view, for the reply.
    package mutating func receive(_ frame: Frame, view: View?) -> Action {
        switch state {
        case .awaitingHello: return hello(frame, view: view)
        case .awaitingProof(let hello, let nonce): return authenticate(frame, hello: hello, serverNonce: nonce, view: view)
        case .ready, .closed:
            return close(.fail(id: frame.requestID ?? 0, CrucialError(.badRequest, "the handshake is already done")))
        }
    }

    /// The connection is closing (timed out, refused, failed): nothing more is accepted.
    package mutating func close() { state = .closed }

    private mutating func close(_ action: Action) -> Action {
        state = .closed
        return action
    }

    private mutating func refuse(_ error: CrucialError) -> Action {
        close(.refuse(HelloReply(serverID: serverID, error: error, maxFrameSize: maxFrameSize), error))
    }

    private mutating func accept(isAdmin: Bool, credential: String?, serverProof: [UInt8], view: View?) -> Action {
        if run != 0, let refused = runRefusal(run) { return refuse(refused) }
        state = .ready
        return .accept(
            HelloReply(serverID: serverID, view: view, maxFrameSize: maxFrameSize, serverProof: serverProof), isAdmin: isAdmin,
            credential: credential)
    }

    private mutating func hello(_ frame: Frame, view: View?) -> Action {
        guard case .hello(let hello) = frame else {
            return close(.fail(id: frame.requestID ?? 0, CrucialError(.handshakeRequired, "send a Hello frame before any request")))
        }
        clientName = hello.clientName
        run = hello.run
        if hello.protocolVersion != crucialProtocolVersion {
            return refuse(
                CrucialError(
                    .unsupportedVersion,
                    "client speaks protocol version \(hello.protocolVersion); this server speaks \(crucialProtocolVersion)"))
        }
        if let refusal { return refuse(refusal) }
        guard !credentials.isEmpty else { return accept(isAdmin: true, credential: nil, serverProof: [], view: view) }
        guard hello.clientNonce.count >= 16, hello.clientNonce.count <= 64 else {
            return refuse(CrucialError(.badRequest, "Hello carries a client nonce of \(hello.clientNonce.count) bytes; 16 to 64 expected"))
        }
        let nonce = makeNonce()
        state = .awaitingProof(hello: hello, serverNonce: nonce)
        return .send(.challenge(serverNonce: nonce))
    }

    private mutating func authenticate(_ frame: Frame, hello: Hello, serverNonce: [UInt8], view: View?) -> Action {
        guard case .authenticate(let proof) = frame else {
            return close(.fail(id: frame.requestID ?? 0, CrucialError(.handshakeRequired, "answer the Challenge with Authenticate first")))
        }
        if proof.isEmpty {
            // Clients without a secret are served (without admin rights) when only admin credentials exist.
            guard !credentials.contains(where: { !$0.isAdmin }) else {
                return refuse(CrucialError(.unauthenticated, "this server requires an auth token (CRUCIAL_AUTH_TOKEN)"))
            }
            return accept(isAdmin: false, credential: nil, serverProof: [], view: view)
        }
        let matched = credentials.first { c in
            HandshakeAuth.matches(
                proof,
                HandshakeAuth.clientProof(secret: c.secret, clientNonce: hello.clientNonce, serverNonce: serverNonce, clientName: hello.clientName))
        }
        guard let matched else { return refuse(CrucialError(.unauthenticated, "wrong auth token")) }
        return accept(
            isAdmin: matched.isAdmin, credential: matched.name,
            serverProof: HandshakeAuth.serverProof(secret: matched.secret, serverNonce: serverNonce, clientNonce: hello.clientNonce), view: view)
    }
}
