internal import CCrucialProto
internal import CProtobufC
package import NIOCore

/// Converts ``Frame``s to and from protobuf-c bytes.
///
/// The C structs live only inside these functions, in a ``CArena``: callers
/// see Swift values and `ByteBuffer`s, never a pointer.
package enum WireCodec {
    /// Deepest sub-message nesting accepted in a frame (a `Value` list inside a
    /// list costs two levels). Deeper frames are refused before unpacking.
    package static let maxNesting = 100

    /// The address of protobuf-c's `crucial__frame__descriptor`. Taken from an
    /// initialised message: `withUnsafePointer(to:)` on the imported C constant may
    /// point at a temporary copy, which must not escape.
    nonisolated(unsafe) static let frameDescriptor: UnsafePointer<ProtobufCMessageDescriptor> = {
        var f = Crucial__Frame()
        crucial__frame__init(&f)
        return f.base.descriptor
    }()

    /// The same for `Invoke`, which a Replicate carries as bytes.
    nonisolated(unsafe) static let invokeDescriptor: UnsafePointer<ProtobufCMessageDescriptor> = {
        var i = Crucial__Invoke()
        crucial__invoke__init(&i)
        return i.base.descriptor
    }()

    /// Appends the 4-byte big-endian length and the encoded `frame` to `buffer`.
    package static func encode(_ frame: Frame, into buffer: inout ByteBuffer) {
        CArena.with { arena in
            var f = Crucial__Frame()
            crucial__frame__init(&f)
            fill(&f, from: frame, arena)
            let size = crucial__frame__get_packed_size(&f)
            buffer.writeInteger(UInt32(truncatingIfNeeded: size))
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                guard let base = out.baseAddress else { return 0 }
                return crucial__frame__pack(&f, base.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    /// The encoded size of `frame` without its length prefix.
    package static func encodedSize(_ frame: Frame) -> Int {
        CArena.with { arena in
            var f = Crucial__Frame()
            crucial__frame__init(&f)
            fill(&f, from: frame, arena)
            return crucial__frame__get_packed_size(&f)
        }
    }

    /// Decodes one frame payload (without its length prefix).
    ///
    /// Throws ``CrucialError/Code/badFrame`` for bytes that are not a `Frame`
    /// and ``CrucialError/Code/badRequest`` for a frame with no body.
    package static func decode(_ payload: ByteBuffer) throws(CrucialError) -> Frame {
        let result: Result<Frame, CrucialError> = payload.withUnsafeReadableBytes { raw in
            switch mayNestTooDeep(raw.count) ? NestingGuard.check(raw, descriptor: frameDescriptor, maxDepth: maxNesting) : .ok {
            case .ok: break
            case .tooDeep:
                return .failure(CrucialError(.badFrame, "frame nests values more than \(maxNesting) levels deep"))
            case .malformed:
                return .failure(CrucialError(.badFrame, "frame of \(raw.count) bytes is not a valid protobuf message"))
            }
            return CArena.with { arena in
                arena.withAllocator { allocator in
                    let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
                    guard let f = crucial__frame__unpack(allocator, raw.count, base) else {
                        return .failure(CrucialError(.badFrame, "frame of \(raw.count) bytes is not a valid Frame message"))
                    }
                    return Result { () throws(CrucialError) in try frame(from: f, allocator) }
                }
            }
        }
        let decoded = try result.get()
        if case .invoke(var invoke) = decoded, let bytes = invokeBytes(payload) {
            invoke.encoded = Invoke.Encoded(bytes)
            return .invoke(invoke)
        }
        return decoded
    }

    /// Whether a message of `count` bytes can nest deeper than ``maxNesting``: each level
    /// takes at least two bytes of the one around it (a tag and a length), so a shorter one
    /// cannot, and skips ``NestingGuard`` (most calls: the check was 1.6 % of a server's
    /// time). protobuf-c's unpack refuses malformed bytes of any length itself.
    package static func mayNestTooDeep(_ count: Int) -> Bool { count >= 2 * maxNesting }

    /// The Invoke message inside an Invoke frame's payload: field 3 (tag byte 0x1A), its
    /// length, and exactly that many bytes after it; nil for any other layout (the call is
    /// then encoded again where it is forwarded).
    static func invokeBytes(_ payload: ByteBuffer) -> ByteBuffer? {
        var p = payload
        guard p.readInteger(as: UInt8.self) == 0x1A else { return nil }
        var length = 0
        var shift = 0
        while true {
            guard shift < 35, let byte = p.readInteger(as: UInt8.self) else { return nil }
            length |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        guard length == p.readableBytes else { return nil }
        return p
    }

    /// The bytes a Replicate carries for `invoke`: those it was decoded from, else a fresh encoding.
    static func invokeBytes(_ invoke: Invoke, _ a: CArena) -> ProtobufCBinaryData {
        if let encoded = invoke.encoded.bytes { return a.bytes(encoded) }
        let c = cInvoke(invoke, a)
        let size = crucial__invoke__get_packed_size(c)
        let p = a.array(UInt8.self, count: size)
        let written = crucial__invoke__pack(c, p)
        return ProtobufCBinaryData(len: written, data: p)
    }
}
