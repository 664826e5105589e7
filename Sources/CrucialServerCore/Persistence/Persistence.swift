import Synchronization
package import CrucialCore
internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// How a server keeps persistent objects on disk.
public struct PersistenceConfiguration: Sendable {
    /// Holds `log-G.aof` operation logs and `snapshot-G.snap` snapshots.
    public var directory: String
    /// When the operation log is flushed to the disk.
    public var fsync: FsyncPolicy
    /// Compact (snapshot, then drop older logs) once the current log exceeds this many bytes.
    public var compactAfterBytes: Int

    /// Persistence in `directory`.
    public init(directory: String, fsync: FsyncPolicy = .everysec, compactAfterBytes: Int = 64 << 20) {
        self.directory = directory
        self.fsync = fsync
        self.compactAfterBytes = compactAfterBytes
    }
}

/// What recovery found.
public struct RecoveryReport: Sendable, CustomStringConvertible {
    /// Objects recovered.
    public var objects = 0
    /// Of those, from the snapshot.
    public var snapshotObjects = 0
    /// Log records applied after the snapshot.
    public var recordsReplayed = 0
    /// Bytes of a torn record dropped at the end of the last log.
    public var truncatedBytes = 0
    /// The generation of the snapshot loaded, if any.
    public var snapshotGeneration: UInt64?

    /// One line for the start-up log.
    public var description: String {
        "\(objects) persistent objects (\(snapshotObjects) from snapshot \(snapshotGeneration.map(String.init) ?? "none"), "
            + "\(recordsReplayed) log records replayed\(truncatedBytes > 0 ? ", \(truncatedBytes) damaged tail bytes dropped" : ""))"
    }
}

extension ObjectStore {
    /// Restores the persistent objects of `configuration.directory`, then logs every
    /// change to them. Call before serving, after every type (plugins too) is known.
    ///
    /// The calls parked on a synchronizer when the server stopped come back detached (their
    /// connections are gone). A lone server withdraws them: their clients, if alive, call
    /// again. A cluster member (`clustered`) keeps them, since they are part of a state the
    /// other copies share: the primary withdraws those whose client does not come back.
    package func startPersistence(_ configuration: PersistenceConfiguration, clustered: Bool = false) throws(CrucialError) -> RecoveryReport {
        let dir = configuration.directory
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw CrucialError(.internal, "cannot create the data directory \(dir): \(error.localizedDescription)")
        }
        let lock = try DataDirectoryLock(directory: dir)
        let logs = Self.generations(in: dir, .log).map(\.generation)
        let snapshots = Self.generations(in: dir, .snapshot).map(\.generation)
        var report = RecoveryReport()
        var maxLSN: UInt64 = 0

