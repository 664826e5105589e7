internal import CProtobufC

/// Measures how deeply sub-messages nest in an encoded protobuf message, without
/// recursion, using protobuf-c's own descriptors to tell sub-messages from bytes.
///
/// protobuf-c unpacks recursively with no depth limit, so a small frame of
/// nested `Value`s could otherwise exhaust a server thread's stack.
enum NestingGuard {
    enum Verdict: Equatable {
        case ok
        case tooDeep
        case malformed
    }

    static func check(
        _ bytes: UnsafeRawBufferPointer, descriptor: UnsafePointer<ProtobufCMessageDescriptor>, maxDepth: Int
    ) -> Verdict {
        var stack: [(descriptor: UnsafePointer<ProtobufCMessageDescriptor>, end: Int)] = [(descriptor, bytes.count)]
        var pos = 0

        func varint() -> UInt64? {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while pos < bytes.count, shift < 64 {
                let b = bytes[pos]
                pos += 1
                result |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return result }
                shift += 7
            }
            return nil
        }

        while true {
            while let top = stack.last, pos == top.end {
                stack.removeLast()
            }
            guard let top = stack.last else { return pos == bytes.count ? .ok : .malformed }
            guard pos < top.end else { return .malformed }
            // A tag or length may run past the end of its sub-message: check before subtracting.
            guard let tag = varint(), pos <= top.end else { return .malformed }
            let wireType = tag & 7
            let number = tag >> 3
            switch wireType {
            case 0:
                guard varint() != nil else { return .malformed }
            case 1:
                pos += 8
            case 5:
                pos += 4
            case 2:
                guard let len = varint(), pos <= top.end, len <= UInt64(top.end - pos) else { return .malformed }
                let end = pos + Int(len)
                if number <= UInt64(UInt32.max),
                    let field = protobuf_c_message_descriptor_get_field(top.descriptor, UInt32(number)),
                    field.pointee.type == PROTOBUF_C_TYPE_MESSAGE,
                    let sub = field.pointee.descriptor
                {
                    guard stack.count < maxDepth else { return .tooDeep }
                    stack.append((sub.assumingMemoryBound(to: ProtobufCMessageDescriptor.self), end))
                } else {
                    pos = end
                }
            default:
                return .malformed  // groups do not exist in proto3
            }
            if let t = stack.last, pos > t.end { return .malformed }
        }
    }
}
