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

    private typealias Level = (descriptor: UnsafePointer<ProtobufCMessageDescriptor>, end: Int)

    static func check(
        _ bytes: UnsafeRawBufferPointer, descriptor: UnsafePointer<ProtobufCMessageDescriptor>, maxDepth: Int
    ) -> Verdict {
        // The open sub-messages, innermost last, in temporary storage: a check runs for every
        // decoded call, and an array would allocate twice. 16 levels fit on the stack (Swift
        // puts a temporary allocation on the heap past 1 KB); a message nested deeper than
        // that is checked again with room for all `maxDepth`.
        let shallow = min(maxDepth, 16)
        let onStack = withUnsafeTemporaryAllocation(of: Level.self, capacity: shallow + 1) { stack in
            check(bytes, descriptor: descriptor, maxDepth: maxDepth, stack: stack)
        }
        if let onStack { return onStack }
        return withUnsafeTemporaryAllocation(of: Level.self, capacity: maxDepth + 1) { stack in
            check(bytes, descriptor: descriptor, maxDepth: maxDepth, stack: stack)!
        }
    }

    private static func check(
        _ bytes: UnsafeRawBufferPointer, descriptor: UnsafePointer<ProtobufCMessageDescriptor>, maxDepth: Int,
        stack: UnsafeMutableBufferPointer<Level>
    ) -> Verdict? {  // nil: deeper than `stack` holds, though within `maxDepth`
        stack.initializeElement(at: 0, to: (descriptor, bytes.count))
        var depth = 1  // levels in `stack`; trivial values: nothing to deinitialize
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
            while depth > 0, pos == stack[depth - 1].end {
                depth -= 1
            }
            guard depth > 0 else { return pos == bytes.count ? .ok : .malformed }
            let top = stack[depth - 1]
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
                    guard depth < maxDepth else { return .tooDeep }
                    guard depth < stack.count else { return nil }
                    stack.initializeElement(at: depth, to: (sub.assumingMemoryBound(to: ProtobufCMessageDescriptor.self), end))
                    depth += 1
                } else {
                    pos = end
                }
            default:
                return .malformed  // groups do not exist in proto3
            }
            if depth > 0, pos > stack[depth - 1].end { return .malformed }
        }
    }
}
