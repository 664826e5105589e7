import CrucialTesting
import CrucialClient
import CrucialProcess
import CrucialLambda
import CrucialTestFunctions
import Foundation
import Testing

/// A runnable the bootstrap does not know.
struct NotInBootstrap: Runnable {
    func run() async throws {}
}

@Suite("Cloud threads on crucial-lambda-emulator with a real bootstrap")
struct CloudThreadTests {
    @Test("50 concurrent cloud threads increment one counter exactly 1,000 times (16 at a time, the rest queued)")
    func fiftyThreads() async throws {
        let server = try await TestServer()
        let emulator = try await TestEmulator(concurrency: 16)
        let client = server.client()
        defer { client.close(); emulator.stop() }
        let threads = (0..<50).map { _ in
            CloudThread(Increment(key: "hits", times: 20), invoker: emulator.invoker(), client: client)
        }
        for t in threads { t.start() }
        for t in threads { try await t.join() }
        #expect(try await AtomicLong("hits", initial: 0, client: client).get() == 1_000)
        expectCleanExit(await emulator.stop())
    }

    @Test("An error thrown by the runnable comes back at join() with its Swift type and message")
    func remoteErrorAtJoin() async throws {
        let server = try await TestServer()
        let emulator = try await TestEmulator()
        let client = server.client()
        defer { client.close(); emulator.stop() }
        let thread = CloudThread(Fail(message: "the input was bad"), invoker: emulator.invoker(), client: client)
        thread.start()
        let error = try await #require(throws: CloudFunctionError.self) { try await thread.join() }
        #expect(error.errorType == "CrucialTestFunctions.TestFailure")
        #expect(error.errorMessage == "the input was bad")
        #expect(error.function == "CrucialTestFunctions.Fail")
        #expect(error.attempts == 1)
        #expect(error.requestID != nil)
        // join() again reports the same failure; join() before start() is refused.
        await #expect(throws: CloudFunctionError.self) { try await thread.join() }
        await #expect(throws: CloudThreadError.notStarted) { try await CloudThread(Fail(message: ""), client: client).join() }
    }

