internal import CCrucialProto
internal import CProtobufC

/// Standalone ``Value``s as bytes: the compact binary form arguments, results and
/// object states take on the wire, in persistence logs and across the plugin boundary.
extension WireCodec {
    nonisolated(unsafe) private static let valueDescriptor: UnsafePointer<ProtobufCMessageDescriptor> = {
        var v = Crucial__Value()
        crucial__value__init(&v)
        return v.base.descriptor
    }()

    /// `value` as protobuf bytes (a `crucial.Value` message).
    package static func encode(value: Value) -> [UInt8] {
        CArena.with { arena in
            let v = cValue(value, arena)
            let size = crucial__value__get_packed_size(v)
            return [UInt8](unsafeUninitializedCapacity: size) { out, count in
                count = out.baseAddress.map { crucial__value__pack(v, $0) } ?? 0
            }
        }
    }

    /// The value encoded in `bytes` by ``encode(value:)``.
    package static func decodeValue(_ bytes: some Collection<UInt8>) throws(CrucialError) -> Value {
        let contiguous = Array(bytes)
        let result: Result<Value, CrucialError> = contiguous.withUnsafeBytes { raw in
            switch NestingGuard.check(raw, descriptor: valueDescriptor, maxDepth: maxNesting) {
            case .ok: break
            case .tooDeep: return .failure(CrucialError(.badFrame, "value nests more than \(maxNesting) levels deep"))
            case .malformed: return .failure(CrucialError(.badFrame, "\(raw.count) bytes are not a valid protobuf Value"))
            }
            return CArena.with { arena in
                arena.withAllocator { allocator in
                    let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
                    guard let v = crucial__value__unpack(allocator, raw.count, base) else {
                        return .failure(CrucialError(.badFrame, "\(raw.count) bytes are not a valid Value message"))
                    }
                    return .success(value(from: v))
                }
            }
        }
        return try result.get()
    }
}
