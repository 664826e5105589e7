public import CrucialCore
import Synchronization

/// What carries a shared object's calls to its servers: a `CrucialClient`.
///
/// `CrucialShared` is what a type needs to be shared (`@Shared`, its proxy, the plugin
/// export) without the client's network stack, so that a plugin built from it stays small;
/// `CrucialClient` conforms, and a proxy made through it, or with no caller at all, calls
/// through `CrucialClient.shared` in a program that links the client.
public protocol SharedCaller: AnyObject, Sendable {
    /// Calls `method` of `ref` with `args`. `initial`: the state that creates the object when
    /// it does not exist (nil: it must exist); `readOnly`: a read, not de-duplicated when
    /// sent again; `typeVersion`: the caller's fingerprint of a user type ("" for none).
    func callShared(
        _ ref: ObjectRef, _ method: String, _ args: [Value], initial: Value?, persistent: Bool, readOnly: Bool, typeVersion: String
    ) async throws -> Value

    /// Removes `ref`; answers whether it existed.
    func removeShared(_ ref: ObjectRef) async throws -> Bool
}

/// The caller of handles made without one.
public enum SharedCallers {
    private static let resolver = Mutex<(@Sendable () -> any SharedCaller)?>(nil)

    /// Sets the caller of handles made without one, looked up at each call (`CrucialClient`
    /// sets `CrucialClient.shared` as soon as a client or a proxy of its own is made).
    public static func setDefault(_ resolve: @escaping @Sendable () -> any SharedCaller) {
        resolver.withLock { $0 = resolve }
    }

    /// The caller in effect; an error when no client library ever set one.
    public static func current() throws -> any SharedCaller {
        guard let resolve = resolver.withLock({ $0 }) else {
            throw CrucialError(
                .invalidArgument,
                "no client to reach the shared objects: make the proxy where CrucialClient is imported, or pass it a client (client:)")
        }
        return resolve()
    }
}
