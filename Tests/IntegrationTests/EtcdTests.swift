import CrucialTesting
import CrucialProcess
import CrucialClient
import CrucialServer
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing

/// A real single-member etcd on free loopback ports, with its own data directory.
final class TestEtcd: Sendable {
    let process: ServerProcess
    let endpoint: String
    let dataDir: String

    init() async throws {
        dataDir = ScratchFolders.path("etcd")
        (process, endpoint) = try await ServerProcess.startEtcd(dataDirectory: dataDir)
    }

    deinit {
        resume()
        let dataDir = dataDir
        process.stopInBackground { try? FileManager.default.removeItem(atPath: dataDir) }
    }

    /// SIGSTOP: etcd answers nothing until resumed (as in a long leader election or a disk stall).
    func pause() { kill(process.processIdentifier, SIGSTOP) }
    func resume() { kill(process.processIdentifier, SIGCONT) }
}

@Suite("etcd v3 through its JSON gateway")
struct EtcdTests {
    @Test("Leases, puts under a lease, prefix ranges with revisions, expiry and revocation")
    func leasesAndRanges() async throws {
        let etcd = try await TestEtcd()
        let client = EtcdClient(endpoint: etcd.endpoint)
        // Checks that must not depend on timing use a long lease: a test process starved for
        // seconds on a loaded 2-core machine must not see a short one lapse under it.
        let lease = try await client.grantLease(ttl: 60)
        #expect(lease != 0)
        let r1 = try await client.put("/crucial/members/a", Array("127.0.0.1:1".utf8), lease: lease)
        let r2 = try await client.put("/crucial/members/b", Array("127.0.0.1:2".utf8))
        try await client.put("/crucial/membersX", Array("not a member".utf8))
        #expect(r2 > r1)
        let (kvs, revision) = try await client.range(prefix: "/crucial/members/")
        #expect(kvs.map(\.key) == ["/crucial/members/a", "/crucial/members/b"])
        #expect(kvs.first?.value == Array("127.0.0.1:1".utf8))
        #expect(kvs.first?.lease == lease)
        #expect(revision >= r2)
        // A past revision shows the keys as they were then.
        #expect(try await client.range(prefix: "/crucial/members/", revision: r1).kvs.map(\.key) == ["/crucial/members/a"])
        #expect(try await client.keepAlive(lease: lease) > 0)

        // Kept alive every half second, a 12 s lease outlives its TTL (for 15 s by the clock);
        // left alone, its key goes. On a loaded machine a renewal can come later than the TTL
        // (in a fresh clone's suite beside a build, 20 renewals half a second apart once took
        // 40 s): a lapse then proves nothing, and the attempt is made again, at most 3 times. A
        // lapse although no two renewals were 10 s apart fails.
        for attempt in 1...3 {
            let short = try await client.grantLease(ttl: 12)
            try await client.put("/crucial/members/s", [], lease: short)
            let kept = ContinuousClock.now
            var last = kept, longestGap = Duration.zero
            while ContinuousClock.now - kept < .seconds(15) {
                try await client.keepAlive(lease: short)
                let now = ContinuousClock.now
                (longestGap, last) = (max(longestGap, now - last), now)
                try await Task.sleep(for: .milliseconds(500))
            }
            if try await client.range(prefix: "/crucial/members/").kvs.count == 3 { break }
            guard longestGap >= .seconds(10), attempt < 3 else {
                Issue.record("a lease kept alive lapsed (attempt \(attempt); renewals at most \(longestGap) apart)")
                break
            }
        }
        // Left alone, it goes 12 s later; a starved etcd (CI's loaded machine once took more
        // than 30 s) may take longer, so the bound only catches a lease that never lapses.
        try await waitUntil(within: .seconds(120)) { try await client.range(prefix: "/crucial/members/").kvs.count == 2 }
        try await client.revoke(lease: lease)
        #expect(try await client.range(prefix: "/crucial/members/").kvs.map(\.key) == ["/crucial/members/b"])

        let other = try await client.grantLease(ttl: 60)
        try await client.put("/crucial/members/c", [], lease: other)
        try await client.revoke(lease: other)
        #expect(try await client.range(prefix: "/crucial/members/").kvs.map(\.key) == ["/crucial/members/b"])
        try await client.delete("/crucial/members/b")
        #expect(try await client.range(prefix: "/crucial/members/").kvs.isEmpty)

        let unreachable = EtcdClient(endpoint: "http://127.0.0.1:1")
        await #expect(throws: CrucialError.self) { try await unreachable.grantLease(ttl: 5) }
    }

    @Test("A watch reports puts and deletions under a prefix in revision order, from a given revision")
    func watch() async throws {
        let etcd = try await TestEtcd()
        let client = EtcdClient(endpoint: etcd.endpoint)
        let start = try await client.put("/w/members/a", Array("1".utf8))
        let seen = Mutex<[EtcdClient.Event]>([])
        let watcher = Task {
            try await client.watch(prefix: "/w/members/", from: start) { events in seen.withLock { $0 += events } }
        }
        let put = try await client.put("/w/members/b", Array("2".utf8))
        try await client.put("/w/other", Array("3".utf8))
        try await client.delete("/w/members/a")
        try await waitUntil { seen.withLock { $0.count } >= 3 }
        watcher.cancel()
        let events = seen.withLock { $0 }
        #expect(events.map(\.kv.key) == ["/w/members/a", "/w/members/b", "/w/members/a"])
        #expect(events.map(\.deleted) == [false, false, true])
        #expect(events[0].kv.modRevision == start && events[1].kv.modRevision == put)
        #expect(events[2].kv.modRevision > put)
    }
}
