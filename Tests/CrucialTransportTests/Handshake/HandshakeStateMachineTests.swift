import CrucialCore
import CrucialTransport
import Testing

/// The client's and the server's handshake state machines against each other, in memory:
/// every frame one returns is handed to the other.
@Suite("Handshake state machines, without sockets")
struct HandshakeStateMachineTests {
    struct Outcome {
        var client: ClientHandshake.Action?
        var server: ServerHandshake.Action?
    }

    /// Runs a handshake to its end; returns the last actions of both sides.
    static func run(_ client: inout ClientHandshake, _ server: inout ServerHandshake, view: View? = nil) -> Outcome {
        var outcome = Outcome()
        var toServer: Frame? = .hello(client.hello)
        for _ in 0..<4 {
            guard let frame = toServer else { break }
            toServer = nil
            let action = server.receive(frame, view: view)
            outcome.server = action
            let reply: Frame
            switch action {
            case .send(let f): reply = f
            case .accept(let r, _, _): reply = .helloReply(r)
            case .refuse(let r, _): reply = .helloReply(r)
            case .fail(let id, let e): reply = .result(Reply(id: id, outcome: .error(e)))
            }
            let answer = client.receive(reply)
            outcome.client = answer
            if case .send(let f) = answer { toServer = f }
        }
        return outcome
    }

    @Test("No credentials: accepted at once, as admin, with the view")
    func open() {
        var client = ClientHandshake(name: "c", secret: "", address: "s")
        var server = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [])
        let view = View(id: 3, members: [.init(id: "a", address: "127.0.0.1:1")], rf: 1)
        let outcome = Self.run(&client, &server, view: view)
        guard case .accept(let reply, let isAdmin, let credential) = outcome.server else { Issue.record("\(String(describing: outcome.server))"); return }
        #expect(isAdmin && credential == nil && reply.view == view && reply.maxFrameSize == 1024)
        #expect(outcome.client == .ready(reply))
        #expect(server.isReady && !client.isPending && server.clientName == "c")
    }

    @Test("A secret: challenge, proof, and the server proves it too; the credential's role decides admin rights")
    func challenge() {
        let credentials = [Credential(name: "apps", secret: "k1"), Credential(name: "ops", secret: "k2", isAdmin: true)]
        for (secret, admin, name) in [("k1", false, "apps"), ("k2", true, "ops")] {
            var client = ClientHandshake(name: "c", secret: secret, address: "s")
            var server = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: credentials)
            let outcome = Self.run(&client, &server)
            guard case .accept(let reply, let isAdmin, let credential) = outcome.server else { Issue.record("\(String(describing: outcome.server))"); continue }
            #expect(isAdmin == admin && credential == name && !reply.serverProof.isEmpty)
            #expect(outcome.client == .ready(reply))
        }
    }

    @Test("Refusals: a wrong secret, no secret where one is needed, a server that cannot prove the secret, another protocol version")
    func refusals() {
        var client = ClientHandshake(name: "c", secret: "wrong", address: "s")
        var server = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [Credential(name: "apps", secret: "k1")])
        var outcome = Self.run(&client, &server)
        #expect(outcome.client == .fail(CrucialError(.unauthenticated, "wrong auth token")))
        #expect(!server.isReady && !server.isPending)

        client = ClientHandshake(name: "c", secret: "", address: "s")
        server = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [Credential(name: "apps", secret: "k1")])
        outcome = Self.run(&client, &server)
        #expect(outcome.client == .fail(CrucialError(.unauthenticated, "this server requires an auth token (CRUCIAL_AUTH_TOKEN)")))

        // Only admin credentials: a client without a secret is let in, without admin rights.
        client = ClientHandshake(name: "c", secret: "", address: "s")
        server = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [Credential(name: "ops", secret: "k", isAdmin: true)])
        outcome = Self.run(&client, &server)
        guard case .accept(_, let isAdmin, _) = outcome.server else { Issue.record("anonymous client refused"); return }
        #expect(!isAdmin)

        // A client with a secret refuses a server that never asks for it.
        client = ClientHandshake(name: "c", secret: "k", address: "s")
        server = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [])
        outcome = Self.run(&client, &server)
        guard case .fail(let e) = outcome.client else { Issue.record("accepted a server without the secret"); return }
        #expect(e.code == .unauthenticated)

        // A server proving a different secret (same name, another key).
        client = ClientHandshake(name: "c", secret: "k", address: "s")
        server = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [Credential(name: "apps", secret: "k")])
        _ = server.receive(.hello(client.hello), view: nil)
        let challenge = client.receive(.challenge(serverNonce: HandshakeAuth.nonce()))
        guard case .send = challenge else { Issue.record("no answer to the challenge"); return }
        let forged = HelloReply(serverID: "s1", maxFrameSize: 1024, serverProof: HandshakeAuth.nonce())
        #expect(client.receive(.helloReply(forged)) == .fail(CrucialError(.unauthenticated, "server s could not prove it knows this client's auth token")))

        var old = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [])
        let action = old.receive(.hello(Hello(protocolVersion: 1, clientName: "c", clientNonce: HandshakeAuth.nonce())), view: nil)
        guard case .refuse(_, let error) = action else { Issue.record("\(action)"); return }
        #expect(error.code == .unsupportedVersion)
    }

    @Test("Frames out of turn close the connection with a precise error; a full server refuses in the handshake")
    func outOfTurn() {
        var server = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [Credential(name: "apps", secret: "k1")])
        #expect(server.receive(.ping(id: 7), view: nil) == .fail(id: 7, CrucialError(.handshakeRequired, "send a Hello frame before any request")))
        #expect(!server.isPending)

        server = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [Credential(name: "apps", secret: "k1")])
        guard case .send = server.receive(.hello(Hello(clientName: "c", clientNonce: HandshakeAuth.nonce())), view: nil) else {
            Issue.record("no challenge")
            return
        }
        #expect(server.receive(.ping(id: 8), view: nil) == .fail(id: 8, CrucialError(.handshakeRequired, "answer the Challenge with Authenticate first")))

        server = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [Credential(name: "a", secret: "k")])
        guard case .refuse(_, let short) = server.receive(.hello(Hello(clientName: "c", clientNonce: [1, 2])), view: nil) else {
            Issue.record("a 2-byte nonce was taken")
            return
        }
        #expect(short.code == .badRequest)

        let full = CrucialError(.resourceExhausted, "full")
        var busy = ServerHandshake(serverID: "s1", maxFrameSize: 1024, credentials: [], refusal: full)
        var client = ClientHandshake(name: "c", secret: "", address: "s")
        let outcome = Self.run(&client, &busy)
        #expect(outcome.client == .fail(full))

        // The server giving up (its handshake timeout) reaches the client as a connection failure, which it retries.
        client = ClientHandshake(name: "c", secret: "", address: "s")
        guard case .fail(let e) = client.receive(.result(Reply(id: 0, outcome: .error(CrucialError(.timeout, "no handshake"))))) else {
            Issue.record("ignored")
            return
        }
        #expect(e.code == .connectionFailed)
    }
}
