import Synchronization
internal import CrucialCore
internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// Recovery: a store's persistent objects made again from its data directory (the latest
/// snapshot, then the logs after it), each record replayed as an event through the store's
/// runner (`.replayed`), as any other change; then the `Persistence` that logs what follows.
struct Recovery {
    let store: ObjectStore

    /// Restores the objects, starts their log and settles the calls that were parked (what
    /// `ObjectStore.startPersistence` promises); the store's persistence is set on return.
    func run(_ configuration: PersistenceConfiguration, clustered: Bool) throws(CrucialError) -> RecoveryReport {
        let dir = configuration.directory
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw CrucialError(.internal, "cannot create the data directory \(dir): \(error.localizedDescription)")
        }
        let lock = try DataDirectoryLock(directory: dir)
        let logs = Persistence.generations(in: dir, .log).map(\.generation)
        let snapshots = Persistence.generations(in: dir, .snapshot).map(\.generation)
        var report = RecoveryReport()
        var maxLSN: UInt64 = 0

        var from: UInt64 = 0
        if let g = snapshots.last {
            let path = Persistence.snapshotPath(dir, g)
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
        let persistence = Persistence(log: log, configuration: configuration, directoryLock: lock)
        store.persistence.withLock { $0 = persistence }
        // Withdrawn as an event, logged, so that the next recovery does not see them parked;
        // or kept, known from now on by their retry identity alone.
        for box in store.allBoxes() where box.read({ $0.object.waiterCount }) > 0 {
            if clustered {
                // Every one is detached already (nobody to answer): this keys them by retry identity.
                store.detachWaiters(of: box, CrucialError(.wrongView, "the member restarted; retry"))
            } else {
                store.handle(.withdrawDetached, on: box)
            }
        }
        report.objects = store.list().filter(\.persistent).count
        // Clients that held permits before the restart keep them only if they are still alive.
        for box in store.allBoxes() { store.watchHolders(of: box) }
        return report
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
            store.tombstones.withLock { $0[ObjectRef(type: type, key: key)] = version(r) }
        }
        return (objects.count, maxLSN)
    }

    /// A new persistent box for `ref` with the state `initial` (recovery only: nothing else runs).
    private func makeBox(_ ref: ObjectRef, initial: Value, session: UInt64 = 0) throws(CrucialError) -> ObjectBox {
        try store.registry.box(ref, initial: initial, persistent: true, session: session) {
            "the data directory holds \(ref) of type \(ref.type), which this server does not know: link it in or load its plugin with --plugin"
        }
    }

    /// Applies one record unless the object already reflects it; returns whether it did. A
    /// record of an object's creation or whole state makes its copy; the others are events of
    /// the copy there is, or of its tombstone.
    private func replay(_ record: LogRecord) throws(CrucialError) -> Bool {
        let ref = record.ref
        let ran: Result<ObjectStore.Ran, CrucialError>?
        switch record.operation {
        case .create(let initial):
            // The object is made only if no copy is there (a record replayed twice finds one);
            // a creation that fails (a type this server does not know) stops recovery.
            ran = store.run(.replayed(record), on: .creating(ref, make: { Result { () throws(CrucialError) in (try makeBox(ref, initial: initial), nil) } }))
            if case .failure(let error) = ran { throw error }
        case .install(let state):
            let box = try makeBox(ref, initial: state.state, session: state.session)
            ran = store.run(.replayed(record), on: .replacing(ref, successor: box))
        case .collect:
            return store.tombstones.withLock { t in
                guard let removed = t[ref], removed <= record.version else { return true }
                t[ref] = nil
                return true
            }
        case .remove where store.shard(ref).withLock({ $0[ref] }) == nil:
            guard record.version != .zero else { return false }
            store.tombstones.withLock { t in t[ref] = max(t[ref] ?? .zero, record.version) }
            return true
        default:
            ran = store.run(.replayed(record), on: .existing(ref))
        }
        guard case .success(let ran) = ran else { return false }
        return !ran.decision.unchanged
    }
}
