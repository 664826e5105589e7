import CrucialCore
import CrucialProcess
import Foundation
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite("Wire codec")
struct WireCodecTests {
    static let frames: [Frame] = [
        .hello(Hello(protocolVersion: 1, clientName: "c", clientNonce: [1, 2, 3])),
        .challenge(serverNonce: Array(repeating: 7, count: 32)),
        .authenticate(proof: [9, 8, 7]),
        .helloReply(
            HelloReply(
                serverID: "s", view: View(id: 3, members: [.init(id: "n1", address: "127.0.0.1:1")], rf: 2),
                error: CrucialError(.unauthenticated, "no"), maxFrameSize: 1024, serverProof: [4, 5])),
        .invoke(
            Invoke(
                id: 42, ref: ObjectRef(type: "AtomicLong", key: "counter"), method: "addAndGet",
                args: [
                    .int(-5), .double(1.5), .string("with\0nul"), .bytes([0, 1]), .doubles([1, 2]), .ints([3]),
                    .list([.null, .bool(true)]), .record(["k": .string("v")]),
                ], create: Create(initial: .int(0), persistent: true), clientID: 9, seq: 10, ackedBelow: 8, viewID: 4)),
        .result(Reply(id: 1, outcome: .value(.string("ok")))),
        .result(Reply(id: 2, outcome: .error(CrucialError(.brokenBarrier, "broken")))),
        .result(Reply(id: 3, outcome: .wrongView(View(id: 9, members: [], rf: 1)))),
        .remove(id: 4, ref: ObjectRef(type: "SharedMap", key: "m")),
        .ping(id: 5),
        .listObjects(id: 6, typePrefix: "Atomic"),
        .listObjects(id: 6, typePrefix: "", after: ObjectRef(type: "AtomicLong", key: "k9"), limit: 100),
        .objectList(id: 7, objects: [ObjectInfo(ref: ObjectRef(type: "T", key: "k"), persistent: true, waiters: 3)]),
        .objectList(id: 7, objects: [], more: true),
        .serverInfo(id: 8),
        .replicate(
            Replicate(
                id: 8, viewID: 12, ref: ObjectRef(type: "AtomicLong", key: "c"), version: ObjectVersion(view: 12, index: 7),
                operation: .invoke(Invoke(id: 0, ref: ObjectRef(type: "AtomicLong", key: "c"), method: "incrementAndGet", clientID: 3, seq: 4)))),
        .replicate(
            Replicate(
                id: 9, viewID: 12, ref: ObjectRef(type: "SharedMap", key: "m"), version: ObjectVersion(view: 11, index: 70),
                operation: .install(ObjectState(state: .record(["a": .int(1)]), persistent: true, session: 5, retries: .list([.int(1)]))))),
        .replicate(
            Replicate(id: 10, viewID: 13, ref: ObjectRef(type: "SharedMap", key: "m"), version: ObjectVersion(view: 13, index: 71), operation: .remove)),
        .transferDone(TransferDone(id: 11, viewID: 13, from: "node-b")),
        .keepAlive(id: 15, session: 7, leaseMillis: 2000, clientID: 99),
        .offer(
            id: 16, viewID: 9,
            entries: [
                OfferEntry(ref: ObjectRef(type: "AtomicLong", key: "a"), version: ObjectVersion(view: 4, index: 7)),
                OfferEntry(ref: ObjectRef(type: "SharedMap", key: "m"), version: ObjectVersion(view: 9, index: 1)),
            ]),
        .transferDone(
            TransferDone(
                id: 12, viewID: 14, from: "node-c", stableViewID: 9, stableMembers: ["node-a", "node-b"],
                holes: [Hole(members: ["a", "b", "c"], absent: ["b", "c"]), Hole(members: ["x"], absent: ["x"])], left: ["node-a"])),
        .transferDone(
            TransferDone(
                id: 13, viewID: 15, from: "node-d", stableViewID: 14, stableMembers: ["node-d"],
                holes: [Hole(members: ["a", "b", "c"], absent: ["c"], lost: [Hole.Lost(id: "b", view: 15), Hole.Lost(id: "a", view: 12)])],
                empty: true)),
        .replicate(
            Replicate(id: 17, viewID: 13, ref: ObjectRef(type: "SharedMap", key: "m"), version: ObjectVersion(view: 13, index: 72), operation: .collect)),
        .acceptLoss(id: 18, ref: ObjectRef(type: "CountDownLatch", key: "l")),
        .acceptLoss(id: 19, ref: nil),
        .cancelRun(id: 20, run: 0xfeed_beef, reason: "cloud thread 3 (App.Worker) failed: App.Bad: no"),
        .hello(Hello(clientName: "thread", clientNonce: Array(repeating: 7, count: 32), run: 0xfeed_beef)),
    ]

