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
        /// By seq, ascending: a client's seqs grow, so a new answer is almost always the last.
        var answers: [(seq: UInt64, outcome: Outcome)] = []
        var lastUse: UInt64 = 0
        /// Every seq below this was answered and the client knows it.
        var acked: UInt64 = 0

        /// Where `seq` is, or would go.
        func position(of seq: UInt64) -> (index: Int, found: Bool) {
            if let last = answers.last, last.seq < seq { return (answers.count, false) }  // the usual case
            var (low, high) = (0, answers.count)
            while low < high {
                let mid = (low + high) / 2
                if answers[mid].seq < seq { low = mid + 1 } else { high = mid }
            }
            return (low, low < answers.count && answers[low].seq == seq)
        }
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
    /// The client's entry is changed in place (through `values[index]`): a copy of it
    /// would copy its answers on every call.
    package mutating func lookup(client: UInt64, seq: UInt64, ackedBelow: UInt64) -> Outcome? {
        guard seq != 0, let index = clients.index(forKey: client) else { return nil }
        return Self.lookup(&clients.values[index], seq: seq, ackedBelow: ackedBelow, client: client)
    }

    private static func lookup(_ entry: inout ClientAnswers, seq: UInt64, ackedBelow: UInt64, client: UInt64) -> Outcome? {
        if ackedBelow > entry.acked {
            entry.acked = ackedBelow
            let stale = entry.position(of: ackedBelow).index  // answers below the mark: the oldest ones
            if stale > 0 { entry.answers.removeFirst(stale) }
        }
        let (at, found) = entry.position(of: seq)
        if found { return entry.answers[at].outcome }
        if seq < entry.acked {
            return .error(
                CrucialError(.illegalState, "request \(seq) of client \(String(client, radix: 16)) was answered already: a late duplicate, not applied"))
        }
        return nil
    }

    package mutating func record(client: UInt64, seq: UInt64, outcome: Outcome) {
        guard seq != 0 else { return }
        clock &+= 1
        let now = clock
        let perClient = self.perClient
        func store(_ entry: inout ClientAnswers) {
            let (at, found) = entry.position(of: seq)
            if found { entry.answers[at].outcome = outcome } else { entry.answers.insert((seq, outcome), at: at) }
            entry.lastUse = now
            if entry.answers.count > perClient { entry.answers.removeFirst() }  // the oldest
        }
        store(&clients[client, default: ClientAnswers()])
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
        clients.flatMap { client, answers in answers.answers.map { (client, $0.seq, $0.outcome) } }
    }

    /// Re-records answers from a snapshot.
    mutating func restore(_ entries: [(client: UInt64, seq: UInt64, outcome: Outcome)]) {
        for e in entries { record(client: e.client, seq: e.seq, outcome: e.outcome) }
    }
}
