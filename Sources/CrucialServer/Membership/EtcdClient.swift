internal import AsyncHTTPClient
internal import CrucialServerCore
internal import Foundation
internal import NIOCore
internal import NIOFoundationCompat

/// The part of etcd's v3 API membership needs, through etcd's JSON gateway
/// (`/v3/kv/*`, `/v3/lease/*`): keys and values travel base64-encoded, 64-bit
/// numbers as strings.
package struct EtcdClient: CoordinationStore {
    package typealias KeyValue = CoordinationKeyValue
    package typealias Event = CoordinationEvent

    /// Makes an etcd client per member: what `crucial-server` gives the server core.
    package static let factory: CoordinationStoreFactory = { endpoint, timeout in EtcdClient(endpoint: endpoint, timeout: timeout) }

    /// The endpoint, e.g. `http://127.0.0.1:2379`.
    package let endpoint: String
    private let timeout: TimeAmount

    package init(endpoint: String, timeout: Duration = .seconds(5)) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.timeout = .nanoseconds(timeout.nanosecondsClamped)
    }

    /// A lease of `ttl` seconds; returns its id.
    package func grantLease(ttl: Int) async throws -> Int64 {
        let answer = try await call("/v3/lease/grant", ["TTL": String(ttl)])
        guard let id = Self.int(answer["ID"]) else { throw CrucialError(.protocolViolation, "etcd granted no lease id: \(answer)") }
        return id
    }

    /// Renews `lease`; returns its remaining TTL in seconds (0 or less: it expired).
    @discardableResult
    package func keepAlive(lease: Int64) async throws -> Int64 {
        let answer = try await call("/v3/lease/keepalive", ["ID": String(lease)])
        let result = answer["result"] as? [String: Any] ?? answer
        return Self.int(result["TTL"]) ?? 0
    }

    package func revoke(lease: Int64) async throws {
        _ = try await call("/v3/lease/revoke", ["ID": String(lease)])
    }

    /// Puts `key` = `value`, attached to `lease` (0 = none); returns the revision.
    @discardableResult
    package func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) async throws -> Int64 {
        var body: [String: Any] = ["key": Self.b64(key), "value": Data(value).base64EncodedString()]
        if lease != 0 { body["lease"] = String(lease) }
        let answer = try await call("/v3/kv/put", body)
        return Self.int((answer["header"] as? [String: Any])?["revision"]) ?? 0
    }

    /// Every key starting with `prefix` as of `revision` (0 = now), and the store's revision.
    package func range(prefix: String, revision at: Int64 = 0) async throws -> (kvs: [KeyValue], revision: Int64) {
        var body = ["key": Self.b64(prefix), "range_end": Self.b64(Self.prefixEnd(prefix))]
        if at > 0 { body["revision"] = String(at) }
        let answer = try await call("/v3/kv/range", body)
        let revision = Self.int((answer["header"] as? [String: Any])?["revision"]) ?? 0
        let kvs = (answer["kvs"] as? [[String: Any]] ?? []).compactMap(Self.keyValue)
        return (kvs, revision)
    }

    /// Calls `onEvents` with each batch of changes to keys under `prefix` from
    /// `revision` on (all the events of one revision come in one batch), until the
    /// stream ends or fails (thrown) or the task is cancelled.
    package func watch(prefix: String, from revision: Int64, onEvents: @Sendable ([Event]) async -> Void) async throws {
        var request = HTTPClientRequest(url: endpoint + "/v3/watch")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        let create: [String: Any] = [
            "create_request": [
                "key": Self.b64(prefix), "range_end": Self.b64(Self.prefixEnd(prefix)), "start_revision": String(revision),
            ]
        ]
        request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: create)))
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, deadline: .distantFuture)
        } catch {
            throw CrucialError(.connectionFailed, "etcd at \(endpoint) is unreachable: \(error)")
        }
        guard response.status == .ok else { throw CrucialError(.protocolViolation, "etcd watch answered \(response.status.code)") }
        var pending = Data()
        for try await chunk in response.body {
            pending.append(contentsOf: chunk.readableBytesView)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[pending.startIndex..<newline]
                pending = Data(pending[pending.index(after: newline)...])
                guard let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else { continue }
                if let error = object["error"] as? [String: Any] {
                    throw CrucialError(.protocolViolation, "etcd watch failed: \(error["message"] as? String ?? "\(error)")")
                }
                let result = object["result"] as? [String: Any] ?? [:]
                if (result["canceled"] as? Bool) == true {
                    throw CrucialError(.protocolViolation, "etcd cancelled the watch: \(result["cancel_reason"] as? String ?? "no reason given")")
                }
                let events = (result["events"] as? [[String: Any]] ?? []).compactMap { e -> Event? in
                    guard let kv = (e["kv"] as? [String: Any]).flatMap(Self.keyValue) else { return nil }
                    return Event(deleted: (e["type"] as? String) == "DELETE", kv: kv)
                }
                if !events.isEmpty { await onEvents(events) }
            }
        }
    }

    private static func keyValue(_ kv: [String: Any]) -> KeyValue? {
        guard let k = (kv["key"] as? String).flatMap({ Data(base64Encoded: $0) }) else { return nil }
        let v = (kv["value"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
        return KeyValue(
            key: String(decoding: k, as: UTF8.self), value: [UInt8](v), modRevision: int(kv["mod_revision"]) ?? 0,
            lease: int(kv["lease"]) ?? 0)
    }

    package func delete(_ key: String) async throws {
        _ = try await call("/v3/kv/deleterange", ["key": Self.b64(key)])
    }

    /// Deletes every key starting with `prefix`.
    package func delete(prefix: String) async throws {
        _ = try await call("/v3/kv/deleterange", ["key": Self.b64(prefix), "range_end": Self.b64(Self.prefixEnd(prefix))])
    }

    /// Deletes `delete` and puts `put` = `value` (no lease) in one transaction, so that a
    /// watcher sees both at the same revision; returns that revision.
    @discardableResult
    package func deleteAndPut(delete: String, put: String, value: [UInt8]) async throws -> Int64 {
        let answer = try await call(
            "/v3/kv/txn",
            [
                "success": [
                    ["request_delete_range": ["key": Self.b64(delete)]],
                    ["request_put": ["key": Self.b64(put), "value": Data(value).base64EncodedString()]],
                ]
            ])
        return Self.int((answer["header"] as? [String: Any])?["revision"]) ?? 0
    }

    // MARK: Plumbing

    private func call(_ path: String, _ body: [String: Any]) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: timeout)
        } catch {
            throw CrucialError(.connectionFailed, "etcd at \(endpoint) is unreachable: \(error)")
        }
        var bytes = try await response.body.collect(upTo: 16 << 20)
        let data = bytes.readData(length: bytes.readableBytes) ?? Data()
        // Streaming endpoints (lease keepalive) answer with one JSON object per line: take the first.
        let first = data.split(separator: UInt8(ascii: "\n")).first ?? data
        let object = (try? JSONSerialization.jsonObject(with: first)) as? [String: Any] ?? [:]
        guard response.status == .ok else {
            let message = object["message"] as? String ?? object["error"] as? String ?? String(decoding: data, as: UTF8.self)
            throw CrucialError(.protocolViolation, "etcd \(path) answered \(response.status.code): \(message)")
        }
        if let error = object["error"] as? [String: Any] {
            throw CrucialError(.protocolViolation, "etcd \(path) failed: \(error["message"] as? String ?? "\(error)")")
        }
        return object
    }

    private static func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

    /// The smallest key greater than every key starting with `prefix`.
    static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\0"
    }

    /// etcd's JSON carries int64s as strings.
    private static func int(_ any: Any?) -> Int64? {
        if let s = any as? String { return Int64(s) }
        if let n = any as? NSNumber { return n.int64Value }
        return nil
    }
}
