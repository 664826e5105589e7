import CrucialTesting
import CrucialClient
import CrucialTestFunctions
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs an executable of this package, by default the `crucial` admin CLI, to completion.
func runCLI(_ arguments: [String], executable: String = "crucial", environment: [String: String] = [:]) async throws -> (status: Int32, out: String, err: String) {
    try await runProcess(builtExecutable(executable), arguments, environment: environment)
}

@Suite("The crucial admin CLI")
struct AdminCLITests {
    @Test("Every executable the package ships prints its release and protocol with --version", arguments: [
        "crucial", "crucial-server", "crucial-lambda-emulator", "crucial-demo", "crucial-bench",
    ])
    func version(_ executable: String) async throws {
        let (status, out, _) = try await runCLI(["--version"], executable: executable)
        #expect(status == 0)
        #expect(out == "\(CrucialVersion.release) (protocol 2)\n")
    }

    @Test("objects ls, get and rm against a running server")
    func objects() async throws {
        let server = try await TestServer.withTestTypes()
        let client = server.client()
        defer { client.close() }
        try await AtomicLong("hits", initial: 41, persistent: true, client: client).incrementAndGet()
        try await Tally.Shared("t", Tally(), client: client).add(2, note: "x")
        let at = ["--servers", server.address]

        let ls = try await runCLI(["objects", "ls"] + at)
        #expect(ls.status == 0, "\(ls.err)")
        let lines = ls.out.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(lines.first == ["TYPE", "KEY", "LIFETIME", "WAITERS"])
        #expect(lines.contains(["AtomicLong", "hits", "persistent", "0"]))
        #expect(lines.contains(["test.Tally", "t", "session", String(client.session, radix: 16), "0"]))
        #expect(lines.last == ["2", "objects"])

        let json = try await runCLI(["objects", "ls", "--type", "test.", "--json"] + at)
        #expect(json.out == "{\"key\":\"t\",\"persistent\":false,\"session\":\"\(String(client.session, radix: 16))\",\"type\":\"test.Tally\",\"waiters\":0}\n")

        let get = try await runCLI(["objects", "get", "test.Tally", "t"] + at)
        #expect(get.status == 0)
        #expect(get.out == "{\"history\":[\"x\"],\"total\":2}\n")

        let rm = try await runCLI(["objects", "rm", "AtomicLong", "hits"] + at)
        #expect(rm.status == 0)
        #expect(rm.out == "removed AtomicLong(\"hits\")\n")
        let again = try await runCLI(["objects", "rm", "AtomicLong", "hits"] + at)
        #expect(again.status == 1)
        #expect(again.err.contains("AtomicLong(\"hits\") does not exist"))
        let missing = try await runCLI(["objects", "get", "AtomicLong", "hits"] + at)
        #expect(missing.status != 0)
        #expect(missing.err.contains("does not exist"))

        let unreachable = try await runCLI(["objects", "ls", "--servers", "127.0.0.1:1"])
        #expect(unreachable.status != 0)
        #expect(unreachable.err.contains("no Crucial server reachable"))
    }

