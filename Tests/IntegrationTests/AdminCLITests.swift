import CrucialClient
import CrucialTestFunctions
import Foundation
import Testing

/// Runs an executable of this package, by default the `crucial` admin CLI, to completion.
func runCLI(_ arguments: [String], executable: String = "crucial") async throws -> (status: Int32, out: String, err: String) {
    try await runProcess(builtExecutable(executable), arguments)
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
}
