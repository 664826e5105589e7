package import CrucialCore

/// Remembers the answers to recent calls on one object, by (client, seq), so that
/// a call retried after a lost connection is answered, not applied twice.
///
/// A client tells with `ackedBelow` which of its answers it has received; those
/// are dropped, and a request below that mark arriving later (a copy the network kept,
/// from a connection the client gave up on) is a late duplicate: it is answered with an
/// error and not applied again. Tables stay bounded even for clients that vanish: at most
/// `perClient` answers per client and `maxClients` clients per object (the least recently
/// active client goes first).
package struct RetryTable: Sendable {
    struct ClientAnswers: Sendable {
        var answers: [UInt64: Outcome] = [:]
        var lastUse: UInt64 = 0
        /// Every seq below this was answered and the client knows it.
        var acked: UInt64 = 0
    }

    private var clients: [UInt64: ClientAnswers] = [:]
    private var clock: UInt64 = 0
    let perClient: Int
    let maxClients: Int

    package init(perClient: Int = 512, maxClients: Int = 1024) {
        self.perClient = perClient
        self.maxClients = maxClients
    }

    package var isEmpty: Bool { clients.isEmpty }

    /// The recorded answer to (client, seq), after dropping what the client acknowledged.
    /// Entries are changed in place: copying a client's answers out and back would
    /// duplicate the dictionary on every call.
    package mutating func lookup(client: UInt64, seq: UInt64, ackedBelow: UInt64) -> Outcome? {
        guard seq != 0, let known = clients[client] else { return nil }
        if ackedBelow > known.acked {
            clients[client]?.acked = ackedBelow
            let stale = known.answers.keys.filter { $0 < ackedBelow }
            for k in stale { clients[client]?.answers.removeValue(forKey: k) }
        }
        if let found = clients[client]?.answers[seq] { return found }
        if seq < (clients[client]?.acked ?? 0) {
            return .error(
                CrucialError(.illegalState, "request \(seq) of client \(String(client, radix: 16)) was answered already: a late duplicate, not applied"))
        }
        return nil
    }

    package mutating func record(client: UInt64, seq: UInt64, outcome: Outcome) {
        guard seq != 0 else { return }
        clock &+= 1
        let now = clock
        func store(_ entry: inout ClientAnswers) -> Int {
            entry.answers[seq] = outcome
            entry.lastUse = now
            return entry.answers.count
        }
        let count = store(&clients[client, default: ClientAnswers()])
        if count > perClient, let oldest = clients[client]?.answers.keys.min() {
            clients[client]?.answers.removeValue(forKey: oldest)
        }
        if clients.count > maxClients, let idle = clients.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
            clients[idle] = nil
        }
    }

    /// The table as a value (snapshots, state transfer): a list of records.
    var value: Value {
        let marks: [Value] = clients.compactMap { client, answers in
            answers.acked == 0 ? nil : .record(["c": .int(Int64(bitPattern: client)), "a": .int(Int64(bitPattern: answers.acked))])
        }
        return .list(
            marks
                + entries.compactMap { e in
                    var r: [String: Value] = ["c": .int(Int64(bitPattern: e.client)), "s": .int(Int64(bitPattern: e.seq))]
                    switch e.outcome {
                    case .value(let v): r["v"] = v
                    case .error(let err): (r["e"], r["m"]) = (.int(Int64(err.code.rawValue)), .string(err.message))
                    case .wrongView: return nil
                    }
                    return .record(r)
                })
    }

    /// Re-records the answers of a table's ``value``.
    mutating func restore(_ value: Value) {
        for e in value.listValue ?? [] {
            guard case .record(let x) = e, let c = x["c"]?.intValue, let a = x["a"]?.intValue else { continue }
            clients[UInt64(bitPattern: c), default: ClientAnswers()].acked = UInt64(bitPattern: a)
        }
        restore(
            (value.listValue ?? []).compactMap { e in
                guard case .record(let x) = e, let c = x["c"]?.intValue, let s = x["s"]?.intValue else { return nil }
                let outcome: Outcome
                if let code = x["e"]?.intValue {
                    outcome = .error(CrucialError(CrucialError.Code(rawValue: Int32(truncatingIfNeeded: code)) ?? .internal, x["m"]?.stringValue ?? ""))
                } else {
                    outcome = .value(x["v"] ?? .null)
                }
                return (UInt64(bitPattern: c), UInt64(bitPattern: s), outcome)
            })
    }

    /// Every recorded answer, for a snapshot.
    var entries: [(client: UInt64, seq: UInt64, outcome: Outcome)] {
        clients.flatMap { client, answers in answers.answers.map { (client, $0.key, $0.value) } }
    }

    /// Re-records answers from a snapshot.
    mutating func restore(_ entries: [(client: UInt64, seq: UInt64, outcome: Outcome)]) {
        for e in entries { record(client: e.client, seq: e.seq, outcome: e.outcome) }
    }
}
