import CrucialCore
import CrucialTransport
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite("Frame decoder")
struct FrameDecoderTests {
    /// Frames of every size class: a few bytes, a few dozen, and one over a kilobyte.
    static let frames: [Frame] = [
        .ping(id: 5),
        .result(Reply(id: 1, outcome: .value(.string("ok")))),
        .invoke(Invoke(id: 42, ref: ObjectRef(type: "AtomicLong", key: "counter"), method: "addAndGet", args: [.int(-5)])),
        .result(Reply(id: 2, outcome: .value(.bytes(Array(repeating: 7, count: 1500))))),
    ]

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
