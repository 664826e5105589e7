import CrucialTransport
import Testing

@Suite("Handshake proofs")
struct HandshakeAuthTests {
    @Test("Handshake proofs depend on the secret, both nonces and the client name; the server's differs from the client's")
    func handshakeProofs() {
        let (c, s) = (HandshakeAuth.nonce(), HandshakeAuth.nonce())
        #expect(c.count == 32 && c != s, "fresh random nonces")
        let proof = HandshakeAuth.clientProof(secret: "k", clientNonce: c, serverNonce: s, clientName: "n")
        #expect(proof.count == 32)
        #expect(HandshakeAuth.matches(proof, HandshakeAuth.clientProof(secret: "k", clientNonce: c, serverNonce: s, clientName: "n")))
        for other in [
            HandshakeAuth.clientProof(secret: "K", clientNonce: c, serverNonce: s, clientName: "n"),
            HandshakeAuth.clientProof(secret: "k", clientNonce: s, serverNonce: c, clientName: "n"),
            HandshakeAuth.clientProof(secret: "k", clientNonce: c, serverNonce: HandshakeAuth.nonce(), clientName: "n"),
            HandshakeAuth.clientProof(secret: "k", clientNonce: c, serverNonce: s, clientName: "m"),
            HandshakeAuth.serverProof(secret: "k", serverNonce: s, clientNonce: c),
            Array(proof.dropLast()),
        ] {
            #expect(!HandshakeAuth.matches(other, proof))
        }
        // Fields are length-prefixed: moving bytes from one field to the next changes the proof.
        #expect(
            HandshakeAuth.serverProof(secret: "k", serverNonce: [1, 2], clientNonce: [3])
                != HandshakeAuth.serverProof(secret: "k", serverNonce: [1], clientNonce: [2, 3]))
    }

}
