import CrucialClient
import CrucialTesting
import CrucialLambda
import CrucialTestFunctions
import Foundation
import Testing

/// Creates one ephemeral object inside a cloud thread: it joins the driver's session.
struct MakeScratch: Runnable {
    var key: String
    func run() async throws {
        try await AtomicLong(key, initial: 0).incrementAndGet()
    }
}

@Suite("Object lifetime: ephemeral objects belong to the application session")
struct LifetimeTests {
    @Test("Ending a session removes its ephemeral objects, those of its cloud threads too, but not persistent ones")
    func endSession() async throws {
        let server = InProcessServer(sharedTypes: [TestCentroids.self, Tally.self])
        let driver = server.client()
        let other = server.client()
        defer {
            driver.close()
            other.close()
        }
        try await AtomicLong("scratch", initial: 1, client: driver).incrementAndGet()
        try await Tally.Shared("tally", Tally(), client: driver).add(3)
        try await AtomicLong("model", initial: 7, persistent: true, client: driver).incrementAndGet()
        try await TestCentroids.Shared("kept", TestCentroids(k: 1, dims: 1), persistent: true, client: driver).updateCount()
        try await AtomicLong("someone-else", initial: 0, client: other).incrementAndGet()
        try await CloudExecutor(invoker: server.invoker, client: driver).invokeAll([MakeScratch(key: "from-thread")])

        let listed = try await driver.listObjects()
        let mine = listed.filter { $0.session == driver.session }.map(\.ref.key).sorted()
        #expect(mine == ["from-thread", "scratch", "tally"])
        #expect(listed.filter(\.persistent).allSatisfy { $0.session == 0 })

        #expect(try await driver.endSession() == 3)
        let left = try await other.listObjects().map(\.ref.key).sorted()
        #expect(left == ["kept", "model", "someone-else"])
        #expect(try await other.state(of: ObjectRef(type: "AtomicLong", key: "model")) == .int(8))
        do {
            _ = try await other.state(of: ObjectRef(type: "AtomicLong", key: "scratch"))
            Issue.record("an ended session's object must be gone")
        } catch let e as CrucialError {
            #expect(e.code == .notFound)
        }
        #expect(try await driver.endSession() == 0)
    }

    @Test("A driver that stops keeping its session alive loses its ephemeral objects when the lease lapses")
    func leaseLapses() async throws {
        let server = InProcessServer(sharedTypes: [TestCentroids.self, Tally.self])
        let watcher = server.client()
        defer { watcher.close() }
        let driver = server.client(configuration: .init(servers: [], sessionLease: .seconds(6)))
        try await AtomicLong("a", initial: 0, client: driver).incrementAndGet()
        try await AtomicLong("p", initial: 0, persistent: true, client: driver).incrementAndGet()

        // Kept alive, the session outlives its 6 s lease twice over (leases are generous:
        // on a loaded 2-core machine a keep-alive can be late by seconds).
        try await Task.sleep(for: .seconds(13))
        #expect(try await watcher.listObjects().map(\.ref.key).sorted() == ["a", "p"])

        // The driver "dies": no more keep-alives.
        driver.close()
        let start = ContinuousClock.now
        try await waitUntil { try await watcher.listObjects().map(\.ref.key) == ["p"] }
        #expect(ContinuousClock.now - start < .seconds(18))
    }

    @Test("A driver whose cloud threads made all its ephemeral objects keeps its session alive while it lives")
    func cloudThreadObjectsOutliveTheLease() async throws {
        // Sessions first heard of in a create get 4 s; the driver's keep-alives ask for 6 s. The
        // executor sends the driver's first keep-alive, and waits for its answer, before the cloud
        // thread runs: it used to race the thread's create from a task, and in full-suite runs on
        // this 2-core VM the busy cooperative pool held that task back until the session lapsed.
        let server = InProcessServer(sessionLease: .seconds(4))
        let watcher = server.client()
        defer { watcher.close() }
        let driver = server.client(configuration: .init(servers: [], sessionLease: .seconds(6)))
        try await CloudExecutor(invoker: server.invoker, client: driver).invokeAll([MakeScratch(key: "from-thread")])
        try await Task.sleep(for: .seconds(13))
        #expect(try await watcher.listObjects().map(\.ref.key) == ["from-thread"])
        #expect(try await driver.endSession() == 1)
        driver.close()
    }

    @Test("A session nobody keeps alive expires after the server's default lease")
    func serverDefaultLease() async throws {
        let server = InProcessServer(sessionLease: .seconds(6))
        let client = server.client(retries: 0)
        defer { client.close() }
        // Created straight through invoke with a session the server never heard a keep-alive for.
        let ref = ObjectRef(type: "AtomicLong", key: "orphan")
        _ = try await client.invoke(ref, "get", create: Create(initial: .int(0), session: 42), readOnly: true)
        // Listed under its session, unless a starved machine already let the lease lapse
        // (seen beside two busy loops: over 6 s between the create and the list).
        let listed = try await client.listObjects()
        #expect(listed.isEmpty || listed.first?.session == 42, "\(listed)")
        try await waitUntil { try await client.listObjects().isEmpty }
    }
}