    @Test("ping, info and call against a running server; objects ls in pages, and from where --limit stopped")
    func serverCommands() async throws {
        let server = try await TestServer()
        defer { server.stop() }
        let at = ["--servers", server.address]

        let ping = try await runCLI(["ping"] + at)
        #expect(ping.status == 0 && ping.out.hasPrefix("\(server.address): PONG in "), "\(ping.out)\(ping.err)")
        let nobody = try await runCLI(["ping", "--servers", "127.0.0.1:1"])
        #expect(nobody.status == 1 && nobody.err.contains("127.0.0.1:1"))

        // call: JSON arguments, reads and writes, creation (persistent: it outlives the command's session).
        for i in 1...7 {
            let made = try await runCLI(["call", "AtomicLong", "k\(i)", "addAndGet", String(i), "--create", "0", "--persistent"] + at)
            #expect(made.status == 0 && made.out == "\(i)\n", "\(made.out)\(made.err)")
        }
        #expect(try await runCLI(["call", "SharedMap", "m", "put", "\"alice\"", "{\"score\": 12, \"tags\": [1, 2.5]}", "--create", "null", "--persistent"] + at).out == "null\n")
        #expect(try await runCLI(["call", "SharedMap", "m", "get", "alice"] + at).out == "{\"score\":12,\"tags\":[1,2.5]}\n")
        let wrong = try await runCLI(["call", "AtomicLong", "k1", "explode"] + at)
        #expect(wrong.status != 0 && wrong.err.contains("UNKNOWN_METHOD"), "\(wrong.err)")

        let info = try await runCLI(["info", "--json"] + at)
        #expect(info.status == 0, "\(info.err)")
        #expect(info.out.contains("\"objects\":8") && info.out.contains("\"persistent\":8") && info.out.contains("\"release\":\"\(CrucialVersion.release)\""), "\(info.out)")
        let human = try await runCLI(["info"] + at)
        #expect(human.out.contains("objects:       8 (8 persistent)"), "\(human.out)")

        // Pages of 3, stopping after 5, then on from there.
        let first = try await runCLI(["objects", "ls", "--page-size", "3", "--limit", "5"] + at)
        let keys = { (out: String) in out.split(separator: "\n").compactMap { line -> String? in
            let cells = line.split(separator: " ", omittingEmptySubsequences: true)
            return cells.count == 4 && cells[0] != "TYPE" ? "\(cells[0])/\(cells[1])" : nil
        } }
        #expect(keys(first.out) == ["AtomicLong/k1", "AtomicLong/k2", "AtomicLong/k3", "AtomicLong/k4", "AtomicLong/k5"], "\(first.out)")
        #expect(first.out.contains("more follow: crucial objects ls --after-type AtomicLong --after-key k5 --limit 5"), "\(first.out)")
        let rest = try await runCLI(["objects", "ls", "--after-type", "AtomicLong", "--after-key", "k5", "--page-size", "2"] + at)
        #expect(keys(rest.out) == ["AtomicLong/k6", "AtomicLong/k7", "SharedMap/m"], "\(rest.out)")
        #expect(rest.out.hasSuffix("3 objects\n") && !rest.out.contains("more follow"))
    }

    @Test("In a cluster with a member paused, objects ls and info still answer with the others' objects and name the missing member")
    func memberDown() async throws {
        let cluster = try await TestCluster(rf: 1, leaseTTL: 60)  // its members and etcd go when it does
        for id in ["a", "b", "c"] { try await cluster.start(id) }
        let client = cluster.client()
        defer { client.close() }
        for i in 0..<30 { try await AtomicLong("n\(i)", initial: 0, persistent: true, client: client).incrementAndGet() }
        let c = try #require(cluster["c"])
        let held = try await c.client().listObjects().count
        kill(c.server.processIdentifier, SIGSTOP)
        defer { kill(c.server.processIdentifier, SIGCONT) }

        let at = ["--servers", try #require(cluster["a"]).address]
        let ls = try await runCLI(["objects", "ls", "--json"] + at)
        #expect(ls.status == 1)
        #expect(ls.err.contains("c (\(c.address)) did not answer"), "\(ls.err)")
        #expect(ls.out.split(separator: "\n").count == 30 - held, "\(held) on c; listed: \(ls.out)")
        let info = try await runCLI(["info"] + at)
        #expect(info.status == 1)
        #expect(info.out.split(separator: "\n").contains { $0.hasPrefix("c ") && $0.hasSuffix("unreachable") }, "\(info.out)")
    }

    @Test("top shows the server and the calls per second per type and method while a client works")
    func top() async throws {
        let server = try await TestServer()
        defer { server.stop() }
        let client = server.client()
        defer { client.close() }
        let counter = AtomicLong("busy", initial: 0, client: client)
        let load = Task {
            while !Task.isCancelled { _ = try? await counter.incrementAndGet() }
        }
        defer { load.cancel() }
        try await waitUntil { try await counter.get() >= 20 }  // the load is under way
        let top = try await runCLI(["top", "--servers", server.address, "--interval", "1", "--iterations", "3"])
        #expect(top.status == 0, "\(top.err)")
        let screens = top.out.components(separatedBy: "crucial top — ")
        #expect(screens.count == 4, "three screens: \(top.out)")
        #expect(screens[1].contains("calls/s: measuring"))
        let lines = screens.dropFirst(2).flatMap { $0.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) } }
        #expect(lines.contains { $0.count >= 9 && $0[1] == server.address && $0.last == "up" }, "\(top.out)")
        let rates = lines.filter { $0.count == 3 && $0[0] == "AtomicLong" && $0[1] == "incrementAndGet" }.compactMap { Double($0[2]) }
        #expect(rates.contains { $0 > 0 }, "\(top.out)")
    }
}
