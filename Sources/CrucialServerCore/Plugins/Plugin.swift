internal import CCrucialShims
package import CrucialCore
internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// A loaded plugin: a shared library exporting `@Shared` types through `crucial_plugin.h`.
package final class Plugin: @unchecked Sendable {  // immutable after load; the library is never unloaded
    package let path: String
    package let typeNames: [String]
    /// The code of each type, in `typeNames`' order.
    package let codes: [TypeCode]
    /// The library's identity: FNV-1a (64 bits) of its bytes, in hex. Members of a cluster
    /// compare it to tell whether they run the same build of a type.
    package let build: String
    let descriptor: UnsafePointer<crucial_plugin>

    private init(path: String, descriptor: UnsafePointer<crucial_plugin>, typeNames: [String], codes: [TypeCode], build: String) {
        self.path = path
        self.descriptor = descriptor
        self.typeNames = typeNames
        self.codes = codes
        self.build = build
    }

    /// The name a plugin was uploaded under: its file's name without the
    /// `MILLISECONDS-RANDOM-` that ``PluginUpload`` puts before it.
    static func uploadedName(_ path: String) -> String {
        let file = URL(fileURLWithPath: path).lastPathComponent
        let parts = file.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].allSatisfy(\.isNumber), parts[1].allSatisfy(\.isNumber), !parts[0].isEmpty, !parts[1].isEmpty else {
            return file
        }
        return String(parts[2])
    }

    /// FNV-1a (64 bits) of `bytes`, 16 hex digits.
    static func fnv1a(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        bytes.withUnsafeBufferPointer { buffer in
            for byte in buffer {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The toolchain that built this server, as plugins report theirs.
    static var toolchain: String { String(cString: crucial_toolchain_id()) }

    /// Checks and loads the plugin at `path`; a ``CrucialError`` (BAD_REQUEST) says why not.
    ///
    /// Before loading: the file must be a 64-bit ELF, and if its `.comment` names a
    /// Swift toolchain's clang, it must be this server's. After: the entry point must
    /// exist and report this plugin ABI and toolchain.
    package static func load(path: String) throws(CrucialError) -> Plugin {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw CrucialError(.badRequest, "cannot read plugin \(path): \(error.localizedDescription)")
        }
        let comments: [String]
        do throws(ELFComment.Failure) {
            comments = try ELFComment.strings(in: bytes)
        } catch {
            switch error {
            case .notELF: throw CrucialError(.badRequest, "plugin \(path) is not a shared library (no ELF header)")
            case .unsupported(let what): throw CrucialError(.badRequest, "plugin \(path) is a \(what) file; this server loads 64-bit little-endian ELF")
            case .truncated: throw CrucialError(.badRequest, "plugin \(path) is a truncated or damaged ELF file")
            }
        }
        let mine = toolchain
        let swiftClangs = comments.filter { $0.contains("swiftlang/llvm-project") || $0.contains("apple/llvm-project") }
        if !swiftClangs.isEmpty, !swiftClangs.contains(where: { $0.hasSuffix(mine) || $0.contains(mine) }) {
            throw CrucialError(
                .badRequest,
                "plugin \(path) was built by another Swift toolchain (\(swiftClangs[0])) than this server (clang version \(mine)); "
                    + "rebuild it with the server's toolchain (\(serverSwiftVersion))")
        }

        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            throw CrucialError(.badRequest, "cannot load plugin \(path): \(reason)")
        }
        guard let symbol = dlsym(handle, CRUCIAL_PLUGIN_ENTRY) else {
            dlclose(handle)
            throw CrucialError(
                .badRequest,
                "\(path) is not a Crucial plugin: it exports no \(CRUCIAL_PLUGIN_ENTRY) (declare one with @_cdecl(\"\(CRUCIAL_PLUGIN_ENTRY)\") "
                    + "returning CrucialPlugin.export(YourType.self, ...))")
        }
        typealias Entry = @convention(c) () -> UnsafeRawPointer?
        guard let raw = unsafeBitCast(symbol, to: Entry.self)() else {
            throw CrucialError(.badRequest, "plugin \(path): its \(CRUCIAL_PLUGIN_ENTRY) returned nothing")
        }
        let descriptor = raw.assumingMemoryBound(to: crucial_plugin.self)
        guard descriptor.pointee.abi_version == UInt32(CRUCIAL_PLUGIN_ABI_VERSION) else {
            throw CrucialError(
                .badRequest,
                "plugin \(path) speaks plugin ABI \(descriptor.pointee.abi_version); this server speaks \(CRUCIAL_PLUGIN_ABI_VERSION): "
                    + "rebuild it against this server's Crucial version")
        }
        let theirs = String(cString: descriptor.pointee.toolchain)
        guard theirs == mine else {
            throw CrucialError(
                .badRequest,
                "plugin \(path) was built by another Swift toolchain (clang version \(theirs)) than this server (clang version \(mine))")
        }
        let count = Int(descriptor.pointee.type_count)
        let names = (0..<count).map { String(cString: descriptor.pointee.type_names[$0]) }
        let build = fnv1a(bytes)
        let codes = (0..<count).map { i in
            TypeCode(
                fingerprint: String(cString: descriptor.pointee.type_fingerprints[i]),
                origin: "plugin \(uploadedName(path)), build \(build)",
                methods: String(cString: descriptor.pointee.type_methods[i]).split(separator: "\n").map(String.init), build: build)
        }
        return Plugin(path: path, descriptor: UnsafePointer(descriptor), typeNames: names, codes: codes, build: build)
    }

    /// The factory of type `index` for a ``TypeRegistry``.
    func factory(for index: Int) -> TypeRegistry.Factory {
        { [self] initial throws in try PluginObject(plugin: self, typeIndex: UInt32(index), initial: initial) }
    }

    /// Registers every type of this plugin in `registry`, replacing the code registered
    /// before for a type of the same name; returns the names of the types it replaced.
    func register(in registry: inout TypeRegistry) -> [String] {
        var replaced: [String] = []
        for (i, name) in typeNames.enumerated() {
            if registry.factory(for: name) != nil { replaced.append(name) }
            registry.register(typeName: name, factory: factory(for: i), code: codes[i])
        }
        return replaced
    }

    /// Decodes bytes the plugin filled, then releases them.
    func take(_ buffer: inout crucial_buffer) -> [UInt8] {
        defer { descriptor.pointee.free_buffer(&buffer) }
        guard let data = buffer.data, buffer.length > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: buffer.length))
    }
}

