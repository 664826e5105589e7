#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes to standard output or error without ever stopping the process: Foundation's
/// `FileHandle.write(_:)` traps when the reader is gone ("Broken pipe": a driver stopped
/// while its emulator still logs), and a line nobody reads is not worth a crash.
package enum StandardStreams {
    /// Writes `text` to standard output; drops it if nobody reads.
    package static func out(_ text: String) { write(text, to: 1) }
    /// Writes `text` to standard error; drops it if nobody reads.
    package static func error(_ text: String) { write(text, to: 2) }

    /// Makes a write to a closed pipe fail with EPIPE instead of killing the process.
    package static func ignoreBrokenPipes() { signal(SIGPIPE, SIG_IGN) }

    private static func write(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { raw in Glibc.write(fd, raw.baseAddress, raw.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return }
            bytes = bytes.dropFirst(n)
        }
    }
}
