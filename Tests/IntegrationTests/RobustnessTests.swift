import CrucialTesting
import CrucialTransport
import CrucialProcess
import CrucialClient
import CrucialCore
import Foundation
import NIOCore
import NIOPosix
import Testing

@Suite("Bad input and dying clients")
struct RobustnessTests {
    @Test("A request sent on a connection that has just closed fails (so that it is retried) instead of waiting forever")
    func requestOnClosedConnection() async throws {
        let server = try await TestServer()
        defer { server.stop() }
        let connection = try await ClientConnection.connect(
            host: "127.0.0.1", port: server.port, group: MultiThreadedEventLoopGroup.singleton, identity: ConnectionIdentity(name: "t", secret: ""), timeout: .seconds(10))
        #expect(try await connection.send(.ping(id: 1), id: 1).get().requestID == 1)
        // Closed as a server's idle timeout closes it: the client still holds the connection.
        connection.close()
        try await connection.closeFuture.get()
        let answer = connection.send(.ping(id: 2), id: 2)
        // Bounded only so that the failure shows as one instead of a hung suite.
        let outcome = answer.eventLoop.makePromise(of: String.self)
        answer.whenComplete { outcome.succeed((try? $0.get()).map { "answered \($0)" } ?? "\($0)") }
        let timer = answer.eventLoop.scheduleTask(in: .seconds(60)) { outcome.succeed("nothing within 60 s") }
        let text = try await outcome.futureResult.get()
        timer.cancel()
        #expect(text.contains("CONNECTION_LOST") && text.contains("closed"), "\(text)")
    }

