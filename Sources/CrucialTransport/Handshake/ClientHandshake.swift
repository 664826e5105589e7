package import CrucialCore

/// The client's side of the handshake as a state machine: ``hello`` goes out first; each
/// frame the server sends back is taken by ``receive(_:)``, which says what to do.
///
/// With a secret, the client answers a Challenge with its proof and then requires the
/// server's: a server that does not ask for one, or cannot prove it knows the secret, is
/// not the one this client was configured for and gets no data.
package struct ClientHandshake: Sendable {
    package enum Action: Equatable, Sendable {
        /// Send this frame (the answer to a Challenge) and wait.
        case send(Frame)
        /// The server accepted: requests may go out.
        case ready(HelloReply)
        /// The handshake failed: close with this error.
        case fail(CrucialError)
    }

    /// The first frame to send.
    package let hello: Hello
    private let secret: String
    private let address: String
    /// The server's challenge, once it came.
    private var serverNonce: [UInt8]?
    private var done = false

    package init(name: String, secret: String, address: String, run: UInt64 = 0, nonce: [UInt8] = HandshakeAuth.nonce()) {
        self.hello = Hello(clientName: name, clientNonce: nonce, run: run)
        self.secret = secret
        self.address = address
    }

    /// Whether the handshake is still under way.
    package var isPending: Bool { !done }

    /// Takes a frame the server sent during the handshake; nil when it is not a handshake
    /// frame (the caller handles it).
    package mutating func receive(_ frame: Frame) -> Action? {
        guard !done else { return nil }
        switch frame {
        case .challenge(let nonce) where serverNonce == nil:
            serverNonce = nonce
            let proof =
                secret.isEmpty
                ? [] : HandshakeAuth.clientProof(secret: secret, clientNonce: hello.clientNonce, serverNonce: nonce, clientName: hello.clientName)
            return .send(.authenticate(proof: proof))
        case .helloReply(let reply):
            done = true
            if let refusal = reply.error { return .fail(refusal) }
            if let refusal = checkServerProof(reply) { return .fail(refusal) }
            guard reply.protocolVersion == crucialProtocolVersion else {
                return .fail(
                    CrucialError(
                        .unsupportedVersion,
                        "server \(address) speaks protocol version \(reply.protocolVersion); this client speaks \(crucialProtocolVersion)"))
            }
            return .ready(reply)
        case .result(let reply) where reply.id == 0:
            // An error not tied to a request: the server gave up on the handshake (its timeout,
            // a frame it could not read). Another attempt may go through: a connection failure.
            guard case .error(let e) = reply.outcome else { return nil }
            done = true
            return .fail(CrucialError(.connectionFailed, "server \(address) ended the handshake: \(e)"))
        default:
            return nil
        }
    }

    /// With a secret, the server must prove it knows it too.
    private func checkServerProof(_ reply: HelloReply) -> CrucialError? {
        guard !secret.isEmpty else { return nil }
        guard let serverNonce else {
            return CrucialError(
                .unauthenticated,
                "server \(address) does not ask for authentication but this client has an auth token: refusing a server "
                    + "that cannot prove it knows the token (start it with --auth-token, or clear CRUCIAL_AUTH_TOKEN)")
        }
        let expected = HandshakeAuth.serverProof(secret: secret, serverNonce: serverNonce, clientNonce: hello.clientNonce)
        guard HandshakeAuth.matches(reply.serverProof, expected) else {
            return CrucialError(.unauthenticated, "server \(address) could not prove it knows this client's auth token")
        }
        return nil
    }
}
