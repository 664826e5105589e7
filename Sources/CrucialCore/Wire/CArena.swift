internal import CProtobufC
internal import NIOCore

/// A bump allocator for the C structs of one message: everything protobuf-c
/// needs while packing or unpacking a frame is carved out of a few chunks and
/// released together, instead of one `malloc` per field.
final class CArena {
    private var chunks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    private static let chunkSize = 4096
    private static let alignment = 16

    init() {}

    deinit {
        for chunk in chunks { chunk.deallocate() }
    }

    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let rounded = max(Self.alignment, (byteCount + Self.alignment - 1) & ~(Self.alignment - 1))
        if rounded > Self.chunkSize / 2 {
            // Large blocks (packed arrays, long strings) get a chunk of their own.
            let block = UnsafeMutableRawPointer.allocate(byteCount: rounded, alignment: Self.alignment)
            chunks.append(block)
            return block
        }
        if rounded > remaining || cursor == nil {
            let chunk = UnsafeMutableRawPointer.allocate(byteCount: Self.chunkSize, alignment: Self.alignment)
            chunks.append(chunk)
            cursor = chunk
            remaining = Self.chunkSize
        }
        guard let start = cursor else { preconditionFailure("arena cursor set above") }
        cursor = start + rounded
        remaining -= rounded
        return start
    }

    /// Allocates and initialises one C struct.
    func make<T>(_ type: T.Type, _ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let p = allocate(byteCount: MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: 1)
        initialize(p)
        return p
    }

    /// An uninitialised C array of `count` elements.
    func array<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        allocate(byteCount: MemoryLayout<T>.stride * max(count, 1)).bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A C array holding a copy of `values`.
    func array<T>(copying values: [T]) -> UnsafeMutablePointer<T> {
        let items = array(T.self, count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { items.update(from: base, count: values.count) }
        }
        return items
    }

    /// A NUL-terminated copy of `s`. A NUL inside `s` ends the C string there;
    /// callers that must keep such strings use a bytes field instead.
    func cString(_ s: String) -> UnsafeMutablePointer<CChar> {
        var s = s
        return s.withUTF8 { utf8 in
            let p = array(CChar.self, count: utf8.count + 1)
            if let base = utf8.baseAddress {
                UnsafeMutableRawPointer(p).copyMemory(from: base, byteCount: utf8.count)
            }
            p[utf8.count] = 0
            return p
        }
    }

    func bytes(_ b: [UInt8]) -> ProtobufCBinaryData { b.withUnsafeBytes { copy($0) } }

    /// A copy of `b`'s readable bytes (a Replicate forwarding the Invoke it received).
    func bytes(_ b: ByteBuffer) -> ProtobufCBinaryData { b.withUnsafeReadableBytes { copy($0) } }

    private func copy(_ raw: UnsafeRawBufferPointer) -> ProtobufCBinaryData {
        let p = array(UInt8.self, count: raw.count)
        if let base = raw.baseAddress { UnsafeMutableRawPointer(p).copyMemory(from: base, byteCount: raw.count) }
        return ProtobufCBinaryData(len: raw.count, data: p)
    }

    /// A protobuf-c allocator drawing from this arena; `free` is a no-op because
    /// the arena releases everything at once. Valid while the arena lives.
    func withAllocator<R>(_ body: (UnsafeMutablePointer<ProtobufCAllocator>) throws -> R) rethrows -> R {
        var allocator = ProtobufCAllocator(
            alloc: { data, size in
                guard let data else { return nil }
                return Unmanaged<CArena>.fromOpaque(data).takeUnretainedValue().allocate(byteCount: size)
            },
            free: { _, _ in },
            allocator_data: Unmanaged.passUnretained(self).toOpaque()
        )
        return try withUnsafeMutablePointer(to: &allocator) { try body($0) }
    }
}
