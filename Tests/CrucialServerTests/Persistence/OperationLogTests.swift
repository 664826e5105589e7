import CrucialCore
@testable import CrucialServerCore
import Foundation
import Testing

/// The operation log's parts without a server: record encoding, framing with checksums,
/// and the log writer on a temporary directory.
@Suite("Operation log, without a server")
struct OperationLogTests {
    static let ref = ObjectRef(type: "AtomicLong", key: "k")

    @Test("CRC-32 is the IEEE one (the check value of \"123456789\")")
    func crc() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    @Test("Every kind of record comes back as it was written")
    func recordsRoundTrip() throws {
        let state = ObjectState(state: .int(4), persistent: true, session: 0, retries: .null)
        let operations: [LogRecord.Operation] = [
            .create(initial: .int(1)),
            .invoke(method: "addAndGet", args: [.int(3), .string("x")], clientID: 7, seq: 9, connection: 2, request: 11),
            .remove, .timeout(connection: 2, request: 12), .connectionClosed(connection: 3), .install(state), .drop,
            .clientGone(client: 5),
        ]
        for (n, operation) in operations.enumerated() {
            let record = LogRecord(lsn: UInt64(n + 1), ref: Self.ref, operation: operation, version: ObjectVersion(view: 3, index: UInt64(n)))
            let decoded = try LogRecord(try WireCodec.decodeValue(WireCodec.encode(value: record.value)))
            #expect(decoded == record)
        }
    }

    @Test("Framing: a torn tail or a damaged record ends what is read; the next intact frame is found past damage")
    func framing() {
        let payloads: [[UInt8]] = [[1, 2, 3], Array(repeating: 7, count: 40), [9]]
        let file = payloads.flatMap(RecordFraming.frame)
        let all = RecordFraming.payloads(file)
        #expect(all.payloads.map(Array.init) == payloads && all.validLength == file.count)

        let torn = RecordFraming.payloads(Array(file.dropLast()))
        #expect(torn.payloads.count == 2 && torn.validLength == 11 + 48)
        #expect(RecordFraming.nextValidFrame(Array(file.dropLast()), after: torn.validLength) == nil)

        var damaged = file
        damaged[11 + 8 + 5] ^= 0xFF  // a byte inside the second payload
        let cut = RecordFraming.payloads(damaged)
        #expect(cut.payloads.map(Array.init) == [payloads[0]] && cut.validLength == 11)
        #expect(RecordFraming.nextValidFrame(damaged, after: cut.validLength) == 11 + 48)
    }

    @Test("Appended records get consecutive numbers, are answered once written, and are in the file in order")
    func appendAndRead() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-oplog-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try OperationLog(directory: directory, generation: 1, nextLSN: 10, policy: .always)
        var lsns: [UInt64] = []
        for n in 0..<5 {
            lsns.append(log.append { LogRecord(lsn: $0, ref: Self.ref, operation: .invoke(method: "addAndGet", args: [.int(Int64(n))], clientID: 1, seq: UInt64(n + 1), connection: 1, request: UInt64(n))) })
        }
        #expect(lsns == [10, 11, 12, 13, 14])
        let failure: CrucialError?? = await withCheckedContinuation { c in log.whenSafe(14) { c.resume(returning: $0) } }
        #expect(failure == .some(nil) && log.failure == nil)
        log.close()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: OperationLog.logPath(directory, 1))))
        let records = try RecordFraming.payloads(bytes).payloads.map { try LogRecord(try WireCodec.decodeValue(Array($0))) }
        #expect(records.map(\.lsn) == lsns)
        let args: [[Value]] = records.map { record in
            guard case .invoke(_, let args, _, _, _, _) = record.operation else { return [] }
            return args
        }
        #expect(args == (0..<5).map { [Value.int(Int64($0))] })
    }
}
