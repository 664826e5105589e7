internal import CrucialTransport

/// Admin calls: an object's state, the objects a server holds, plugins.
extension CrucialClient {
    /// The state of an object (admin): what its type sends as initial state.
    public func state(of ref: ObjectRef) async throws -> Value {
        try ref.validate()
        return try expectOK(try await send(to: ref) { id, _ in .getObject(id: id, ref: ref) }, "GetObject")
    }

    /// The former name of ``state(of:)``.
    @available(*, deprecated, renamed: "state(of:)")
    public func getObject(_ ref: ObjectRef) async throws -> Value { try await state(of: ref) }

    /// Uploads a plugin (a shared library exporting `@Shared` types) to the server this
    /// client talks to, which loads it without restarting; returns the types it brought.
    /// Needs the server's admin token as this client's `authToken` (or a server with no tokens).
    public func loadPlugin(_ bytes: [UInt8], name: String, chunkSize: Int = 1 << 20) async throws -> [String] {
        guard !bytes.isEmpty else { throw CrucialError(.invalidArgument, "plugin \(name) is empty") }
        let c = try await connection()  // every chunk on one connection: the server assembles per connection
        var offset = 0
        var answer = Value.null
        while offset < bytes.count {
            let end = min(bytes.count, offset + max(1, chunkSize))
            let id = newRequestID()
            let frame = try await c.request(
                .loadPlugin(id: id, name: name, offset: UInt64(offset), chunk: Array(bytes[offset..<end]), last: end == bytes.count), id: id)
            answer = try expectOK(frame, "LoadPlugin")
            offset = end
        }
        return (answer.listValue ?? []).compactMap(\.stringValue)
    }

    @discardableResult
    func expectOK(_ frame: Frame, _ request: String) throws -> Value {
        guard case .result(let reply) = frame else { throw CrucialError(.protocolViolation, "unexpected answer to \(request)") }
        switch reply.outcome {
        case .value(let v): return v
        case .error(let e): throw e
        case .wrongView: throw CrucialError(.wrongView, "server is in another view")
        }
    }

    /// The objects the server holds, optionally only types starting with `typePrefix`.
    public func listObjects(typePrefix: String = "") async throws -> [ObjectInfo] {
        let frame = try await send { id, _ in .listObjects(id: id, typePrefix: typePrefix) }
        switch frame {
        case .objectList(_, let objects): return objects
        case .result(let r):
            if case .error(let e) = r.outcome { throw e }
            throw CrucialError(.protocolViolation, "unexpected answer to ListObjects")
        default: throw CrucialError(.protocolViolation, "unexpected answer to ListObjects")
        }
    }
}
