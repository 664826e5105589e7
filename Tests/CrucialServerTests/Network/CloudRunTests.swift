import CrucialClient
import CrucialLambda
@testable import CrucialServerCore
import Foundation
import Synchronization
import Testing

/// What the cloud threads of these tests saw, by test tag.
private let seen = Mutex<[String: [String]]>([:])

private func record(_ tag: String, _ what: String) { seen.withLock { $0[tag, default: []].append(what) } }
private func records(_ tag: String) -> [String] { seen.withLock { $0[tag] ?? [] } }

private struct Broke: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}

/// Waits at a barrier of `parties`; records how that ended.
private struct Meet: Runnable {
    let tag: String
    let parties: Int
    func run() async throws {
        do {
            try await CyclicBarrier("\(tag)-barrier", parties: parties).await()
            record(tag, "passed")
        } catch let error as CrucialError {
            record(tag, "\(error.code.name): \(error.message)")
            throw error
        }
    }
}

/// Throws at once.
private struct Throw: Runnable {
    let reason: String
    func run() async throws { throw Broke(reason: reason) }
}

/// Adds one to a counter.
private struct Count: Runnable {
    let key: String
    func run() async throws { _ = try await AtomicLong(key).incrementAndGet() }
}

/// Runs of cloud threads in one process (the in-process invoker and transport): the first
/// failure fails the run whatever order the joins take, the servers end the other threads'
/// parked calls with CANCELLED naming it, and joins honour cancellation.
@Suite("Runs of cloud threads fail fast and whole", .timeLimit(.minutes(2)))
struct CloudRunTests {
    /// A server, its transport, a driver on it, and an invoker whose functions reach it.
    struct Stack {
        let server = CrucialServer(configuration: .init(port: 0, threads: 1))
        let transport: InProcessTransport
        let driver: CrucialClient
        let invoker: InProcessInvoker

        init() {
            transport = InProcessTransport(server: server)
            var configuration = CrucialClient.Configuration(servers: ["in-process:1"])
            configuration.transport = transport
            driver = CrucialClient(configuration: configuration)
            invoker = InProcessInvoker(transport: transport)
        }

        func client(run: UInt64? = nil) -> CrucialClient {
            var configuration = CrucialClient.Configuration(servers: ["in-process:1"], retries: 1)
            configuration.transport = transport
            configuration.run = run
            return CrucialClient(configuration: configuration)
        }

        func stop() async throws {
            driver.close()
            try await server.shutdown()
        }
    }

