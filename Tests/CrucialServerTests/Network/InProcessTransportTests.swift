import CrucialClient
@testable import CrucialServerCore
import CrucialTesting
import Testing

/// Clients and a server's store in one process, without a socket: the proxies, the client's
/// pool, retries and sessions, the handshakes and the dispatcher, over InProcessTransport.
@Suite("In-process transport")
struct InProcessTransportTests {
    static func client(_ transport: InProcessTransport, token: String = "") -> CrucialClient {
        var configuration = CrucialClient.Configuration(servers: ["in-process:1"], authToken: token)
        configuration.transport = transport
        return CrucialClient(configuration: configuration)
    }

    @Test("Proxies of two clients share objects; a barrier's first party is answered late, when the second arrives")
    func proxiesAndParking() async throws {
        let server = CrucialServer(configuration: .init(port: 0, threads: 1))
        let transport = InProcessTransport(server: server)
        let (a, b) = (Self.client(transport), Self.client(transport))
        defer { a.close(); b.close() }
        try await AtomicLong("n", client: a).addAndGet(5)
        #expect(try await AtomicLong("n", client: b).incrementAndGet() == 6)
        async let first = CyclicBarrier("b", parties: 2, client: a).await()
        while try await CyclicBarrier("b", parties: 2, client: b).numberWaiting() == 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(try await CyclicBarrier("b", parties: 2, client: b).await() == 0)
        #expect(try await first == 1)
        try await server.shutdown()
    }

    @Test("Synchronizers made as Java makes them (CyclicBarrier(n), Semaphore(n), CountDownLatch(n)) are new objects with keys of their own")
    func javaShapedSynchronizers() async throws {
        let server = CrucialServer(configuration: .init(port: 0, threads: 1))
        let client = Self.client(InProcessTransport(server: server))
        defer { client.close() }
        let (b1, b2) = (CyclicBarrier(3, client: client), CyclicBarrier(3, client: client))
        #expect(b1.handle.isAnonymous && b1.handle.ref != b2.handle.ref)
        #expect(try await b1.parties() == 3)
        let semaphore = Semaphore(2, client: client)
        #expect(try await semaphore.availablePermits() == 2)
        let latch = CountDownLatch(1, client: client)
        try await latch.countDown()
        #expect(try await latch.count() == 0)
        #expect(server.store.list(typePrefix: "").count == 3)
        try await server.shutdown()
    }

    @Test("The handshake runs as over a socket: a server with a token refuses a client without it and serves one with it")
    func authentication() async throws {
        let server = CrucialServer(configuration: .init(port: 0, authToken: "a-long-enough-secret", threads: 1))
        let transport = InProcessTransport(server: server)
        let anonymous = Self.client(transport)
        defer { anonymous.close() }
        await #expect(throws: CrucialError.self) { try await anonymous.ping() }
        let member = Self.client(transport, token: "a-long-enough-secret")
        defer { member.close() }
        try await member.ping()
        try await server.shutdown()
    }

    @Test("A cut connection fails its waiting call; the client reconnects and the retried call is applied once")
    func cutAndRetry() async throws {
        let server = CrucialServer(configuration: .init(port: 0, threads: 1))
        let transport = InProcessTransport(server: server)
        let client = Self.client(transport)
        defer { client.close() }
        let counter = AtomicLong("c", client: client)
        try await counter.incrementAndGet()
        // A call parked on a latch loses its connection: the client reconnects and waits again.
        let latch = CountDownLatch("l", count: 1, client: client)
        async let opened: Void = latch.await()
        while server.store.list(typePrefix: "CountDownLatch").first?.waiters != 1 { try await Task.sleep(for: .milliseconds(5)) }
        transport.cutAll()
        while server.store.list(typePrefix: "CountDownLatch").first?.waiters != 1 { try await Task.sleep(for: .milliseconds(5)) }
        let other = Self.client(transport)
        defer { other.close() }
        try await CountDownLatch("l", count: 1, client: other).countDown()
        try await opened
        #expect(try await counter.incrementAndGet() == 2)
        try await server.shutdown()
    }

    @Test("Permits taken through the generic call stay with a live client past the lease, and go back when it is closed")
    func genericAcquireKeepsTheClientAlive() async throws {
        let server = CrucialServer(configuration: .init(port: 0, threads: 1, sessionLease: .milliseconds(600)))
        let transport = InProcessTransport(server: server)
        var configuration = CrucialClient.Configuration(servers: ["in-process:1"], sessionLease: .milliseconds(600))
        configuration.transport = transport
        let holder = CrucialClient(configuration: configuration)
        let observer = Self.client(transport)
        defer { observer.close() }
        let ref = ObjectRef(type: "Semaphore", key: "generic")
        _ = try await holder.call(ref, "acquire", [2], create: 3, persistent: true)  // outlives the holder
        // The server is not listening (no socket), so its lease sweep is run here by hand.
        try await Task.sleep(for: .seconds(2))  // more than three leases
        server.store.expireSessions()
        #expect(try await observer.call(ref, "availablePermits") == .int(1), "a live client's permits were taken back")
        holder.close()
        // Given back once the closed client's lease lapsed: swept by hand until then (the
        // bound only catches permits never given back; a loaded machine makes it slow).
        try await waitUntil(within: .seconds(60)) {
            _ = server.store.expireSessions()
            return try await observer.call(ref, "availablePermits") == .int(3)
        }
        try await server.shutdown()
    }
}