    @Test("A client that dies while parked on a barrier is not a party of the next generation")
    func deadPartyIsWithdrawn() async throws {
        let server = try await TestServer()
        let client = server.client()
        defer { client.close() }
        let barrier = CyclicBarrier("b", parties: 2, client: client)
        #expect(try await barrier.parties() == 2)

        // A raw client parks on the barrier, then its connection dies.
        do {
            let doomed = try RawSocket(port: server.port)
            try await doomed.hello()
            doomed.send(
                .invoke(
                    Invoke(
                        id: 1, ref: barrier.ref, method: "await", create: Create(initial: .int(2)), clientID: 99, seq: 1)))
            try await waitUntil { try await barrier.numberWaiting() == 1 }
        }
        try await waitUntil { try await barrier.numberWaiting() == 0 }

        // Had the dead party counted, this lone await would pass at once.
        let lone = Task { try await barrier.await() }
        try await waitUntil { try await barrier.numberWaiting() == 1 }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await barrier.numberWaiting() == 1)
        let second = try await barrier.await()
        let first = try await lone.value
        #expect(Set([first, second]) == [0, 1])
        #expect(try await !barrier.isBroken())
    }

    @Test("A waiting acquire whose client dies never takes permits")
    func deadAcquireIsWithdrawn() async throws {
        let server = try await TestServer()
        let client = server.client()
        defer { client.close() }
        let semaphore = Semaphore("s", permits: 0, client: client)
        #expect(try await semaphore.availablePermits() == 0)
        do {
            let doomed = try RawSocket(port: server.port)
            try await doomed.hello()
            doomed.send(.invoke(Invoke(id: 1, ref: semaphore.ref, method: "acquire", args: [.int(1)], clientID: 7, seq: 1)))
            try await waitUntil { try await semaphore.queueLength() == 1 }
        }
        try await waitUntil { try await semaphore.queueLength() == 0 }
        try await semaphore.release(1)
        #expect(try await semaphore.availablePermits() == 1)
    }

    @Test("Garbage, truncated and oversized frames get clear errors; the server keeps serving")
    func badFrames() async throws {
        let server = try await TestServer(arguments: ["--max-frame-size", "65536"])
        let client = server.client()
        defer { client.close() }
        let counter = AtomicLong("counter", initial: 41, client: client)
        #expect(try await counter.incrementAndGet() == 42)

        // HTTP instead of our protocol: "GET " read as a length is far over the limit.
        var s = try RawSocket(port: server.port)
        s.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(try await s.receive()?.errorCode == .frameTooLarge)
        #expect(await s.isClosedByPeer())

        // A request before the handshake.
        s = try RawSocket(port: server.port)
        s.send(.ping(id: 5))
        #expect(try await s.receive()?.errorCode == .handshakeRequired)
        #expect(await s.isClosedByPeer())

        // A protocol version we do not speak.
        s = try RawSocket(port: server.port)
        s.send(.hello(Hello(protocolVersion: 99)))
        guard case .helloReply(let refused)? = try await s.receive() else {
            Issue.record("expected a HelloReply")
            return
        }
        #expect(refused.error?.code == .unsupportedVersion)
        #expect(await s.isClosedByPeer())

        // After the handshake: an undecodable payload is answered and the connection stays usable.
        s = try RawSocket(port: server.port)
        try await s.hello()
        s.sendFrame(payload: [0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])
        #expect(try await s.receive()?.errorCode == .badFrame)
        s.sendFrame(payload: [])
        #expect(try await s.receive()?.errorCode == .badRequest)
        s.send(.ping(id: 6))
        guard case .result(let pong)? = try await s.receive() else {
            Issue.record("expected a ping answer")
            return
        }
        #expect(pong.id == 6)
        // Values nested deeper than the limit are refused before protobuf-c recurses on them.
        var deep = Value.int(1)
        for _ in 0..<200 { deep = .list([deep]) }
        s.send(.invoke(Invoke(id: 7, ref: counter.ref, method: "set", args: [deep])))
        #expect(try await s.receive()?.errorCode == .badFrame)
        // An oversized length prefix: error, then close.
        s.send([0x7f, 0xff, 0xff, 0xff, 1, 2, 3])
        #expect(try await s.receive()?.errorCode == .frameTooLarge)
        #expect(await s.isClosedByPeer())

        // A truncated frame, then the peer vanishes.
        s = try RawSocket(port: server.port)
        try await s.hello()
        s.send([0, 0, 0, 100, 1, 2, 3])
        s = try RawSocket(port: server.port)  // the old socket closes here

        // A client that asks for more than the limit is stopped before sending.
        let big = AtomicDoubleArray("big", initial: [Double](repeating: 1, count: 20_000), client: client)
        do {
            _ = try await big.length()
            Issue.record("an oversized request must fail")
        } catch let e as CrucialError {
            #expect(e.code == .frameTooLarge)
        }

        // Through all of it the server served, and the counter did not change.
        #expect(try await counter.get() == 42)
        #expect(server.isRunning)
    }

    @Test("Unknown types and methods, wrong arguments and missing objects get precise errors")
    func badRequests() async throws {
        let server = try await TestServer()
        let client = server.client()
        defer { client.close() }
        let counter = AtomicLong("counter", initial: 7, client: client)
        #expect(try await counter.get() == 7)

        func code(_ body: () async throws -> Void) async -> CrucialError.Code? {
            do {
                try await body()
                return nil
            } catch let e as CrucialError {
                return e.code
            } catch {
                return .unspecified
            }
        }
        let ref = counter.ref
        #expect(await code { _ = try await client.invoke(ObjectRef(type: "NoSuchType", key: "x"), "get", create: Create(initial: .null)) } == .unknownType)
        #expect(await code { _ = try await client.invoke(ref, "explode") } == .unknownMethod)
        #expect(await code { _ = try await client.invoke(ref, "addAndGet", [.string("one")]) } == .badArguments)
        #expect(await code { _ = try await client.invoke(ref, "addAndGet", []) } == .badArguments)
        #expect(await code { _ = try await client.invoke(ref, "addAndGet", [.int(1), .int(2)]) } == .badArguments)
        #expect(await code { _ = try await client.invoke(ObjectRef(type: "AtomicLong", key: "missing"), "get") } == .notFound)
        #expect(await code { _ = try await client.invoke(ObjectRef(type: "AtomicLong", key: "bad"), "get", create: Create(initial: .string("x"))) } == .badInitialState)
        #expect(await code { _ = try await client.invoke(ObjectRef(type: "AtomicLong", key: "a\0b"), "get") } == .invalidArgument)
        #expect(await code { _ = try await AtomicInt("i", client: client).addAndGet(Int32.max); _ = try await client.invoke(ObjectRef(type: "AtomicInt", key: "i"), "addAndGet", [.int(Int64.max)]) } == .badArguments)
        let message: String
        do {
            _ = try await client.invoke(ref, "addAndGet", [.string("one")])
            message = ""
        } catch let e as CrucialError {
            message = e.message
        }
        #expect(message == "AtomicLong.addAndGet: argument 1 (delta) must be an int, got string \"one\"")
        #expect(try await counter.get() == 7)
    }

    @Test("A server with an auth token refuses clients without it")
    func authentication() async throws {
        let server = try await TestServer(arguments: ["--auth-token", "s3cret"])
        let anonymous = server.client(retries: 0)
        defer { anonymous.close() }
        do {
            try await anonymous.ping()
            Issue.record("an unauthenticated client must be refused")
        } catch let e as CrucialError {
            #expect(e.code == .unauthenticated)
        }
        let trusted = CrucialClient(configuration: .init(servers: [server.address], authToken: "s3cret"))
        defer { trusted.close() }
        try await trusted.ping()
    }

    @Test("SIGTERM stops the server gracefully and answers parked calls with SHUTTING_DOWN")
    func gracefulShutdown() async throws {
        let server = try await TestServer()
        let client = server.client(retries: 0)
        defer { client.close() }
        let future = SharedFuture<Int>("f", client: client)
        let waiting = Task { try await future.get() }
        try await waitUntil { (try await client.listObjects().first?.waiters ?? 0) == 1 }
        expectCleanExit(await server.stop())
        do {
            _ = try await waiting.value
            Issue.record("the parked get must be answered")
        } catch let e as CrucialError {
            #expect([.shuttingDown, .connectionLost].contains(e.code))
        }
    }

    @Test("A server or emulator whose starter died without stopping it stops itself")
    func orphanedServersStop() async throws {
        // A shell starts both with the parent watch naming the shell, prints their
        // pids and exits without stopping them, as a crashed test would.
        let shell = try await runProcess(
            "/bin/sh",
            [
                "-c",
                """
                export \(ParentWatch.environmentKey)=$$
                "$0" --port 0 --log-level warning >/dev/null & echo $!
                "$1" --port 0 --function f=/bin/true --log-level warning >/dev/null 2>&1 & echo $!
                sleep 1
                """,
                try TestServer.binary(), try builtExecutable("crucial-lambda-emulator"),
            ])
        let pids = shell.out.split(separator: "\n").compactMap { pid_t($0) }
        #expect(pids.count == 2)
        // Running, not merely unreaped: a zombie's state in /proc/PID/stat is Z.
        let alive = {
            pids.filter { pid in
                guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                    let close = stat.lastIndex(of: ")")
                else { return false }
                return !stat[close...].hasPrefix(") Z")
            }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !alive().isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(alive().isEmpty, "still running: \(alive())")
        alive().forEach { kill($0, SIGKILL) }
    }
}

extension RobustnessTests {
    @Test("The fuzz seed corpus and every input the fuzzer crashed on run through the harness without a crash")
    func replay() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dirs = ["tools/fuzz/corpus", "tools/fuzz/regressions"].map { root.appendingPathComponent($0).path }
        let seeds = try FileManager.default.contentsOfDirectory(atPath: dirs[0]).count
        #expect(seeds >= 30)
        let result = try await runProcess(try builtExecutable("crucial-fuzz"), dirs)
        #expect(result.status == 0, "\(result.out)\(result.err)")
        #expect(result.out.contains("inputs ran without a crash"), "\(result.out)")
    }
}