    /// Waits (bounded: only a hang fails) until `condition` holds.
    static func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
        let end = ContinuousClock.now + .seconds(30)
        while try await !condition() {
            guard ContinuousClock.now < end else {
                Issue.record("never: \(what)")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test("A thread that throws while 7 wait at a barrier fails the run at once, joined first, last or in a task group")
    func firstFailureFailsTheRun() async throws {
        for order in ["in start order", "failing one last", "task group"] {
            let stack = Stack()
            let tag = "fail-\(order)"
            let barrier = CyclicBarrier("\(tag)-barrier", parties: 8, client: stack.driver)
            let waiting = (0..<7).map { _ in CloudThread(Meet(tag: tag, parties: 8), invoker: stack.invoker, client: stack.driver) }
            for t in waiting { t.start() }
            try await Self.eventually("7 parties wait") { try await barrier.numberWaiting() == 7 }
            let failing = CloudThread(Throw(reason: "the input was bad"), invoker: stack.invoker, client: stack.driver)
            failing.start()
            let threads = order == "failing one last" ? waiting + [failing] : [waiting[0], failing] + waiting.dropFirst()
            let error: CloudFunctionError
            if order == "task group" {
                error = try await #require(throws: CloudFunctionError.self) {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for t in threads { group.addTask { try await t.join() } }
                        try await group.waitForAll()
                    }
                }
            } else {
                error = try await #require(throws: CloudFunctionError.self) {
                    for t in threads { try await t.join() }
                }
            }
            #expect(error.thread == 8, "\(order)")
            #expect(error.errorMessage == "the input was bad")
            #expect(error.description.hasPrefix("cloud thread 8 ("), "\(error)")
            // Every parked party got CANCELLED naming the failed thread; none is left waiting.
            try await Self.eventually("the 7 parties are told") { records(tag).count == 7 }
            for r in records(tag) {
                #expect(r.hasPrefix("CANCELLED: run cancelled because cloud thread 8 ("), "\(r)")
                #expect(r.contains("the input was bad"), "\(r)")
            }
            try await Self.eventually("no party waits") { try await barrier.numberWaiting() == 0 }
            // Every other join throws the same first failure.
            for t in waiting {
                let again = try await #require(throws: CloudFunctionError.self) { try await t.join() }
                #expect(again.thread == 8)
            }
            // The driver goes on: a thread started now is in a new run.
            let next = CloudThread(Count(key: "\(tag)-after"), invoker: stack.invoker, client: stack.driver)
            try await next.run()
            #expect(next.number == 1)
            try await stack.stop()
        }
    }

    @Test("CloudExecutor.invokeAll throws the first failure without waiting for threads parked for ever")
    func executorFailsFast() async throws {
        let stack = Stack()
        let tag = "executor"
        let executor = CloudExecutor(invoker: stack.invoker, client: stack.driver)
        let meets = (0..<3).map { _ in Meet(tag: tag, parties: 5) }
        let parties = Task { try await executor.invokeAll(meets) }
        let barrier = CyclicBarrier("\(tag)-barrier", parties: 5, client: stack.driver)
        try await Self.eventually("3 parties wait") { try await barrier.numberWaiting() == 3 }
        // Another executor call of the same driver is in the same run: its failure ends the first.
        let error = try await #require(throws: CloudFunctionError.self) { try await executor.invokeAll([Throw(reason: "one bad part")]) }
        #expect(error.thread == 4)
        let first = try await #require(throws: CloudFunctionError.self) { try await parties.value }
        #expect(first.errorMessage == "one bad part")
        try await Self.eventually("the 3 parties are told") { records(tag).count == 3 }
        #expect(records(tag).allSatisfy { $0.hasPrefix("CANCELLED: run cancelled because cloud thread 4") }, "\(records(tag))")
        try await stack.stop()
    }

    @Test("A thread created with failsRun: false fails alone; the others go on")
    func failingAlone() async throws {
        let stack = Stack()
        let alone = CloudThread(Throw(reason: "mine only"), invoker: stack.invoker, failsRun: false, client: stack.driver)
        let counters = (0..<3).map { _ in CloudThread(Count(key: "alone"), invoker: stack.invoker, client: stack.driver) }
        alone.start()
        await #expect(throws: CloudFunctionError.self) { try await alone.join() }
        for t in counters { try await t.run() }
        #expect(try await AtomicLong("alone", client: stack.driver).get() == 3)
        #expect(counters.map(\.number) == [2, 3, 4], "one run")
        try await stack.stop()
    }

    @Test("join() honours the cancellation of the task waiting in it; the thread goes on")
    func joinIsCancellable() async throws {
        let stack = Stack()
        let tag = "cancel-join"
        let parked = CloudThread(Meet(tag: tag, parties: 2), invoker: stack.invoker, client: stack.driver)
        parked.start()
        let barrier = CyclicBarrier("\(tag)-barrier", parties: 2, client: stack.driver)
        try await Self.eventually("it waits") { try await barrier.numberWaiting() == 1 }
        let joining = Task { try await parked.join() }
        joining.cancel()
        await #expect(throws: CancellationError.self) { try await joining.value }
        // The thread still waits; the second party releases it.
        try await barrier.await()
        try await parked.join()
        #expect(records(tag) == ["passed"])
        try await stack.stop()
    }

    @Test("CancelRun closes the run's connections (parked calls end with CANCELLED) and refuses its handshakes, not others'")
    func cancelRunOnTheServer() async throws {
        let stack = Stack()
        let thread = stack.client(run: 0xabc)
        let other = stack.client(run: 0xdef)
        defer { thread.close(); other.close() }
        let parked = Task { try await CountDownLatch("gate", count: 1, client: thread).await() }
        try await Self.eventually("it waits") { stack.server.store.list(typePrefix: "CountDownLatch").first?.waiters == 1 }
        #expect(try await stack.driver.cancelRun(0xabc, reason: "cloud thread 2 (T) failed: boom") >= 1)
        let error = try await #require(throws: CrucialError.self) { try await parked.value }
        #expect(error.code == .cancelled)
        #expect(error.message == "run cancelled because cloud thread 2 (T) failed: boom")
        let late = stack.client(run: 0xabc)
        defer { late.close() }
        await #expect(throws: CrucialError.self) { try await late.ping() }
        try await other.ping()
        try await stack.driver.ping()
        await #expect(throws: CrucialError.self) { try await stack.driver.cancelRun(0, reason: "") }
        try await stack.stop()
    }

    /// An invoker that only counts its invocations.
    final class CountingInvoker: CloudInvoker {
        let count = Mutex(0)
        func invoke(function: String, payload: Data) async throws -> Data {
            count.withLock { $0 += 1 }
            return Data("null".utf8)
        }
    }

    @Test("A driver with a wrong token is refused UNAUTHENTICATED before any function is invoked")
    func wrongTokenBeforeLaunch() async throws {
        let server = CrucialServer(configuration: .init(port: 0, authToken: "the-right-secret-1234", threads: 1))
        let transport = InProcessTransport(server: server)
        var configuration = CrucialClient.Configuration(servers: ["in-process:1"], authToken: "a-wrong-secret-12345")
        configuration.transport = transport
        let driver = CrucialClient(configuration: configuration)
        defer { driver.close() }
        let invoker = CountingInvoker()
        let threads = (0..<4).map { _ in CloudThread(Count(key: "never"), invoker: invoker, client: driver) }
        for t in threads { t.start() }
        let error = try await #require(throws: CrucialError.self) { for t in threads { try await t.join() } }
        #expect(error.code == .unauthenticated, "\(error)")
        #expect(error.message.contains("refused this driver"), "\(error)")
        #expect(invoker.count.withLock { $0 } == 0, "no function was invoked")
        try await server.shutdown()
    }

    @Test("joinAll throws the first failure as it happens, even of a thread that fails alone and was started last")
    func joinAllFailsFast() async throws {
        let stack = Stack()
        let tag = "join-all"
        let parked = CloudThread(Meet(tag: tag, parties: 2), invoker: stack.invoker, client: stack.driver)
        let failing = CloudThread(Throw(reason: "last one"), invoker: stack.invoker, failsRun: false, client: stack.driver)
        let error = try await #require(throws: CloudFunctionError.self) { try await CloudThread.joinAll([parked, failing]) }
        #expect(error.errorMessage == "last one")
        // It failed alone: the parked thread still waits, and goes on when released.
        try await CyclicBarrier("\(tag)-barrier", parties: 2, client: stack.driver).await()
        try await parked.join()
        try await stack.stop()
    }
}
