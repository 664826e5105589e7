internal import Crypto

/// The proofs of the handshake's challenge-response (see `Hello` in crucial.proto):
/// each side shows it knows the shared secret by an HMAC-SHA256 over both sides' fresh
/// nonces, so the secret never travels and a recorded handshake cannot be replayed.
public enum HandshakeAuth {
    /// Bytes in each nonce.
    public static let nonceLength = 32

    /// Fresh random bytes from the system's cryptographic generator.
    public static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// What a client sends in `Authenticate`.
    public static func clientProof(secret: String, clientNonce: [UInt8], serverNonce: [UInt8], clientName: String) -> [UInt8] {
        mac(secret, "crucial-auth-v2 client", [clientNonce, serverNonce, Array(clientName.utf8)])
    }

    /// What a server sends in its `HelloReply` after a challenge.
    public static func serverProof(secret: String, serverNonce: [UInt8], clientNonce: [UInt8]) -> [UInt8] {
        mac(secret, "crucial-auth-v2 server", [serverNonce, clientNonce])
    }

    /// Compares in time independent of where the two differ.
    public static func matches(_ proof: [UInt8], _ expected: [UInt8]) -> Bool {
        guard proof.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(proof, expected) { difference |= a ^ b }
        return difference == 0
    }

    /// HMAC-SHA256 over the label and each field, every one length-prefixed so that no two
    /// different field lists give the same bytes.
    private static func mac(_ secret: String, _ label: String, _ fields: [[UInt8]]) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: Array(secret.utf8)))
        for field in [Array(label.utf8)] + fields {
            let n = UInt32(field.count)
            hmac.update(data: [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)])
            hmac.update(data: field)
        }
        return Array(hmac.finalize())
    }
}

/// A secret a server accepts, with what it grants.
public struct Credential: Sendable, Equatable {
    /// Shown in logs when a client authenticates with it (never the secret).
    public var name: String
    public var secret: String
    /// Admin operations: plugin upload, server-to-server frames.
    public var isAdmin: Bool

    public init(name: String, secret: String, isAdmin: Bool = false) {
        self.name = name
        self.secret = secret
        self.isAdmin = isAdmin
    }

    /// Parses a credentials file: one `NAME ROLE SECRET` per line, ROLE being `client` or
    /// `admin`; blank lines and lines starting with `#` are skipped.
    public static func parseFile(_ text: String, path: String) throws(CrucialError) -> [Credential] {
        var out: [Credential] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(maxSplits: 2, whereSeparator: { $0 == " " || $0 == "\t" }).map { String($0) }
            guard parts.count == 3, ["client", "admin"].contains(parts[1]) else {
                throw CrucialError(.invalidArgument, "\(path):\(n + 1): expected `NAME client|admin SECRET`")
            }
            let secret = parts[2].trimmingWhitespace()
            guard !out.contains(where: { $0.name == parts[0] }) else {
                throw CrucialError(.invalidArgument, "\(path):\(n + 1): credential \(parts[0]) is named twice")
            }
            out.append(Credential(name: parts[0], secret: secret, isAdmin: parts[1] == "admin"))
        }
        return out
    }
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
