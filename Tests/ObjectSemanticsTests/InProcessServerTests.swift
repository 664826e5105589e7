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

    @Test("One CrucialContext carries the client and the invoker: CrucialClient.shared and CloudInvokers.default are its views, a nested context without an invoker keeps the enclosing one's, and the context ends with its task")
    func contextCarriesClientAndInvoker() async throws {
        let server = InProcessServer()
        let other = InProcessServer()
        let otherClient = other.client()
        defer { otherClient.close() }
        try await server.run {
            #expect(CrucialContext.current.client === server.client && CrucialClient.shared === server.client)
            #expect(try CloudInvokers.default is InProcessInvoker && CrucialContext.currentInvoker is InProcessInvoker)
            try await CrucialContext(client: otherClient).run {
                #expect(CrucialClient.shared === otherClient)
                #expect(CrucialContext.current.invoker is InProcessInvoker, "the enclosing context's invoker")
                _ = try await AtomicLong("where", initial: 0).incrementAndGet()
                // A cloud function runs in the context of its invocation: the in-process invoker's
                // functions reach the invoker's server (the enclosing context's), as a Lambda
                // bootstrap reaches the servers its payload names.
                try await CloudExecutor().invokeAll([Increment(key: "where", times: 2)])
            }
            #expect(CrucialClient.shared === server.client, "back to the server's context")
            #expect(try await AtomicLong("where", initial: 0).get() == 2, "the function's increments, not the nested context's")
        }
        #expect(try await AtomicLong("where", client: otherClient).get() == 1, "the nested context's increment alone")
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
