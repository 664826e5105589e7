@testable import CrucialLambda
import CrucialTesting
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// The bootstrap's own HTTP/1.1 client against a loopback server: keep-alive, a pooled
/// connection the server drops, the deadline, the size limit, and URLs as SigV4 signs them.
@Suite("HTTP1Client")
struct HTTP1ClientTests {
    @Test("URLs split into origin and path without decoding; bad ones are refused")
    func parse() throws {
        let (origin, path) = try HTTP1Client.parse("https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda/invocations")
        #expect(origin == .init(tls: true, host: "lambda.eu-west-1.amazonaws.com", port: 443, authority: "lambda.eu-west-1.amazonaws.com"))
        #expect(path == "/2015-03-31/functions/arn%3Aaws%3Alambda/invocations")
        let (local, root) = try HTTP1Client.parse("http://127.0.0.1:7421")
        #expect(local == .init(tls: false, host: "127.0.0.1", port: 7421, authority: "127.0.0.1:7421") && root == "/")
        let (v6, query) = try HTTP1Client.parse("HTTP://[::1]:9000?x=1")
        #expect(v6.host == "::1" && v6.port == 9000 && v6.authority == "[::1]:9000" && query == "/?x=1")
        for bad in ["ftp://host/", "127.0.0.1:80/", "http://", "http://host:port/", "http://user@host/", "http://[::1/", "http://host:70000/"] {
            #expect(throws: HTTP1Client.Failure.self, "\(bad)") { try HTTP1Client.parse(bad) }
        }
    }

    @Test("Sequential requests share one keep-alive connection; one the server drops is replaced, nothing is lost")
    func keepAlive() async throws {
        let server = try await ScriptedHTTPServer(answers: [
            .init(status: .ok, body: "one"), .init(status: .ok, body: "two", closeAfter: true), .init(status: .ok, body: "three"),
        ])
        defer { server.close() }
        let client = HTTP1Client()
        var bodies: [String] = []
        for _ in 0..<3 {
            var request = HTTP1Client.Request(method: .POST, url: "http://127.0.0.1:\(server.port)/p", body: ByteBuffer(string: "x"))
            request.headers.add(name: "x-test", value: "1")
            let response = try await client.execute(request, timeout: .seconds(30))
            #expect(response.status == .ok)
            bodies.append(String(buffer: response.body))
            if bodies.count == 2 {  // the dropped connection leaves the pool once its close is seen
                try await waitUntil(within: .seconds(10)) { client.idleConnections == 0 }
            }
        }
        #expect(bodies == ["one", "two", "three"])
        #expect(server.connections.withLock { $0 } == 2, "the first two requests share a connection, the third opens one")
        let received = server.received.withLock { $0 }
        #expect(received.map(\.head.uri) == ["/p", "/p", "/p"])
        #expect(received.allSatisfy { $0.head.headers["host"] == ["127.0.0.1:\(server.port)"] && $0.head.headers["content-length"] == ["1"] })
    }

    @Test("A connection idle past the idle timeout is closed and leaves the pool; the next request opens another")
    func idleTimeout() async throws {
        let server = try await ScriptedHTTPServer(answers: [.init(status: .ok, body: "one"), .init(status: .ok, body: "two")])
        defer { server.close() }
        let client = HTTP1Client(idleTimeout: .milliseconds(100))
        let url = "http://127.0.0.1:\(server.port)/"
        #expect(String(buffer: try await client.execute(.init(url: url), timeout: .seconds(30)).body) == "one")
        try await waitUntil(within: .seconds(10)) { client.idleConnections == 0 }
        #expect(String(buffer: try await client.execute(.init(url: url), timeout: .seconds(30)).body) == "two")
        #expect(server.connections.withLock { $0 } == 2)
    }

    @Test("A silent server: the deadline ends the request (its connection closed), with the same error whether it ended the connect or the wait")
    func deadline() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let client = HTTP1Client()
        let started = ContinuousClock.now
        await #expect {
            _ = try await client.execute(.init(url: "http://127.0.0.1:\(silent.localAddress?.port ?? 0)/"), timeout: .milliseconds(500))
        } throws: { error in
            guard case HTTP1Client.Failure.timedOut = error else { return false }
            return true
        }
        #expect(ContinuousClock.now - started < .seconds(30), "only a hang fails this bound")
        #expect(client.idleConnections == 0)
    }

    @Test("An answer over the limit is refused; nothing listening is an error, not a hang")
    func limits() async throws {
        let server = try await ScriptedHTTPServer(answers: [.init(status: .ok, body: String(repeating: "a", count: 2_000))])
        defer { server.close() }
        let client = HTTP1Client()
        await #expect {
            _ = try await client.execute(.init(url: "http://127.0.0.1:\(server.port)/"), timeout: .seconds(30), maxBody: 1_000)
        } throws: { error in
            guard case HTTP1Client.Failure.tooLarge(limit: 1_000) = error else { return false }
            return true
        }
        let port = server.port
        server.close()
        try await server.channel.closeFuture.get()
        await #expect(throws: (any Error).self) {  // a new client: the pooled connection outlives the listener
            _ = try await HTTP1Client().execute(.init(url: "http://127.0.0.1:\(port)/"), timeout: .seconds(30))
        }
    }
}
