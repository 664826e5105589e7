#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (`sd_notify(3)`, a unit of `Type=notify`): state lines such
/// as `READY=1`, `STATUS=...` and `STOPPING=1` sent as one datagram to the Unix socket
/// `$NOTIFY_SOCKET` names (`@name`: the abstract namespace). Without the variable (not run
/// by systemd) it does nothing. Written here rather than linking libsystemd: the protocol is
/// one `sendto`.
package enum SystemdNotifier {
    /// Sends `state` (newline-separated `KEY=VALUE` lines); returns whether it was sent.
    @discardableResult
    package static func notify(_ state: String) -> Bool {
        guard let raw = getenv("NOTIFY_SOCKET") else { return false }
        let path = Array(String(cString: raw).utf8)
        guard !path.isEmpty, path[0] == UInt8(ascii: "/") || path[0] == UInt8(ascii: "@") else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { sunPath in
            for (i, byte) in path.enumerated() { sunPath[i] = byte }
            if path[0] == UInt8(ascii: "@") { sunPath[0] = 0 }  // abstract: a leading NUL, no terminator
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path[0] == UInt8(ascii: "@") ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sockaddrPointer, length) }
            }
        }
        return sent == message.count
    }
}
