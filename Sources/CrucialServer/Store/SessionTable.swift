import CrucialCore

/// Application sessions and the ephemeral objects each one owns.
///
/// A driver's client keeps its session alive with `KeepAlive`; the objects it (and its
/// cloud threads) create without `persistent` belong to that session and are removed
/// when the session ends (`EndSession`) or its lease lapses (the driver died). Pure
/// bookkeeping: the store removes what this hands back.
struct SessionTable {
    struct Entry {
        var expires: ContinuousClock.Instant
        var objects: Set<ObjectRef> = []
    }

    private(set) var sessions: [UInt64: Entry] = [:]

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
