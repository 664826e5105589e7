internal import CrucialCore
internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// Whole-file writes that survive a crash at any point: the old content or the new, never a mix.
enum DurableFile {
    static func replace(_ path: String, with bytes: [UInt8]) throws(CrucialError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CrucialError(.internal, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        if let failure = OperationLog.write(bytes, to: fd).error {
            Glibc.close(fd)
            throw CrucialError(.internal, "writing \(temporary) failed: \(failure.message)")
        }
        let synced = fsync(fd) == 0
        let error = errno
        Glibc.close(fd)
        guard synced else { throw CrucialError(.internal, "fsync of \(temporary) failed: \(String(cString: strerror(error)))") }
        guard rename(temporary, path) == 0 else { throw CrucialError(.internal, "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))") }
        let directory = (path as NSString).deletingLastPathComponent
        try OperationLog.syncDirectory(directory.isEmpty ? "." : directory)
    }
}
