import CrucialTesting
import CrucialProcess
import CrucialClient
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Persistent objects in a cluster survive what etcd and the members' processes do:
/// real etcd, real members with data directories, SIGSTOP and SIGKILL.
@Suite("A durable cluster: data directories, etcd outages, restarts in place", .serialized, .timeLimit(.minutes(2)))
struct DurabilityTests {
    @Test("etcd paused for twice the lease under load: no member exits, nothing acknowledged is lost, the history is linearizable")
    func etcdPause() async throws {
        let cluster = try await TestCluster(leaseTTL: 2, fsync: "everysec")
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let history = try await ClusterTests.recordHistory(cluster, seconds: 14, client: cluster.client()) { waitFor in
            try await waitFor(300)  // the cluster serves under load before etcd stops
            cluster.etcd.pause()
            try await Task.sleep(for: .seconds(Double(2 * cluster.leaseTTL)))
            cluster.etcd.resume()
        }
        for id in ["a", "b", "c"] { #expect(cluster[id]!.isRunning, "member \(id) exited") }
        ClusterTests.expectLinearizable(history)
        // Every member is back in the view, and calls are answered again.
        let client = cluster.client()
        defer { client.close() }
        _ = try await client.invoke(ObjectRef(type: "AtomicLong", key: "counter-0"), "get", readOnly: true)
        #expect(client.view?.members.map(\.id) == ["a", "b", "c"])
    }

    @Test("GET /ready: ready in its view, 503 with the reason while etcd is paused past the lease, ready again after; /health stays ok")
    func readiness() async throws {
        let cluster = try await TestCluster(leaseTTL: 2, arguments: ["--metrics-port", "0"])
        let member = try await cluster.start("a")
        let metrics = try #require(member.server.output.split(separator: "\n").first { $0.contains("metrics on") }?.split(separator: " ").last)
        let base = String(metrics).replacingOccurrences(of: "/metrics", with: "")
        try await waitUntil { try await httpGet(base + "/ready") == "ready\n" }
        cluster.etcd.pause()
        defer { cluster.etcd.resume() }
        try await waitUntil { try await httpGet(base + "/ready").hasPrefix("not ready: its etcd lease was not renewed in time") }
        #expect(try await httpGet(base + "/health") == "ok\n")
        cluster.etcd.resume()
        try await waitUntil { try await httpGet(base + "/ready") == "ready\n" }
    }

    @Test("A member SIGKILLed and restarted at once with its node id and data dir is accepted and caught up")
    func restartInPlace() async throws {
        let cluster = try await TestCluster(leaseTTL: 5, fsync: "everysec")
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let client = cluster.client()
        defer { client.close() }
        let work = IncrementWorkload(client: client, count: 100)
        try await work.run(tasks: 16, perTask: 150) { waitFor in
            try await waitFor(800)
            await cluster["b"]!.kill9()
            // Well within the old lease (5 s): a restart in place takes its key over at once.
            try await cluster.start("b")
            try await waitFor(1600)
        }
        try await work.check()
        #expect(client.view?.members.map(\.id) == ["a", "b", "c"])
        // b caught up: with a and then c SIGKILLed, every counter is still there, on b alone.
        let ring = HashRing(members: ["a", "b", "c"].map { View.Member(id: $0, address: "") })
        let onA = try #require(work.counters.firstIndex { ring.primary(for: $0.ref)?.id == "a" })
        await cluster["a"]!.kill9()
        _ = try await work.counters[onA].get()  // answered only once b and c serve a view without a
        await cluster["c"]!.kill9()
        try await work.check()
    }

    @Test("Every member SIGKILLed at once under load and restarted with its data dir: every acknowledged increment is there (fsync=always)")
    func fullClusterRestart() async throws {
        let cluster = try await TestCluster(leaseTTL: 5, fsync: "always")
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let client = cluster.client()
        defer { client.close() }
        let work = IncrementWorkload(client: client, count: 100)
        try await work.run(tasks: 16, perTask: 120) { waitFor in
            try await waitFor(700)
            for id in ["a", "b", "c"] { await cluster[id]!.kill9() }
            for id in ["a", "b", "c"] { try await cluster.start(id) }
        }
        try await work.check()
        #expect(client.view?.members.map(\.id) == ["a", "b", "c"])
    }

    @Test("A rolling restart (each member in turn SIGTERMed and started again with its data dir) under load: nothing lost, no call fails")
    func rollingRestart() async throws {
        let cluster = try await TestCluster(leaseTTL: 5, fsync: "everysec")
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let client = cluster.client()
        defer { client.close() }
        let work = IncrementWorkload(client: client, count: 100)
        // A call that fails ends the run with its error: the workload retries nothing itself.
        try await work.run(tasks: 16, perTask: 200) { waitFor in
            var target = 300
            try await waitFor(target)
            for id in ["a", "b", "c"] {
                expectCleanExit(await cluster[id]!.stop())
                try await cluster.start(id)
                target += 600
                try await waitFor(target)
            }
        }
        try await work.check()
        #expect(client.view?.members.map(\.id) == ["a", "b", "c"])
    }

    @Test("A second process on a member's data directory is refused, and a data directory belongs to one node id")
    func dataDirectoryOwnership() async throws {
        let cluster = try await TestCluster(fsync: "never")
        try await cluster.start("a")
        let port = try ServerProcess.freePort()
        let twin = try await runCLI(
            ["--port", String(port), "--etcd", cluster.etcd.endpoint, "--node-id", "b", "--advertise", "127.0.0.1:\(port)", "--data-dir", cluster.dataDirectory("a")],
            executable: "crucial-server")
        #expect(twin.status != 0 && twin.err.contains("belongs to member a"), "\(twin.err)")
        let same = try await runCLI(
            ["--port", String(port), "--etcd", cluster.etcd.endpoint, "--node-id", "a", "--advertise", "127.0.0.1:\(port)", "--data-dir", cluster.dataDirectory("a")],
            executable: "crucial-server")
        #expect(same.status != 0 && same.err.contains("another crucial-server process uses this data directory"), "\(same.err)")
    }
}
