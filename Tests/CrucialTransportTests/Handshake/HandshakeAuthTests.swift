import Foundation
import CrucialTransport
import Testing

@Suite("Handshake proofs")
struct HandshakeAuthTests {
    @Test("The proofs of docs/PROTOCOL.md's worked example: every field length-prefixed, the label too")
    func protocolExample() {
        let clientNonce = Array(UInt8(0)..<32), serverNonce = Array(UInt8(32)..<64)
        func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        #expect(
            hex(HandshakeAuth.clientProof(secret: "s3cret", clientNonce: clientNonce, serverNonce: serverNonce, clientName: "demo"))
                == "623eac560c8d8e81d73bb8d14c6b6154fadbd881fa38656042cecc7ed9e17f21")
        #expect(
            hex(HandshakeAuth.serverProof(secret: "s3cret", serverNonce: serverNonce, clientNonce: clientNonce))
                == "bee60da816e5c653e0786ce7527b2ca9c4301afdbd3f91e024461ad159962941")
    }

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