/// The Swift version of this server's toolchain, for messages.
let serverSwiftVersion: String = {
    #if compiler(>=6.4)
    "Swift 6.4 or later"
    #elseif compiler(>=6.3)
    "Swift 6.3"
    #elseif compiler(>=6.2)
    "Swift 6.2"
    #else
    "Swift 6.1 or earlier"
    #endif
}()

/// An object of a plugin's type: its state lives in the plugin, behind an opaque pointer.
final class PluginObject: SharedObject {
    static var typeName: String { "plugin" }  // registered per type name by the plugin's factories

    private let plugin: Plugin
    private let typeIndex: UInt32
    private let object: UnsafeMutableRawPointer

    init(initial: Value) throws(CrucialError) {
        throw CrucialError(.internal, "plugin objects are made by their plugin's factory")
    }

    init(plugin: Plugin, typeIndex: UInt32, initial: Value) throws(CrucialError) {
        self.plugin = plugin
        self.typeIndex = typeIndex
        let state = WireCodec.encode(value: initial)
        var error = crucial_buffer(data: nil, length: 0)
        let made = state.withUnsafeBufferPointer { plugin.descriptor.pointee.create(typeIndex, $0.baseAddress, $0.count, &error) }
        guard let made else {
            let text = String(decoding: plugin.take(&error), as: UTF8.self)
            let (code, message) = Self.split(text)
            throw CrucialError(code, message)
        }
        object = made
    }

    deinit { plugin.descriptor.pointee.destroy(object) }

    func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        let args = WireCodec.encode(value: .list(call.args))
        var out = crucial_buffer(data: nil, length: 0)
        let status = call.method.withCString { method in
            args.withUnsafeBufferPointer { plugin.descriptor.pointee.invoke(object, method, $0.baseAddress, $0.count, &out) }
        }
        let bytes = plugin.take(&out)
        guard status == 0 else {
            throw CrucialError(CrucialError.Code(rawValue: status) ?? .internal, String(decoding: bytes, as: UTF8.self))
        }
        return .value(try WireCodec.decodeValue(bytes))
    }

    func snapshot() -> Value {
        var out = crucial_buffer(data: nil, length: 0)
        let status = plugin.descriptor.pointee.snapshot(object, &out)
        let bytes = plugin.take(&out)
        guard status == 0, let value = try? WireCodec.decodeValue(bytes) else {
            return .record(["error": .string(String(decoding: bytes, as: UTF8.self))])
        }
        return value
    }

    func kind(of method: String) -> MethodKind {
        method.withCString { plugin.descriptor.pointee.is_read_only(typeIndex, $0) } == 1 ? .read : .write
    }

    var code: TypeCode? { plugin.codes[Int(typeIndex)] }
    var fingerprint: String { plugin.codes[Int(typeIndex)].fingerprint }

    /// "CODE message" from the plugin's create.
    private static func split(_ text: String) -> (CrucialError.Code, String) {
        let parts = text.split(separator: " ", maxSplits: 1)
        guard let first = parts.first, let raw = Int32(first), let code = CrucialError.Code(rawValue: raw) else { return (.internal, text) }
        return (code, parts.count > 1 ? String(parts[1]) : "")
    }
}
