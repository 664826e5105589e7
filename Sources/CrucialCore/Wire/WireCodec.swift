internal import CCrucialProto
internal import CProtobufC
package import NIOCore

/// Converts ``Frame``s to and from protobuf-c bytes.
///
/// The C structs live only inside these functions, in a ``CArena``: callers
/// see Swift values and `ByteBuffer`s, never a pointer.
package enum WireCodec {
    /// Deepest sub-message nesting accepted in a frame (a `Value` list inside a
    /// list costs two levels). Deeper frames are refused before unpacking.
    package static let maxNesting = 100

    /// The address of protobuf-c's `crucial__frame__descriptor`. Taken from an
    /// initialised message: `withUnsafePointer(to:)` on the imported C constant may
    /// point at a temporary copy, which must not escape.
    nonisolated(unsafe) private static let frameDescriptor: UnsafePointer<ProtobufCMessageDescriptor> = {
        var f = Crucial__Frame()
        crucial__frame__init(&f)
        return f.base.descriptor
    }()

    /// The same for `Invoke`, which a Replicate carries as bytes.
    nonisolated(unsafe) private static let invokeDescriptor: UnsafePointer<ProtobufCMessageDescriptor> = {
        var i = Crucial__Invoke()
        crucial__invoke__init(&i)
        return i.base.descriptor
    }()

    /// Appends the 4-byte big-endian length and the encoded `frame` to `buffer`.
    package static func encode(_ frame: Frame, into buffer: inout ByteBuffer) {
        let arena = CArena()
        var f = Crucial__Frame()
        crucial__frame__init(&f)
        fill(&f, from: frame, arena)
        let size = crucial__frame__get_packed_size(&f)
        buffer.writeInteger(UInt32(truncatingIfNeeded: size))
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            guard let base = out.baseAddress else { return 0 }
            return crucial__frame__pack(&f, base.assumingMemoryBound(to: UInt8.self))
        }
        withExtendedLifetime(arena) {}
    }

    /// The encoded size of `frame` without its length prefix.
    package static func encodedSize(_ frame: Frame) -> Int {
        let arena = CArena()
        var f = Crucial__Frame()
        crucial__frame__init(&f)
        fill(&f, from: frame, arena)
        let size = crucial__frame__get_packed_size(&f)
        withExtendedLifetime(arena) {}
        return size
    }

    /// Decodes one frame payload (without its length prefix).
    ///
    /// Throws ``CrucialError/Code/badFrame`` for bytes that are not a `Frame`
    /// and ``CrucialError/Code/badRequest`` for a frame with no body.
    package static func decode(_ payload: ByteBuffer) throws(CrucialError) -> Frame {
        let result: Result<Frame, CrucialError> = payload.withUnsafeReadableBytes { raw in
            switch NestingGuard.check(raw, descriptor: frameDescriptor, maxDepth: maxNesting) {
            case .ok: break
            case .tooDeep:
                return .failure(CrucialError(.badFrame, "frame nests values more than \(maxNesting) levels deep"))
            case .malformed:
                return .failure(CrucialError(.badFrame, "frame of \(raw.count) bytes is not a valid protobuf message"))
            }
            let arena = CArena()
            return arena.withAllocator { allocator in
                let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
                guard let f = crucial__frame__unpack(allocator, raw.count, base) else {
                    return .failure(CrucialError(.badFrame, "frame of \(raw.count) bytes is not a valid Frame message"))
                }
                return Result { () throws(CrucialError) in try frame(from: f, allocator) }
            }
        }
        let decoded = try result.get()
        if case .invoke(var invoke) = decoded, let bytes = invokeBytes(payload) {
            invoke.encoded = Invoke.Encoded(bytes)
            return .invoke(invoke)
        }
        return decoded
    }

    /// The Invoke message inside an Invoke frame's payload: field 3 (tag byte 0x1A), its
    /// length, and exactly that many bytes after it; nil for any other layout (the call is
    /// then encoded again where it is forwarded).
    private static func invokeBytes(_ payload: ByteBuffer) -> ByteBuffer? {
        var p = payload
        guard p.readInteger(as: UInt8.self) == 0x1A else { return nil }
        var length = 0
        var shift = 0
        while true {
            guard shift < 35, let byte = p.readInteger(as: UInt8.self) else { return nil }
            length |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        guard length == p.readableBytes else { return nil }
        return p
    }

    /// The bytes a Replicate carries for `invoke`: those it was decoded from, else a fresh encoding.
    private static func invokeBytes(_ invoke: Invoke, _ a: CArena) -> ProtobufCBinaryData {
        if let encoded = invoke.encoded.bytes {
            let count = encoded.readableBytes
            let p = a.array(UInt8.self, count: max(1, count))
            encoded.withUnsafeReadableBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(p).copyMemory(from: base, byteCount: count) }
            }
            return ProtobufCBinaryData(len: count, data: p)
        }
        let c = cInvoke(invoke, a)
        let size = crucial__invoke__get_packed_size(c)
        let p = a.array(UInt8.self, count: max(1, size))
        let written = crucial__invoke__pack(c, p)
        return ProtobufCBinaryData(len: written, data: p)
    }
}

