import CrucialCore
@testable import CrucialServerCore
import Testing

@Suite("Retry table")
struct RetryTableTests {
    @Test("A retried call gets its recorded answer; acknowledged answers are forgotten and their late duplicates refused")
    func answersAndAcks() {
        var t = RetryTable()
        #expect(t.lookup(client: 1, seq: 1, ackedBelow: 0) == nil)
        t.record(client: 1, seq: 1, outcome: .value(.int(10)))
        t.record(client: 1, seq: 2, outcome: .value(.int(11)))
        #expect(t.lookup(client: 1, seq: 1, ackedBelow: 0) == .value(.int(10)))
        #expect(t.lookup(client: 2, seq: 1, ackedBelow: 0) == nil, "answers are per client")
        #expect(t.lookup(client: 1, seq: 0, ackedBelow: 0) == nil, "seq 0 (a read) is never de-duplicated")
        // The client got answers below 2: seq 1 is forgotten, and a copy of it arriving late is refused.
        guard case .error(let e) = t.lookup(client: 1, seq: 1, ackedBelow: 2) else { Issue.record("late duplicate applied"); return }
        #expect(e.code == .illegalState)
        #expect(t.lookup(client: 1, seq: 2, ackedBelow: 2) == .value(.int(11)))
        // Concurrent calls finish in any order: answers recorded out of seq order are all found,
        // and an acknowledgement mark drops exactly those below it.
        for seq: UInt64 in [6, 4, 5, 3] { t.record(client: 1, seq: seq, outcome: .value(.int(Int64(seq)))) }
        t.record(client: 1, seq: 5, outcome: .value(.int(50)))  // recorded again: replaced, not doubled
        #expect((2...6).map { t.lookup(client: 1, seq: $0, ackedBelow: 2) } == [.value(.int(11)), .value(.int(3)), .value(.int(4)), .value(.int(50)), .value(.int(6))])
        #expect(t.lookup(client: 1, seq: 5, ackedBelow: 5) == .value(.int(50)))
        #expect(t.entries.map(\.seq).sorted() == [5, 6])
    }

    @Test("Bounded: at most perClient answers per client and maxClients clients, the least recent going first")
    func bounded() {
        var t = RetryTable(perClient: 2, maxClients: 2)
        for seq in 1...3 { t.record(client: 1, seq: UInt64(seq), outcome: .void) }
        #expect(t.lookup(client: 1, seq: 1, ackedBelow: 0) == nil && t.lookup(client: 1, seq: 3, ackedBelow: 0) == .void)
        t.record(client: 2, seq: 1, outcome: .void)
        t.record(client: 3, seq: 1, outcome: .void)
        #expect(t.lookup(client: 1, seq: 3, ackedBelow: 0) == nil, "client 1 was the least recently active")
        #expect(t.lookup(client: 3, seq: 1, ackedBelow: 0) == .void)
    }

    @Test("The table survives its Value form (snapshots, moves): answers, errors and acknowledgement marks")
    func valueRoundTrip() {
        var t = RetryTable()
        t.record(client: 5, seq: 3, outcome: .value(.string("x")))
        t.record(client: 5, seq: 4, outcome: .error(CrucialError(.outOfRange, "no")))
        _ = t.lookup(client: 5, seq: 4, ackedBelow: 3)
        var u = RetryTable()
        u.restore(t.value)
        #expect(u.lookup(client: 5, seq: 3, ackedBelow: 0) == .value(.string("x")))
        #expect(u.lookup(client: 5, seq: 4, ackedBelow: 0) == .error(CrucialError(.outOfRange, "no")))
        guard case .error(let e) = u.lookup(client: 5, seq: 2, ackedBelow: 0) else { Issue.record("the ack mark was lost"); return }
        #expect(e.code == .illegalState)
    }
}

@Suite("Session table")
struct SessionTableTests {
    @Test("Sessions own their ephemeral objects until they end or their lease lapses; keep-alives extend them")
    func sessions() {
        var t = SessionTable()
        let now = ContinuousClock.now
        let a = ObjectRef(type: "AtomicLong", key: "a")
        t.adopt(a, by: 7, lease: .seconds(2), now: now)
        t.keepAlive(7, lease: .seconds(10), now: now + .seconds(1))
        #expect(t.expire(now: now + .seconds(5)).isEmpty)
        let lapsed = t.expire(now: now + .seconds(12))
        #expect(lapsed.map(\.session) == [7] && lapsed.first?.objects == [a])
        t.adopt(a, by: 8, lease: .seconds(2), now: now)
        #expect(t.end(8) == [a] && t.end(8).isEmpty)
    }

    @Test("Clients holding something are released when their lease lapses or their session ends")
    func clients() {
        var t = SessionTable()
        let now = ContinuousClock.now
        let s = ObjectRef(type: "Semaphore", key: "s")
        t.hold(s, by: 42, lease: .seconds(2), now: now)
        t.keepAlive(client: 42, session: 9, lease: .seconds(2), now: now + .seconds(1))
        #expect(t.expireClients(now: now + .seconds(2)).isEmpty)
        let gone = t.expireClients(now: now + .seconds(4))
        #expect(gone.map(\.client) == [42] && gone.first?.holds == [s])
        t.hold(s, by: 43, lease: .seconds(30), now: now)
        t.keepAlive(client: 43, session: 9, lease: .seconds(30), now: now)
        #expect(t.endClients(of: 9).map(\.client) == [43])
    }
}
