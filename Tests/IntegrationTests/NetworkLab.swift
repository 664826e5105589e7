import CrucialProcess
import CrucialClient
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Hosts of their own on this machine, for partition tests: one network namespace per
/// host, each joined by a veth pair to a bridge that lives in a namespace of its own, so
/// that none of their traffic crosses the root namespace. Needs root and iproute2.
///
/// A cut between two hosts is silent, as a real partition is: each side's neighbour entry
/// for the other points at a MAC address nobody has, so frames go nowhere and connections
/// time out (no iptables or netem needed; this kernel has neither).
final class NetworkLab: Sendable {
    /// Whether this machine can make the lab (root, `ip netns`, veth, bridges).
    static let isAvailable: Bool = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: ip) else { return false }
        let probe = "crprobe\(getpid() % 10000)"
        defer { _ = try? run(ip, ["netns", "delete", probe]) }
        guard (try? run(ip, ["netns", "add", probe]))?.status == 0 else { return false }
        return (try? run(ip, ["-n", probe, "link", "add", "br0", "type", "bridge"]))?.status == 0
    }()

    static let ip = "/usr/sbin/ip"

    struct Host: Sendable {
        let namespace: String
        let address: String
        let mac: String
    }

    private let tag: String
    private let switchNamespace: String
    let hosts: [String: Host]
    private let processes = Mutex<[ServerProcess]>([])

    /// Makes a host for each name, all on one /24.
    init(hosts names: [String]) throws {
        tag = String(format: "%04x", UInt16.random(in: 0...UInt16.max))
        switchNamespace = "cr\(tag)sw"
        let net = "10.213.\(Int.random(in: 1...250))"
        try Self.must(["netns", "add", switchNamespace])
        try Self.must(["-n", switchNamespace, "link", "add", "br0", "type", "bridge"])
        try Self.must(["-n", switchNamespace, "link", "set", "br0", "up"])
        var hosts: [String: Host] = [:]
        for (i, name) in names.enumerated() {
            let ns = "cr\(tag)\(name)"
            let (inside, port) = ("v\(tag)\(i)", "p\(tag)\(i)")
            try Self.must(["netns", "add", ns])
            try Self.must(["link", "add", inside, "netns", ns, "type", "veth", "peer", "name", port, "netns", switchNamespace])
            try Self.must(["-n", ns, "link", "set", inside, "name", "eth0"])
            try Self.must(["-n", ns, "addr", "add", "\(net).\(i + 2)/24", "dev", "eth0"])
            try Self.must(["-n", ns, "link", "set", "eth0", "up"])
            try Self.must(["-n", ns, "link", "set", "lo", "up"])
            try Self.must(["-n", switchNamespace, "link", "set", port, "master", "br0"])
            try Self.must(["-n", switchNamespace, "link", "set", port, "up"])
            let mac = try Self.run(Self.ip, ["-n", ns, "-br", "link", "show", "eth0"]).out.split(separator: " ").filter { !$0.isEmpty }[2]
            hosts[name] = Host(namespace: ns, address: "\(net).\(i + 2)", mac: String(mac))
        }
        self.hosts = hosts
    }

    deinit {
        for p in processes.withLock({ $0 }) where p.isRunning { p.kill9() }
        for host in hosts.values {
            _ = try? Self.run("/bin/sh", ["-c", "\(Self.ip) netns pids \(host.namespace) | xargs -r kill -9"])
            _ = try? Self.run(Self.ip, ["netns", "delete", host.namespace])
        }
        _ = try? Self.run(Self.ip, ["netns", "delete", switchNamespace])
    }

    func address(_ host: String) -> String { hosts[host]!.address }

    /// Starts `executable` inside `host`'s namespace; returns once it printed `readyText`.
    func start(_ host: String, _ executable: String, _ arguments: [String], readyText: String = "listening on") async throws -> ServerProcess {
        let p = try await ServerProcess.start(
            executable: Self.ip, arguments: ["netns", "exec", hosts[host]!.namespace, executable] + arguments, readyText: readyText)
        processes.withLock { $0.append(p) }
        return p
    }

    /// Runs `executable` inside `host`'s namespace to its end.
    func run(_ host: String, _ executable: String, _ arguments: [String]) async throws -> (status: Int32, out: String, err: String) {
        try await runProcess(Self.ip, ["netns", "exec", hosts[host]!.namespace, executable] + arguments)
    }

    /// Cuts `a` and `b` apart, silently, both ways.
    func cut(_ a: String, _ b: String) throws {
        for (from, to) in [(a, b), (b, a)] {
            try Self.must(["-n", hosts[from]!.namespace, "neigh", "replace", hosts[to]!.address, "lladdr", "02:00:00:00:de:ad", "dev", "eth0", "nud", "permanent"])
        }
    }

    /// Makes `host`'s link slow and lossy, as a congested one is: its outgoing traffic is
    /// shaped to `kbit` kbit/s, queued for at most `latencyMs` and dropped beyond (tbf: this
    /// kernel has no netem for fixed delays and random loss).
    func congest(_ host: String, kbit: Int, latencyMs: Int) throws {
        try Self.must(["netns", "exec", hosts[host]!.namespace, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "\(kbit)kbit", "burst", "4kb", "latency", "\(latencyMs)ms"])
    }

    /// Ends a congestion.
    func uncongest(_ host: String) throws {
        try Self.must(["netns", "exec", hosts[host]!.namespace, "tc", "qdisc", "del", "dev", "eth0", "root"])
    }

    /// Mends a cut.
    func heal(_ a: String, _ b: String) throws {
        for (from, to) in [(a, b), (b, a)] {
            try Self.must(["-n", hosts[from]!.namespace, "neigh", "replace", hosts[to]!.address, "lladdr", hosts[to]!.mac, "dev", "eth0", "nud", "reachable"])
        }
    }

    private static func must(_ arguments: [String]) throws {
        let r = try run(ip, arguments)
        guard r.status == 0 else { throw CrucialError(.internal, "ip \(arguments.joined(separator: " ")) failed: \(r.err)") }
    }

    /// Runs a short command (`ip`, `tc`: milliseconds) on the calling thread.
    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        try runProcessBlocking(path, arguments)
    }
}