// MARK: - Swift -> C

extension WireCodec {
    private static func fill(_ f: inout Crucial__Frame, from frame: Frame, _ a: CArena) {
        switch frame {
        case .hello(let h):
            let p = a.make(Crucial__Hello.self, crucial__hello__init)
            p.pointee.protocol_version = h.protocolVersion
            p.pointee.client_name = a.cString(h.clientName)
            p.pointee.client_nonce = a.bytes(h.clientNonce)
            f.body_case = CRUCIAL__FRAME__BODY_HELLO
            f.hello = p
        case .helloReply(let r):
            let p = a.make(Crucial__HelloReply.self, crucial__hello_reply__init)
            p.pointee.protocol_version = r.protocolVersion
            p.pointee.server_id = a.cString(r.serverID)
            p.pointee.max_frame_size = r.maxFrameSize
            if let v = r.view { p.pointee.view = cView(v, a) }
            if let e = r.error { p.pointee.error = cError(e, a) }
            p.pointee.server_proof = a.bytes(r.serverProof)
            f.body_case = CRUCIAL__FRAME__BODY_HELLO_REPLY
            f.hello_reply = p
        case .invoke(let i):
            f.body_case = CRUCIAL__FRAME__BODY_INVOKE
            f.invoke = cInvoke(i, a)
        case .result(let r):
            let p = a.make(Crucial__Result.self, crucial__result__init)
            p.pointee.id = r.id
            switch r.outcome {
            case .value(let v):
                p.pointee.outcome_case = CRUCIAL__RESULT__OUTCOME_VALUE
                p.pointee.value = cValue(v, a)
            case .error(let e):
                p.pointee.outcome_case = CRUCIAL__RESULT__OUTCOME_ERROR
                p.pointee.error = cError(e, a)
            case .wrongView(let v):
                p.pointee.outcome_case = CRUCIAL__RESULT__OUTCOME_WRONG_VIEW
                p.pointee.wrong_view = cView(v, a)
            }
            f.body_case = CRUCIAL__FRAME__BODY_RESULT
            f.result = p
        case .remove(let id, let ref):
            let p = a.make(Crucial__Remove.self, crucial__remove__init)
            p.pointee.id = id
            p.pointee.ref = cRef(ref, a)
            f.body_case = CRUCIAL__FRAME__BODY_REMOVE
            f.remove = p
        case .ping(let id):
            let p = a.make(Crucial__Ping.self, crucial__ping__init)
            p.pointee.id = id
            f.body_case = CRUCIAL__FRAME__BODY_PING
            f.ping = p
        case .listObjects(let id, let prefix):
            let p = a.make(Crucial__ListObjects.self, crucial__list_objects__init)
            p.pointee.id = id
            p.pointee.type_prefix = a.cString(prefix)
            f.body_case = CRUCIAL__FRAME__BODY_LIST_OBJECTS
            f.list_objects = p
        case .objectList(let id, let objects):
            let p = a.make(Crucial__ObjectList.self, crucial__object_list__init)
            p.pointee.id = id
            p.pointee.n_objects = objects.count
            if !objects.isEmpty {
                let arr = a.array(UnsafeMutablePointer<Crucial__ObjectInfo>?.self, count: objects.count)
                for (n, o) in objects.enumerated() {
                    let op = a.make(Crucial__ObjectInfo.self, crucial__object_info__init)
                    op.pointee.ref = cRef(o.ref, a)
                    op.pointee.persistent = o.persistent ? 1 : 0
                    op.pointee.waiters = o.waiters
                    op.pointee.session = o.session
                    arr[n] = op
                }
                p.pointee.objects = arr
            }
            f.body_case = CRUCIAL__FRAME__BODY_OBJECT_LIST
            f.object_list = p
        case .keepAlive(let id, let session, let lease, let client):
            let p = a.make(Crucial__KeepAlive.self, crucial__keep_alive__init)
            p.pointee.id = id
            p.pointee.session = session
            p.pointee.lease_ms = lease
            p.pointee.client_id = client
            f.body_case = CRUCIAL__FRAME__BODY_KEEP_ALIVE
            f.keep_alive = p
        case .endSession(let id, let session):
            let p = a.make(Crucial__EndSession.self, crucial__end_session__init)
            p.pointee.id = id
            p.pointee.session = session
            f.body_case = CRUCIAL__FRAME__BODY_END_SESSION
            f.end_session = p
        case .getObject(let id, let ref):
            let p = a.make(Crucial__GetObject.self, crucial__get_object__init)
            p.pointee.id = id
            p.pointee.ref = cRef(ref, a)
            f.body_case = CRUCIAL__FRAME__BODY_GET_OBJECT
            f.get_object = p
        case .loadPlugin(let id, let name, let offset, let chunk, let last):
            let p = a.make(Crucial__LoadPlugin.self, crucial__load_plugin__init)
            p.pointee.id = id
            p.pointee.name = a.cString(name)
            p.pointee.offset = offset
            p.pointee.chunk = a.bytes(chunk)
            p.pointee.last = last ? 1 : 0
            f.body_case = CRUCIAL__FRAME__BODY_LOAD_PLUGIN
            f.load_plugin = p
        case .replicate(let r):
            let p = a.make(Crucial__Replicate.self, crucial__replicate__init)
            p.pointee.id = r.id
            p.pointee.view_id = r.viewID
            p.pointee.ref = cRef(r.ref, a)
            p.pointee.version_view = r.version.view
            p.pointee.index = r.version.index
            switch r.operation {
            case .invoke(let i):
                p.pointee.operation_case = CRUCIAL__REPLICATE__OPERATION_INVOKE
                p.pointee.invoke = invokeBytes(i, a)
            case .install(let o):
                let op = a.make(Crucial__ObjectState.self, crucial__object_state__init)
                op.pointee.state = cValue(o.state, a)
                op.pointee.persistent = o.persistent ? 1 : 0
                op.pointee.session = o.session
                op.pointee.retries = cValue(o.retries, a)
                p.pointee.operation_case = CRUCIAL__REPLICATE__OPERATION_INSTALL
                p.pointee.install = op
            case .remove:
                p.pointee.operation_case = CRUCIAL__REPLICATE__OPERATION_REMOVE
                p.pointee.remove = 1
            }
            f.body_case = CRUCIAL__FRAME__BODY_REPLICATE
            f.replicate = p
        case .transferDone(let t):
            let p = a.make(Crucial__TransferDone.self, crucial__transfer_done__init)
            p.pointee.id = t.id
            p.pointee.view_id = t.viewID
            p.pointee.from = a.cString(t.from)
            p.pointee.stable_view_id = t.stableViewID
            (p.pointee.n_stable_members, p.pointee.stable_members) = cStrings(t.stableMembers, a)
            (p.pointee.n_left, p.pointee.left) = cStrings(t.left, a)
            p.pointee.n_holes = t.holes.count
            if !t.holes.isEmpty {
                let holes = a.array(UnsafeMutablePointer<Crucial__Hole>?.self, count: t.holes.count)
                for (n, h) in t.holes.enumerated() {
                    let hp = a.make(Crucial__Hole.self, crucial__hole__init)
                    (hp.pointee.n_members, hp.pointee.members) = cStrings(h.members, a)
                    (hp.pointee.n_absent, hp.pointee.absent) = cStrings(h.absent, a)
                    holes[n] = hp
                }
                p.pointee.holes = holes
            }
            f.body_case = CRUCIAL__FRAME__BODY_TRANSFER_DONE
            f.transfer_done = p
        case .challenge(let nonce):
            let p = a.make(Crucial__Challenge.self, crucial__challenge__init)
            p.pointee.server_nonce = a.bytes(nonce)
            f.body_case = CRUCIAL__FRAME__BODY_CHALLENGE
            f.challenge = p
        case .authenticate(let proof):
            let p = a.make(Crucial__Authenticate.self, crucial__authenticate__init)
            p.pointee.proof = a.bytes(proof)
            f.body_case = CRUCIAL__FRAME__BODY_AUTHENTICATE
            f.authenticate = p
        case .offer(let id, let viewID, let entries):
            let p = a.make(Crucial__Offer.self, crucial__offer__init)
            p.pointee.id = id
            p.pointee.view_id = viewID
            if !entries.isEmpty {
                let refs = a.array(UnsafeMutablePointer<Crucial__ObjectRef>?.self, count: entries.count)
                let views = a.array(UInt64.self, count: entries.count)
                let indexes = a.array(UInt64.self, count: entries.count)
                for (n, e) in entries.enumerated() {
                    refs[n] = cRef(e.ref, a)
                    views[n] = e.version.view
                    indexes[n] = e.version.index
                }
                (p.pointee.n_refs, p.pointee.refs) = (entries.count, refs)
                (p.pointee.n_version_views, p.pointee.version_views) = (entries.count, views)
                (p.pointee.n_indexes, p.pointee.indexes) = (entries.count, indexes)
            }
            f.body_case = CRUCIAL__FRAME__BODY_OFFER
            f.offer = p
        }
    }

