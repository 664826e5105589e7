/// Defaults shared by servers and clients.
public enum CrucialDefaults {
    /// The port `crucial-server` listens on when none is given, and clients try when
    /// `CRUCIAL_SERVERS` is unset.
    public static let port = 7420
    /// The largest frame a server accepts (16 MiB): enough for a 2-million-element
    /// gradient; raise it with `crucial-server --max-frame-size`.
    public static let maxFrameSize = 16 << 20
}

/// Parses "host:port" (or "[v6]:port", or "host" with the default port).
public func parseAddress(_ s: String, defaultPort: Int = CrucialDefaults.port) throws(CrucialError) -> (host: String, port: Int) {
    let trimmed = s.trimmingWhitespace()
    guard !trimmed.isEmpty else { throw CrucialError(.invalidArgument, "empty server address") }
    if trimmed.hasPrefix("[") {
        guard let close = trimmed.firstIndex(of: "]") else {
            throw CrucialError(.invalidArgument, "bad IPv6 address \"\(s)\": missing ]")
        }
        let host = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
        let rest = trimmed[trimmed.index(after: close)...]
        if rest.isEmpty { return (host, defaultPort) }
        guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port) else {
            throw CrucialError(.invalidArgument, "bad port in server address \"\(s)\"")
        }
        return (host, port)
    }
    let parts = trimmed.split(separator: ":", omittingEmptySubsequences: false)
    switch parts.count {
    case 1: return (trimmed, defaultPort)
    case 2:
        guard let port = Int(parts[1]), (1...65535).contains(port) else {
            throw CrucialError(.invalidArgument, "bad port in server address \"\(s)\" (expected host:port, port 1-65535)")
        }
        guard !parts[0].isEmpty else { throw CrucialError(.invalidArgument, "missing host in server address \"\(s)\"") }
        return (String(parts[0]), port)
    default:
        throw CrucialError(.invalidArgument, "bad server address \"\(s)\": IPv6 addresses go in brackets, [::1]:7420")
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
