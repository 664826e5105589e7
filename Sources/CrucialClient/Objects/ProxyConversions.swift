// Conversions at the proxy boundary: the built-in proxies' results and arguments.

extension Value {
    private func mismatch(_ expected: String) -> CrucialError {
        CrucialError(.decodingFailed, "expected \(expected) from the server, got \(kindName) \(self)")
    }

    func int64() throws -> Int64 {
        guard case .int(let i) = self else { throw mismatch("an int") }
        return i
    }

    func int() throws -> Int {
        guard let i = Int(exactly: try int64()) else { throw mismatch("an Int") }
        return i
    }

    func bool() throws -> Bool {
        guard case .bool(let b) = self else { throw mismatch("a bool") }
        return b
    }

    func double() throws -> Double {
        guard let d = doubleValue else { throw mismatch("a number") }
        return d
    }

    func doubles() throws -> [Double] {
        guard let d = doublesValue else { throw mismatch("an array of doubles") }
        return d
    }

    func bytes() throws -> [UInt8] {
        guard let b = bytesValue else { throw mismatch("bytes") }
        return b
    }

    func list() throws -> [Value] {
        guard let l = listValue else { throw mismatch("a list") }
        return l
    }

    func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        do {
            return try ValueDecoder().decode(type, from: self)
        } catch {
            throw CrucialError(.decodingFailed, "cannot decode \(T.self) from the server's \(kindName): \(error)")
        }
    }

    /// nil for `.null`, else the decoded value.
    func decodeOptional<T: Decodable>(_ type: T.Type = T.self) throws -> T? {
        if case .null = self { return nil }
        return try decode(type)
    }

    /// A list of [key, value] pairs.
    func pairs<K: Decodable, V: Decodable>(_ k: K.Type, _ v: V.Type) throws -> [(K, V)] {
        try list().map { pair in
            guard case .list(let kv) = pair, kv.count == 2 else { throw mismatch("[key, value] pairs") }
            return (try kv[0].decode(K.self), try kv[1].decode(V.self))
        }
    }
}

/// Encodes a proxy argument.
func encodeArgument<T: Encodable>(_ value: T) throws -> Value {
    do {
        return try ValueEncoder().encode(value)
    } catch {
        throw CrucialError(.encodingFailed, "cannot encode \(T.self): \(error)")
    }
}