    @Test("Every frame kind round-trips through protobuf-c", arguments: frames)
    func roundTrip(_ frame: Frame) throws {
        var buffer = ByteBuffer()
        WireCodec.encode(frame, into: &buffer)
        let length = buffer.readInteger(as: UInt32.self)
        #expect(Int(length ?? 0) == buffer.readableBytes)
        #expect(try WireCodec.decode(buffer) == frame)
    }

    @Test("The bytes of docs/PROTOCOL.md's worked example: one Invoke and its Result")
    func protocolExample() throws {
        func hex(_ b: ByteBuffer) -> String { b.readableBytesView.map { String(format: "%02x", $0) }.joined(separator: " ") }
        let invoke = Invoke(
            id: 7, ref: ObjectRef(type: "AtomicLong", key: "hits"), method: "addAndGet", args: [.int(5)], create: Create(initial: .int(0)),
            clientID: 42, seq: 1, ackedBelow: 1)
        var buffer = ByteBuffer()
        WireCodec.encode(.invoke(invoke), into: &buffer)
        #expect(
            hex(buffer) == "00 00 00 33 1a 31 08 07 1a 12 0a 0a 41 74 6f 6d 69 63 4c 6f 6e 67 12 04 68 69 74 73 22 09 61 64 64 41 6e 64 47 65 74 "
                + "2a 02 18 0a 32 04 0a 02 18 00 38 2a 40 01 48 01")
        buffer.clear()
        WireCodec.encode(.result(Reply(id: 7, outcome: .value(.int(5)))), into: &buffer)
        #expect(hex(buffer) == "00 00 00 08 22 06 08 07 12 02 18 0a")
        buffer.moveReaderIndex(forwardBy: 4)
        #expect(try WireCodec.decode(buffer) == .result(Reply(id: 7, outcome: .value(.int(5)))))
    }

    @Test("Garbage is BAD_FRAME, an empty frame is BAD_REQUEST, deep nesting is refused")
    func rejects() throws {
        #expect(throws: CrucialError.self) { try WireCodec.decode(ByteBuffer(bytes: [0xff, 0xff, 0xff])) }
        do {
            _ = try WireCodec.decode(ByteBuffer())
        } catch {
            #expect(error.code == .badRequest)
        }
        var deep = Value.int(1)
        for _ in 0..<WireCodec.maxNesting { deep = .list([deep]) }
        var buffer = ByteBuffer()
        WireCodec.encode(.result(Reply(id: 1, outcome: .value(deep))), into: &buffer)
        buffer.moveReaderIndex(forwardBy: 4)
        do {
            _ = try WireCodec.decode(buffer)
            Issue.record("deep nesting must be refused")
        } catch {
            #expect(error.code == .badFrame)
        }
        // The levels of docs/PROTOCOL.md: Frame 1, Result 2, its Value 3, each list 2 more. 48 lists
        // reach level 99; 49 put a Value at level 101, one past the limit.
        for (wraps, refused) in [(48, false), (49, true)] {
            var nested = Value.int(1)
            for _ in 0..<wraps { nested = .list([nested]) }
            buffer.clear()
            WireCodec.encode(.result(Reply(id: 1, outcome: .value(nested))), into: &buffer)
            buffer.moveReaderIndex(forwardBy: 4)
            #expect((try? WireCodec.decode(buffer)) == (refused ? nil : .result(Reply(id: 1, outcome: .value(nested)))), "\(wraps) lists")
        }
        // Each level takes a tag and a length: a frame under 2 × maxNesting bytes cannot nest too
        // deep and skips the check; protobuf-c still refuses its malformed bytes.
        #expect(!WireCodec.mayNestTooDeep(2 * WireCodec.maxNesting - 1) && WireCodec.mayNestTooDeep(2 * WireCodec.maxNesting))
        for bad: [UInt8] in [[0x1A, 0x05, 0x01], [0x1A, 0x80], [0x1A, 0x02, 0x0A, 0x05], [0x08]] {
            #expect(throws: CrucialError.self, "\(bad)") { try WireCodec.decode(ByteBuffer(bytes: bad)) }
        }
        // Nesting within the limit is fine, also past the 16 message levels the check keeps on
        // the stack (a list in a value is two levels: Value and its List).
        for depth in [3, 6, 7, 8, 9, 20, 45] {
            var shallow = Value.int(1)
            for _ in 0..<depth { shallow = .list([shallow]) }
            buffer.clear()
            WireCodec.encode(.result(Reply(id: 1, outcome: .value(shallow))), into: &buffer)
            buffer.moveReaderIndex(forwardBy: 4)
            #expect(try WireCodec.decode(buffer) == .result(Reply(id: 1, outcome: .value(shallow))), "depth \(depth)")
        }
    }


    @Test("Replication forwards a call's bytes as received: a Replicate made from a decoded Invoke is the one made from the call")
    func forwardsInvokeBytes() throws {
        let call = Invoke(
            id: 7, ref: ObjectRef(type: "SharedMap", key: "m"), method: "put", args: [.string("k"), .bytes(Array(repeating: 1, count: 300))],
            create: Create(initial: .list([]), persistent: true), clientID: 3, seq: 4)
        var buffer = ByteBuffer()
        WireCodec.encode(.invoke(call), into: &buffer)
        buffer.moveReaderIndex(forwardBy: 4)
        guard case .invoke(let received) = try WireCodec.decode(buffer) else { Issue.record("not an invoke"); return }
        #expect(received == call)
        let forwarded = try #require(received.encoded.bytes)
        #expect(forwarded.readableBytes > 300 && forwarded.readableBytes < buffer.readableBytes)

        func replicate(_ i: Invoke) -> ByteBuffer {
            var out = ByteBuffer()
            let r = Replicate(id: 1, viewID: 2, ref: i.ref, version: ObjectVersion(view: 2, index: 5), operation: .invoke(i))
            WireCodec.encode(.replicate(r), into: &out)
            return out
        }
        let fromBytes = replicate(received), fresh = replicate(call)
        #expect(fromBytes == fresh, "forwarding the bytes gives the encoding the call would get")
        var payload = fromBytes
        payload.moveReaderIndex(forwardBy: 4)
        guard case .replicate(let r) = try WireCodec.decode(payload), case .invoke(let applied) = r.operation else {
            Issue.record("not a replicated invoke")
            return
        }
        #expect(applied == call)

        // Bytes that are not an Invoke are refused, not applied.
        var bad = ByteBuffer()
        WireCodec.encode(.replicate(Replicate(id: 1, viewID: 2, ref: call.ref, version: ObjectVersion(view: 2, index: 5), operation: .invoke(call))), into: &bad)
        bad.moveReaderIndex(forwardBy: 4)
        var bytes = Array(bad.readableBytesView)
        if let i = bytes.lastIndex(of: 0x08) { bytes[i] = 0xFF }  // corrupt a field key inside the forwarded Invoke
        #expect(throws: CrucialError.self) { try WireCodec.decode(ByteBuffer(bytes: bytes)) }
    }
}

