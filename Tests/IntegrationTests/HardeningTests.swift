import CrucialTesting
import CrucialTransport
import AsyncHTTPClient
import CrucialClient
import Foundation
import NIOCore
import Testing

/// Authentication, TLS, limits and metrics of a real `crucial-server`.
@Suite("Hardening: authentication, TLS, limits, metrics", .timeLimit(.minutes(2)))
struct HardeningTests {
    // MARK: Authentication

    @Test("A wrong secret is refused, the right one proved without sending it, an anonymous client refused")
    func wrongSecret() async throws {
        let server = try await TestServer(arguments: ["--auth-token", "correct horse battery staple"])
        let wrong = CrucialClient(configuration: .init(servers: [server.address], authToken: "Tr0ub4dor&3", retries: 0))
        defer { wrong.close() }
        await #expect(throws: CrucialError(.unauthenticated, "wrong auth token")) { try await wrong.ping() }
        let anonymous = server.client(retries: 0)
        defer { anonymous.close() }
        await #expect(throws: CrucialError(.unauthenticated, "this server requires an auth token (CRUCIAL_AUTH_TOKEN)")) {
            try await anonymous.ping()
        }
        let right = CrucialClient(configuration: .init(servers: [server.address], authToken: "correct horse battery staple"))
        defer { right.close() }
        #expect(try await AtomicLong("n", initial: 0, client: right).incrementAndGet() == 1)