        var from: UInt64 = 0
        if let g = snapshots.last {
            let path = Self.snapshotPath(dir, g)
            let bytes = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data())
            let (payloads, _) = RecordFraming.payloads(bytes)
            guard let payload = payloads.first else { throw CrucialError(.internal, "snapshot \(path) is damaged; move it away to recover from older files") }
            let (count, lsn) = try restoreSnapshot(try WireCodec.decodeValue(payload), path: path)
            report.snapshotObjects = count
            report.snapshotGeneration = g
            maxLSN = max(maxLSN, lsn)
            from = g
        }
        for (i, g) in logs.enumerated() where g >= from {
            let path = OperationLog.logPath(dir, g)
            let bytes = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data())
            let (payloads, valid) = RecordFraming.payloads(bytes)
            if valid < bytes.count {
                // A torn tail is what a crash leaves; damage elsewhere is not.
                guard i == logs.count - 1 else {
                    throw CrucialError(.internal, "operation log \(path) is damaged at byte \(valid) and later logs exist; refusing to guess")
                }
                if let next = RecordFraming.nextValidFrame(bytes, after: valid) {
                    throw CrucialError(
                        .internal,
                        "operation log \(path) is damaged at byte \(valid), and an intact record follows at byte \(next): "
                            + "this is not a torn tail; refusing to drop what follows (move the file away to start without it)")
                }
                report.truncatedBytes = bytes.count - valid
                truncate(path, Int64(valid))
            }
            for payload in payloads {
                let record = try LogRecord(try WireCodec.decodeValue(payload))
                maxLSN = max(maxLSN, record.lsn)
                if try replay(record) { report.recordsReplayed += 1 }
            }
        }
        let log = try OperationLog(
            directory: dir, generation: (logs.last ?? from) + 1, nextLSN: maxLSN + 1, policy: configuration.fsync)
        logBox.withLock { $0 = log }
        directoryLock.withLock { $0 = lock }
        persistenceSettings.withLock { $0 = configuration }
        // Withdrawn as an event, logged, so that the next recovery does not see them parked;
        // or kept, known from now on by their retry identity alone.
        for box in allBoxes() where box.read({ $0.object.waiterCount }) > 0 {
            if clustered {
                // Every one is detached already (nobody to answer): this keys them by retry identity.
                detachWaiters(of: box, CrucialError(.wrongView, "the member restarted; retry"))
            } else {
                handle(.withdrawDetached, on: box)
            }
        }
        report.objects = list().filter(\.persistent).count
        // Clients that held permits before the restart keep them only if they are still alive.
        for box in allBoxes() { watchHolders(of: box) }
        return report
    }

    /// Writes a snapshot of every persistent object and drops the logs it covers.
    /// Operations go on meanwhile; each object is copied under its own lock.
    package func compact() throws(CrucialError) {
        guard let log, let configuration = persistenceSettings.withLock({ $0 }) else { return }
        guard compacting.withLock({ busy in
            defer { busy = true }
            return !busy
        }) else { return }
        defer { compacting.withLock { $0 = false } }
        let generation = try log.rotate()
        var objects: [Value] = []
        func u(_ x: UInt64) -> Value { .int(Int64(bitPattern: x)) }
        for box in allBoxes() where box.persistent {
            let entry: Value? = box.read { state in
                guard !state.removed else { return nil }
                return .record([
                    "t": .string(box.ref.type), "k": .string(box.ref.key), "v": state.object.snapshot(),
                    "l": .int(Int64(bitPattern: state.lastLSN)), "r": state.retries.value, "vv": u(state.version.view),
                    "vi": u(state.version.index),
                ])
            }
            if let entry { objects.append(entry) }
        }
        let removed: [Value] = allTombstones().map { ref, version in
            .record(["t": .string(ref.type), "k": .string(ref.key), "vv": u(version.view), "vi": u(version.index)])
        }
        let dir = configuration.directory
        let bytes = RecordFraming.frame(
            WireCodec.encode(value: .record(["g": .int(Int64(generation)), "o": .list(objects), "ts": .list(removed)])))
        try DurableFile.replace(Self.snapshotPath(dir, generation), with: bytes)
        // Older files are covered by the snapshot now.
        for file in Self.generations(in: dir, .log) + Self.generations(in: dir, .snapshot) where file.generation < generation {
            try? FileManager.default.removeItem(atPath: "\(dir)/\(file.name)")
        }
    }

    /// The kinds of files in a data directory: `log-G.aof` and `snapshot-G.snap`.
    enum DataFile {
        case log, snapshot
        var affixes: (prefix: String, suffix: String) { self == .log ? ("log-", ".aof") : ("snapshot-", ".snap") }
    }

    /// The files of `kind` in `dir`, by ascending generation.
    static func generations(in dir: String, _ kind: DataFile) -> [(name: String, generation: UInt64)] {
        let (prefix, suffix) = kind.affixes
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).compactMap { name in
            guard name.hasPrefix(prefix), name.hasSuffix(suffix),
                let g = UInt64(name.dropFirst(prefix.count).dropLast(suffix.count))
            else { return nil }
            return (name, g)
        }.sorted { $0.generation < $1.generation }
    }

    /// Compacts when the current log outgrew its limit (called periodically).
    package func compactIfDue() throws(CrucialError) {
        guard let log, let limit = persistenceSettings.withLock({ $0?.compactAfterBytes }), log.fileBytes > limit else { return }
        try compact()
    }

    /// Writes what is pending and closes the log.
    package func stopPersistence() {
        let log = logBox.withLock { log in
            defer { log = nil }
            return log
        }
        log?.close()
        directoryLock.withLock { $0 = nil }
    }

    static func snapshotPath(_ dir: String, _ generation: UInt64) -> String {
        "\(dir)/snapshot-\(String(format: "%010llu", generation)).snap"
    }

    private func truncate(_ path: String, _ length: Int64) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = ftruncate(fd, off_t(length))
        fsync(fd)
        Glibc.close(fd)
    }

    /// Loads a snapshot's objects; returns their count and the highest sequence number.
    /// Each object is replayed as the record of its whole state, at its sequence number.
    private func restoreSnapshot(_ value: Value, path: String) throws(CrucialError) -> (Int, UInt64) {
        guard case .record(let top) = value, let objects = top["o"]?.listValue else {
            throw CrucialError(.internal, "snapshot \(path) has no object list")
        }
        var maxLSN: UInt64 = 0
        func version(_ r: [String: Value]) -> ObjectVersion {
            ObjectVersion(view: UInt64(bitPattern: r["vv"]?.intValue ?? 0), index: UInt64(bitPattern: r["vi"]?.intValue ?? 0))
        }
        for object in objects {
            guard case .record(let r) = object, let type = r["t"]?.stringValue, let key = r["k"]?.stringValue, let lsn = r["l"]?.intValue
            else { throw CrucialError(.internal, "snapshot \(path) holds a malformed object") }
            let state = ObjectState(state: r["v"] ?? .null, persistent: true, retries: r["r"] ?? .list([]))
            let record = LogRecord(lsn: UInt64(bitPattern: lsn), ref: ObjectRef(type: type, key: key), operation: .install(state), version: version(r))
            _ = try replay(record)
            maxLSN = max(maxLSN, record.lsn)
        }
        // After the objects: a tombstone older than a re-created object's copy stays.
        for removed in top["ts"]?.listValue ?? [] {
            guard case .record(let r) = removed, let type = r["t"]?.stringValue, let key = r["k"]?.stringValue else {
                throw CrucialError(.internal, "snapshot \(path) holds a malformed tombstone")
            }
            tombstones.withLock { $0[ObjectRef(type: type, key: key)] = version(r) }
        }
        return (objects.count, maxLSN)
    }

    /// A new persistent box for `ref` with the state `initial` (recovery only: nothing else runs).
    private func makeBox(_ ref: ObjectRef, initial: Value, session: UInt64 = 0) throws(CrucialError) -> ObjectBox {
        let object = try registry.make(ref.type, initial: initial) {
            "the data directory holds \(ref) of type \(ref.type), which this server does not know: link it in or load its plugin with --plugin"
        }
        return ObjectBox(ref: ref, object: object, persistent: true, session: session)
    }

    /// Applies one record unless the object already reflects it; returns whether it did. A
    /// record of an object's creation or whole state makes its copy; the others are events of
    /// the copy there is, or of its tombstone.
    private func replay(_ record: LogRecord) throws(CrucialError) -> Bool {
        let ref = record.ref
        let ran: Result<Ran, CrucialError>?
        switch record.operation {
        case .create(let initial):
            let box = try makeBox(ref, initial: initial)
            ran = run(.replayed(record), on: .creating(ref, make: { .success((box, nil)) }))
        case .install(let state):
            let box = try makeBox(ref, initial: state.state, session: state.session)
            ran = run(.replayed(record), on: .replacing(ref, successor: box))
        case .collect:
            return tombstones.withLock { t in
                guard let removed = t[ref], removed <= record.version else { return true }
                t[ref] = nil
                return true
            }
        case .remove where shard(ref).withLock({ $0[ref] }) == nil:
            guard record.version != .zero else { return false }
            tombstones.withLock { t in t[ref] = max(t[ref] ?? .zero, record.version) }
            return true
        default:
            ran = run(.replayed(record), on: .existing(ref))
        }
        guard case .success(let ran) = ran else { return false }
        return !ran.decision.unchanged
    }
}
