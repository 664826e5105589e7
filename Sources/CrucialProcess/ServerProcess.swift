internal import CrucialCore
package import Foundation
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// A server started as a child process, ready once it printed its "ready" line
/// (by default `crucial-server`'s "listening on HOST:PORT").
///
/// ```swift
/// let server = try await ServerProcess.start(executable: path, arguments: ["--port", "0"])
/// let client = CrucialClient(servers: [server.address])
/// ...
/// await server.stop()
/// ```
///
/// The waits (for the ready line, for the exit) happen on threads of their own: Swift's
/// cooperative pool has one thread per core, and tasks blocked in them would stall every
/// other task of the process (keep-alives included) on a loaded machine.
public final class ServerProcess: @unchecked Sendable {
    private let process: Process
    /// The line that announced readiness.
    public let readyLine: String
    /// Standard output up to and with the ready line (e.g. `crucial-server`'s metrics address).
    public let output: String

    private init(process: Process, readyLine: String, output: String) {
        self.process = process
        self.readyLine = readyLine
        self.output = output
    }

    /// "HOST:PORT", the last word of a `crucial-server` ready line.
    public var address: String { readyLine.split(separator: " ").last.map(String.init) ?? "" }

    /// The port at the end of the ready line.
    public var port: Int? { readyLine.split(separator: ":").last.flatMap { Int($0.trimmingWhitespaceAndNewlines()) } }

    /// The child's pid.
    public var processIdentifier: Int32 { process.processIdentifier }
    /// Whether the child still runs.
    public var isRunning: Bool { process.isRunning }

    /// Starts `executable` and waits (at most `timeout`) for a stdout line containing
    /// `readyText`. `environment` adds to (or overrides) this process's environment.
    public static func start(
        executable: String, arguments: [String], environment: [String: String] = [:], readyText: String = "listening on",
        timeout: Duration = .seconds(30)
    ) async throws -> ServerProcess {
        try await offCooperativePool {
            try startBlocking(executable: executable, arguments: arguments, environment: environment, readyText: readyText, timeout: timeout)
        }
    }

