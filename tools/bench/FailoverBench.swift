import CrucialProcess
import ArgumentParser
import CrucialClient
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `crucial-bench failover`: how long each key is unavailable when a member is SIGKILLed or
/// SIGSTOPped, or etcd is paused, with the failure detector and with the lease alone.
struct FailoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Per-key unavailability on 3 members (rf 2) under load: a member SIGKILLed, a member SIGSTOPped past its lease, "
            + "etcd paused for twice the lease, a member restarted (SIGTERM, then started again: one step of a rolling restart); "
            + "each with --fast-failover and with the lease alone (--no-fast-failover).")

    @Option(help: "Persistent counters the clients increment.")
    var keys = 64

    @Option(help: "The members' etcd lease TTL, in seconds (the crucial-server default is 5).")
    var leaseTtl = 5

    @Option(help: "Seconds measured after each fault.")
    var settle = 14.0

    @Option(help: "Append the results as Markdown to this file.")
    var markdown: String?

    enum Fault: String, CaseIterable {
        case sigkill = "member SIGKILL", sigstop = "member SIGSTOP", etcdPause = "etcd paused"
        case restart = "member SIGTERM, restarted with its data dir"
    }

    func run() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-bench-etcd-\(UUID())").path
        let (etcd, endpoint) = try await ServerProcess.startEtcd(dataDirectory: dataDir)
        defer {
            kill(etcd.processIdentifier, SIGCONT)
            etcd.stop()
            try? FileManager.default.removeItem(atPath: dataDir)
        }
        say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; etcd at \(endpoint); lease \(leaseTtl) s")
        var rows: [String] = []
        for fault in Fault.allCases {
            for detector in [false, true] {
                let row = try await measure(fault, detector: detector, endpoint: endpoint, etcdPID: etcd.processIdentifier)
                rows.append(row)
                say(row)
            }
        }
        let report = """
            | fault | detection | keys with a copy on it: p50 / max unavailable | other keys: max |
            | --- | --- | ---: | ---: |
            \(rows.joined(separator: "\n"))

            """
        print(report)
        if let markdown {
            let date = ISO8601DateFormatter().string(from: Date())
            let command = "crucial-bench failover --keys \(keys) --lease-ttl \(leaseTtl)"
            try appendMarkdown("\n### \(date)\n\n`\(command)`\n\n\(report)\n", to: markdown)
            say("appended to \(markdown)")
        }
    }

    private func measure(_ fault: Fault, detector: Bool, endpoint: String, etcdPID: Int32) async throws -> String {
        let name = "fo\(Fault.allCases.firstIndex(of: fault)!)\(detector ? "d" : "l")"
        let members = try Members(
            etcd: endpoint, rf: 2, leaseTTL: leaseTtl, cluster: name, extra: [detector ? "--fast-failover" : "--no-fast-failover"],
            fsync: "everysec")
        defer { members.stopAll() }
        for id in ["n1", "n2", "n3"] { try await members.start(id) }
        let client = CrucialClient(
            configuration: .init(servers: members.addresses, connections: 4, failoverTimeout: .seconds(60), heartbeatTimeout: .seconds(2)))
        defer { client.close() }
        let counters = (0..<keys).map { AtomicLong("k\($0)", initial: 0, persistent: true, client: client) }
        for c in counters { try await c.incrementAndGet() }
        let ring = HashRing(members: ["n1", "n2", "n3"].map { View.Member(id: "\(name)-\($0)", address: "") })
        let victim = "\(name)-n2"
        let affected = Set(counters.indices.filter { ring.replicas(for: counters[$0].ref, count: 2).contains { $0.id == victim } })

        let origin = ContinuousClock.now
        let done = Completions(keys: keys)
        let faultAt = 3.0, end = faultAt + settle
        say("\(fault.rawValue), \(detector ? "--fast-failover" : "lease only"): one client task per key, \(keys) keys ...")
        try await withThrowingTaskGroup(of: Void.self) { group in
            // One task per key: a key's calls never wait behind another key's.
            for k in counters.indices {
                group.addTask {
                    while ContinuousClock.now - origin < .seconds(end) {
                        if (try? await counters[k].incrementAndGet()) != nil { done.record(k, at: ContinuousClock.now - origin) }
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(faultAt))
                switch fault {
                case .sigkill: members.kill("n2")
                case .sigstop:
                    if let pid = members.pid("n2") { kill(pid, SIGSTOP) }
                    try await Task.sleep(for: .seconds(Double(leaseTtl + 3)))
                    if let pid = members.pid("n2") { kill(pid, SIGCONT) }
                case .etcdPause:
                    kill(etcdPID, SIGSTOP)
                    try await Task.sleep(for: .seconds(Double(2 * leaseTtl)))
                    kill(etcdPID, SIGCONT)
                case .restart:
                    members.stop("n2")
                    try await members.start("n2")
                }
            }
            for try await _ in group {}
        }
        let gaps = done.longestGaps(from: faultAt - 0.5, to: end)
        let hit = affected.map { gaps[$0] }.sorted()
        let other = counters.indices.filter { !affected.contains($0) }.map { gaps[$0] }.max() ?? 0
        func s(_ x: Double) -> String { String(format: "%.2f s", x) }
        let median = hit.isEmpty ? 0 : hit[hit.count / 2]
        return "| \(fault.rawValue) | \(detector ? "fast failover" : "lease (\(leaseTtl) s) alone") | \(s(median)) / \(s(hit.last ?? 0)) | \(s(other)) |"
    }
}

/// When each key's calls were answered.
final class Completions: Sendable {
    private let times: Mutex<[[Double]]>
    init(keys: Int) { times = Mutex(Array(repeating: [], count: keys)) }

    func record(_ key: Int, at elapsed: Duration) {
        let s = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        times.withLock { $0[key].append(s) }
    }

    /// Per key, the longest time between two answers within [from, to] (the window's ends
    /// count as answers: a key never answered again is unavailable to the end).
    func longestGaps(from: Double, to: Double) -> [Double] {
        times.withLock { all in
            all.map { t in
                let inside = [from] + t.filter { $0 > from && $0 < to }.sorted() + [to]
                return zip(inside, inside.dropFirst()).map { $1 - $0 }.max() ?? (to - from)
            }
        }
    }
}
