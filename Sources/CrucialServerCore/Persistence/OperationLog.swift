internal import CrucialCore
internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// When the operation log reaches the disk. Whatever the policy, a change is answered
/// only once its record is written to the file (a killed server loses nothing it
/// acknowledged); the policies differ in when the file is fsynced.
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// fsync before answering: an acknowledged operation survives a crash of the machine.
    case always
    /// fsync once a second: a crashed machine may lose the last second.
    case everysec
    /// leave fsync to the OS.
    case never
}

/// The append-only log of operations on persistent objects, written by one thread
/// that batches whatever accumulated (group commit).
///
/// `append` only copies bytes into the pending batch, so callers may hold an object's
/// lock: records of one object enter the log in the order its operations ran. Answers
/// wait for ``whenSafe(_:_:)``: the record written (fsynced under ``FsyncPolicy/always``).
///
/// A write or an fsync that fails (a full disk, an I/O error) loses nothing: the file is
/// cut back to what was last known to be on disk, the bytes written since are kept, and
/// the writer tries again every half second. Meanwhile ``failure`` says why, and the
/// server refuses changes to persistent objects; callers waiting for records get the
/// error (their change is not acknowledged) and the records reach the disk when it
/// works again, so the log always matches what the server holds.
final class OperationLog: @unchecked Sendable {  // every mutable field is guarded by `condition`
    let directory: String
    let policy: FsyncPolicy
    private let condition = NSCondition()
    private var fd: Int32
    private(set) var generation: UInt64
    private var nextLSN: UInt64
    private var pending: [UInt8] = []
    private var pendingLast: UInt64 = 0
    /// Records up to this one are written (fsynced under `always`): their changes may be answered.
    private var safe: UInt64
    private var waiters: [(lsn: UInt64, done: @Sendable (CrucialError?) -> Void)] = []
    private var writing = false
    private var stopping = false
    /// Why the last write or fsync failed, until one succeeds again.
    private var failed: CrucialError?
    /// Bytes written to the current file.
    private(set) var fileBytes: Int = 0
    /// What was written since the last fsync, with its last record: rewritten if an fsync fails.
    private var unsynced: [UInt8] = []
    private var unsyncedLast: UInt64 = 0
    private var thread: Thread?

    /// Opens a new log file of `generation` in `directory`; the first record gets `nextLSN`.
    init(directory: String, generation: UInt64, nextLSN: UInt64, policy: FsyncPolicy) throws(CrucialError) {
        self.directory = directory
        self.policy = policy
        self.generation = generation
        self.nextLSN = nextLSN
        self.safe = nextLSN - 1
        self.fd = try Self.create(Self.logPath(directory, generation))
        try Self.syncDirectory(directory)
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "crucial-oplog"
        self.thread = thread
        thread.start()
    }

    static func logPath(_ directory: String, _ generation: UInt64) -> String {
        "\(directory)/log-\(String(format: "%010llu", generation)).aof"
    }

    private static func create(_ path: String) throws(CrucialError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CrucialError(.internal, "cannot open \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    static func syncDirectory(_ directory: String) throws(CrucialError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw CrucialError(.internal, "cannot open \(directory): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw CrucialError(.internal, "fsync \(directory): \(String(cString: strerror(errno)))") }
    }

