internal import CrucialCore
internal import FoundationEssentials
internal import Subprocess
internal import SystemPackage
import Synchronization

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
/// The child runs under swift-subprocess, which watches it through a process descriptor:
/// its end is known when it happens (Foundation's `Process`, used before, noticed an exited
/// child up to a minute late on a loaded machine) and nothing of Foundation proper, which
/// would bring ICU's 34 MB into every Lambda bootstrap, is linked. Its standard error is
/// this process's; its standard output is read up to the ready line, then drained.
public final class ServerProcess: Sendable {
    /// The line that announced readiness.
    public let readyLine: String
    /// Standard output up to and with the ready line (e.g. `crucial-server`'s metrics address).
    public let output: String
    /// The child's pid.
    public let processIdentifier: Int32
    private let life: Life

    private init(readyLine: String, output: String, processIdentifier: Int32, life: Life) {
        self.readyLine = readyLine
        self.output = output
        self.processIdentifier = processIdentifier
        self.life = life
    }

    /// "HOST:PORT", the last word of a `crucial-server` ready line.
    public var address: String { readyLine.split(separator: " ").last.map(String.init) ?? "" }

    /// The port at the end of the ready line.
    public var port: Int? { readyLine.split(separator: ":").last.flatMap { Int($0.trimmingWhitespace()) } }

    /// Whether the child still runs (the kernel's word, before the task that watches it
    /// may have run: that task needs a thread of the cooperative pool, which a busy
    /// machine's tests can hold).
    public var isRunning: Bool { life.ending == nil && !Self.kernelEnding(processIdentifier).ended }

    /// How the child ended, once it did.
    public var termination: Termination? { life.ending ?? Self.kernelEnding(processIdentifier).termination }

