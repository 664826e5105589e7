import CrucialClient
import Foundation
import Testing

/// Removed persistent objects leave tombstones; a cluster that creates and removes objects
/// for ever must collect them. Real processes, because what is measured is what the
/// processes keep: their memory (RSS) and their data directories.
@Suite("Tombstones under churn (real processes)", .serialized, .timeLimit(.minutes(8)))
struct TombstoneChurnTests {
    /// The resident memory of `pid`, in bytes.
    static func rss(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// The bytes of the files in `directory`.
    static func size(of directory: String) -> Int {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.reduce(0) { sum, name in
            sum + ((try? FileManager.default.attributesOfItem(atPath: "\(directory)/\(name)")[.size] as? Int) ?? 0)
        }
    }

    @Test("Persistent objects created and removed in rounds: every tombstone is collected, and memory and data directories stay within 1.5x of the first round's")
    func churn() async throws {
        // 4 rounds of 5,000 in the suite (the suite's long pole at 12,500: 146 s of its 150 on
        // a 2-core VM); CRUCIAL_CHURN_OBJECTS=200000 (and CRUCIAL_CHURN_ROUNDS) for the long run.
        let environment = ProcessInfo.processInfo.environment
        let rounds = max(2, Int(environment["CRUCIAL_CHURN_ROUNDS"] ?? "") ?? 4)
        let perRound = max(1, (Int(environment["CRUCIAL_CHURN_OBJECTS"] ?? "") ?? 20_000) / rounds), live = 2_000
        let members = ["a", "b", "c"]
        let cluster = try await TestCluster(arguments: ["--compact-after", "4096"], fsync: "never")
        for id in members { try await cluster.start(id) }
        let client = CrucialClient(configuration: .init(servers: [cluster["a"]!.address], connections: 8, failoverTimeout: .seconds(60)))
        defer { client.close() }
        // Objects that live throughout, so that the data directories hold more than a log's tail.
        let kept = (0..<live).map { AtomicLong("kept-\($0)", initial: 0, persistent: true, client: client) }
        for start in stride(from: 0, to: live, by: 500) {
            _ = try await client.pipeline(kept[start..<min(live, start + 500)].map { .init($0, "incrementAndGet") })
        }
        var measured: [(rss: Int, disk: Int)] = []
        for round in 0..<rounds {
            let started = ContinuousClock.now
            let refs = (0..<perRound).map { ObjectRef(type: "AtomicLong", key: "churn-\(round)-\($0)") }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for part in 0..<16 {
                    group.addTask {
                        let mine = refs.enumerated().filter { $0.offset % 16 == part }.map(\.element)
                        for start in stride(from: 0, to: mine.count, by: 250) {
                            let calls = mine[start..<min(mine.count, start + 250)].map {
                                CrucialClient.Call(
                                    SharedObjectHandle(type: $0.type, key: $0.key, initial: 0, persistent: true, client: client), "incrementAndGet")
                            }
                            _ = try await client.pipeline(calls)
                        }
                        for ref in mine { #expect(try await client.remove(ref)) }
                    }
                }
                try await group.waitForAll()
            }
            let churned = ContinuousClock.now
            // Every member collects what it is the primary of.
            let collectedBy = ContinuousClock.now + .seconds(90)
            var left = Int.max
            while ContinuousClock.now < collectedBy {
                var count = -live * cluster.rf  // every kept object's copies
                for id in members {
                    let member = CrucialClient(configuration: .init(servers: [cluster[id]!.address]))
                    defer { member.close() }
                    let info = try await member.serverInfo()
                    count += info.tombstones + info.persistentObjects
                }
                left = count
                if count == 0 { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(left == 0, "round \(round): \(left) tombstones or removed objects are still kept")
            try await Task.sleep(for: .seconds(3))  // a compaction of what the collection logged
            let rss = members.reduce(0) { $0 + Self.rss(cluster[$1]!.server.processIdentifier) }
            let disk = members.reduce(0) { $0 + Self.size(of: cluster.dataDirectory($1)) }
            measured.append((rss, disk))
            print("churn round \(round + 1)/\(rounds): \(perRound) created and removed in \(churned - started), collected by \(ContinuousClock.now - churned); RSS \(rss >> 20) MB, data directories \(disk >> 10) KB")
        }
        let first = measured[0], last = measured[rounds - 1]
        #expect(Double(last.rss) <= 1.5 * Double(first.rss), "RSS grew from \(first.rss >> 20) to \(last.rss >> 20) MB")
        #expect(Double(last.disk) <= 1.5 * Double(first.disk), "data directories grew from \(first.disk >> 10) to \(last.disk >> 10) KB")
        for (i, counter) in kept.enumerated() where i % 100 == 0 { #expect(try await counter.get() == 1) }
    }
}
