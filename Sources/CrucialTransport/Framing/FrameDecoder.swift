package import NIOCore

/// Splits a byte stream into frame payloads: 4-byte big-endian length, then
/// that many bytes. The length is checked against `maxFrameSize` as soon as its
/// four bytes arrive, before any payload is buffered.
package struct FrameDecoder: ByteToMessageDecoder {
    package typealias InboundOut = ByteBuffer

    /// Thrown when a length prefix exceeds the limit; the stream cannot be resynchronised.
    package struct FrameTooLarge: Error, Equatable {
        package var length: UInt32
        package var limit: Int

        package init(length: UInt32, limit: Int) {
            self.length = length
            self.limit = limit
        }
    }

    package let maxFrameSize: Int

    package init(maxFrameSize: Int) {
        self.maxFrameSize = maxFrameSize
    }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maxFrameSize else { throw FrameTooLarge(length: length, limit: maxFrameSize) }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let payload = buffer.readSlice(length: Int(length)) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(payload))
        return .continue
    }

    package mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        // A truncated trailing frame is dropped: the peer closed mid-frame.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
