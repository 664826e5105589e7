import CrucialProcess
import CrucialClient
import CrucialTestFunctions
import Foundation
import Testing

/// etcd, three members and a client, each on a host of its own (network namespaces), and
/// silent cuts between them; the linearizability checker runs over what the client saw.
@Suite(
    "Partitions between hosts of their own (network namespaces)", .serialized, .timeLimit(.minutes(2)),
    .enabled(if: NetworkLab.isAvailable, "needs root and network namespaces (ip netns, veth, bridge): skipped on this machine"))
struct PartitionTests {
    enum Cut: String, CaseIterable, CustomTestStringConvertible {
        case fromEtcd = "member b cut off from etcd only"
        case fromPeers = "member b cut off from the other members only"
        case fromClient = "member b cut off from the client only"
        case congested = "member b's link congested (256 kbit/s, 50 ms queue: delay and loss)"
        var testDescription: String { rawValue }

        func pairs() -> [(String, String)] {
            switch self {
            case .fromEtcd: [("b", "etcd")]
            case .fromPeers: [("b", "a"), ("b", "c")]
            case .fromClient: [("b", "client")]
            case .congested: []
            }
        }
    }

    @Test("Registers and counters stay linearizable and no member exits across a partition", arguments: Cut.allCases)
    func partition(_ cut: Cut) async throws {
        let lab = try NetworkLab(hosts: ["etcd", "a", "b", "c", "client"])
        let data = ScratchFolders.path("partition")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let etcdBinary = try #require(["/usr/bin/etcd", "/usr/local/bin/etcd"].first { FileManager.default.isExecutableFile(atPath: $0) })
        let etcdIP = lab.address("etcd")
        _ = try await lab.start(
            "etcd", "/bin/sh",
            [
                "-c", "exec \"$0\" \"$@\" 2>&1", etcdBinary, "--name", "crucial", "--data-dir", "\(data)/etcd",
                "--listen-client-urls", "http://\(etcdIP):2379", "--advertise-client-urls", "http://\(etcdIP):2379",
                "--listen-peer-urls", "http://\(etcdIP):2380", "--initial-advertise-peer-urls", "http://\(etcdIP):2380",
                "--initial-cluster", "crucial=http://\(etcdIP):2380", "--logger", "zap", "--log-level", "info",
            ], readyText: "serving client traffic")
        var members: [String: ServerProcess] = [:]
        for id in ["a", "b", "c"] {
            let ip = lab.address(id)
            members[id] = try await lab.start(
                id, try TestServer.binary(),
                [
                    "--host", ip, "--port", "7420", "--advertise", "\(ip):7420", "--etcd", "http://\(etcdIP):2379", "--node-id", id,
                    "--rf", "2", "--lease-ttl", "2", "--data-dir", "\(data)/\(id)", "--fsync", "everysec",
                    "--log-level", "notice",
                ])
        }
        let servers = ["a", "b", "c"].map { "\(lab.address($0)):7420" }.joined(separator: ",")
        let workload = try builtExecutable("crucial-test-workload")
        let fault = Task {
            try await Task.sleep(for: .seconds(3))
            for (x, y) in cut.pairs() { try lab.cut(x, y) }
            if cut == .congested { try lab.congest("b", kbit: 256, latencyMs: 50) }
            try await Task.sleep(for: .seconds(5))
            for (x, y) in cut.pairs() { try lab.heal(x, y) }
            if cut == .congested { try lab.uncongest("b") }
        }
        let result: Result<(status: Int32, out: String, err: String), any Error>
        do { result = .success(try await lab.run("client", workload, [servers, "14"])) } catch { result = .failure(error) }
        try await fault.value
        let run = try result.get()
        #expect(run.status == 0, "the workload failed: \(run.err)")
        let history = try History<RegisterInput, Int64>(workloadOutput: run.out)
        ClusterTests.expectLinearizable(history, minimumAnswered: 100)
        if !Linearizability.violations(history, .register).isEmpty {
            let kept = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-partition-\(cut)-\(UUID()).txt").path
            try? (run.out + run.err).write(toFile: kept, atomically: true, encoding: .utf8)
            print("the workload's output is in \(kept)")
        }
        for (id, p) in members { #expect(p.isRunning, "member \(id) exited") }
    }
}

extension History where Input == RegisterInput, Output == Int64 {
    /// Parses crucial-test-workload's lines: `object input output call response`.
    init(workloadOutput: String) throws {
        self.init()
        let lines = workloadOutput.split(separator: "\n")
        guard lines.last == "done" else { throw CrucialError(.internal, "the workload did not finish: \(lines.suffix(3))") }
        for line in lines.dropLast() {
            let f = line.split(separator: " ").map(String.init)
            guard f.count == 5, let call = UInt64(f[3]) else { throw CrucialError(.internal, "bad workload line: \(line)") }
            let input: RegisterInput =
                switch f[1].first {
                case "r": .read
                case "i": .increment
                default: .write(Int64(f[1].dropFirst()) ?? 0)
                }
            operations.append(.init(object: f[0], input: input, output: Int64(f[2]), call: call, response: UInt64(f[4]) ?? .max))
        }
    }
}
