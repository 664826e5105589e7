internal import CCrucialProto
internal import CProtobufC
internal import NIOCore

// MARK: - C -> Swift

extension WireCodec {
    static func string(_ p: UnsafePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p)
    }

    static func frame(
        from f: UnsafePointer<Crucial__Frame>, _ allocator: UnsafeMutablePointer<ProtobufCAllocator>
    ) throws(CrucialError) -> Frame {
        let frame = f.pointee
        switch frame.body_case {
        case CRUCIAL__FRAME__BODY_HELLO:
            guard let h = frame.hello else { break }
            return .hello(
                Hello(
                    protocolVersion: h.pointee.protocol_version, clientName: string(h.pointee.client_name),
                    clientNonce: bytes(h.pointee.client_nonce), run: h.pointee.run))
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
            return .listObjects(
                id: l.pointee.id, typePrefix: string(l.pointee.type_prefix), after: l.pointee.after.map { ref(from: $0) }, limit: l.pointee.limit)
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
            return .objectList(id: l.pointee.id, objects: objects, more: l.pointee.more != 0)
        case CRUCIAL__FRAME__BODY_SERVER_INFO:
            guard let i = frame.server_info else { break }
            return .serverInfo(id: i.pointee.id)
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
                last: l.pointee.last != 0, checkOnly: l.pointee.check_only != 0)
        case CRUCIAL__FRAME__BODY_REPLICATE:
            guard let r = frame.replicate else { break }
            let operation: Replicate.Operation
            switch r.pointee.operation_case {
            case CRUCIAL__REPLICATE__OPERATION_INVOKE:
                let raw = UnsafeRawBufferPointer(start: r.pointee.invoke.data, count: r.pointee.invoke.len)
                guard raw.count > 0 else { throw CrucialError(.badRequest, "Replicate carries an empty Invoke") }
                guard !mayNestTooDeep(raw.count) || NestingGuard.check(raw, descriptor: invokeDescriptor, maxDepth: maxNesting) == .ok,
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
            case CRUCIAL__REPLICATE__OPERATION_COLLECT:
                operation = .collect
            default:
                throw CrucialError(.badRequest, "Replicate carries no operation")
            }
            return .replicate(
                Replicate(
                    id: r.pointee.id, viewID: r.pointee.view_id, ref: ref(from: r.pointee.ref),
                    version: ObjectVersion(view: r.pointee.version_view, index: r.pointee.index), operation: operation,
                    codeBuild: string(r.pointee.code_build)))
        case CRUCIAL__FRAME__BODY_TRANSFER_DONE:
            guard let t = frame.transfer_done else { break }
            var holes: [Hole] = []
            for n in 0..<t.pointee.n_holes {
                guard let h = t.pointee.holes[n] else { continue }
                let lost = strings(h.pointee.n_lost, h.pointee.lost)
                guard h.pointee.n_lost_in == lost.count else {
                    throw CrucialError(.badRequest, "Hole has \(lost.count) lost members but \(h.pointee.n_lost_in) views they came back in")
                }
                holes.append(
                    Hole(
                        members: strings(h.pointee.n_members, h.pointee.members), absent: strings(h.pointee.n_absent, h.pointee.absent),
                        lost: lost.enumerated().map { Hole.Lost(id: $1, view: h.pointee.lost_in[$0]) }))
            }
            return .transferDone(
                TransferDone(
                    id: t.pointee.id, viewID: t.pointee.view_id, from: string(t.pointee.from), stableViewID: t.pointee.stable_view_id,
                    stableMembers: strings(t.pointee.n_stable_members, t.pointee.stable_members), holes: holes,
                    left: strings(t.pointee.n_left, t.pointee.left), empty: t.pointee.empty != 0))
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
        case CRUCIAL__FRAME__BODY_ACCEPT_LOSS:
            guard let l = frame.accept_loss else { break }
            return .acceptLoss(id: l.pointee.id, ref: l.pointee.ref.map { ref(from: $0) })
        case CRUCIAL__FRAME__BODY_CANCEL_RUN:
            guard let c = frame.cancel_run else { break }
            return .cancelRun(id: c.pointee.id, run: c.pointee.run, reason: string(c.pointee.reason))
        default:
            break
        }
        throw CrucialError(.badRequest, "frame has no body (unknown or missing message type)")
    }

    static func invoke(from i: UnsafeMutablePointer<Crucial__Invoke>) -> Invoke {
        let inv = i.pointee
        var args: [Value] = []
        args.reserveCapacity(inv.n_args)
        for n in 0..<inv.n_args { args.append(value(from: inv.args[n])) }
        let create = inv.create.map { c in
            Create(initial: value(from: c.pointee.initial), persistent: c.pointee.persistent != 0, session: c.pointee.session)
        }
        return Invoke(
            id: inv.id, ref: ref(from: inv.ref), method: string(inv.method), args: args, create: create,
            clientID: inv.client_id, seq: inv.seq, ackedBelow: inv.acked_below, viewID: inv.view_id, typeVersion: string(inv.type_version))
    }

    static func ref(from p: UnsafeMutablePointer<Crucial__ObjectRef>?) -> ObjectRef {
        guard let p else { return ObjectRef(type: "", key: "") }
        return ObjectRef(type: string(p.pointee.type), key: string(p.pointee.key))
    }

    static func error(from p: UnsafeMutablePointer<Crucial__Error>) -> CrucialError {
        let raw = Int32(bitPattern: p.pointee.code.rawValue)
        let code = CrucialError.Code(rawValue: raw) ?? .unspecified
        return CrucialError(code, string(p.pointee.message))
    }

    static func view(from p: UnsafeMutablePointer<Crucial__View>) -> View {
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

    static func bytes(_ b: ProtobufCBinaryData) -> [UInt8] {
        guard b.len > 0, let data = b.data else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: b.len))
    }
}
