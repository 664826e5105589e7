public import CrucialClient
@_exported public import CrucialLambda  // LocalStack, CloudThread, the invokers
internal import CrucialServerCore
internal import CrucialTransport

/// A DSO server inside the test's own process: the real server core (its object store,
/// built-in and `@Shared` types, sessions, retries and parked calls) reached through memory
/// instead of a socket, so that a test of an application's shared objects starts in
/// microseconds, needs no free port and leaves no process behind. Clients made by
/// ``client(authToken:connections:retries:)`` run the same proxies, handshakes, retries and
/// sessions as over TCP (grpc-swift's in-process transport and HummingbirdTesting's
/// `.router` mode are the models).
///
/// ```swift
/// import CrucialTesting
/// import Testing
///
/// @Test func counts() async throws {
///     let server = InProcessServer(sharedTypes: [Leaderboard.self])
///     try await server.run {                       // proxies and cloud threads use it
///         let counter = AtomicLong("hits")
///         try await counter.addAndGet(2)
///         try await CloudThread(Hit(counter: counter)).run()   // a task of this process
///         #expect(try await counter.get() == 3)
///     }
///     try await server.shutdown()
/// }
/// ```
///
/// What only a process shows (signals, a crash, the disk, a cluster's network) needs a real
/// `crucial-server`: `LocalStack` starts one.
public final class InProcessServer: Sendable {
    private let server: CrucialServer
    private let transport: InProcessTransport
    private let defaultClient: CrucialClient

    /// A server that knows the built-in types and `sharedTypes`.
    /// - Parameters:
    ///   - sharedTypes: the `@Shared` types its objects may be of, as a `CrucialProgram` lists them.
    ///   - authToken: the secret clients must prove (nil: none).
    ///   - sessionLease: how long an application session lives without a keep-alive (its
    ///     ephemeral objects go with it); short ones test what happens when a client is gone.
    public init(sharedTypes: [any SharedType.Type] = [], authToken: String? = nil, sessionLease: Duration = .seconds(30)) {
        var registry = TypeRegistry.builtins
        for type in sharedTypes { registry.register(shared: type) }
        server = CrucialServer(
            configuration: .init(port: 0, authToken: authToken, threads: 1, sessionLease: sessionLease), registry: registry)
        do { try server.startInProcess() } catch {
            // A new server kept in memory, with no cluster or data directory: it always starts.
            preconditionFailure("a new in-process server did not start: \(error)")
        }
        transport = InProcessTransport(server: server)
        defaultClient = Self.makeClient(.init(servers: [], authToken: authToken ?? ""), transport)
    }

    /// A client made with `configuration`, its servers replaced by this server's address.
    private static func makeClient(_ configuration: CrucialClient.Configuration, _ transport: InProcessTransport) -> CrucialClient {
        var configuration = configuration
        configuration.servers = [address]
        configuration.transport = transport
        return CrucialClient(configuration: configuration)
    }

    /// The client ``run(_:)`` binds; closed by ``shutdown()``.
    public var client: CrucialClient { defaultClient }

    /// A new client of this server (an application of its own: its own session, its own
    /// retry identities); close it when done. `authToken` defaults to none.
    public func client(authToken: String = "", connections: Int = 2, retries: Int = 5) -> CrucialClient {
        client(configuration: .init(servers: [], connections: connections, authToken: authToken, retries: retries))
    }

    /// A client made with `configuration` (its servers replaced by this server): for a
    /// test that needs a setting of its own (a session lease, a call limit).
    public func client(configuration: CrucialClient.Configuration) -> CrucialClient {
        Self.makeClient(configuration, transport)
    }

    /// The address clients of this server name (no socket is behind it).
    public static let address = "in-process:1"

    /// Runs cloud functions as tasks of this process whose shared objects reach this server.
    public var invoker: any CloudInvoker { InProcessInvoker(transport: transport) }

    /// Runs `body` with ``client`` as the client of every proxy made without `client:` and
    /// ``invoker`` as the invoker of every cloud thread made without `invoker:`, for this
    /// task and its child tasks alone: tests running at once each keep their own server.
    public func run<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        try await CrucialContext(client: defaultClient, invoker: invoker).run(body)
    }

    /// Closes every connection made so far, as a network failure would: clients reconnect
    /// and retry, and a retried call is applied once.
    public func cutConnections() { transport.cutAll() }

    /// Closes ``client``, answers parked calls with SHUTTING_DOWN and stops the server.
    public func shutdown() async throws {
        defaultClient.close()
        try await server.shutdown()
    }

    /// A server nobody shut down stops when its last reference goes (in the background:
    /// a deinit cannot wait), so that a test that fails half-way leaks no event loop.
    deinit {
        defaultClient.close()
        let server = self.server
        Task { try? await server.shutdown() }
    }
}
