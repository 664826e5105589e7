internal import CrucialCore

/// The proofs of the handshake's challenge-response (see `Hello` in crucial.proto):
/// each side shows it knows the shared secret by an HMAC-SHA256 over both sides' fresh
/// nonces, so the secret never travels and a recorded handshake cannot be replayed.
package enum HandshakeAuth {
    /// Bytes in each nonce.
    package static let nonceLength = 32

    /// Fresh random bytes from the system's cryptographic generator.
    package static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// What a client sends in `Authenticate`.
    package static func clientProof(secret: String, clientNonce: [UInt8], serverNonce: [UInt8], clientName: String) -> [UInt8] {
        mac(secret, "crucial-auth-v2 client", [clientNonce, serverNonce, Array(clientName.utf8)])
    }

    /// What a server sends in its `HelloReply` after a challenge.
    package static func serverProof(secret: String, serverNonce: [UInt8], clientNonce: [UInt8]) -> [UInt8] {
        mac(secret, "crucial-auth-v2 server", [serverNonce, clientNonce])
    }

    /// Compares in time independent of where the two differ.
    package static func matches(_ proof: [UInt8], _ expected: [UInt8]) -> Bool {
        guard proof.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(proof, expected) { difference |= a ^ b }
        return difference == 0
    }

    /// HMAC-SHA256 over the label and each field, every one length-prefixed so that no two
    /// different field lists give the same bytes.
    private static func mac(_ secret: String, _ label: String, _ fields: [[UInt8]]) -> [UInt8] {
        var hmac = HMACSHA256(key: secret.utf8)
        for field in [Array(label.utf8)] + fields {
            let n = UInt32(field.count)
            hmac.update([UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)])
            hmac.update(field)
        }
        return hmac.finalize()
    }
}
