/// The part of etcd's v3 API that ``Membership`` uses: leases, keys under a prefix at a
/// revision, and a watch. The server core knows only this protocol; `crucial-server`'s
/// operations stack (the CrucialServer library) brings the implementation over etcd's
/// JSON gateway, so that a program that serves itself locally links no etcd client.
package protocol CoordinationStore: Sendable {
    /// Where the store is, for logs (e.g. `http://127.0.0.1:2379`).
    var endpoint: String { get }
    /// A lease of `ttl` seconds; returns its id.
    func grantLease(ttl: Int) async throws -> Int64
    /// Renews `lease`; returns its remaining TTL in seconds (0 or less: it expired).
    @discardableResult
    func keepAlive(lease: Int64) async throws -> Int64
    func revoke(lease: Int64) async throws
    /// Puts `key` = `value`, attached to `lease` (0 = none); returns the revision.
    @discardableResult
    func put(_ key: String, _ value: [UInt8], lease: Int64) async throws -> Int64
    /// Every key starting with `prefix` as of `revision` (0 = now), and the store's revision.
    func range(prefix: String, revision: Int64) async throws -> (kvs: [CoordinationKeyValue], revision: Int64)
    /// Calls `onEvents` with each batch of changes to keys under `prefix` from `revision`
    /// on (all the events of one revision in one batch), until the stream ends or fails
    /// (thrown) or the task is cancelled.
    func watch(prefix: String, from revision: Int64, onEvents: @Sendable ([CoordinationEvent]) async -> Void) async throws
    func delete(_ key: String) async throws
    func delete(prefix: String) async throws
    /// Deletes `delete` and puts `put` = `value` in one transaction; returns the revision.
    @discardableResult
    func deleteAndPut(delete: String, put: String, value: [UInt8]) async throws -> Int64
}

extension CoordinationStore {
    @discardableResult
    package func put(_ key: String, _ value: [UInt8]) async throws -> Int64 { try await put(key, value, lease: 0) }
    package func range(prefix: String) async throws -> (kvs: [CoordinationKeyValue], revision: Int64) {
        try await range(prefix: prefix, revision: 0)
    }
}

/// One key of a ``CoordinationStore``.
package struct CoordinationKeyValue: Sendable, Equatable {
    package var key: String
    package var value: [UInt8]
    package var modRevision: Int64
    package var lease: Int64

    package init(key: String, value: [UInt8], modRevision: Int64, lease: Int64) {
        self.key = key
        self.value = value
        self.modRevision = modRevision
        self.lease = lease
    }
}

/// A change seen by a watch.
package struct CoordinationEvent: Sendable, Equatable {
    package var deleted: Bool
    /// For a deletion: the key, and the revision of the deletion.
    package var kv: CoordinationKeyValue

    package init(deleted: Bool, kv: CoordinationKeyValue) {
        self.deleted = deleted
        self.kv = kv
    }
}

/// Makes the coordination store of a cluster member from its etcd endpoint and the
/// timeout of one request.
package typealias CoordinationStoreFactory = @Sendable (_ endpoint: String, _ timeout: Duration) -> any CoordinationStore