    private static func cInvoke(_ i: Invoke, _ a: CArena) -> UnsafeMutablePointer<Crucial__Invoke> {
        let p = a.make(Crucial__Invoke.self, crucial__invoke__init)
        p.pointee.id = i.id
        p.pointee.view_id = i.viewID
        p.pointee.ref = cRef(i.ref, a)
        p.pointee.method = a.cString(i.method)
        p.pointee.n_args = i.args.count
        if !i.args.isEmpty {
            let args = a.array(UnsafeMutablePointer<Crucial__Value>?.self, count: i.args.count)
            for (n, v) in i.args.enumerated() { args[n] = cValue(v, a) }
            p.pointee.args = args
        }
        if let c = i.create {
            let cp = a.make(Crucial__Create.self, crucial__create__init)
            cp.pointee.initial = cValue(c.initial, a)
            cp.pointee.persistent = c.persistent ? 1 : 0
            cp.pointee.session = c.session
            p.pointee.create = cp
        }
        p.pointee.client_id = i.clientID
        p.pointee.seq = i.seq
        p.pointee.acked_below = i.ackedBelow
        return p
    }

    /// A repeated string field: its count and C array (nil when empty).
    private static func cStrings(_ strings: [String], _ a: CArena) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        guard !strings.isEmpty else { return (0, nil) }
        let arr = a.array(UnsafeMutablePointer<CChar>?.self, count: strings.count)
        for (n, s) in strings.enumerated() { arr[n] = a.cString(s) }
        return (strings.count, arr)
    }

    private static func strings(_ count: Int, _ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String] {
        guard count > 0, let p else { return [] }
        return (0..<count).map { string(p[$0]) }
    }

    private static func cRef(_ r: ObjectRef, _ a: CArena) -> UnsafeMutablePointer<Crucial__ObjectRef> {
        let p = a.make(Crucial__ObjectRef.self, crucial__object_ref__init)
        p.pointee.type = a.cString(r.type)
        p.pointee.key = a.cString(r.key)
        return p
    }

    private static func cError(_ e: CrucialError, _ a: CArena) -> UnsafeMutablePointer<Crucial__Error> {
        let p = a.make(Crucial__Error.self, crucial__error__init)
        p.pointee.code = Crucial__ErrorCode(rawValue: UInt32(bitPattern: e.code.rawValue < 1000 ? e.code.rawValue : 18))
        p.pointee.message = a.cString(e.message)
        return p
    }

    private static func cView(_ v: View, _ a: CArena) -> UnsafeMutablePointer<Crucial__View> {
        let p = a.make(Crucial__View.self, crucial__view__init)
        p.pointee.id = v.id
        p.pointee.rf = v.rf
        p.pointee.n_members = v.members.count
        if !v.members.isEmpty {
            let arr = a.array(UnsafeMutablePointer<Crucial__Member>?.self, count: v.members.count)
            for (n, m) in v.members.enumerated() {
                let mp = a.make(Crucial__Member.self, crucial__member__init)
                mp.pointee.id = a.cString(m.id)
                mp.pointee.address = a.cString(m.address)
                mp.pointee.incarnation = m.incarnation
                arr[n] = mp
            }
            p.pointee.members = arr
        }
        return p
    }

    static func cValue(_ v: Value, _ a: CArena) -> UnsafeMutablePointer<Crucial__Value> {
        let p = a.make(Crucial__Value.self, crucial__value__init)
        switch v {
        case .null:
            p.pointee.kind_case = CRUCIAL__VALUE__KIND_NULL_VALUE
            p.pointee.null_value = 1
        case .bool(let b):
            p.pointee.kind_case = CRUCIAL__VALUE__KIND_BOOL_VALUE
            p.pointee.bool_value = b ? 1 : 0
        case .int(let i):
            p.pointee.kind_case = CRUCIAL__VALUE__KIND_INT_VALUE
            p.pointee.int_value = i
        case .double(let d):
            p.pointee.kind_case = CRUCIAL__VALUE__KIND_DOUBLE_VALUE
            p.pointee.double_value = d
        case .string(let s):
            if s.utf8.contains(0) {
                p.pointee.kind_case = CRUCIAL__VALUE__KIND_UTF8_VALUE
                p.pointee.utf8_value = a.bytes(Array(s.utf8))
            } else {
                p.pointee.kind_case = CRUCIAL__VALUE__KIND_STRING_VALUE
                p.pointee.string_value = a.cString(s)
            }
        case .bytes(let b):
            p.pointee.kind_case = CRUCIAL__VALUE__KIND_BYTES_VALUE
            p.pointee.bytes_value = a.bytes(b)
        case .doubles(let d):
            let dp = a.make(Crucial__DoubleArray.self, crucial__double_array__init)
            dp.pointee.n_items = d.count
            let items = a.array(Double.self, count: d.count)
            d.withUnsafeBufferPointer { src in
                if let base = src.baseAddress { items.update(from: base, count: d.count) }
            }
            dp.pointee.items = items
            p.pointee.kind_case = CRUCIAL__VALUE__KIND_DOUBLES
            p.pointee.doubles = dp
        case .ints(let i):
            let ip = a.make(Crucial__IntArray.self, crucial__int_array__init)
            ip.pointee.n_items = i.count
            let items = a.array(Int64.self, count: i.count)
            i.withUnsafeBufferPointer { src in
                if let base = src.baseAddress { items.update(from: base, count: i.count) }
            }
            ip.pointee.items = items
            p.pointee.kind_case = CRUCIAL__VALUE__KIND_INTS
            p.pointee.ints = ip
        case .list(let l):
            let lp = a.make(Crucial__ValueList.self, crucial__value_list__init)
            lp.pointee.n_items = l.count
            if !l.isEmpty {
                let items = a.array(UnsafeMutablePointer<Crucial__Value>?.self, count: l.count)
                for (n, e) in l.enumerated() { items[n] = cValue(e, a) }
                lp.pointee.items = items
            }
            p.pointee.kind_case = CRUCIAL__VALUE__KIND_LIST_VALUE
            p.pointee.list_value = lp
        case .record(let r):
            let rp = a.make(Crucial__Record.self, crucial__record__init)
            rp.pointee.n_keys = r.count
            rp.pointee.n_values = r.count
            if !r.isEmpty {
                let keys = a.array(UnsafeMutablePointer<CChar>?.self, count: r.count)
                let values = a.array(UnsafeMutablePointer<Crucial__Value>?.self, count: r.count)
                for (n, (k, e)) in r.enumerated() {
                    keys[n] = a.cString(k)
                    values[n] = cValue(e, a)
                }
                rp.pointee.keys = keys
                rp.pointee.values = values
            }
            p.pointee.kind_case = CRUCIAL__VALUE__KIND_RECORD_VALUE
            p.pointee.record_value = rp
        }
        return p
    }
}

