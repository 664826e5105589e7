internal import CrucialCore

/// One entry of a persistent object's history, as the operation log keeps it.
///
/// Replaying every record of an object in order rebuilds its state: the methods of
/// shared objects are deterministic, and the events that change parked calls
/// (timeouts, closed connections) are records too. In a cluster each record also
/// carries the object's version once it applied, so that a restarted member knows how
/// new each of its copies is; a replica logs what it applies, and a state installed
/// from another member is a record of its own.
struct LogRecord: Equatable {
    enum Operation: Equatable {
        case create(initial: Value)
        case invoke(method: String, args: [Value], clientID: UInt64, seq: UInt64, connection: UInt64, request: UInt64)
        /// Removed; in a cluster (a version other than zero) it leaves a tombstone.
        case remove
        /// A bounded wait of the call (connection, request) expired.
        case timeout(connection: UInt64, request: UInt64)
        /// A connection with calls parked on the object closed.
        case connectionClosed(connection: UInt64)
        /// The whole state came from another member (re-balancing, catching up).
        case install(ObjectState)
        /// This member stopped keeping a copy (it lives on other members now).
        case drop
        /// A client holding something of the object (semaphore permits) is gone.
        case clientGone(client: UInt64)
        /// The object's tombstone at this record's version (or older) was collected.
        case collect
    }

    var lsn: UInt64
    var ref: ObjectRef
    var operation: Operation
    /// The object's version after this record (zero on a server on its own).
    var version: ObjectVersion = .zero

    var value: Value {
        var r: [String: Value] = ["n": .int(Int64(bitPattern: lsn)), "t": .string(ref.type), "k": .string(ref.key)]
        func u(_ x: UInt64) -> Value { .int(Int64(bitPattern: x)) }
        if version != .zero {
            r["vv"] = u(version.view)
            r["vi"] = u(version.index)
        }
        switch operation {
        case .create(let initial):
            r["o"] = .string("c")
            r["v"] = initial
        case .invoke(let method, let args, let clientID, let seq, let connection, let request):
            r["o"] = .string("i")
            r["m"] = .string(method)
            r["a"] = .list(args)
            r["c"] = u(clientID)
            r["s"] = u(seq)
            r["w"] = u(connection)
            r["q"] = u(request)
        case .remove:
            r["o"] = .string("r")
        case .timeout(let connection, let request):
            r["o"] = .string("t")
            r["w"] = u(connection)
            r["q"] = u(request)
        case .connectionClosed(let connection):
            r["o"] = .string("x")
            r["w"] = u(connection)
        case .install(let state):
            r["o"] = .string("s")
            r["v"] = state.state
            r["p"] = .bool(state.persistent)
            r["e"] = u(state.session)
            r["r"] = state.retries
        case .drop:
            r["o"] = .string("d")
        case .clientGone(let client):
            r["o"] = .string("g")
            r["c"] = u(client)
        case .collect:
            r["o"] = .string("k")
        }
        return .record(r)
    }

    init(lsn: UInt64, ref: ObjectRef, operation: Operation, version: ObjectVersion = .zero) {
        self.lsn = lsn
        self.ref = ref
        self.operation = operation
        self.version = version
    }

    init(_ value: Value) throws(CrucialError) {
        guard case .record(let r) = value, let n = r["n"]?.intValue, let type = r["t"]?.stringValue, let key = r["k"]?.stringValue,
            let kind = r["o"]?.stringValue
        else { throw CrucialError(.badFrame, "log record lacks its sequence number, object or kind") }
        func u(_ name: String) throws(CrucialError) -> UInt64 {
            guard let i = r[name]?.intValue else { throw CrucialError(.badFrame, "log record \(n) lacks \(name)") }
            return UInt64(bitPattern: i)
        }
        lsn = UInt64(bitPattern: n)
        ref = ObjectRef(type: type, key: key)
        switch kind {
        case "c": operation = .create(initial: r["v"] ?? .null)
        case "i":
            guard let method = r["m"]?.stringValue else { throw CrucialError(.badFrame, "log record \(n) lacks its method") }
            operation = .invoke(
                method: method, args: r["a"]?.listValue ?? [], clientID: try u("c"), seq: try u("s"), connection: try u("w"),
                request: try u("q"))
        case "r": operation = .remove
        case "t": operation = .timeout(connection: try u("w"), request: try u("q"))
        case "x": operation = .connectionClosed(connection: try u("w"))
        case "s":
            operation = .install(
                ObjectState(state: r["v"] ?? .null, persistent: r["p"]?.boolValue ?? true, session: try u("e"), retries: r["r"] ?? .list([])))
        case "d": operation = .drop
        case "g": operation = .clientGone(client: try u("c"))
        case "k": operation = .collect
        default: throw CrucialError(.badFrame, "log record \(n) has unknown kind \(kind)")
        }
        if r["vv"] != nil || r["vi"] != nil { version = ObjectVersion(view: try u("vv"), index: try u("vi")) }
    }
}

/// Framing of records in a file: 4-byte little-endian length, 4-byte CRC-32, payload.
enum RecordFraming {
    static func frame(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 8)
        withUnsafeBytes(of: UInt32(payload.count).littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: CRC32.checksum(payload).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: payload)
        return out
    }

    /// Where an intact frame starts after `offset` (the first damaged byte), if anywhere: a
    /// torn tail has none, damage in the middle of a log does.
    static func nextValidFrame(_ bytes: [UInt8], after offset: Int) -> Int? {
        var at = offset + 1
        while at + 8 <= bytes.count {
            let length = Int(UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24)
            if length > 0, length <= bytes.count - at - 8 {
                let crc = UInt32(bytes[at + 4]) | UInt32(bytes[at + 5]) << 8 | UInt32(bytes[at + 6]) << 16 | UInt32(bytes[at + 7]) << 24
                if CRC32.checksum(bytes[(at + 8)..<(at + 8 + length)]) == crc { return at }
            }
            at += 1
        }
        return nil
    }

    /// The payloads of `bytes` up to the first incomplete or damaged frame, and where that is.
    static func payloads(_ bytes: [UInt8]) -> (payloads: [ArraySlice<UInt8>], validLength: Int) {
        var out: [ArraySlice<UInt8>] = []
        var at = 0
        func u32(_ i: Int) -> UInt32 {
            UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
        }
        while at + 8 <= bytes.count {
            let length = Int(u32(at)), crc = u32(at + 4)
            guard length <= bytes.count - at - 8 else { break }
            let payload = bytes[(at + 8)..<(at + 8 + length)]
            guard CRC32.checksum(payload) == crc else { break }
            out.append(payload)
            at += 8 + length
        }
        return (out, at)
    }
}
