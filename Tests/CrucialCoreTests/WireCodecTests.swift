import CrucialCore
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
        .objectList(id: 7, objects: [ObjectInfo(ref: ObjectRef(type: "T", key: "k"), persistent: true, waiters: 3)]),
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
    ]

    @Test("Every frame kind round-trips through protobuf-c", arguments: frames)
    func roundTrip(_ frame: Frame) throws {
        var buffer = ByteBuffer()
        WireCodec.encode(frame, into: &buffer)
        let length = buffer.readInteger(as: UInt32.self)
        #expect(Int(length ?? 0) == buffer.readableBytes)
        #expect(try WireCodec.decode(buffer) == frame)
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
        // Nesting within the limit is fine.
        var shallow = Value.int(1)
        for _ in 0..<20 { shallow = .list([shallow]) }
        buffer.clear()
        WireCodec.encode(.result(Reply(id: 1, outcome: .value(shallow))), into: &buffer)
        buffer.moveReaderIndex(forwardBy: 4)
        #expect(try WireCodec.decode(buffer) == .result(Reply(id: 1, outcome: .value(shallow))))
    }

    @Test("The frame decoder copes with any split of its input")
    func decoderSplits() throws {
        var inputs: [(ByteBuffer, [ByteBuffer])] = []
        for frame in Self.frames {
            var buffer = ByteBuffer()
            WireCodec.encode(frame, into: &buffer)
            var payload = buffer
            payload.moveReaderIndex(forwardBy: 4)
            inputs.append((buffer, [payload]))
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: inputs) {
            FrameDecoder(maxFrameSize: 1 << 20)
        }
    }

    @Test("An oversized length prefix is refused before its payload arrives")
    func oversized() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameSize: 100)))
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(101))
        #expect(throws: FrameDecoder.FrameTooLarge(length: 101, limit: 100)) { try channel.writeInbound(buffer) }
        _ = try? channel.finish()
    }
}

@Suite("Protocol code generation")
struct ProtocolDriftTests {
    @Test("The committed protoc-c code is what protoc-c makes of Protocol/crucial.proto")
    func generatedCodeIsCurrent() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [root.appendingPathComponent("tools/regen-proto.sh").path, "--check"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Read to the end (the script's exit closes the pipe) on a thread of its own, not one
        // of the cooperative pool's, which the other tests' tasks need.
        let text = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
            }
        }
        while process.isRunning { try await Task.sleep(for: .milliseconds(5)) }  // not waitUntilExit: see ServerProcess.awaitExit
        #expect(process.terminationStatus == 0, "\(text)")
    }
}

@Suite("Addresses")
struct AddressTests {
    @Test func parse() throws {
        #expect(try parseAddress("127.0.0.1:9") == ("127.0.0.1", 9))
        #expect(try parseAddress("localhost") == ("localhost", CrucialDefaults.port))
        #expect(try parseAddress("[::1]:80") == ("::1", 80))
        #expect(throws: CrucialError.self) { try parseAddress("host:0") }
        #expect(throws: CrucialError.self) { try parseAddress("::1:80") }
        #expect(throws: CrucialError.self) { try parseAddress(" ") }
    }
}

extension WireCodecTests {
    @Test("Handshake proofs depend on the secret, both nonces and the client name; the server's differs from the client's")
    func handshakeProofs() {
        let (c, s) = (HandshakeAuth.nonce(), HandshakeAuth.nonce())
        #expect(c.count == 32 && c != s, "fresh random nonces")
        let proof = HandshakeAuth.clientProof(secret: "k", clientNonce: c, serverNonce: s, clientName: "n")
        #expect(proof.count == 32)
        #expect(HandshakeAuth.matches(proof, HandshakeAuth.clientProof(secret: "k", clientNonce: c, serverNonce: s, clientName: "n")))
        for other in [
            HandshakeAuth.clientProof(secret: "K", clientNonce: c, serverNonce: s, clientName: "n"),
            HandshakeAuth.clientProof(secret: "k", clientNonce: s, serverNonce: c, clientName: "n"),
            HandshakeAuth.clientProof(secret: "k", clientNonce: c, serverNonce: HandshakeAuth.nonce(), clientName: "n"),
            HandshakeAuth.clientProof(secret: "k", clientNonce: c, serverNonce: s, clientName: "m"),
            HandshakeAuth.serverProof(secret: "k", serverNonce: s, clientNonce: c),
            Array(proof.dropLast()),
        ] {
            #expect(!HandshakeAuth.matches(other, proof))
        }
        // Fields are length-prefixed: moving bytes from one field to the next changes the proof.
        #expect(
            HandshakeAuth.serverProof(secret: "k", serverNonce: [1, 2], clientNonce: [3])
                != HandshakeAuth.serverProof(secret: "k", serverNonce: [1], clientNonce: [2, 3]))
    }

    @Test("A credentials file: NAME client|admin SECRET per line; comments and blank lines skipped; mistakes name their line")
    func credentialsFile() throws {
        let parsed = try Credential.parseFile("# apps\nanalytics client s3cr3t with spaces\n\n  ops admin x\n", path: "f")
        #expect(parsed == [Credential(name: "analytics", secret: "s3cr3t with spaces"), Credential(name: "ops", secret: "x", isAdmin: true)])
        #expect(throws: CrucialError(.invalidArgument, "f:2: expected `NAME client|admin SECRET`")) {
            try Credential.parseFile("a client x\nb root y\n", path: "f")
        }
        #expect(throws: CrucialError(.invalidArgument, "f:2: credential a is named twice")) {
            try Credential.parseFile("a client x\na admin y\n", path: "f")
        }
    }
}
