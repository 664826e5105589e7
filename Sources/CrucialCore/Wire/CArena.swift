internal import CProtobufC
internal import CCrucialShims
internal import NIOCore

/// The C structs of one message: everything protobuf-c needs while packing or
/// unpacking a frame is carved out of this thread's arena (CCrucialShims'
/// `crucial_arena_*`) and given back together when the outermost ``with(_:)`` ends.
/// The thread keeps the arena's chunk, so a typical frame costs no `malloc`: a class
/// with its own chunks cost two allocations and a retain per protobuf-c allocation
/// (perf: 2 % of a server's time in the allocator's thunk alone).
///
/// Valid only inside the ``with(_:)`` that made it, on that thread: callers are
/// synchronous functions that convert to Swift values before they return. (Not
/// `~Copyable`: the encoders capture it in the closures that map arrays to C arrays.)
struct CArena {
    private init() {}

    /// Runs `body` with this thread's arena; what it allocated is released after.
    static func with<R, E: Error>(_ body: (CArena) throws(E) -> R) throws(E) -> R {
        crucial_arena_begin()
        defer { crucial_arena_end() }
        return try body(CArena())
    }

    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        guard let p = crucial_arena_alloc(max(0, byteCount)) else {
            // As Swift's own allocations do when memory is exhausted.
            preconditionFailure("out of memory allocating \(byteCount) bytes for a protobuf-c message")
        }
        return p
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

    /// A protobuf-c allocator drawing from this thread's arena; `free` is a no-op because
    /// the arena releases everything at once.
    func withAllocator<R>(_ body: (UnsafeMutablePointer<ProtobufCAllocator>) throws -> R) rethrows -> R {
        var allocator = ProtobufCAllocator(alloc: { _, size in crucial_arena_alloc(size) }, free: { _, _ in }, allocator_data: nil)
        return try withUnsafeMutablePointer(to: &allocator) { try body($0) }
    }
}
