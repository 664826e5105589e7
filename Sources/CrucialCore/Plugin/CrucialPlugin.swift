internal import CCrucialShims
internal import FoundationEssentials
#if canImport(Glibc)
internal import Glibc
#endif
internal import Synchronization

/// Exports `@Shared` types from a shared library that `crucial-server` loads at
/// start-up (`--plugin PATH`) or at run time (`crucial plugin load PATH`).
///
/// A plugin is a dynamic library product of the user's package whose target holds
/// the types (or depends on the target that does) and this entry point:
///
/// ```swift
/// @_cdecl("crucial_plugin_entry")
/// public func crucialPluginEntry() -> UnsafeRawPointer {
///     CrucialPlugin.export(GlobalCentroids.self, Model.self)
/// }
/// ```
/// ```swift
/// // Package.swift
/// .library(name: "MyTypesPlugin", type: .dynamic, targets: ["MyTypes"])
/// ```
/// The server calls the types through a C interface (`crucial_plugin.h`), so the
/// plugin must be built by the same Swift toolchain as the server, which checks it.
public enum CrucialPlugin {
    /// The descriptor of `types`, built once; the entry point returns it.
    public static func export(_ first: any SharedType.Type, _ more: any SharedType.Type...) -> UnsafeRawPointer {
        export([first] + more)
    }

    /// The descriptor of `types`, built once; the entry point returns it.
    public static func export(_ types: [any SharedType.Type]) -> UnsafeRawPointer {
        state.withLock { state in
            if let descriptor = state.descriptor { return UnsafeRawPointer(descriptor) }
            state.types = types
            func strings(_ text: (any SharedType.Type) -> String) -> UnsafePointer<UnsafePointer<CChar>> {
                let array = UnsafeMutablePointer<UnsafePointer<CChar>>.allocate(capacity: max(1, types.count))
                for (i, type) in types.enumerated() { array[i] = UnsafePointer(strdup(text(type))!) }
                return UnsafePointer(array)
            }
            let names = strings { $0.crucialTypeName }
            let fingerprints = strings { $0.crucialFingerprint }
            let methods = strings { $0.crucialMethods.keys.sorted().map { $0 + "\n" }.joined() }
            let descriptor = UnsafeMutablePointer<crucial_plugin>.allocate(capacity: 1)
            descriptor.initialize(
                to: crucial_plugin(
                    abi_version: UInt32(CRUCIAL_PLUGIN_ABI_VERSION), toolchain: crucial_toolchain_id(), type_count: UInt32(types.count),
                    type_names: names, create: pluginCreate, invoke: pluginInvoke, snapshot: pluginSnapshot,
                    is_read_only: pluginIsReadOnly, destroy: pluginDestroy, free_buffer: pluginFreeBuffer,
                    type_fingerprints: fingerprints, type_methods: methods))
            state.descriptor = descriptor
            return UnsafeRawPointer(descriptor)
        }
    }

    struct State: @unchecked Sendable {  // written once under the lock, read-only afterwards
        var types: [any SharedType.Type] = []
        var descriptor: UnsafeMutablePointer<crucial_plugin>?
    }

    static let state = Mutex(State())

    static func type(at index: UInt32) -> (any SharedType.Type)? {
        state.withLock { Int(index) < $0.types.count ? $0.types[Int(index)] : nil }
    }
}

/// An object living in the plugin, behind an opaque pointer the server holds.
private protocol PluginInstance: AnyObject {
    func invoke(_ method: String, _ args: [Value]) throws(CrucialError) -> Value
    func snapshot() throws(CrucialError) -> Value
}

private final class PluginInstanceOf<T: SharedType>: PluginInstance {
    var value: T
    init(_ value: T) { self.value = value }

    func invoke(_ method: String, _ args: [Value]) throws(CrucialError) -> Value {
        try T.crucialRun(&value, SharedCall(typeName: T.crucialTypeName, method: method, args: args))
    }

