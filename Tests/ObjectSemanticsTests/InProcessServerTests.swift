import CrucialClient
import CrucialTestFunctions
import CrucialTesting
import Testing

/// CrucialTesting's `InProcessServer` as the README shows it to users.
@Suite("InProcessServer: the README's way to test shared objects")
struct InProcessServerTests {
    @Test("run { } makes the server's client and invoker the defaults of its task tree alone: proxies and cloud threads made without either reach it, and another server's run does not see its objects")
    func runBindsClientAndInvoker() async throws {
        let server = InProcessServer(sharedTypes: [Tally.self])
        let other = InProcessServer()
        try await server.run {
            let counter = AtomicLong("hits", initial: 0)
            try await counter.addAndGet(2)
            try await CloudExecutor().invokeAll([Increment(key: "hits", times: 3)])  // a task of this process
            #expect(try await counter.get() == 5)
            #expect(try await Tally.Shared("t", Tally()).add(4) == 4)
            let elsewhere = try await other.run { try await AtomicLong("hits", initial: 0).get() }
            #expect(elsewhere == 0, "the other server has its own objects")
        }
        // Outside run { }, the server is reached through a client of its own.
        let client = server.client()
        defer { client.close() }
        #expect(try await AtomicLong("hits", client: client).get() == 5)
        try await other.shutdown()
        try await server.shutdown()
    }

    @Test("cutConnections fails what waits and the clients reconnect: a retried call is applied once")
    func cutConnections() async throws {
        let server = InProcessServer()
        let counter = AtomicLong("n", initial: 0, client: server.client)
        #expect(try await counter.incrementAndGet() == 1)
        server.cutConnections()
        #expect(try await counter.incrementAndGet() == 2)
        try await server.shutdown()
    }
}
