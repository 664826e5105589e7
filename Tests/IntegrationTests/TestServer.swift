import CrucialClient
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real `crucial-server` process on a free loopback port, for one test.
final class TestServer: @unchecked Sendable {
    let process: Process
    let port: Int
    var address: String { "127.0.0.1:\(port)" }

    /// The built `crucial-server`: $CRUCIAL_SERVER_BIN, or next to the test bundle.
    static func binary(_ name: String = "crucial-server") throws -> URL {
        if let env = ProcessInfo.processInfo.environment["CRUCIAL_SERVER_BIN"], name == "crucial-server" {
            return URL(fileURLWithPath: env)
        }
        var candidates: [URL] = []
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = bundle.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent(name))
            dir = dir.deletingLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/\(name)"))
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) { return found }
        throw CrucialError(
            .invalidArgument, "\(name) is not built; run `swift build` first (looked in \(candidates.map(\.path)))")
    }

    init(arguments: [String] = []) throws {
        let process = Process()
        process.executableURL = try Self.binary()
        process.arguments = ["--port", "0", "--log-level", "warning"] + arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        self.process = process
        // Wait (at most 30 s) for "crucial-server listening on HOST:PORT".
        let deadline = Date().addingTimeInterval(30)
        var text = ""
        var found: Int?
        let handle = out.fileHandleForReading
        while found == nil, Date() < deadline, process.isRunning {
            let data = handle.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on") }),
                let portText = line.split(separator: ":").last, let p = Int(portText)
            {
                found = p
            }
        }
        guard let found else {
            process.terminate()
            throw CrucialError(.connectionFailed, "crucial-server did not report its port; output: \(text)")
        }
        port = found
    }

    func client(connections: Int = 2, retries: Int = 5) -> CrucialClient {
        CrucialClient(configuration: .init(servers: [address], connections: connections, retries: retries))
    }

    /// SIGTERM, then wait for the exit status.
    @discardableResult
    func stop() -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func kill9() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