    func snapshot() throws(CrucialError) -> Value { try value.crucialEncode() }
}

private func makeInstance<T: SharedType>(_ type: T.Type, _ state: Value) throws(CrucialError) -> any PluginInstance {
    PluginInstanceOf(try T.crucialDecode(state))
}

/// `bytes` copied into a malloc'd buffer the server frees through `free_buffer`.
private func fill(_ buffer: UnsafeMutablePointer<crucial_buffer>, _ bytes: [UInt8]) {
    let data = malloc(max(1, bytes.count))?.assumingMemoryBound(to: UInt8.self)
    if let data {
        bytes.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { data.update(from: base, count: source.count) }
        }
    }
    buffer.pointee = crucial_buffer(data: data, length: data == nil ? 0 : bytes.count)
}

private func fail(_ buffer: UnsafeMutablePointer<crucial_buffer>, _ error: CrucialError) -> Int32 {
    fill(buffer, Array(error.message.utf8))
    return error.code.rawValue == 0 ? CrucialError.Code.internal.rawValue : error.code.rawValue
}

private func decodeBytes(_ bytes: UnsafePointer<UInt8>?, _ length: Int) throws(CrucialError) -> Value {
    guard let bytes, length > 0 else { return .null }
    return try WireCodec.decodeValue(UnsafeBufferPointer(start: bytes, count: length))
}

private let pluginCreate: @convention(c) (UInt32, UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<crucial_buffer>) -> UnsafeMutableRawPointer? = {
    index, state, length, errorOut in
    do throws(CrucialError) {
        guard let type = CrucialPlugin.type(at: index) else { throw CrucialError(.unknownType, "the plugin has no type \(index)") }
        let instance = try makeInstance(type, try decodeBytes(state, length))
        return Unmanaged.passRetained(instance as AnyObject).toOpaque()
    } catch {
        fill(errorOut, Array("\(error.code.rawValue) \(error.message)".utf8))
        return nil
    }
}

private let pluginInvoke: @convention(c) (UnsafeMutableRawPointer, UnsafePointer<CChar>, UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<crucial_buffer>) -> Int32 = {
    object, method, args, length, out in
    guard let instance = Unmanaged<AnyObject>.fromOpaque(object).takeUnretainedValue() as? any PluginInstance else {
        return fail(out, CrucialError(.internal, "not an object of this plugin"))
    }
    do throws(CrucialError) {
        let list = try decodeBytes(args, length)
        let result = try instance.invoke(String(cString: method), list.listValue ?? [])
        fill(out, WireCodec.encode(value: result))
        return 0
    } catch {
        return fail(out, error)
    }
}

private let pluginSnapshot: @convention(c) (UnsafeMutableRawPointer, UnsafeMutablePointer<crucial_buffer>) -> Int32 = { object, out in
    guard let instance = Unmanaged<AnyObject>.fromOpaque(object).takeUnretainedValue() as? any PluginInstance else {
        return fail(out, CrucialError(.internal, "not an object of this plugin"))
    }
    do throws(CrucialError) {
        fill(out, WireCodec.encode(value: try instance.snapshot()))
        return 0
    } catch {
        return fail(out, error)
    }
}

private let pluginIsReadOnly: @convention(c) (UInt32, UnsafePointer<CChar>) -> Int32 = { index, method in
    guard let type = CrucialPlugin.type(at: index) else { return 0 }
    return type.crucialMethods[String(cString: method)] == .read ? 1 : 0
}

private let pluginDestroy: @convention(c) (UnsafeMutableRawPointer) -> Void = { object in
    Unmanaged<AnyObject>.fromOpaque(object).release()
}

private let pluginFreeBuffer: @convention(c) (UnsafeMutablePointer<crucial_buffer>) -> Void = { buffer in
    free(buffer.pointee.data)
    buffer.pointee = crucial_buffer(data: nil, length: 0)
}
