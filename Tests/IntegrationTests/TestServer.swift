import CrucialClient
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real `crucial-server` process on a free loopback port, for one test.
final class TestServer: Sendable {
    let server: ServerProcess
    let port: Int
    var address: String { "127.0.0.1:\(port)" }

    /// The built `crucial-server`: $CRUCIAL_SERVER_BIN, or next to the test bundle.
    static func binary() throws -> String {
        if let env = ProcessInfo.processInfo.environment["CRUCIAL_SERVER_BIN"] { return env }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates: [String?] = [ServerProcess.siblingExecutable(), root.appendingPathComponent(".build/debug/crucial-server").path]
        if let found = candidates.compactMap({ $0 }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            return found
        }
        throw CrucialError(.invalidArgument, "crucial-server is not built; run `swift build` first")
    }

    init(arguments: [String] = []) throws {
        server = try ServerProcess.start(executable: Self.binary(), arguments: ["--port", "0", "--log-level", "warning"] + arguments)
        guard let port = server.port else { throw CrucialError(.connectionFailed, "no port in \(server.readyLine)") }
        self.port = port
    }

    var isRunning: Bool { server.isRunning }

    func client(connections: Int = 2, retries: Int = 5) -> CrucialClient {
        CrucialClient(configuration: .init(servers: [address], connections: connections, retries: retries))
    }

    /// SIGTERM (SIGKILL after 10 s); returns the exit status.
    @discardableResult
    func stop() -> Int32 { server.stop(grace: .seconds(10)) }

    func kill9() { server.kill9() }
}
