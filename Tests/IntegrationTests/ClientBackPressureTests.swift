import CrucialClient
import Testing

/// The client's bound on calls in flight per connection, against a real socket: in memory
/// (ObjectSemanticsTests' in-process server) every call is answered before the next is
/// sent, so no pipeline ever reaches the bound there.
@Suite("A connection's pending-call limit, over TCP")
struct ClientBackPressureTests {
    @Test("A pipeline beyond maxPendingCalls fails the calls over the limit with PENDING_LIMIT, unsent")
    func pipelineOverLimit() async throws {
        let server = try await TestServer()
        var configuration = CrucialClient.Configuration(servers: [server.address])
        configuration.maxPendingCalls = 4
        configuration.connections = 1
        let client = CrucialClient(configuration: configuration)
        defer { client.close() }
        let counter = AtomicLong("limited", initial: 0, client: client)
        _ = try await counter.get()  // connected, created
        // On the connection's loop, all ten are written in one go: no answer can come between.
        let results = await withTaskExecutorPreference(client.taskExecutor) {
            await client.pipelineResults((0..<10).map { _ in .init(counter, "incrementAndGet") })
        }
        let refused = results.compactMap { r -> CrucialError? in if case .failure(let e) = r { e } else { nil } }
        #expect(refused.count == 6 && refused.allSatisfy { $0.code == .pendingLimit }, "\(results)")
        #expect(results.prefix(4).compactMap { try? $0.get() } == (1...4).map { .int(Int64($0)) })
        #expect(try await counter.get() == 4)
        expectCleanExit(await server.stop())
    }
}
