import CrucialTesting
import CrucialClient
import CrucialCore
@testable import CrucialProcess
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A Unix datagram socket, as systemd's `$NOTIFY_SOCKET` is: what a unit of `Type=notify`
/// hears from its service.
final class NotifySocket: @unchecked Sendable {
    let path: String
    private let fd: Int32

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8))").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { sunPath in
            for (i, byte) in path.utf8.enumerated() { sunPath[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw CrucialError(.internal, "cannot bind a notify socket at \(path)") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The next datagram, if one comes within `seconds`.
    func receive(within seconds: Double) async -> String? {
        await offCooperativePool { [self] in
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(seconds * 1000)) == 1 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
        }
    }

    /// Datagrams until one contains `text` (within `seconds` in all), all of them joined.
    func receive(until text: String, within seconds: Double) async -> String {
        var heard = ""
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while !heard.contains(text), ContinuousClock.now < deadline {
            guard let message = await receive(within: 1) else { continue }
            heard += message + "\n"
        }
        return heard
    }
}

@Suite("Under a service manager: systemd's readiness protocol and reloading secrets on SIGHUP")
struct ServiceManagerTests {
    @Test("With $NOTIFY_SOCKET the server says READY=1 with its status once it serves, and STOPPING=1 when SIGTERM stops it")
    func systemdNotify() async throws {
        let socket = try NotifySocket()
        let server = try await TestServer(environment: ["NOTIFY_SOCKET": socket.path])
        let ready = await socket.receive(until: "READY=1", within: 30)
        #expect(ready.contains("READY=1") && ready.contains("STATUS=serving on 127.0.0.1:\(server.port)"), "\(ready)")
        #expect(ready.contains("MAINPID=\(server.server.processIdentifier)"), "\(ready)")
        expectCleanExit(await server.stop())
        let stopping = await socket.receive(until: "STOPPING=1", within: 30)
        #expect(stopping.contains("STOPPING=1"), "\(stopping)")
    }

    @Test("SIGHUP re-reads the credentials file: the new secret is accepted, the old one refused, a connection already in keeps going; a broken file changes nothing")
    func reloadOnSIGHUP() async throws {
        let dir = DataDirectory()
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        defer { dir.cleanup() }
        let file = "\(dir.path)/credentials"
        let (old, new) = ("old-secret-0123456789abcdef", "new-secret-0123456789abcdef")
        try "app client \(old)\n".write(toFile: file, atomically: true, encoding: .utf8)
        let server = try await TestServer(arguments: ["--credentials", file])
        defer { server.stop() }
        func client(_ secret: String) -> CrucialClient {
            // One connection: the second call of `connected` goes on the one the first opened.
            CrucialClient(configuration: .init(servers: [server.address], connections: 1, authToken: secret, retries: 0))
        }
        let connected = client(old)
        defer { connected.close() }
        try await connected.ping()

        try "app client \(new)\n".write(toFile: file, atomically: true, encoding: .utf8)
        kill(server.server.processIdentifier, SIGHUP)
        try await waitUntil {
            let fresh = client(new)
            defer { fresh.close() }
            return (try? await fresh.ping()) != nil
        }
        let stale = client(old)
        defer { stale.close() }
        await #expect(throws: CrucialError.self) { try await stale.ping() }
        try await connected.ping()  // authenticated before the reload: it keeps its connection

        try "this line is not NAME ROLE SECRET\n".write(toFile: file, atomically: true, encoding: .utf8)
        kill(server.server.processIdentifier, SIGHUP)
        try await Task.sleep(for: .seconds(1))
        let still = client(new)
        defer { still.close() }
        try await still.ping()
    }
}
