public import CrucialCore

/// A ``SharedType`` (a user's `@Shared` type linked into this server) as a server object.
final class UserObject<T: SharedType>: SharedObject {
    static var typeName: String { T.crucialTypeName }

    private var value: T

    init(initial: Value) throws(CrucialError) {
        value = try T.crucialDecode(initial)
    }

    func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        .value(try T.crucialRun(&value, SharedCall(typeName: T.crucialTypeName, method: call.method, args: call.args)))
    }

    func snapshot() -> Value {
        // A type whose state stops encoding is a bug in that type; show it rather than crash.
        (try? value.crucialEncode()) ?? .record(["error": .string("the state of \(T.crucialTypeName) does not encode")])
    }

    func kind(of method: String) -> MethodKind { T.crucialMethods[method] ?? .write }

    var code: TypeCode? { T.linkedCode }
    var fingerprint: String { T.crucialFingerprint }
}

extension SharedType {
    /// The code of a type linked into the server.
    static var linkedCode: TypeCode {
        TypeCode(fingerprint: crucialFingerprint, origin: "linked into this server", methods: Array(crucialMethods.keys))
    }
}

extension TypeRegistry {
    /// Registers a user's `@Shared` type, so that clients can create and call it here.
    ///
    /// ```swift
    /// var registry = TypeRegistry.builtins
    /// registry.register(shared: GlobalCentroids.self)
    /// ```
    public mutating func register<T: SharedType>(shared type: T.Type) {
        register(typeName: T.crucialTypeName, factory: { initial in try UserObject<T>(initial: initial) }, code: T.linkedCode)
    }
}
