internal import CrucialCore
internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// When the operation log reaches the disk.
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// fsync before answering: an acknowledged operation survives a crash of the machine.
    case always
    /// write at once, fsync once a second: a killed server loses nothing acknowledged,
    /// a crashed machine up to a second.
    case everysec
    /// write at once, leave fsync to the OS.
    case never
}

/// The append-only log of operations on persistent objects, written by one thread
/// that batches whatever accumulated (group commit).
///
/// `append` only copies bytes into the pending batch, so callers may hold an object's
/// lock: records of one object enter the log in the order its operations ran. Under
/// ``FsyncPolicy/always`` answers wait for ``whenDurable(_:_:)``.
final class OperationLog: @unchecked Sendable {  // every mutable field is guarded by `condition`
    let directory: String
    let policy: FsyncPolicy
    private let condition = NSCondition()
    private var fd: Int32
    private(set) var generation: UInt64
    private var nextLSN: UInt64
    private var pending: [UInt8] = []
    private var pendingLast: UInt64 = 0
    private var durable: UInt64
    private var waiters: [(lsn: UInt64, done: @Sendable (CrucialError?) -> Void)] = []
    private var writing = false
    private var stopping = false
    private var failed: CrucialError?
    /// Bytes written to the current file.
    private(set) var fileBytes: Int = 0
    private var thread: Thread?

    /// Opens a new log file of `generation` in `directory`; the first record gets `nextLSN`.
    init(directory: String, generation: UInt64, nextLSN: UInt64, policy: FsyncPolicy) throws(CrucialError) {
        self.directory = directory
        self.policy = policy
        self.generation = generation
        self.nextLSN = nextLSN
        self.durable = nextLSN - 1
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

    /// Adds a record made for the next sequence number; returns that number. Fails
    /// once a write failed: the server then refuses to change persistent objects.
    func append(_ make: (UInt64) -> LogRecord) throws(CrucialError) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        if let failed { throw failed }
        let lsn = nextLSN
        nextLSN += 1
        pending.append(contentsOf: RecordFraming.frame(WireCodec.encode(value: make(lsn).value)))
        pendingLast = lsn
        condition.broadcast()
        return lsn
    }

    /// Calls `done` once record `lsn` is on disk (at once unless the policy is `always`).
    func whenDurable(_ lsn: UInt64, _ done: @escaping @Sendable (CrucialError?) -> Void) {
        condition.lock()
        if let failed {
            condition.unlock()
            done(failed)
            return
        }
        guard policy == .always, lsn > durable else {
            condition.unlock()
            done(nil)
            return
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
        fsync(fd)
        Glibc.close(fd)
        generation += 1
        fd = try Self.create(Self.logPath(directory, generation))
        fileBytes = 0
        try Self.syncDirectory(directory)
        return generation
    }

    /// Why the log stopped accepting records, if it did.
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

    /// Writes what is pending and stops the writer.
    func close() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while thread != nil { condition.wait() }
        Glibc.close(fd)
        condition.unlock()
    }

    private func run() {
        var lastSync = ContinuousClock.now
        var unsynced = false
        condition.lock()
        while true {
            while pending.isEmpty && !stopping && !(unsynced && policy == .everysec && ContinuousClock.now - lastSync >= .seconds(1)) {
                _ = condition.wait(until: Date().addingTimeInterval(unsynced ? 0.2 : 1))
            }
            if pending.isEmpty && stopping { break }
            let batch = pending, last = pendingLast, fd = self.fd
            pending = []
            writing = true
            condition.unlock()

            var error: CrucialError?
            if !batch.isEmpty { error = Self.write(batch, to: fd) }
            if error == nil, !batch.isEmpty || unsynced {
                let syncNow = policy == .always || (policy == .everysec && ContinuousClock.now - lastSync >= .seconds(1))
                if syncNow {
                    if fsync(fd) != 0 { error = CrucialError(.internal, "fsync of the operation log failed: \(String(cString: strerror(errno)))") }
                    lastSync = .now
                    unsynced = false
                } else if policy == .everysec {
                    unsynced = true
                }
            }

            condition.lock()
            writing = false
            fileBytes += batch.count
            var ready: [@Sendable (CrucialError?) -> Void] = []
            if let error {
                failed = failed ?? error
                ready = waiters.map(\.done)
                waiters = []
            } else if !batch.isEmpty {
                durable = max(durable, last)
                ready = waiters.filter { $0.lsn <= last }.map(\.done)
                waiters.removeAll { $0.lsn <= last }
            }
            condition.broadcast()
            let failure = failed
            condition.unlock()
            for done in ready { done(failure) }
            condition.lock()
        }
        fsync(fd)
        thread = nil
        condition.broadcast()
        condition.unlock()
    }

    /// Writes all of `bytes`, retrying short writes and EINTR; the error if it fails.
    static func write(_ bytes: [UInt8], to fd: Int32) -> CrucialError? {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return CrucialError(.internal, "writing the operation log failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        return nil
    }
}
