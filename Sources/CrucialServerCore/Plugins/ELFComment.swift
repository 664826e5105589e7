/// The strings of an ELF file's `.comment` section, where compilers sign their
/// names ("clang version 21.0.0 (https://github.com/swiftlang/llvm-project.git …)").
///
/// Read before `dlopen`, so a plugin built by another toolchain is refused before any
/// of its code (its Swift runtime registration included) runs. 64-bit little-endian ELF only.
enum ELFComment {
    enum Failure: Error, Equatable {
        case notELF
        case unsupported(String)
        case truncated
    }

    static func strings(in bytes: [UInt8]) throws(Failure) -> [String] {
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else { throw .notELF }
        guard bytes[4] == 2 else { throw .unsupported("32-bit ELF") }
        guard bytes[5] == 1 else { throw .unsupported("big-endian ELF") }
        func u16(_ at: Int) throws(Failure) -> Int {
            guard at >= 0, at + 2 <= bytes.count else { throw .truncated }
            return Int(bytes[at]) | Int(bytes[at + 1]) << 8
        }
        func u32(_ at: Int) throws(Failure) -> Int { try (u16(at) | u16(at + 2) << 16) }
        func u64(_ at: Int) throws(Failure) -> Int {
            let high = try u32(at + 4)
            guard high == 0 else { throw .truncated }  // offsets beyond 4 GiB: not a plugin
            return try u32(at)
        }
        let sectionTable = try u64(0x28)
        let entrySize = try u16(0x3A)
        let count = try u16(0x3C)
        let namesIndex = try u16(0x3E)
        guard entrySize >= 64, count > 0, namesIndex < count else { return [] }
        func section(_ i: Int) throws(Failure) -> (name: Int, offset: Int, size: Int) {
            let base = sectionTable + i * entrySize
            return (try u32(base), try u64(base + 0x18), try u64(base + 0x20))
        }
        let names = try section(namesIndex)
        guard names.offset + names.size <= bytes.count else { throw .truncated }
        for i in 0..<count {
            let s = try section(i)
            guard names.offset + s.name < bytes.count else { continue }
            let nameBytes = bytes[(names.offset + s.name)...].prefix { $0 != 0 }
            guard String(decoding: nameBytes, as: UTF8.self) == ".comment" else { continue }
            guard s.offset + s.size <= bytes.count else { throw .truncated }
            return bytes[s.offset..<(s.offset + s.size)].split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        }
        return []
    }
}