// MARK: - C -> Swift

extension WireCodec {
    private static func string(_ p: UnsafePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p)
    }

    private static func frame(
        from f: UnsafePointer<Crucial__Frame>, _ allocator: UnsafeMutablePointer<ProtobufCAllocator>
    ) throws(CrucialError) -> Frame {
        let frame = f.pointee
        switch frame.body_case {
        case CRUCIAL__FRAME__BODY_HELLO:
            guard let h = frame.hello else { break }
            return .hello(
                Hello(
                    protocolVersion: h.pointee.protocol_version, clientName: string(h.pointee.client_name),
                    clientNonce: bytes(h.pointee.client_nonce)))
        case CRUCIAL__FRAME__BODY_HELLO_REPLY:
            guard let r = frame.hello_reply else { break }
            return .helloReply(
                HelloReply(
                    protocolVersion: r.pointee.protocol_version, serverID: string(r.pointee.server_id),
                    view: r.pointee.view.map { view(from: $0) }, error: r.pointee.error.map { error(from: $0) },
                    maxFrameSize: r.pointee.max_frame_size, serverProof: bytes(r.pointee.server_proof)))
        case CRUCIAL__FRAME__BODY_INVOKE:
            guard let i = frame.invoke else { break }
            return .invoke(invoke(from: i))
        case CRUCIAL__FRAME__BODY_RESULT:
            guard let r = frame.result else { break }
            let outcome: Outcome
            switch r.pointee.outcome_case {
            case CRUCIAL__RESULT__OUTCOME_VALUE: outcome = .value(value(from: r.pointee.value))
            case CRUCIAL__RESULT__OUTCOME_ERROR:
                guard let e = r.pointee.error else { throw CrucialError(.badFrame, "Result error is empty") }
                outcome = .error(error(from: e))
            case CRUCIAL__RESULT__OUTCOME_WRONG_VIEW:
                guard let v = r.pointee.wrong_view else { throw CrucialError(.badFrame, "Result view is empty") }
                outcome = .wrongView(view(from: v))
            default: outcome = .value(.null)
            }
            return .result(Reply(id: r.pointee.id, outcome: outcome))
        case CRUCIAL__FRAME__BODY_REMOVE:
            guard let r = frame.remove else { break }
            return .remove(id: r.pointee.id, ref: ref(from: r.pointee.ref))
        case CRUCIAL__FRAME__BODY_PING:
            guard let p = frame.ping else { break }
            return .ping(id: p.pointee.id)
        case CRUCIAL__FRAME__BODY_LIST_OBJECTS:
            guard let l = frame.list_objects else { break }
            return .listObjects(id: l.pointee.id, typePrefix: string(l.pointee.type_prefix))
        case CRUCIAL__FRAME__BODY_OBJECT_LIST:
            guard let l = frame.object_list else { break }
            var objects: [ObjectInfo] = []
            for n in 0..<l.pointee.n_objects {
                guard let o = l.pointee.objects[n] else { continue }
                objects.append(
                    ObjectInfo(
                        ref: ref(from: o.pointee.ref), persistent: o.pointee.persistent != 0, waiters: o.pointee.waiters,
                        session: o.pointee.session))
            }
            return .objectList(id: l.pointee.id, objects: objects)
        case CRUCIAL__FRAME__BODY_KEEP_ALIVE:
            guard let k = frame.keep_alive else { break }
            return .keepAlive(id: k.pointee.id, session: k.pointee.session, leaseMillis: k.pointee.lease_ms, clientID: k.pointee.client_id)
        case CRUCIAL__FRAME__BODY_END_SESSION:
            guard let e = frame.end_session else { break }
            return .endSession(id: e.pointee.id, session: e.pointee.session)
        case CRUCIAL__FRAME__BODY_GET_OBJECT:
            guard let g = frame.get_object else { break }
            return .getObject(id: g.pointee.id, ref: ref(from: g.pointee.ref))
        case CRUCIAL__FRAME__BODY_LOAD_PLUGIN:
            guard let l = frame.load_plugin else { break }
            return .loadPlugin(
                id: l.pointee.id, name: string(l.pointee.name), offset: l.pointee.offset, chunk: bytes(l.pointee.chunk),
                last: l.pointee.last != 0)
        case CRUCIAL__FRAME__BODY_REPLICATE:
            guard let r = frame.replicate else { break }
            let operation: Replicate.Operation
            switch r.pointee.operation_case {
            case CRUCIAL__REPLICATE__OPERATION_INVOKE:
                let raw = UnsafeRawBufferPointer(start: r.pointee.invoke.data, count: r.pointee.invoke.len)
                guard raw.count > 0 else { throw CrucialError(.badRequest, "Replicate carries an empty Invoke") }
                guard case .ok = NestingGuard.check(raw, descriptor: invokeDescriptor, maxDepth: maxNesting),
                    let i = crucial__invoke__unpack(allocator, raw.count, r.pointee.invoke.data)
                else { throw CrucialError(.badFrame, "Replicate carries \(raw.count) bytes that are not a valid Invoke message") }
                operation = .invoke(invoke(from: i))
            case CRUCIAL__REPLICATE__OPERATION_INSTALL:
                guard let o = r.pointee.install else { throw CrucialError(.badRequest, "Replicate carries an empty ObjectState") }
                operation = .install(
                    ObjectState(
                        state: value(from: o.pointee.state), persistent: o.pointee.persistent != 0, session: o.pointee.session,
                        retries: value(from: o.pointee.retries)))
            case CRUCIAL__REPLICATE__OPERATION_REMOVE:
                operation = .remove
            default:
                throw CrucialError(.badRequest, "Replicate carries no operation")
            }
            return .replicate(
                Replicate(
                    id: r.pointee.id, viewID: r.pointee.view_id, ref: ref(from: r.pointee.ref),
                    version: ObjectVersion(view: r.pointee.version_view, index: r.pointee.index), operation: operation))
        case CRUCIAL__FRAME__BODY_TRANSFER_DONE:
            guard let t = frame.transfer_done else { break }
            var holes: [Hole] = []
            for n in 0..<t.pointee.n_holes {
                guard let h = t.pointee.holes[n] else { continue }
                holes.append(
                    Hole(members: strings(h.pointee.n_members, h.pointee.members), absent: strings(h.pointee.n_absent, h.pointee.absent)))
            }
            return .transferDone(
                TransferDone(
                    id: t.pointee.id, viewID: t.pointee.view_id, from: string(t.pointee.from), stableViewID: t.pointee.stable_view_id,
                    stableMembers: strings(t.pointee.n_stable_members, t.pointee.stable_members), holes: holes,
                    left: strings(t.pointee.n_left, t.pointee.left)))
        case CRUCIAL__FRAME__BODY_CHALLENGE:
            guard let c = frame.challenge else { break }
            return .challenge(serverNonce: bytes(c.pointee.server_nonce))
        case CRUCIAL__FRAME__BODY_AUTHENTICATE:
            guard let c = frame.authenticate else { break }
            return .authenticate(proof: bytes(c.pointee.proof))
        case CRUCIAL__FRAME__BODY_OFFER:
            guard let o = frame.offer else { break }
            let count = o.pointee.n_refs
            guard o.pointee.n_version_views == count, o.pointee.n_indexes == count else {
                throw CrucialError(.badRequest, "Offer has \(count) refs but \(o.pointee.n_version_views) views and \(o.pointee.n_indexes) indexes")
            }
            let entries = (0..<count).map { n in
                OfferEntry(ref: ref(from: o.pointee.refs[n]), version: ObjectVersion(view: o.pointee.version_views[n], index: o.pointee.indexes[n]))
            }
            return .offer(id: o.pointee.id, viewID: o.pointee.view_id, entries: entries)
        default:
            break
        }
        throw CrucialError(.badRequest, "frame has no body (unknown or missing message type)")
    }

    private static func invoke(from i: UnsafeMutablePointer<Crucial__Invoke>) -> Invoke {
        let inv = i.pointee
        var args: [Value] = []
        args.reserveCapacity(inv.n_args)
        for n in 0..<inv.n_args { args.append(value(from: inv.args[n])) }
        let create = inv.create.map { c in
            Create(initial: value(from: c.pointee.initial), persistent: c.pointee.persistent != 0, session: c.pointee.session)
        }
        return Invoke(
            id: inv.id, ref: ref(from: inv.ref), method: string(inv.method), args: args, create: create,
            clientID: inv.client_id, seq: inv.seq, ackedBelow: inv.acked_below, viewID: inv.view_id)
    }

    private static func ref(from p: UnsafeMutablePointer<Crucial__ObjectRef>?) -> ObjectRef {
        guard let p else { return ObjectRef(type: "", key: "") }
        return ObjectRef(type: string(p.pointee.type), key: string(p.pointee.key))
    }

    private static func error(from p: UnsafeMutablePointer<Crucial__Error>) -> CrucialError {
        let raw = Int32(bitPattern: p.pointee.code.rawValue)
        let code = CrucialError.Code(rawValue: raw) ?? .unspecified
        return CrucialError(code, string(p.pointee.message))
    }

    private static func view(from p: UnsafeMutablePointer<Crucial__View>) -> View {
        var members: [View.Member] = []
        for n in 0..<p.pointee.n_members {
            guard let m = p.pointee.members[n] else { continue }
            members.append(View.Member(id: string(m.pointee.id), address: string(m.pointee.address), incarnation: m.pointee.incarnation))
        }
        return View(id: p.pointee.id, members: members, rf: p.pointee.rf)
    }

    static func value(from p: UnsafeMutablePointer<Crucial__Value>?) -> Value {
        guard let v = p?.pointee else { return .null }
        switch v.kind_case {
        case CRUCIAL__VALUE__KIND_NULL_VALUE: return .null
        case CRUCIAL__VALUE__KIND_BOOL_VALUE: return .bool(v.bool_value != 0)
        case CRUCIAL__VALUE__KIND_INT_VALUE: return .int(v.int_value)
        case CRUCIAL__VALUE__KIND_DOUBLE_VALUE: return .double(v.double_value)
        case CRUCIAL__VALUE__KIND_STRING_VALUE: return .string(string(v.string_value))
        case CRUCIAL__VALUE__KIND_UTF8_VALUE:
            return .string(String(decoding: bytes(v.utf8_value), as: UTF8.self))
        case CRUCIAL__VALUE__KIND_BYTES_VALUE: return .bytes(bytes(v.bytes_value))
        case CRUCIAL__VALUE__KIND_DOUBLES:
            guard let d = v.doubles, d.pointee.n_items > 0, let items = d.pointee.items else { return .doubles([]) }
            return .doubles(Array(UnsafeBufferPointer(start: items, count: d.pointee.n_items)))
        case CRUCIAL__VALUE__KIND_INTS:
            guard let i = v.ints, i.pointee.n_items > 0, let items = i.pointee.items else { return .ints([]) }
            return .ints(Array(UnsafeBufferPointer(start: items, count: i.pointee.n_items)))
        case CRUCIAL__VALUE__KIND_LIST_VALUE:
            guard let l = v.list_value else { return .list([]) }
            var out: [Value] = []
            out.reserveCapacity(l.pointee.n_items)
            for n in 0..<l.pointee.n_items { out.append(value(from: l.pointee.items[n])) }
            return .list(out)
        case CRUCIAL__VALUE__KIND_RECORD_VALUE:
            guard let r = v.record_value else { return .record([:]) }
            var out: [String: Value] = [:]
            let count = min(r.pointee.n_keys, r.pointee.n_values)
            out.reserveCapacity(count)
            for n in 0..<count { out[string(r.pointee.keys[n])] = value(from: r.pointee.values[n]) }
            return .record(out)
        default:
            return .null
        }
    }

    private static func bytes(_ b: ProtobufCBinaryData) -> [UInt8] {
        guard b.len > 0, let data = b.data else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: b.len))
    }
}