    private static func startBlocking(
        executable: String, arguments: [String], environment: [String: String], readyText: String, timeout: Duration
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
        // A child that goes quiet without the line would block the read below forever:
        // at the deadline it is stopped, which ends the read.
        let ready = Flag()
        let (seconds, attoseconds) = timeout.components
        DispatchQueue.global().asyncAfter(deadline: .now() + Double(seconds) + Double(attoseconds) / 1e18) { [p] in
            if !ready.isSet, p.isRunning { p.terminate() }
        }
        while p.isRunning, ContinuousClock.now < deadline {
            let data = handle.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.contains(readyText) }) {
                ready.set()
                // Keep draining stdout so the child never blocks on a full pipe.
                Thread.detachNewThread { while !handle.availableData.isEmpty {} }
                return ServerProcess(process: p, readyLine: String(line), output: text)
            }
        }
        if !p.isRunning {
            // It exited: what it wrote last (why it exited) is still in the pipe.
            text += String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        }
        p.terminate()
        throw CrucialError(.connectionFailed, "\(executable) did not print \"\(readyText)\"; its output: \(text)")
    }

    /// A single-member etcd (Debian's `etcd-server`) on free loopback ports, keeping its
    /// data in `dataDirectory`; returns it and its client URL.
    ///
    /// etcd cannot pick its own ports, so they are found free first; another process may
    /// take one before etcd binds it (a client's ephemeral port, on a busy machine), and
    /// etcd then exits: it is started again on new ports, up to 5 times.
    public static func startEtcd(dataDirectory: String) async throws -> (process: ServerProcess, endpoint: String) {
        let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let binary else { throw CrucialError(.invalidArgument, "etcd is not installed: apt-get install etcd-server") }
        var attempt = 0
        while true {
            attempt += 1
            let client = try freePort(), peer = try freePort()
            let endpoint = "http://127.0.0.1:\(client)"
            let arguments = [
                "--name", "crucial", "--data-dir", dataDirectory, "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
                "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
                "--initial-cluster", "crucial=http://127.0.0.1:\(peer)", "--logger", "zap", "--log-level", "info",
            ]
            do {
                // etcd logs to stderr; the shell joins it to stdout, where readiness is awaited.
                let process = try await start(
                    executable: "/bin/sh", arguments: ["-c", "exec \"$0\" \"$@\" 2>&1", binary] + arguments, readyText: "serving client traffic")
                return (process, endpoint)
            } catch let error as CrucialError where attempt < 5 && error.message.contains("address already in use") {
                continue
            }
        }
    }

    /// A loopback port nobody listens on right now (for servers that cannot pick one themselves).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CrucialError(.connectionFailed, "cannot open a socket to find a free port") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw CrucialError(.connectionFailed, "cannot find a free loopback port") }
        return Int(UInt16(bigEndian: addr.sin_port))
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
    public func stop(grace: Duration = .seconds(3)) async -> Int32 {
        await offCooperativePool { self.stop(grace: grace) }
    }

    /// SIGKILL, as a crash would.
    public func kill9() async {
        await offCooperativePool { self.kill9() }
    }

    /// ``stop(grace:)`` blocking the calling thread, for a `defer` (which cannot await).
    @discardableResult
    public func stop(grace: Duration = .seconds(3)) -> Int32 {
        if process.isRunning {
            terminate()
            Self.awaitExit(process, within: grace)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        return Self.exitStatus(of: process, within: .seconds(30)) ?? -1
    }

    /// SIGTERM, then SIGCONT, as systemd does: a stopped process (SIGSTOP) handles the
    /// SIGTERM only once continued.
    private func terminate() {
        process.terminate()
        kill(process.processIdentifier, SIGCONT)
    }

    /// ``kill9()`` blocking the calling thread.
    public func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        Self.awaitExit(process)
    }

    /// ``stop(grace:)`` for a `defer` or a `deinit` in async code, which cannot await and
    /// must not block a thread of the cooperative pool: SIGTERM now, and the rest (SIGKILL
    /// after `grace`, the wait) on a thread of its own; returns at once. `then` runs once
    /// the process ended.
    public func stopInBackground(grace: Duration = .seconds(3), then: (@Sendable () -> Void)? = nil) {
        if process.isRunning { terminate() }
        Thread.detachNewThread { [self] in
            stop(grace: grace)
            then?()
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            let process = process
            Thread.detachNewThread { Self.awaitExit(process) }
        }
    }

    /// Waits (at most `limit`) for `process` to end: for Foundation to see it, or for the
    /// kernel to show it exited (a zombie Foundation has not reaped yet: on a loaded machine
    /// Foundation noticed an exited child up to a minute late). Not `waitUntilExit()`: on
    /// Linux it waits in a run loop that can miss the exit, and a cooperative thread blocked
    /// there forever starves every task of the process (seen: a hung test suite).
    package static func awaitExit(_ process: Process, within limit: Duration = .seconds(30)) {
        let deadline = ContinuousClock.now + limit
        while process.isRunning, exitedChild(process.processIdentifier) == nil, ContinuousClock.now < deadline { usleep(2_000) }
    }

    /// How `process` ended once it did (at most `limit` from now), or nil: Foundation's
    /// answer when it saw the end, else the kernel's for a zombie. Never Foundation's
    /// `terminationStatus` of a process it thinks runs, which traps (and a trap in a test
    /// bundle takes every test with it).
    package static func termination(of process: Process, within limit: Duration = .seconds(120)) -> Termination? {
        awaitExit(process, within: limit)
        if !process.isRunning {
            return process.terminationReason == .exit ? .exit(process.terminationStatus) : .signal(process.terminationStatus)
        }
        return exitedChild(process.processIdentifier)
    }

    /// `process`'s exit status (or the signal that ended it) once it ended, at most `limit`
    /// from now; nil when it still runs then.
    package static func exitStatus(of process: Process, within limit: Duration = .seconds(120)) -> Int32? {
        switch termination(of: process, within: limit) {
        case .exit(let status), .signal(let status): return status
        case nil: return nil
        }
    }

    /// How a child process ended.
    package enum Termination: Equatable, CustomStringConvertible {
        case exit(Int32)
        case signal(Int32)
        package var description: String {
            switch self {
            case .exit(let status): return "exit \(status)"
            case .signal(let signal): return "signal \(signal)"
            }
        }
    }

    /// How the child `pid` ended when the kernel shows it exited but not yet reaped (state
    /// `Z` in `/proc/PID/stat`, whose 52nd field is waitpid's status word); nil otherwise.
    static func exitedChild(_ pid: Int32) -> Termination? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3); field 52 (exit_code) is fields[49].
        guard fields.first == "Z", fields.count > 49, let word = Int32(fields[49].trimmingWhitespaceAndNewlines()) else { return nil }
        let signal = word & 0x7f
        return signal == 0 ? .exit((word >> 8) & 0xff) : .signal(signal)
    }
}

/// Runs `work` on a thread of its own and waits for it without holding a thread of
/// Swift's cooperative pool (one per core), which a blocking call would take from every
/// other task of the process.
package func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

/// ``offCooperativePool(_:)`` for work that cannot fail.
package func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}

extension Substring {
    fileprivate func trimmingWhitespaceAndNewlines() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

/// A flag one thread sets and others read.
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
