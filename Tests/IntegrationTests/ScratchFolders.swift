import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Folders and files the tests make under the temporary directory, named
/// `crucial-KIND-PID-UUID`. A test removes what it made; what a killed or crashed test
/// process left (a stopped stress run, a test that timed out) is removed by the next test
/// process that makes one of the same kind, once it sees the process is gone.
enum ScratchFolders {
    /// A new path for `kind` ("etcd", "data", "test", "metadata"), with `suffix` (".py").
    /// Nothing is made: the caller creates the folder or file.
    static func path(_ kind: String, suffix: String = "") -> String {
        sweepOnce(kind)
        return temporary + "crucial-\(kind)-\(getpid())-\(UUID().uuidString)\(suffix)"
    }

    /// Removes `path` and the lock files SwiftPM leaves in the temporary directory for a
    /// package built there (`/tmp/x/.build` leaves `_tmp_x_.build.lock` and two more).
    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        let stem = path.replacingOccurrences(of: "/", with: "_") + "_"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix(stem) {
            try? FileManager.default.removeItem(atPath: temporary + name)
        }
    }

    private static let temporary: String = {
        let t = NSTemporaryDirectory()
        return t.hasSuffix("/") ? t : t + "/"
    }()
    private static let swept = Mutex<Set<String>>([])

    /// Removes `kind`'s leftovers of dead processes, once per process and kind.
    private static func sweepOnce(_ kind: String) {
        guard swept.withLock({ $0.insert(kind).inserted }) else { return }
        // SwiftPM leaves its lock files beside a package built there: `_tmp_crucial-KIND-…`.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] {
            guard let prefix = ["crucial-\(kind)-", "_tmp_crucial-\(kind)-"].first(where: name.hasPrefix),
                let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid > 0 else { continue }
            guard kill(pid, 0) != 0, errno == ESRCH else { continue }
            // A disk-full test's tmpfs outlives a killed test process: detached first (as root;
            // nothing happens to a folder that is no mount point).
            _ = umount2(temporary + name, Int32(MNT_DETACH))
            try? FileManager.default.removeItem(atPath: temporary + name)
        }
    }
}
