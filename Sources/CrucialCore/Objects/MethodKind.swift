/// What a method does to its object, which decides what servers and clients may do with a
/// call of it: a read is not logged by a persistent object and not de-duplicated when a
/// client sends it again; a shrinking call is let through while the server is over its
/// memory limit; a blocking call may wait on the server (a barrier's `await`).
///
/// Built-in types declare each method's kind once, in ``BuiltinType``'s table; a `@Shared`
/// type's come from its declaration (a struct's non-`mutating` methods are reads).
public struct MethodKind: Sendable, Hashable, CustomStringConvertible {
    /// How a call changes the object's state.
    public enum Access: Sendable, Hashable {
        /// Leaves the state as it was.
        case read
        /// Changes it, and may make it bigger.
        case write
        /// Changes it by taking away only (remove, clear).
        case shrink
    }

    /// How a call changes the state.
    public var access: Access
    /// Whether a call may park on the server until others act (await, acquire).
    public var blocks: Bool

    /// A kind; `blocks`: calls may park on the server.
    public init(_ access: Access, blocks: Bool = false) {
        self.access = access
        self.blocks = blocks
    }

    /// Reads the state.
    public static let read = MethodKind(.read)
    /// Changes the state.
    public static let write = MethodKind(.write)
    /// Takes from the state.
    public static let shrink = MethodKind(.shrink)

    /// Whether calls leave the state as it was.
    public var isRead: Bool { access == .read }

    /// Whether calls may make the object bigger.
    public var mayGrow: Bool { access == .write }

    /// `read`, `write`, `shrink`, prefixed with `blocking` for a blocking one.
    public var description: String {
        let base = switch access {
        case .read: "read"
        case .write: "write"
        case .shrink: "shrink"
        }
        return blocks ? "blocking \(base)" : base
    }
}
