internal import CrucialCore
internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// A server started as a child process, ready once it printed its "ready" line
/// (by default `crucial-server`'s "listening on HOST:PORT").
///
/// ```swift
/// let server = try ServerProcess.start(executable: path, arguments: ["--port", "0"])
/// let client = CrucialClient(servers: [server.address])
/// ...
/// server.stop()
/// ```
public final class ServerProcess: @unchecked Sendable {
    private let process: Process
    /// The line that announced readiness.
    public let readyLine: String

    private init(process: Process, readyLine: String) {
        self.process = process
        self.readyLine = readyLine
    }

    /// "HOST:PORT", the last word of a `crucial-server` ready line.
    public var address: String { readyLine.split(separator: " ").last.map(String.init) ?? "" }

    /// The port at the end of the ready line.
    public var port: Int? { readyLine.split(separator: ":").last.flatMap { Int($0.trimmingWhitespaceAndNewlines()) } }

    public var processIdentifier: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Starts `executable` and waits (at most `timeout`) for a stdout line containing
    /// `readyText`. `environment` adds to (or overrides) this process's environment.
    public static func start(
        executable: String, arguments: [String], environment: [String: String] = [:], readyText: String = "listening on",
        timeout: Duration = .seconds(30)
    ) throws -> ServerProcess {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        // The child stops itself if we die without stopping it (see ParentWatch).
        let watch = [ParentWatch.environmentKey: String(ProcessInfo.processInfo.processIdentifier)]
        p.environment = ProcessInfo.processInfo.environment.merging(watch) { _, new in new }.merging(environment) { _, new in new }
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        var text = ""
        let deadline = ContinuousClock.now + timeout
        let handle = out.fileHandleForReading
        while p.isRunning, ContinuousClock.now < deadline {
            let data = handle.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.contains(readyText) }) {
                // Keep draining stdout so the child never blocks on a full pipe.
                Thread.detachNewThread { while !handle.availableData.isEmpty {} }
                return ServerProcess(process: p, readyLine: String(line))
            }
        }
        p.terminate()
        throw CrucialError(.connectionFailed, "\(executable) did not print \"\(readyText)\"; its output: \(text)")
    }

    /// The sibling `crucial-server` of the running executable, if built.
    public static func siblingExecutable(_ name: String = "crucial-server") -> String? {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let path = dir.appendingPathComponent(name).path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status. (A child of a
    /// Swift process may inherit a mask that blocks SIGTERM: redis-server then ignores it.)
    @discardableResult
    public func stop(grace: Duration = .seconds(3)) -> Int32 {
        if process.isRunning {
            process.terminate()
            let deadline = ContinuousClock.now + grace
            while process.isRunning, ContinuousClock.now < deadline { usleep(5_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGKILL, as a crash would.
    public func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

extension Substring {
    fileprivate func trimmingWhitespaceAndNewlines() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
