public import CrucialCore

/// A secret a server accepts, with what it grants.
public struct Credential: Sendable, Equatable {
    /// Shown in logs when a client authenticates with it (never the secret).
    public var name: String
    /// The shared secret (proved in the handshake, never sent).
    public var secret: String
    /// Admin operations: plugin upload, server-to-server frames.
    public var isAdmin: Bool

    /// A credential; `isAdmin` grants admin operations.
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
