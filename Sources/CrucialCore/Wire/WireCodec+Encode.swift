internal import CCrucialProto
internal import CProtobufC
internal import NIOCore

// MARK: - Swift -> C

extension WireCodec {
    static func fill(_ f: inout Crucial__Frame, from frame: Frame, _ a: CArena) {
        switch frame {
        case .hello(let h):
            let p = a.make(Crucial__Hello.self, crucial__hello__init)
            p.pointee.protocol_version = h.protocolVersion
            p.pointee.client_name = a.cString(h.clientName)
            p.pointee.client_nonce = a.bytes(h.clientNonce)
            p.pointee.run = h.run
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
        case .listObjects(let id, let prefix, let after, let limit):
            let p = a.make(Crucial__ListObjects.self, crucial__list_objects__init)
            p.pointee.id = id
            p.pointee.type_prefix = a.cString(prefix)
            if let after { p.pointee.after = cRef(after, a) }
            p.pointee.limit = limit
            f.body_case = CRUCIAL__FRAME__BODY_LIST_OBJECTS
            f.list_objects = p
        case .objectList(let id, let objects, let more):
            let p = a.make(Crucial__ObjectList.self, crucial__object_list__init)
            p.pointee.id = id
            p.pointee.more = more ? 1 : 0
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
        case .serverInfo(let id):
            let p = a.make(Crucial__ServerInfo.self, crucial__server_info__init)
            p.pointee.id = id
            f.body_case = CRUCIAL__FRAME__BODY_SERVER_INFO
            f.server_info = p
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
        case .loadPlugin(let id, let name, let offset, let chunk, let last, let checkOnly):
            let p = a.make(Crucial__LoadPlugin.self, crucial__load_plugin__init)
            p.pointee.id = id
            p.pointee.name = a.cString(name)
            p.pointee.offset = offset
            p.pointee.chunk = a.bytes(chunk)
            p.pointee.last = last ? 1 : 0
            p.pointee.check_only = checkOnly ? 1 : 0
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
            case .collect:
                p.pointee.operation_case = CRUCIAL__REPLICATE__OPERATION_COLLECT
                p.pointee.collect = 1
            }
            if !r.codeBuild.isEmpty { p.pointee.code_build = a.cString(r.codeBuild) }
            f.body_case = CRUCIAL__FRAME__BODY_REPLICATE
            f.replicate = p
        case .transferDone(let t):
            let p = a.make(Crucial__TransferDone.self, crucial__transfer_done__init)
            p.pointee.id = t.id
            p.pointee.view_id = t.viewID
            p.pointee.from = a.cString(t.from)
            p.pointee.stable_view_id = t.stableViewID
            p.pointee.empty = t.empty ? 1 : 0
            (p.pointee.n_stable_members, p.pointee.stable_members) = cStrings(t.stableMembers, a)
            (p.pointee.n_left, p.pointee.left) = cStrings(t.left, a)
            p.pointee.n_holes = t.holes.count
            if !t.holes.isEmpty {
                let holes = a.array(UnsafeMutablePointer<Crucial__Hole>?.self, count: t.holes.count)
                for (n, h) in t.holes.enumerated() {
                    let hp = a.make(Crucial__Hole.self, crucial__hole__init)
                    (hp.pointee.n_members, hp.pointee.members) = cStrings(h.members, a)
                    (hp.pointee.n_absent, hp.pointee.absent) = cStrings(h.absent, a)
                    (hp.pointee.n_lost, hp.pointee.lost) = cStrings(h.lost.map(\.id), a)
                    if !h.lost.isEmpty {
                        let views = a.array(UInt64.self, count: h.lost.count)
                        for (i, l) in h.lost.enumerated() { views[i] = l.view }
                        (hp.pointee.n_lost_in, hp.pointee.lost_in) = (h.lost.count, views)
                    }
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
        case .acceptLoss(let id, let ref):
            let p = a.make(Crucial__AcceptLoss.self, crucial__accept_loss__init)
            p.pointee.id = id
            if let ref { p.pointee.ref = cRef(ref, a) }
            f.body_case = CRUCIAL__FRAME__BODY_ACCEPT_LOSS
            f.accept_loss = p
        case .cancelRun(let id, let run, let reason):
            let p = a.make(Crucial__CancelRun.self, crucial__cancel_run__init)
            p.pointee.id = id
            p.pointee.run = run
            p.pointee.reason = a.cString(reason)
            f.body_case = CRUCIAL__FRAME__BODY_CANCEL_RUN
            f.cancel_run = p
        }
    }

    static func cInvoke(_ i: Invoke, _ a: CArena) -> UnsafeMutablePointer<Crucial__Invoke> {
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
        if !i.typeVersion.isEmpty { p.pointee.type_version = a.cString(i.typeVersion) }
        return p
    }

    /// A repeated string field: its count and C array (nil when empty).
    static func cStrings(_ strings: [String], _ a: CArena) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        guard !strings.isEmpty else { return (0, nil) }
        let arr = a.array(UnsafeMutablePointer<CChar>?.self, count: strings.count)
        for (n, s) in strings.enumerated() { arr[n] = a.cString(s) }
        return (strings.count, arr)
    }

    static func strings(_ count: Int, _ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String] {
        guard count > 0, let p else { return [] }
        return (0..<count).map { string(p[$0]) }
    }

    static func cRef(_ r: ObjectRef, _ a: CArena) -> UnsafeMutablePointer<Crucial__ObjectRef> {
        let p = a.make(Crucial__ObjectRef.self, crucial__object_ref__init)
        p.pointee.type = a.cString(r.type)
        p.pointee.key = a.cString(r.key)
        return p
    }

    static func cError(_ e: CrucialError, _ a: CArena) -> UnsafeMutablePointer<Crucial__Error> {
        let p = a.make(Crucial__Error.self, crucial__error__init)
        p.pointee.code = Crucial__ErrorCode(rawValue: UInt32(bitPattern: e.code.rawValue < 1000 ? e.code.rawValue : 18))
        p.pointee.message = a.cString(e.message)
        return p
    }

    static func cView(_ v: View, _ a: CArena) -> UnsafeMutablePointer<Crucial__View> {
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
            dp.pointee.items = a.array(copying: d)
            p.pointee.kind_case = CRUCIAL__VALUE__KIND_DOUBLES
            p.pointee.doubles = dp
        case .ints(let i):
            let ip = a.make(Crucial__IntArray.self, crucial__int_array__init)
            ip.pointee.n_items = i.count
            ip.pointee.items = a.array(copying: i)
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