    @Test("A runnable over the timeout is killed and reported as Sandbox.Timedout")
    func timeout() async throws {
        let server = try await TestServer()
        // 5 s, not less: the fresh process the check below starts must fit in it on a loaded
        // machine (at 1.5 s, a cold start beside the whole suite on 2 cores timed out too).
        let emulator = try await TestEmulator(timeout: 5)
        let client = server.client()
        defer { client.close(); emulator.stop() }
        let start = ContinuousClock.now
        let error = try await #require(throws: CloudFunctionError.self) {
            try await CloudThread(Sleep(seconds: 300), invoker: emulator.invoker(), client: client).run()
        }
        #expect(error.errorType == "Sandbox.Timedout")
        #expect(error.errorMessage.contains("Task timed out after 5.00 seconds"))
        // Killed long before its 300 s sleep ends; the bound only catches a kill that never came
        // (a loaded machine makes the process start late, never the kill come that late).
        #expect(ContinuousClock.now - start < .seconds(120))
        // The environment was reset: the next invocation runs in a fresh process and succeeds.
        let squares = try await CloudExecutor(invoker: emulator.invoker(), client: client).invokeAll([Square(x: 3)])
        #expect(squares == [9])
    }

    @Test("A runnable that traps is reported as Runtime.ExitError and the next invocation gets a fresh process")
    func crash() async throws {
        let server = try await TestServer()
        let emulator = try await TestEmulator(concurrency: 1)
        let client = server.client()
        defer { client.close(); emulator.stop() }
        let executor = CloudExecutor(invoker: emulator.invoker(), client: client)
        let before = try await executor.invokeAll([ProcessID()])
        let warm = try await executor.invokeAll([ProcessID()])
        #expect(before == warm, "a warm process serves the second invocation")
        let error = try await #require(throws: CloudFunctionError.self) {
            try await CloudThread(Crash(), invoker: emulator.invoker(), client: client).run()
        }
        #expect(error.errorType == "Runtime.ExitError")
        #expect(error.errorMessage.contains("Runtime exited with error: signal"))
        #expect(error.log?.contains("about to trap") == true)
        let after = try await executor.invokeAll([ProcessID()])
        #expect(after != before)
    }

    @Test("After the bootstrap file is rebuilt, and after SIGHUP, new invocations run in fresh processes")
    func staleBootstrap() async throws {
        let dir = URL(fileURLWithPath: ScratchFolders.path("emulator-reload"))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let original = try builtExecutable("crucial-test-functions")
        let bootstrap = dir.appendingPathComponent("bootstrap").path
        try FileManager.default.copyItem(atPath: original, toPath: bootstrap)
        let server = try await TestServer()
        let emulator = try await TestEmulator(concurrency: 2, bootstrap: bootstrap)
        let client = server.client()
        defer { client.close(); emulator.stop() }
        let executor = CloudExecutor(invoker: emulator.invoker(), client: client)
        let first = try await executor.invokeAll([ProcessID()])[0]
        #expect(try await executor.invokeAll([ProcessID()])[0] == first, "a warm process serves the second invocation")

        // A rebuild: a new file at the same path, as the linker writes one.
        try FileManager.default.removeItem(atPath: bootstrap)
        try FileManager.default.copyItem(atPath: original, toPath: bootstrap)
        let rebuilt = try await executor.invokeAll([ProcessID()])[0]
        #expect(rebuilt != first, "the process of the old file served an invocation after the rebuild")
        #expect(try await executor.invokeAll([ProcessID()])[0] == rebuilt, "the new process stays warm")
        // Killed when it was found stale; reaped a moment later (the bound only catches a process left running).
        for _ in 0..<200 where kill(first, 0) == 0 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(kill(first, 0) != 0, "the old file's process still runs")

        // SIGHUP, handled as it arrives: the next invocations move to a fresh process.
        #expect(kill(emulator.process.processIdentifier, SIGHUP) == 0)
        var after = rebuilt
        for _ in 0..<100 where after == rebuilt {
            after = try await executor.invokeAll([ProcessID()])[0]
            if after == rebuilt { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(after != rebuilt)
        #expect(try await executor.invokeAll([ProcessID()])[0] == after)
    }

    @Test("A SIGTERM sent as soon as the emulator says it listens stops it gracefully (13 of 20 were once lost, and the emulator ran on)")
    func stopAtOnce() async throws {
        let emulator = try builtExecutable("crucial-lambda-emulator")
        // Each attempt's end: how it stopped, or that it did not (the SIGTERM was lost).
        let endings = try await offCooperativePool { () throws -> [String] in
            var endings: [String] = []
            for _ in 1...20 {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: emulator)
                p.arguments = ["--port", "0", "--function", "crucial=/bin/true", "--log-level", "warning"]
                let out = Pipe()
                p.standardOutput = out
                try p.run()
                // Read up to the ready line, then signal at once.
                var seen = Data()
                while !String(decoding: seen, as: UTF8.self).contains("listening on") {
                    let chunk = out.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    seen.append(chunk)
                }
                kill(p.processIdentifier, SIGTERM)
                kill(p.processIdentifier, SIGCONT)  // as ServerProcess.stop: in case something stopped it
                // The bound only catches a lost signal, which left the emulator running for good.
                // An exited child Foundation has not reaped yet (a zombie) has ended: the
                // kernel's word on how counts (Foundation was once a minute late on a loaded machine).
                guard let ending = ServerProcess.termination(of: p, within: .seconds(60)) else {
                    // Its state says whether it ran on or was stopped (SIGSTOP) from elsewhere.
                    let stat = (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/stat", encoding: .utf8)) ?? "?"
                    kill(p.processIdentifier, SIGKILL)
                    ServerProcess.awaitExit(p)
                    endings.append("still running 60 s after SIGTERM: /proc stat \(stat.prefix(80))")
                    break
                }
                endings.append(ending.description)
            }
            return endings
        }
        #expect(endings.count == 20 && endings.allSatisfy { $0 == "exit 0" }, "\(endings)")
    }

    @Test("invokeAll returns callables' outputs in order; invokeIterativeTask covers the range once")
    func executor() async throws {
        let server = try await TestServer()
        let emulator = try await TestEmulator()
        let client = server.client()
        defer { client.close(); emulator.stop() }
        let executor = CloudExecutor(invoker: emulator.invoker(), client: client)
        #expect(try await executor.invokeAll((0..<12).map { Square(x: $0) }) == (0..<12).map { $0 * $0 })
        try await executor.invokeIterativeTask(SumIndices(key: "sum"), workers: 7, from: 0, to: 1_000)
        #expect(try await AtomicLong("sum", initial: 0, client: client).get() == 499_500)
        try await executor.invokeAll([Increment(key: "x", times: 1)])  // Runnables too
        #expect(try await AtomicLong("x", initial: 0, client: client).get() == 1)
    }

    @Test("A retried runnable sees its first attempt's shared state and completes once")
    func retries() async throws {
        let server = try await TestServer()
        let emulator = try await TestEmulator()
        let client = server.client()
        defer { client.close(); emulator.stop() }
        let noRetry = try await #require(throws: CloudFunctionError.self) {
            try await CloudThread(FailOnce(key: "a"), invoker: emulator.invoker(), client: client).run()
        }
        #expect(noRetry.errorMessage == "first attempt fails on purpose")
        let retry = RetryPolicy(retries: 2, backoff: .milliseconds(10))
        try await CloudThread(FailOnce(key: "b"), invoker: emulator.invoker(), retry: retry, client: client).run()
        #expect(try await AtomicLong("b-attempts", initial: 0, client: client).get() == 2)
        #expect(try await AtomicLong("b-total", initial: 0, client: client).get() == 1)
        #expect(try await CloudExecutor(invoker: emulator.invoker(), client: client).invokeAll([Echo(text: "hi")]) == [["hi", "1"]])
    }

    @Test("A cloud thread that crashes holding a semaphore's only permit does not deadlock the others: its permit comes back when its keep-alive lapses")
    func crashedHolder() async throws {
        let server = try await TestServer()
        let emulator = try await TestEmulator(concurrency: 8)
        // A 6 s keep-alive lease, which the functions inherit: a dead holder is noticed after it.
        // (Not shorter: on a loaded machine a live client's keep-alive can be seconds late, and
        // a lapse would also end the driver's session, taking these ephemeral objects with it.)
        let client = CrucialClient(configuration: .init(servers: [server.address], sessionLease: .seconds(6)))
        defer { client.close(); emulator.stop() }
        let retry = RetryPolicy(retries: 2, backoff: .milliseconds(10))
        let executor = CloudExecutor(invoker: emulator.invoker(), retry: retry, client: client)
        try await executor.invokeAll([CrashHolding(key: "permit-crash", crash: true)] + (0..<5).map { _ in CrashHolding(key: "permit-crash", crash: false) })
        let done = try await AtomicLong("permit-crash-done", initial: 0, client: client).get()
        #expect(done == 6, "each of the 6 runnables finishes once")
        #expect(try await Semaphore("permit-crash", permits: 1, client: client).availablePermits() == 1)
    }

    @Test("Refusals are precise: unknown function type, unknown Lambda function, no emulator")
    func refusals() async throws {
        let server = try await TestServer()
        let emulator = try await TestEmulator()
        let client = server.client()
        defer { client.close(); emulator.stop() }
        // failsRun: false, or its failure would end the client's run and, when the machine is
        // slow enough, be what the next invocation below throws (seen beside two busy loops).
        let unknown = try await #require(throws: CloudFunctionError.self) {
            try await CloudThread(NotInBootstrap(), invoker: emulator.invoker(), failsRun: false, client: client).run()
        }
        #expect(unknown.errorType == "Crucial.UnknownFunction")
        #expect(unknown.errorMessage.contains("CrucialTestFunctions.Fail"), "lists what is registered")
        let missing = try await #require(throws: CloudThreadError.self) {
            try await CloudExecutor(invoker: emulator.invoker(function: "nope"), client: client).invokeAll([Square(x: 1)])
        }
        #expect(missing == .invocationRefused(
            status: 404, type: "ResourceNotFoundException", message: "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"))
        await emulator.stop()
        let down = try await #require(throws: CloudThreadError.self) {
            try await CloudThread(Increment(key: "k", times: 1), invoker: emulator.invoker(), client: client).run()
        }
        guard case .unreachable(let message) = down else { Issue.record("expected .unreachable, got \(down)"); return }
        #expect(message.contains("crucial-lambda-emulator"))
    }

    @Test("The in-process invoker runs the same encode, look-up and decode path; runInCloud() is a cloud thread run to its end")
    func inProcess() async throws {
        let server = try await TestServer()
        let client = server.client()
        defer { client.close() }
        let executor = CloudExecutor(invoker: InProcessInvoker(), client: client)
        #expect(try await executor.invokeAll([Square(x: 5), Square(x: 6)]) == [25, 36])
        try await CloudThread(Increment(key: "local", times: 3), invoker: InProcessInvoker(), client: client).run()
        // runInCloud() is CloudThread(...).run(): the port of `try await worker.run()`.
        try await Increment(key: "local", times: 2).runInCloud(invoker: InProcessInvoker(), client: client)
        #expect(try await AtomicLong("local", client: client).get() == 5)
        let error = try await #require(throws: CloudFunctionError.self) {
            try await Fail(message: "here").runInCloud(invoker: InProcessInvoker(), client: client)
        }
        #expect(error.errorType == "CrucialTestFunctions.TestFailure")
        #expect(error.errorMessage == "here")
    }
}
