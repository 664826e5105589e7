import Synchronization
internal import CrucialCore
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

/// A store's persistence: the operation log its runner hands persistent objects' changes
/// to (the sink), the data directory it holds locked, and the compaction that snapshots the
/// objects and drops the logs the snapshot covers. Made by recovery (`Recovery`), which
/// drives the store; the store knows only the log.
final class Persistence: Sendable {
    let log: OperationLog
    let configuration: PersistenceConfiguration
    /// Held while persistence runs: no second process may use the same data directory.
    private let directoryLock: Mutex<DataDirectoryLock?>
    private let compacting = Mutex(false)

    init(log: OperationLog, configuration: PersistenceConfiguration, directoryLock: DataDirectoryLock) {
        self.log = log
        self.configuration = configuration
        self.directoryLock = Mutex(directoryLock)
    }

    /// Writes a snapshot of every persistent object and drops the logs it covers.
    /// Operations go on meanwhile; each object is copied under its own lock.
    func compact(_ store: ObjectStore) throws(CrucialError) {
        guard compacting.withLock({ busy in
            defer { busy = true }
            return !busy
        }) else { return }
        defer { compacting.withLock { $0 = false } }
        let generation = try log.rotate()
        var objects: [Value] = []
        func u(_ x: UInt64) -> Value { .int(Int64(bitPattern: x)) }
        for box in store.allBoxes() where box.persistent {
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
        let removed: [Value] = store.allTombstones().map { ref, version in
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

    /// Compacts when the current log outgrew its limit (called periodically).
    func compactIfDue(_ store: ObjectStore) throws(CrucialError) {
        guard log.fileBytes > configuration.compactAfterBytes else { return }
        try compact(store)
    }

    /// Writes what is pending, closes the log and lets the data directory go.
    func close() {
        log.close()
        directoryLock.withLock { $0 = nil }
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

    static func snapshotPath(_ dir: String, _ generation: UInt64) -> String {
        "\(dir)/snapshot-\(String(format: "%010llu", generation)).snap"
    }

}