    /// Adds a record made for the next sequence number; returns that number. Never fails:
    /// while the disk fails, records wait in memory (and the server refuses changes).
    func append(_ make: (UInt64) -> LogRecord) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        let lsn = nextLSN
        nextLSN += 1
        pending.append(contentsOf: RecordFraming.frame(WireCodec.encode(value: make(lsn).value)))
        pendingLast = lsn
        condition.broadcast()
        return lsn
    }

    /// Calls `done` once record `lsn` may be answered (written; under `always`, fsynced),
    /// or with the error while the disk fails.
    func whenSafe(_ lsn: UInt64, _ done: @escaping @Sendable (CrucialError?) -> Void) {
        condition.lock()
        if lsn <= safe {
            condition.unlock()
            return done(nil)
        }
        if let failed {
            condition.unlock()
            return done(failed)
        }
        waiters.append((lsn, done))
        condition.unlock()
    }

    /// Flushes what is pending to the current file, then continues in a new one (for
    /// compaction); returns the new file's generation.
    func rotate() throws(CrucialError) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        while writing || !pending.isEmpty {
            if let failed { throw failed }
            condition.broadcast()
            condition.wait()
        }
        if let failed { throw failed }
        guard fsync(fd) == 0 else { throw failure("fsync of the operation log failed") }
        unsynced = []
        unsyncedLast = 0
        let next = try Self.create(Self.logPath(directory, generation + 1))
        Glibc.close(fd)
        fd = next
        generation += 1
        fileBytes = 0
        try Self.syncDirectory(directory)
        return generation
    }

    /// Why the log cannot take changes now (the disk fails), if it cannot.
    var failure: CrucialError? {
        condition.lock()
        defer { condition.unlock() }
        return failed
    }

    /// The number the next record gets.
    var lastAssigned: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return nextLSN - 1
    }

    /// Writes what is pending and stops the writer (at once if the disk fails).
    func close() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while thread != nil { condition.wait() }
        Glibc.close(fd)
        condition.unlock()
    }

    /// The error for a failed write or fsync, naming the data directory. Reads errno.
    private func failure(_ what: String) -> CrucialError {
        let code = errno
        let reason = String(cString: strerror(code))
        let hint = code == ENOSPC || code == EDQUOT ? "the data directory is full" : "the data directory's disk fails"
        return CrucialError(
            .resourceExhausted,
            "\(what) in \(directory): \(reason); \(hint): changes to persistent objects are refused until it works again, reads go on")
    }

    private func run() {
        var lastSync = ContinuousClock.now
        condition.lock()
        while true {
            let syncDue = !unsynced.isEmpty && policy == .everysec && ContinuousClock.now - lastSync >= .seconds(1)
            let retryDue = failed != nil
            if pending.isEmpty && !syncDue && !retryDue {
                if stopping { break }
                _ = condition.wait(until: Date().addingTimeInterval(unsynced.isEmpty ? 1 : 0.2))
                continue
            }
            if stopping && failed != nil { break }  // nothing more can be saved
            let batch = pending, last = pendingLast, fd = self.fd, start = fileBytes
            pending = []
            writing = true
            condition.unlock()

            if retryDue { Thread.sleep(forTimeInterval: 0.5) }
            var error: CrucialError?
            var writeFailed = false
            if !batch.isEmpty, let e = Self.write(batch, to: fd).error {
                error = failure("writing the operation log failed (\(e.message))")
                writeFailed = true
            }
            let syncNow = error == nil && (policy == .always || (policy == .everysec && ContinuousClock.now - lastSync >= .seconds(1)))
            var synced = false
            if syncNow, !batch.isEmpty || !unsynced.isEmpty || retryDue {
                if fsync(fd) == 0 {
                    synced = true
                    lastSync = .now
                } else {
                    error = failure("fsync of the operation log failed")
                }
            }

            condition.lock()
            writing = false
            var ready: [@Sendable (CrucialError?) -> Void] = []
            if let error {
                if writeFailed {
                    // The batch did not (all) reach the file: cut it off and write it again later.
                    _ = ftruncate(fd, off_t(start))
                    fileBytes = start
                    pending = batch + pending
                } else {
                    // The fsync failed: what was written since the last good one may not be on
                    // disk. Write it again after what is there (replay skips a record an object
                    // already reflects) and fsync again; nothing acknowledged leaves the file.
                    fileBytes = start + batch.count
                    pending = unsynced + batch + pending
                    unsynced = []
                    unsyncedLast = 0
                }
                failed = error
                ready = waiters.map(\.done)
                waiters = []
            } else {
                failed = nil
                fileBytes = start + batch.count
                if policy == .never {
                    safe = max(safe, last)
                } else if synced {
                    safe = max(safe, last, unsyncedLast)
                    unsynced = []
                    unsyncedLast = 0
                } else {
                    unsynced += batch
                    unsyncedLast = max(unsyncedLast, last)
                    if policy == .everysec { safe = max(safe, last) }
                }
                ready = waiters.filter { $0.lsn <= safe }.map(\.done)
                waiters.removeAll { $0.lsn <= safe }
            }
            condition.broadcast()
            let failure = error
            condition.unlock()
            for done in ready { done(failure) }
            condition.lock()
        }
        if failed == nil { fsync(fd) }
        thread = nil
        condition.broadcast()
        condition.unlock()
    }

    /// Writes all of `bytes`, retrying short writes and EINTR; how many it wrote, and the
    /// error if it failed.
    static func write(_ bytes: [UInt8], to fd: Int32) -> (written: Int, error: CrucialError?) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return (offset, CrucialError(.internal, String(cString: strerror(errno))))
            }
            offset += n
        }
        return (offset, nil)
    }
}
