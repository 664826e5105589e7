import CrucialTesting
import CrucialTransport
import CrucialProcess
import ArgumentParser
import CrucialClient
import Foundation
import NIOPosix

/// `crucial-bench handshake`: what a new connection costs (connect, handshake, one ping,
/// close) with no authentication, with the HMAC challenge-response, and with it inside TLS;
/// Redis without and with `AUTH` (its password in clear) as the peer.
struct HandshakeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handshake", abstract: "Connection set-up: open, HMAC challenge-response, and TLS, against Redis and Redis AUTH.")

    @Option(help: "Connections per variant.")
    var connections = 500

    @Option(help: "The crucial-server executable (default: next to this one).")
    var server: String?

    @Option(help: "The redis-server executable.")
    var redisServer = "/usr/bin/redis-server"

    @Option(help: "Append the results as Markdown to this file.")
    var markdown: String?

    func run() async throws {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let serverBinary = server ?? me.deletingLastPathComponent().appendingPathComponent("crucial-server").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-handshake-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = (dir + "/server.pem", dir + "/server.key")
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=bench",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
        ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        ServerProcess.awaitExit(openssl)  // not waitUntilExit: see there
        guard openssl.terminationStatus == 0 else { throw ValidationError("openssl could not make a certificate") }

        let secret = "a-benchmark-secret-of-32-bytes!!"
        let tls = try ClientTLS(trustingFile: cert).makeContext()
        let variants: [(name: String, arguments: [String], identity: ConnectionIdentity)] = [
            ("open", [], ConnectionIdentity(name: "bench", secret: "")),
            ("HMAC challenge-response", ["--auth-token", secret], ConnectionIdentity(name: "bench", secret: secret)),
            ("HMAC inside TLS 1.3", ["--auth-token", secret, "--tls-cert", cert, "--tls-key", key], ConnectionIdentity(name: "bench", secret: secret, tls: tls)),
        ]
        var rows: [(String, Latency)] = []
        for variant in variants {
            let process = try await ServerProcess.start(executable: serverBinary, arguments: ["--port", "0", "--log-level", "warning"] + variant.arguments)
            defer { process.stop() }
            let port = process.port ?? 0
            rows.append(
                (
                    "Crucial, \(variant.name)",
                    try await latency(connections) {
                        let c = try await ClientConnection.connect(
                            host: "127.0.0.1", port: port, group: MultiThreadedEventLoopGroup.singleton, identity: variant.identity, timeout: .seconds(5))
                        _ = try await c.send(.ping(id: 1), id: 1).get()
                        c.close()
                    }
                ))
            say("  \(rows.last!.0): p50 \(Row.fmt(rows.last!.1.p50)) µs")
        }
        for auth in [false, true] {
            let (redis, port) = try await startRedis(redisServer, extraArguments: auth ? ["--requirepass", secret] : [])
            defer { redis.stop() }
            rows.append(
                (
                    auth ? "Redis, AUTH (password in clear)" : "Redis, open",
                    try await latency(connections) {
                        let c = try await RedisConnection(port: port, group: MultiThreadedEventLoopGroup.singleton)
                        if auth { _ = try await c.command([Array("AUTH".utf8), Array(secret.utf8)]) }
                        _ = try await c.command([Array("PING".utf8)])
                        c.close()
                    }
                ))
            say("  \(rows.last!.0): p50 \(Row.fmt(rows.last!.1.p50)) µs")
        }
        var table = "| connect + handshake + ping + close | p50 (µs) | p99 (µs) |\n| --- | ---: | ---: |\n"
        for (name, l) in rows { table += "| \(name) | \(Row.fmt(l.p50)) | \(Row.fmt(l.p99)) |\n" }
        print(table)
        if let markdown {
            try appendMarkdown(
                "\n### \(ISO8601DateFormatter().string(from: Date()))\n\n`crucial-bench handshake --connections \(connections)`\n\n\(table)", to: markdown)
        }
    }
}
