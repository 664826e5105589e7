import CrucialCore

/// Application sessions and the ephemeral objects each one owns; clients and the objects
/// they hold something of (semaphore permits).
///
/// A driver's client keeps its session alive with `KeepAlive`; the objects it (and its
/// cloud threads) create without `persistent` belong to that session and are removed
/// when the session ends (`EndSession`) or its lease lapses (the driver died). A client
/// holding permits keeps itself alive the same way; when its lease lapses or its session
/// ends, it is gone and what it held is released. Pure bookkeeping: the store removes and
/// releases what this hands back.
struct SessionTable {
    struct Entry {
        var expires: ContinuousClock.Instant
        var objects: Set<ObjectRef> = []
    }

    struct Client {
        var session: UInt64
        var expires: ContinuousClock.Instant
        var holds: Set<ObjectRef> = []
    }

    private(set) var sessions: [UInt64: Entry] = [:]
    private(set) var clients: [UInt64: Client] = [:]

    /// Extends client `client` (of `session`, 0: none known) to `now + lease`.
    mutating func keepAlive(client: UInt64, session: UInt64, lease: Duration, now: ContinuousClock.Instant) {
        guard client != 0 else { return }
        clients[client, default: Client(session: session, expires: now + lease)].expires = now + lease
        if session != 0 { clients[client]?.session = session }
    }

    /// `client` now holds something of `ref`; a client first heard of here gets `lease`.
    mutating func hold(_ ref: ObjectRef, by client: UInt64, lease: Duration, now: ContinuousClock.Instant) {
        guard client != 0 else { return }
        clients[client, default: Client(session: 0, expires: now + lease)].holds.insert(ref)
    }

    /// The clients whose lease lapsed by `now`, with what they held; they are forgotten.
    mutating func expireClients(now: ContinuousClock.Instant) -> [(client: UInt64, holds: Set<ObjectRef>)] {
        let lapsed = clients.filter { $0.value.expires <= now }
        for client in lapsed.keys { clients.removeValue(forKey: client) }
        return lapsed.map { ($0.key, $0.value.holds) }
    }

    /// The clients of `session` (it ended), with what they held; they are forgotten.
    mutating func endClients(of session: UInt64) -> [(client: UInt64, holds: Set<ObjectRef>)] {
        guard session != 0 else { return [] }
        let ended = clients.filter { $0.value.session == session }
        for client in ended.keys { clients.removeValue(forKey: client) }
        return ended.map { ($0.key, $0.value.holds) }
    }

    /// Extends `session` to `now + lease`, creating it if new.
    mutating func keepAlive(_ session: UInt64, lease: Duration, now: ContinuousClock.Instant) {
        guard session != 0 else { return }
        sessions[session, default: Entry(expires: now + lease)].expires = now + lease
    }

    /// `ref` now belongs to `session`; a session first heard of here gets `lease`.
    mutating func adopt(_ ref: ObjectRef, by session: UInt64, lease: Duration, now: ContinuousClock.Instant) {
        guard session != 0 else { return }
        sessions[session, default: Entry(expires: now + lease)].objects.insert(ref)
    }

    /// `ref` was removed by other means.
    mutating func release(_ ref: ObjectRef, from session: UInt64) {
        sessions[session]?.objects.remove(ref)
    }

    /// Ends `session`; returns the objects to remove.
    mutating func end(_ session: UInt64) -> Set<ObjectRef> {
        sessions.removeValue(forKey: session)?.objects ?? []
    }

    /// Ends every session whose lease lapsed by `now`; returns them with their objects.
    mutating func expire(now: ContinuousClock.Instant) -> [(session: UInt64, objects: Set<ObjectRef>)] {
        let lapsed = sessions.filter { $0.value.expires <= now }
        for session in lapsed.keys { sessions.removeValue(forKey: session) }
        return lapsed.map { ($0.key, $0.value.objects) }
    }
}