        // What a client sends in its handshake never contains the secret.
        let raw = try RawSocket(port: server.port)
        let hello = Hello(clientName: "raw", clientNonce: HandshakeAuth.nonce())
        raw.send(.hello(hello))
        guard case .challenge(let nonce)? = try await raw.receive() else { throw CrucialError(.protocolViolation, "no challenge") }
        let proof = HandshakeAuth.clientProof(
            secret: "correct horse battery staple", clientNonce: hello.clientNonce, serverNonce: nonce, clientName: "raw")
        var sent = ByteBuffer()
        WireCodec.encode(.hello(hello), into: &sent)
        WireCodec.encode(.authenticate(proof: proof), into: &sent)
        #expect(!String(decoding: sent.readableBytesView, as: UTF8.self).contains("horse"))
        raw.send(.authenticate(proof: proof))
        guard case .helloReply(let reply)? = try await raw.receive() else { throw CrucialError(.protocolViolation, "no HelloReply") }
        #expect(reply.error == nil)
        // The server proved the secret too, over both nonces.
        #expect(
            reply.serverProof
                == HandshakeAuth.serverProof(secret: "correct horse battery staple", serverNonce: nonce, clientNonce: hello.clientNonce))
    }

    @Test("Secrets from files (--auth-token-file, --admin-token-file; a trailing newline is no part of them); a secret with its file, an empty file or a missing one are refused")
    func tokenFiles() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (auth, admin, empty) = ("\(dir)/auth", "\(dir)/admin", "\(dir)/empty")
        try "from a file\n".write(toFile: auth, atomically: true, encoding: .utf8)
        try "admin from a file\n".write(toFile: admin, atomically: true, encoding: .utf8)
        try "\n".write(toFile: empty, atomically: true, encoding: .utf8)
        let server = try await TestServer(arguments: ["--auth-token-file", auth, "--admin-token-file", admin])
        let app = CrucialClient(configuration: .init(servers: [server.address], authToken: "from a file", retries: 0))
        defer { app.close() }
        let shared = AtomicLong("p", initial: 0, persistent: true, client: app)
        #expect(try await shared.incrementAndGet() == 1)
        await #expect(throws: CrucialError.self) { _ = try await app.remove(shared.handle.ref) }  // not an admin
        let ops = CrucialClient(configuration: .init(servers: [server.address], authToken: "admin from a file", retries: 0))
        defer { ops.close() }
        #expect(try await ops.remove(shared.handle.ref))
        let newline = CrucialClient(configuration: .init(servers: [server.address], authToken: "from a file\n", retries: 0))
        defer { newline.close() }
        await #expect(throws: CrucialError(.unauthenticated, "wrong auth token")) { try await newline.ping() }

        for (arguments, reason) in [
            (["--auth-token", "x", "--auth-token-file", auth], "give --auth-token or --auth-token-file, not both"),
            (["--admin-token-file", empty], "--admin-token-file: \(empty) is empty"),
            (["--auth-token-file", "\(dir)/missing"], "--auth-token-file: cannot read \(dir)/missing"),
        ] {
            let refused = try await runCLI(["--port", "0"] + arguments, executable: "crucial-server")
            #expect(refused.status != 0 && refused.err.contains(reason), "\(arguments): \(refused.err)")
        }
        // The file can come from the environment too ($CRUCIAL_ADMIN_TOKEN_FILE).
        let fromEnvironment = try await runProcess(
            "/usr/bin/env", ["CRUCIAL_ADMIN_TOKEN_FILE=\(empty)", try builtExecutable("crucial-server"), "--port", "0"])
        #expect(fromEnvironment.status != 0 && fromEnvironment.err.contains("$CRUCIAL_ADMIN_TOKEN_FILE: \(empty) is empty"), "\(fromEnvironment.err)")
    }

    @Test("A recorded handshake replayed on a new connection is refused")
    func replayedHandshake() async throws {
        let server = try await TestServer(arguments: ["--auth-token", "s3cret-s3cret-s3cret"])
        let first = try RawSocket(port: server.port)
        let hello = Hello(clientName: "raw", clientNonce: HandshakeAuth.nonce())
        first.send(.hello(hello))
        guard case .challenge(let nonce)? = try await first.receive() else { throw CrucialError(.protocolViolation, "no challenge") }
        let recorded = Frame.authenticate(
            proof: HandshakeAuth.clientProof(secret: "s3cret-s3cret-s3cret", clientNonce: hello.clientNonce, serverNonce: nonce, clientName: "raw"))
        first.send(recorded)
        guard case .helloReply(let accepted)? = try await first.receive() else { throw CrucialError(.protocolViolation, "no HelloReply") }
        #expect(accepted.error == nil)

        // An eavesdropper replays both frames byte for byte.
        let replay = try RawSocket(port: server.port)
        replay.send(.hello(hello))
        guard case .challenge(let fresh)? = try await replay.receive() else { throw CrucialError(.protocolViolation, "no challenge") }
        #expect(fresh != nonce, "every connection gets a fresh challenge")
        replay.send(recorded)
        guard case .helloReply(let refused)? = try await replay.receive() else { throw CrucialError(.protocolViolation, "no HelloReply") }
        #expect(refused.error?.code == .unauthenticated)
        #expect(await replay.isClosedByPeer())
        // Requests before the handshake completes are refused too.
        let eager = try RawSocket(port: server.port)
        eager.send(.hello(hello))
        _ = try await eager.receive()
        eager.send(.ping(id: 1))
        #expect(try await eager.receive()?.errorCode == .handshakeRequired)
        #expect(await eager.isClosedByPeer())
    }

    @Test("Per-application credentials from a file; admin rights only with an admin secret; a client refuses a server that cannot prove its secret")
    func credentialsFile() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = "\(dir)/credentials"
        try "# name role secret\nanalytics client aaaaaaaaaaaaaaaa\n\nops admin bbbbbbbbbbbbbbbb\n".write(toFile: file, atomically: true, encoding: .utf8)
        let server = try await TestServer(arguments: ["--credentials", file])
        for secret in ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"] {
            let client = CrucialClient(configuration: .init(servers: [server.address], authToken: secret, retries: 0))
            defer { client.close() }
            try await client.ping()
        }
        let app = CrucialClient(configuration: .init(servers: [server.address], authToken: "aaaaaaaaaaaaaaaa", retries: 0))
        defer { app.close() }
        await #expect(throws: CrucialError.self) { _ = try await app.loadPlugin([1, 2, 3], name: "x") }
        // An application removes its ephemeral objects; a persistent one takes an admin.
        let ephemeral = AtomicLong("e", initial: 0, client: app)
        _ = try await ephemeral.incrementAndGet()
        #expect(try await app.remove(ephemeral.handle.ref))
        let shared = AtomicLong("p", initial: 0, persistent: true, client: app)
        _ = try await shared.incrementAndGet()
        let refused = await #expect(throws: CrucialError.self) { _ = try await app.remove(shared.handle.ref) }
        #expect(refused?.code == .unauthenticated)
        #expect(refused?.message.hasPrefix("removing persistent AtomicLong(\"p\") needs an admin secret: connect with the server's admin secret") == true, "\(String(describing: refused))")
        let ops = CrucialClient(configuration: .init(servers: [server.address], authToken: "bbbbbbbbbbbbbbbb", retries: 0))
        defer { ops.close() }
        #expect(try await ops.remove(shared.handle.ref))
        let stranger = CrucialClient(configuration: .init(servers: [server.address], authToken: "cccccccccccccccc", retries: 0))
        defer { stranger.close() }
        await #expect(throws: CrucialError(.unauthenticated, "wrong auth token")) { try await stranger.ping() }

        // A client with a secret talks only to servers that prove they know it.
        let open = try await TestServer()
        let careful = CrucialClient(configuration: .init(servers: [open.address], authToken: "aaaaaaaaaaaaaaaa", retries: 0))
        defer { careful.close() }
        do {
            try await careful.ping()
            Issue.record("a client with a secret must refuse a server without authentication")
        } catch let e as CrucialError {
            #expect(e.code == .unauthenticated && e.message.contains("does not ask for authentication"), "\(e)")
        }

        // A malformed file stops the server with the line at fault.
        try "analytics reader aaaaaaaaaaaaaaaa\n".write(toFile: file, atomically: true, encoding: .utf8)
        let bad = try await runProcess(try TestServer.binary(), ["--port", "0", "--credentials", file])
        #expect(bad.status != 0 && bad.err.contains("\(file):1: expected `NAME client|admin SECRET`"), "\(bad.err)")
    }

    // MARK: TLS

    @Test("TLS round trip with a self-signed certificate; plain and untrusting clients are refused")
    func tlsRoundTrip() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try await selfSignedCertificate(in: dir, name: "server")
        let server = try await TestServer(arguments: ["--tls-cert", cert, "--tls-key", key, "--auth-token", "tls-and-a-secret"])
        let secure = CrucialClient(
            configuration: .init(servers: [server.address], authToken: "tls-and-a-secret", tls: try ClientTLS(trustingFile: cert)))
        defer { secure.close() }
        let map = SharedMap<String, String>("tls", client: secure)
        try await map.put("k", String(repeating: "v", count: 100_000))
        #expect(try await map.get("k")?.count == 100_000)

        let plain = CrucialClient(configuration: .init(servers: [server.address], authToken: "tls-and-a-secret", retries: 0, connectTimeout: .seconds(3)))
        defer { plain.close() }
        await #expect(throws: CrucialError.self) { try await plain.ping() }

        let (other, _) = try await selfSignedCertificate(in: dir, name: "other")
        let untrusting = CrucialClient(
            configuration: .init(servers: [server.address], authToken: "tls-and-a-secret", retries: 0, tls: try ClientTLS(trustingFile: other)))
        defer { untrusting.close() }
        do {
            try await untrusting.ping()
            Issue.record("a client that does not trust the certificate must fail")
        } catch let e as CrucialError {
            #expect(e.code == .connectionFailed, "\(e)")
        }
        try await secure.ping()
    }

    // MARK: Limits

    @Test("Connections over --max-connections are refused in their handshake; the others carry on")
    func connectionLimit() async throws {
        let server = try await TestServer(arguments: ["--max-connections", "3"])
        var open: [RawSocket] = []
        for _ in 0..<3 {
            let s = try RawSocket(port: server.port)
            try await s.hello()
            open.append(s)
        }
        let extra = try RawSocket(port: server.port)
        extra.send(.hello(Hello(clientName: "raw")))
        guard case .helloReply(let refused)? = try await extra.receive() else { throw CrucialError(.protocolViolation, "no HelloReply") }
        #expect(refused.error?.code == .resourceExhausted && refused.error?.message.contains("--max-connections") == true)
        #expect(await extra.isClosedByPeer())
        open[0].send(.ping(id: 9))
        guard case .result(let pong)? = try await open[0].receive() else { throw CrucialError(.protocolViolation, "no pong") }
        #expect(pong.id == 9)
        open.removeLast()
        try await waitUntil {
            let again = try RawSocket(port: server.port)
            return await (try? again.hello()) != nil
        }
    }

    @Test("In-flight requests per connection and parked calls per object are bounded; other work goes on")
    func inFlightAndWaiterLimits() async throws {
        let server = try await TestServer(arguments: ["--max-in-flight", "2", "--max-waiters-per-object", "3"])
        let one = server.client(connections: 1, retries: 0)
        defer { one.close() }
        let future = SharedFuture<Int>("f", client: one)
        let waits = (0..<2).map { _ in Task { try await future.get() } }
        try await waitUntil { (try await one.listObjects().first { $0.ref.key == "f" }?.waiters ?? 0) == 2 }
        do {
            _ = try await future.get()
            Issue.record("a third waiting request on one connection must be refused")
        } catch let e as CrucialError {
            #expect(e.code == .resourceExhausted && e.message.contains("--max-in-flight"), "\(e)")
        }
        // The connection still answers what does not wait.
        #expect(try await AtomicLong("c", initial: 0, client: one).incrementAndGet() == 1)

        let other = server.client(connections: 1, retries: 0)
        defer { other.close() }
        let third = Task { try await SharedFuture<Int>("f", client: other).get() }
        try await waitUntil { (try await other.listObjects().first { $0.ref.key == "f" }?.waiters ?? 0) == 3 }
        let fourthClient = server.client(connections: 1, retries: 0)
        defer { fourthClient.close() }
        do {
            _ = try await SharedFuture<Int>("f", client: fourthClient).get()
            Issue.record("a fourth waiter on one object must be refused")
        } catch let e as CrucialError {
            #expect(e.code == .resourceExhausted && e.message.contains("--max-waiters-per-object"), "\(e)")
        }
        try await SharedFuture<Int>("f", client: fourthClient).set(7)
        for w in waits { #expect(try await w.value == 7) }
        #expect(try await third.value == 7)
    }

    @Test("Objects per session and object-state memory are bounded; reads, removals and other sessions go on")
    func objectAndMemoryLimits() async throws {
        let server = try await TestServer(arguments: ["--max-objects-per-session", "3", "--max-state-bytes", "64K"])
        let app = server.client(retries: 0)
        defer { app.close() }
        for i in 0..<3 { try await AtomicLong("e\(i)", initial: 0, client: app).incrementAndGet() }
        do {
            try await AtomicLong("e3", initial: 0, client: app).incrementAndGet()
            Issue.record("a fourth ephemeral object of one session must be refused")
        } catch let e as CrucialError {
            #expect(e.code == .resourceExhausted && e.message.contains("--max-objects-per-session"), "\(e)")
        }
        #expect(try await AtomicLong("p", initial: 0, persistent: true, client: app).incrementAndGet() == 1)
        let other = server.client(retries: 0)
        defer { other.close() }
        #expect(try await AtomicLong("e3", initial: 0, client: other).incrementAndGet() == 1)

        // Fill the state memory: puts fail once the (once-a-second) count passes 64 KiB.
        let map = SharedMap<Int, String>("big", persistent: true, client: other)
        var refused: CrucialError?
        for i in 0..<400 where refused == nil {
            do {
                try await map.put(i, String(repeating: "x", count: 4096))
            } catch let e as CrucialError {
                refused = e
            }
            if i % 16 == 15 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(refused?.code == .resourceExhausted && refused?.message.contains("--max-state-bytes") == true, "\(String(describing: refused))")
        #expect(try await map.get(0)?.count == 4096, "reads go on")
        #expect(try await AtomicLong("p", initial: 0, persistent: true, client: app).incrementAndGet() == 2, "fixed-size updates go on")
        try await map.clear()
        try await waitUntil { (try? await map.put(1, "back")) != nil }
    }

    @Test("Idle connections and unfinished handshakes are closed; parked calls keep theirs; clients reconnect")
    func timeouts() async throws {
        let server = try await TestServer(arguments: ["--idle-timeout", "1", "--handshake-timeout", "1"])
        let silent = try RawSocket(port: server.port)
        #expect(try await silent.receive()?.errorCode == .timeout, "no Hello within a second")
        #expect(await silent.isClosedByPeer())
        let idle = try RawSocket(port: server.port)
        try await idle.hello()
        #expect(try await idle.receive()?.errorCode == .timeout, "nothing for a second")

        let client = server.client(connections: 1)
        defer { client.close() }
        let future = SharedFuture<Int>("slow", client: client)
        let waiting = Task { try await future.get() }
        try await Task.sleep(for: .milliseconds(2500))
        try await SharedFuture<Int>("slow", client: server.client()).set(1)
        #expect(try await waiting.value == 1, "a connection with a parked call is not idle")
        try await Task.sleep(for: .milliseconds(2500))
        try await client.ping()  // its connection was closed meanwhile: the client reconnects
    }

    @Test("A client that reads none of its answers is disconnected after --write-timeout; others carry on")
    func slowClient() async throws {
        let server = try await TestServer(arguments: ["--write-timeout", "1"])
        let client = server.client()
        defer { client.close() }
        let blob = AtomicByteArray("blob", length: 1 << 20, client: client)
        _ = try await blob.length()
        let slow = try RawSocket(port: server.port, receiveBuffer: 4096)
        try await slow.hello()
        // Thirty 1 MiB answers it never reads: the server's buffers fill, it stops reading
        // this client, and a second later it gives up on it.
        var requests = ByteBuffer()
        for id in 1...30 { WireCodec.encode(.getObject(id: UInt64(id), ref: blob.handle.ref), into: &requests) }
        slow.send(Array(requests.readableBytesView))
        try await Task.sleep(for: .seconds(2))
        try await client.ping()
        #expect(await slow.drainUntilClosed(), "the server must close a client that does not read")
        try await client.ping()
    }

    // MARK: Metrics

    @Test("The metrics endpoint parses as Prometheus text and its counters follow the operations")
    func metricsScrape() async throws {
        let server = try await TestServer(arguments: ["--metrics-port", "0"])
        let url = try #require(server.server.output.split(separator: "\n").first { $0.contains("metrics on") }?.split(separator: " ").last)
        let client = server.client()
        defer { client.close() }
        let counter = AtomicLong("m", initial: 0, client: client)
        _ = try await counter.incrementAndGet()
        let before = try parseExposition(try await httpGet(String(url)))
        for _ in 0..<25 { _ = try await counter.incrementAndGet() }
        _ = try? await counter.compareAndSet(expect: 1, update: 2, extra: true)  // a bad call: an error outcome
        for i in 0..<3 {  // names made up by a client do not become metrics
            _ = try? await SharedObjectHandle(type: "Nope\(i)", key: "k", initial: .null, client: client).call("m\(i)")
        }
        try await Task.sleep(for: .milliseconds(1200))  // the gauges follow once a second
        let after = try parseExposition(try await httpGet(String(url)))
        let ok = #"crucial_operations_total{type="AtomicLong",method="incrementAndGet",outcome="ok"}"#
        #expect((after[ok] ?? 0) - (before[ok] ?? 0) == 25)
        #expect((after[#"crucial_operation_duration_seconds_count{type="AtomicLong",method="incrementAndGet"}"#] ?? 0) >= 26)
        #expect(after[#"crucial_operations_total{type="AtomicLong",method="compareAndSet",outcome="BAD_ARGUMENTS"}"#] == 1)
        #expect(after[#"crucial_operations_total{type="(unknown)",method="(unknown)",outcome="UNKNOWN_TYPE"}"#] == 3)
        #expect(!after.keys.contains { $0.contains("Nope") })
        #expect(after["crucial_objects"] == 1)
        #expect((after["crucial_connections"] ?? 0) >= 1)
        #expect((after["crucial_object_state_bytes"] ?? 0) > 0)
        #expect(after[#"crucial_build_info{version="\#(CrucialVersion.release)",protocol="2"}"#] == 1)
        #expect(try await httpGet(String(url).replacingOccurrences(of: "/metrics", with: "/health")) == "ok\n")
        #expect(try await httpGet(String(url).replacingOccurrences(of: "/metrics", with: "/ready")) == "ready\n")
    }
}

extension AtomicLong {
    /// A call with one argument too many, for an error outcome.
    fileprivate func compareAndSet(expect: Int64, update: Int64, extra: Bool) async throws -> Bool {
        try await handle.call("compareAndSet", [.int(expect), .int(update), .bool(extra)]) == .bool(true)
    }
}

/// `name{labels} value` per sample line; fails on a line that is not one.
func parseExposition(_ text: String) throws -> [String: Double] {
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
            throw CrucialError(.protocolViolation, "not a Prometheus sample line: \(line)")
        }
        let name = line[..<space]
        guard name.range(of: #"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})?$"#, options: .regularExpression) != nil else {
            throw CrucialError(.protocolViolation, "not a Prometheus metric name: \(name)")
        }
        samples[String(name)] = value
    }
    return samples
}

func httpGet(_ url: String) async throws -> String {
    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
    let body = try await response.body.collect(upTo: 16 << 20)
    return String(buffer: body)
}

/// A new empty folder; the test that makes it removes it (`ScratchFolders` sweeps what a
/// dead test process left).
func temporaryDirectory() throws -> String {
    let dir = ScratchFolders.path("test")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command.
func selfSignedCertificate(in dir: String, name: String) async throws -> (certificate: String, key: String) {
    let cert = "\(dir)/\(name).pem", key = "\(dir)/\(name).key"
    let result = try await runProcess(
        "/usr/bin/openssl",
        [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=\(name)",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert,
        ])
    guard result.status == 0 else { throw CrucialError(.internal, "openssl failed: \(result.err)") }
    return (cert, key)
}
