internal import CrucialCore
internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// An exclusive lock on a data directory (`flock` on its `LOCK` file), held for the life
/// of the server: a second process started on the same directory, or a restarted member
/// whose old process is still alive (paused, hung), is refused instead of writing beside it.
/// The kernel releases the lock when the process dies, however it dies.
final class DataDirectoryLock: Sendable {
    private let fd: Int32
    let path: String

    init(directory: String) throws(CrucialError) {
        path = "\(directory)/LOCK"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CrucialError(.internal, "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno == EWOULDBLOCK ? "another crucial-server process uses this data directory" : String(cString: strerror(errno))
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            Glibc.close(fd)
            throw CrucialError(
                .invalidArgument, "cannot lock the data directory \(directory): \(reason)\(holder.isEmpty ? "" : " (pid \(holder))")")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, pid.count, 0) }
        self.fd = fd
    }

    deinit { Glibc.close(fd) }
}
