internal import CrucialProcess
internal import CrucialServerCore
import Dispatch
internal import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The program's own local DSO server (its local stack's, started as a child process of
/// the program with `CRUCIAL_PROGRAM_ROLE=server`): the server core with the program's
/// `@Shared` types, on loopback, in memory. It takes `--host`, `--port` and `--log-level`
/// (what ``LocalStack`` passes), prints `crucial-server listening on HOST:PORT` once it
/// accepts connections, and stops gracefully on SIGTERM or SIGINT, or when the program
/// that started it is gone. It links none of `crucial-server`'s operations stack (etcd,
/// Prometheus, YAML settings, service lifecycle): a program is not a cluster member.
enum ProgramServer {
    /// Serves until a signal asks it to stop; exits with 64 on an argument it does not take.
    static func run(registering types: [any SharedType.Type], arguments: [String]) async {
        var host = "127.0.0.1"
        var port = 0
        var level = Logger.Level.warning
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { usage("\(flag) needs a value") }
            switch flag {
            case "--host": host = value
            case "--port":
                guard let p = Int(value), (0...65535).contains(p) else { usage("--port must be in 0...65535, got \(value)") }
                port = p
            case "--log-level":
                guard let l = Logger.Level(rawValue: value) else { usage("--log-level \(value) is not one of trace, debug, info, notice, warning, error, critical") }
                level = l
            default: usage("\(flag) is not an option of a program's own local server (it takes --host, --port and --log-level)")
            }
        }
        var logger = Logger(label: "crucial.server")
        logger.logLevel = level
        var registry = TypeRegistry.builtins
        for type in types { registry.register(shared: type) }
        let server = CrucialServer(configuration: .init(host: host, port: port), registry: registry, logger: logger)
        // Waits for SIGTERM or SIGINT (ignored as signals, delivered to a dispatch source).
        let (signals, signalled) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        var sources: [any DispatchSourceSignal] = []
        for signal in [SIGTERM, SIGINT] {
            Glibc.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal)
            source.setEventHandler { signalled.yield() }
            source.resume()
            sources.append(source)
        }
        do {
            let address = try await server.start()
            ParentWatch.start()
            print("crucial-server listening on \(host):\(address.port ?? port)")
            fflush(nil)  // stdout is block-buffered when piped; the program waits for this line
            for await _ in signals { break }
            try await server.shutdown()
        } catch {
            StandardStreams.error("Error: the program's local DSO server failed: \(error)\n")
            exit(1)
        }
        for source in sources { source.cancel() }
    }

    private static func usage(_ message: String) -> Never {
        StandardStreams.error("Error: \(message)\n")
        exit(64)
    }
}
