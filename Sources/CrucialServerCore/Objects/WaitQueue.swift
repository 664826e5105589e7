internal import CrucialCore

/// The calls parked on a synchronizer, in arrival order, each with what it waits for: the
/// waiting, withdrawing, timing out and draining the four synchronizers share.
///
/// A party of a replicated synchronizer is part of the object's state by its retry identity
/// (client, seq), so every copy holds it; only the copy its client reached can answer it,
/// the others keep it *detached*. A retry of the call (the client lost its connection, or
/// the primary changed) takes its place instead of arriving again, and a detached party
/// whose client is gone is withdrawn.
package struct WaitQueue<Entry> {
    private(set) var parties: [(waiter: Waiter, entry: Entry)] = []

    var count: Int { parties.count }
    var isEmpty: Bool { parties.isEmpty }
    var first: (waiter: Waiter, entry: Entry)? { parties.first }

    mutating func append(_ waiter: Waiter, _ entry: Entry) { parties.append((waiter, entry)) }

    mutating func removeFirst() -> (waiter: Waiter, entry: Entry) { parties.removeFirst() }

    /// `waiter` retries a call parked here: it takes that party's place (and is answered
    /// when the party is). Returns whether it did.
    mutating func takeOver(_ waiter: Waiter) -> Bool {
        guard let i = parties.firstIndex(where: { $0.waiter.isRetried(by: waiter) }) else { return false }
        parties[i].waiter = waiter
        return true
    }

    /// Withdraws the parties of a closed connection. (Detached parties are known by their
    /// retry identity under connection 0, which no connection has; those recovery replays
    /// keep their logged ids until recovery ends, for the log's older records that name them.)
    mutating func withdraw(connection: ConnectionID) {
        parties.removeAll { $0.waiter.id.connection == connection }
    }

    /// Withdraws the detached parties of `client` (it is gone), or every detached party.
    mutating func withdrawDetached(of client: UInt64? = nil) {
        parties.removeAll { $0.waiter.isDetached && (client == nil || $0.waiter.clientID == client) }
    }

    /// Takes out the party whose wait timed out, if it still waits.
    mutating func remove(_ id: WaiterID) -> (waiter: Waiter, entry: Entry)? {
        guard let i = parties.firstIndex(where: { $0.waiter.id == id }) else { return nil }
        return parties.remove(at: i)
    }

    /// Takes out every party.
    mutating func removeAll() -> [(waiter: Waiter, entry: Entry)] {
        defer { parties.removeAll() }
        return parties
    }

    /// Answers every party with `error` and takes them out.
    mutating func drain(_ effects: inout Effects, error: CrucialError) {
        for p in removeAll() { effects.wake(p.waiter, error: error) }
    }

    /// Answers the attached parties with `error` and keeps every party, detached.
    mutating func detach(_ effects: inout Effects, error: CrucialError) {
        for i in parties.indices {
            let waiter = parties[i].waiter
            if !waiter.isDetached { effects.wake(waiter, error: error) }
            parties[i].waiter = .detached(clientID: waiter.clientID, seq: waiter.seq)
        }
    }

    /// The clients of detached parties: watched, so that a gone one is withdrawn.
    var detachedClients: [UInt64] { parties.filter { $0.waiter.isDetached && $0.waiter.clientID != 0 }.map(\.waiter.clientID) }

    /// The parties as a copy of the state records them: `[client, seq, ...more]` each.
    func recorded(_ more: (Entry) -> [Value]) -> Value {
        .list(parties.map { .list($0.waiter.identity + more($0.entry)) })
    }

    /// The parties `recorded` wrote, detached.
    init(recorded value: Value?, of type: String, _ entry: ([Value]) throws(CrucialError) -> Entry) throws(CrucialError) {
        for party in value?.listValue ?? [] {
            guard let fields = party.listValue else {
                throw CrucialError(.badInitialState, "\(type): a waiting party must be a list [client, seq, ...], got \(party)")
            }
            parties.append((try Waiter.detached(from: fields, of: type), try entry(fields)))
        }
    }

    init() {}
}

extension WaitQueue where Entry == Void {
    mutating func append(_ waiter: Waiter) { append(waiter, ()) }
}

/// A built-in type whose calls park on one `WaitQueue`, `parked`: the parked-call hooks of
/// `SharedObject` (withdrawing, timing out, draining, detaching, a client gone) are written
/// once, here, over it; a type says only what differs.
package protocol Synchronizer: BuiltinObject {
    associatedtype Party
    var parked: WaitQueue<Party> { get set }
    /// Whether the parties are part of the object's state (a barrier's, a semaphore's: every
    /// copy keeps them, a move detaches them for their retries to take over), or only wait on
    /// it (a latch's, a future's: a move answers them, and their retries wait again).
    static var partiesAreState: Bool { get }
    /// Answers a party whose bounded wait expired, and does what else that means (a barrier breaks).
    func expired(_ party: (waiter: Waiter, entry: Party), effects: inout Effects)
    /// Wakes who can go now that parties left or permits came back (a semaphore's head may
    /// have blocked smaller requests). Nothing, by default.
    func partiesLeft(effects: inout Effects)
}

extension Synchronizer {
    package func partiesLeft(effects: inout Effects) {}

    package var waiterCount: Int { parked.count }

    package func cancelWaiters(of connection: ConnectionID, effects: inout Effects) {
        parked.withdraw(connection: connection)
        partiesLeft(effects: &effects)
    }

    package func timeout(_ id: WaiterID, effects: inout Effects) {
        guard let party = parked.remove(id) else { return }
        expired(party, effects: &effects)
        partiesLeft(effects: &effects)
    }

    package func drainWaiters(effects: inout Effects, error: CrucialError) { parked.drain(&effects, error: error) }

    package func detachWaiters(effects: inout Effects, error: CrucialError) {
        if Self.partiesAreState { parked.detach(&effects, error: error) } else { parked.drain(&effects, error: error) }
    }

    package var holdingClients: [UInt64] { Self.partiesAreState ? parked.detachedClients : [] }

    package func clientGone(_ client: UInt64, effects: inout Effects) {
        parked.withdrawDetached(of: client)
        partiesLeft(effects: &effects)
    }

    package func withdrawDetached(effects: inout Effects) {
        parked.withdrawDetached()
        partiesLeft(effects: &effects)
    }
}
