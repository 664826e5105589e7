/// Identifies a shared object: its type name and the key the user gave it.
///
/// `AtomicLong("counter")` is `ObjectRef(type: "AtomicLong", key: "counter")`;
/// two objects of different types may share a key.
public struct ObjectRef: Hashable, Sendable, CustomStringConvertible {
    /// The type name (a built-in's, or a `@Shared` type's).
    public var type: String
    /// The name the program gives the object.
    public var key: String

    /// The object (`type`, `key`).
    public init(type: String, key: String) {
        self.type = type
        self.key = key
    }

    /// `Type("key")`.
    public var description: String { "\(type)(\"\(key)\")" }

    /// Checks the names can travel in protobuf-c strings (which stop at NUL) and are not empty.
    public func validate() throws(CrucialError) {
        guard !type.isEmpty else { throw CrucialError(.invalidArgument, "object type name is empty") }
        guard !key.isEmpty else { throw CrucialError(.invalidArgument, "key of \(type) is empty") }
        guard !type.utf8.contains(0), !key.utf8.contains(0) else {
            throw CrucialError(.invalidArgument, "key or type name of \(self) contains a NUL character")
        }
    }
}

extension ObjectRef {
    /// The order object listings take (`ListObjects` pages, docs/PROTOCOL.md): by type, then
    /// by key, each compared as UTF-8 bytes, as a client in any language can.
    package func precedesInBytes(_ other: ObjectRef) -> Bool {
        if type != other.type { return type.utf8.lexicographicallyPrecedes(other.type.utf8) }
        return key.utf8.lexicographicallyPrecedes(other.key.utf8)
    }
}
