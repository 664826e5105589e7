import CrucialClient
import CrucialCore
import CrucialProcess
import CrucialTransport
import Foundation
import NIOPosix
import Testing

@Suite("crucial-server's settings from a config file and CRUCIAL_* variables, on a real server")
struct ServerSettingsTests {
    /// The server's handshake: its name and frame limit show which settings it took.
    static func hello(_ server: TestServer) async throws -> HelloReply {
        let connection = try await ClientConnection.connect(
            host: "127.0.0.1", port: server.port, group: MultiThreadedEventLoopGroup.singleton,
            identity: ConnectionIdentity(name: "t", secret: ""), timeout: .seconds(10))
        defer { connection.close() }
        return connection.hello
    }

    @Test("A config file and CRUCIAL_* variables set a real server; flags win over both; a bad file stops it naming the key")
    func fileAndEnvironment() async throws {
        let dir = DataDirectory()
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        defer { dir.cleanup() }
        let config = "\(dir.path)/crucial.yaml"
        try "server-id: from-file\nmax-frame-size: 4096\nlog-level: warning\n".write(toFile: config, atomically: true, encoding: .utf8)

        let fromFile = try await TestServer(arguments: ["--config", config])
        defer { fromFile.stop() }
        let a = try await Self.hello(fromFile)
        #expect(a.serverID == "from-file" && a.maxFrameSize == 4096)

        // The variable beats the file; the flag beats both.
        let layered = try await TestServer(
            arguments: ["--server-id", "from-flag"],
            environment: ["CRUCIAL_CONFIG": config, "CRUCIAL_MAX_FRAME_SIZE": "8192", "CRUCIAL_SERVER_ID": "from-env"])
        defer { layered.stop() }
        let b = try await Self.hello(layered)
        #expect(b.serverID == "from-flag" && b.maxFrameSize == 8192)

        try "server_id: oops\n".write(toFile: config, atomically: true, encoding: .utf8)
        let refused = try await runCLI(["--config", config, "--port", "0"], executable: "crucial-server")
        #expect(refused.status != 0)
        #expect(refused.err.contains("unknown setting \"server_id\" (did you mean server-id?)"), "\(refused.err)")
    }
}