    /// Whether the kernel shows the child `pid` ended, and how when it can tell, without
    /// reaping it (`WNOWAIT`: swift-subprocess reaps it). ECHILD: it was reaped already.
    package static func kernelEnding(_ pid: Int32) -> (ended: Bool, termination: Termination?) {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return (errno == ECHILD, nil) }
        guard info._sifields._sigchld.si_pid == pid else { return (false, nil) }
        let status = info._sifields._sigchld.si_status
        return (true, info.si_code == CLD_EXITED ? .exit(status) : .signal(status))
    }

    /// How a child process ended.
    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        /// It exited with this status.
        case exit(Int32)
        /// This signal ended it.
        case signal(Int32)

        /// `exit N` or `signal N`.
        public var description: String {
            switch self {
            case .exit(let status): return "exit \(status)"
            case .signal(let signal): return "signal \(signal)"
            }
        }

        /// The exit status, or the signal's number: what a shell's `$?` shows less 128.
        public var status: Int32 {
            switch self {
            case .exit(let status), .signal(let status): return status
            }
        }
    }

    /// Starts `executable` and waits (at most `timeout`) for a stdout line containing
    /// `readyText`. `environment` adds to (or overrides) this process's environment.
    public static func start(
        executable: String, arguments: [String], environment: [String: String] = [:], readyText: String = "listening on",
        timeout: Duration = .seconds(30)
    ) async throws -> ServerProcess {
        // The child stops itself if we die without stopping it (see ParentWatch).
        var variables: [Environment.Key: String?] = [:]
        variables[Environment.Key(stringLiteral: ParentWatch.environmentKey)] = String(getpid())
        for (name, value) in environment { variables[Environment.Key(stringLiteral: name)] = value }
        let configuration = Configuration(
            executable: .path(FilePath(executable)), arguments: Arguments(arguments), environment: .inherit.updating(variables))
        let life = Life()
        let start = Start()
        // The child's whole life: its output read up to the ready line (which answers the
        // start), then drained so that it never blocks on a full pipe, then its end.
        Task {
            do {
                let outcome = try await Subprocess.run(
                    configuration, input: .none, output: .sequence, error: .fileDescriptor(.standardError, closeAfterSpawningProcess: false)
                ) { execution in
                    life.started(pid: execution.processIdentifier.value)
                    // Whole lines only: a ready line split across two reads must not be taken half.
                    var pending: [UInt8] = []
                    var text = ""
                    var ready = false
                    for try await buffer in execution.standardOutput where !ready {
                        buffer.withUnsafeBytes { pending.append(contentsOf: $0) }
                        while !ready, let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            let line = String(decoding: pending[..<end], as: UTF8.self)
                            pending.removeSubrange(...end)
                            text += line + "\n"
                            if line.contains(readyText) {
                                ready = true
                                start.ready(line: line.trimmingWhitespace(), output: text, pid: execution.processIdentifier.value)
                            }
                        }
                    }
                    if !ready { start.failed(output: text + String(decoding: pending, as: UTF8.self)) }
                }
                life.ended(Self.termination(outcome.terminationStatus))
                start.failed(output: "")
            } catch {
                life.ended(.exit(-1))
                start.failed(output: "", error: error)
            }
        }
        // A child that goes quiet without the line is stopped at the deadline.
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            if start.giveUp(), let pid = life.pid { kill(pid, SIGKILL) }
        }
        defer { watchdog.cancel() }
        switch await start.result() {
        case .ready(let line, let output, let pid):
            return ServerProcess(readyLine: line, output: output, processIdentifier: pid, life: life)
        case .failed(let output, let error):
            if let pid = life.pid, life.ending == nil { kill(pid, SIGKILL) }
            let why = error.map { "could not start: \($0)" } ?? "did not print \"\(readyText)\" within \(timeout) or exited"
            throw CrucialError(.connectionFailed, "\(executable) \(why); its output: \(output)")
        }
    }

    private static func termination(_ status: TerminationStatus) -> Termination {
        switch status {
        case .exited(let code): return .exit(Int32(code))
        case .signaled(let signal): return .signal(Int32(signal))
        }
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

    /// The sibling `name` of the running executable, if built.
    public static func siblingExecutable(_ name: String = "crucial-server") -> String? {
        let me = CommandLine.arguments[0]
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let path = realpath(me, &resolved) != nil ? String(decoding: resolved.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : me
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let candidate = (directory.isEmpty ? "." : directory) + "/" + name
        return access(candidate, X_OK) == 0 ? candidate : nil
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status (the signal's number
    /// when a signal ended it, -1 when it did not end within 30 s more). (A child of a Swift
    /// process may inherit a mask that blocks SIGTERM: redis-server then ignores it.)
    @discardableResult
    public func stop(grace: Duration = .seconds(3)) async -> Int32 {
        if isRunning {
            terminate()
            if await waitForExit(within: grace) == nil { kill(processIdentifier, SIGKILL) }
        }
        return await waitForExit(within: .seconds(30))?.status ?? -1
    }

    /// SIGKILL, as a crash would; returns once the child is gone.
    public func kill9() async {
        if isRunning { kill(processIdentifier, SIGKILL) }
        _ = await waitForExit(within: .seconds(30))
    }

    /// Waits (at most `limit`) for the child to end; how it ended, or nil.
    public func waitForExit(within limit: Duration = .seconds(120)) async -> Termination? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let ending = endingNow() { return ending }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return endingNow()
    }

    /// How the child ended, if it did: the watching task's word, else the kernel's (for a
    /// child not reaped yet). A child reaped before the task recorded how has not ended yet
    /// here: its task records it as soon as it runs.
    private func endingNow() -> Termination? {
        life.ending ?? Self.kernelEnding(processIdentifier).termination
    }

    /// ``stop(grace:)`` blocking the calling thread, for a `defer` (which cannot await).
    @discardableResult
    public func stop(grace: Duration = .seconds(3)) -> Int32 {
        if isRunning {
            terminate()
            if waitBlocking(within: grace) == nil { kill(processIdentifier, SIGKILL) }
        }
        return waitBlocking(within: .seconds(30))?.status ?? -1
    }

    /// SIGTERM, then SIGCONT, as systemd does: a stopped process (SIGSTOP) handles the
    /// SIGTERM only once continued.
    private func terminate() {
        kill(processIdentifier, SIGTERM)
        kill(processIdentifier, SIGCONT)
    }

    /// ``kill9()`` blocking the calling thread.
    public func kill9() {
        if isRunning { kill(processIdentifier, SIGKILL) }
        _ = waitBlocking(within: .seconds(30))
    }

    /// Waits (at most `limit`) on the calling thread for the child to end, by the kernel's
    /// word (never for a task: a `defer` may block a thread of the cooperative pool, and the
    /// task that watches the child may need it); how it ended, or nil.
    private func waitBlocking(within limit: Duration) -> Termination? {
        let deadline = ContinuousClock.now + limit
        var reapedAt: ContinuousClock.Instant?
        while ContinuousClock.now < deadline {
            if let ending = endingNow() { return ending }
            // Reaped, and the task that records how waits for a thread of the cooperative
            // pool, which this wait may be holding: after 5 s, an end without its status.
            if Self.kernelEnding(processIdentifier).ended {
                let since = reapedAt ?? ContinuousClock.now
                reapedAt = since
                if ContinuousClock.now - since > .seconds(5) { return .exit(-1) }
            }
            usleep(2_000)
        }
        return endingNow()
    }

    /// ``stop(grace:)`` for a `defer` or a `deinit` in async code, which cannot await and
    /// must not block a thread of the cooperative pool: SIGTERM now, SIGKILL after `grace`
    /// in a task; returns at once. `then` runs once the process ended.
    public func stopInBackground(grace: Duration = .seconds(3), then: (@Sendable () -> Void)? = nil) {
        if isRunning { terminate() }
        Task { [self] in
            await stop(grace: grace)
            then?()
        }
    }

    deinit {
        if isRunning { kill(processIdentifier, SIGKILL) }
    }

    /// The child's pid once spawned, and its end once the task watching it saw it.
    private final class Life: Sendable {
        private let state = Mutex<(pid: Int32?, ending: Termination?)>((nil, nil))

        var pid: Int32? { state.withLock { $0.pid } }
        var ending: Termination? { state.withLock { $0.ending } }

        func started(pid: Int32) { state.withLock { $0.pid = pid } }

        func ended(_ termination: Termination) {
            state.withLock { s in if s.ending == nil { s.ending = termination } }
        }
    }

    /// The answer to a start: the ready line, or why there is none (first one wins).
    private final class Start: Sendable {
        enum Outcome: Sendable {
            case ready(line: String, output: String, pid: Int32)
            case failed(output: String, error: (any Error)?)
        }
        private let state = Mutex<(outcome: Outcome?, waiter: CheckedContinuation<Outcome, Never>?)>((nil, nil))

        func ready(line: String, output: String, pid: Int32) { settle(.ready(line: line, output: output, pid: pid)) }
        func failed(output: String, error: (any Error)? = nil) { settle(.failed(output: output, error: error)) }

        /// Ends the wait at the deadline; whether it was still waiting.
        func giveUp() -> Bool {
            let waiting = state.withLock { $0.outcome == nil }
            if waiting { settle(.failed(output: "", error: nil)) }
            return waiting
        }

        private func settle(_ outcome: Outcome) {
            let waiter = state.withLock { s -> CheckedContinuation<Outcome, Never>? in
                guard s.outcome == nil else { return nil }
                s.outcome = outcome
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(returning: outcome)
        }

        func result() async -> Outcome {
            await withCheckedContinuation { continuation in
                let now = state.withLock { s -> Outcome? in
                    if let outcome = s.outcome { return outcome }
                    s.waiter = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        }
    }
}
