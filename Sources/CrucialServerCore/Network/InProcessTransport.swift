internal import CrucialCore
package import CrucialTransport
internal import Logging
package import NIOCore
internal import NIOPosix
import Synchronization

/// Connections to a server without sockets: each connection's frames go straight to the
/// server's handshake state machine and then to a ``RequestDispatcher`` of its own, on one
/// event loop, as a socket's frames would; answers (late ones too) complete the client's
/// promises. A `CrucialClient` configured with it runs its proxies, retries and sessions
/// against a real store in the same process (grpc-swift's in-process transport is the model).
///
/// ```swift
/// let server = CrucialServer(configuration: .init(port: 0))
/// var configuration = CrucialClient.Configuration(servers: ["in-process:1"])
/// configuration.transport = InProcessTransport(server: server)
/// let client = CrucialClient(configuration: configuration)
/// ```
///
/// Several servers can share one transport, each at an address of its own (``serve(_:settings:at:)``):
/// the members of a cluster reach each other through it, which is how the tests run view
/// changes and the moving of objects without sockets.
///
/// Faults go in through the same seam: ``cutAll()`` closes every connection as a network
/// failure would, ``stopServing(at:)`` makes an address refuse connections as a crashed
/// server's port does.
package final class InProcessTransport: Transport {
    /// What answers at one address.
    struct Endpoint {
        let store: ObjectStore
        let settings: ConnectionSettings
    }

    /// The server every address reaches (``init(server:loop:)``), if any.
    private let anyAddress: Endpoint?
    private let endpoints = Mutex<[String: Endpoint]>([:])
    private let loop: any EventLoop
    private let logger: Logger
    private let nextConnection = Atomic<UInt64>(1 << 40)
    private let open = Mutex<[ObjectIdentifier: (address: String, connection: InProcessConnection)]>([:])

    /// Connections to `server`'s store at any address (the server need not listen anywhere).
    /// Cluster frames are not served: this server has no cluster.
    package init(server: CrucialServer, loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        let c = server.configuration
        var settings = ConnectionSettings(
            serverID: c.serverID, maxFrameSize: c.maxFrameSize, credentials: c.allCredentials, pluginDirectory: c.pluginDirectory,
            maxPluginBytes: c.maxPluginBytes, cluster: nil, limits: c.limits, metrics: server.metrics)
        settings.runs = server.runs
        self.anyAddress = Endpoint(store: server.store, settings: settings)
        self.loop = loop
        self.logger = Logger(label: "crucial.in-process")
    }

    /// A transport on which nothing answers until ``serve(_:settings:at:)`` adds servers.
    init(loop: any EventLoop) {
        self.anyAddress = nil
        self.loop = loop
        self.logger = Logger(label: "crucial.in-process")
    }

    /// Connections to `address` ("host:port") go to `store`, served with `settings` (a
    /// cluster member's, with its ``Cluster``).
    func serve(_ store: ObjectStore, settings: ConnectionSettings, at address: String) {
        endpoints.withLock { $0[address] = Endpoint(store: store, settings: settings) }
    }

    /// `address` refuses connections from now on, and its open connections are cut: what a
    /// crashed server looks like to the others.
    func stopServing(at address: String) {
        endpoints.withLock { _ = $0.removeValue(forKey: address) }
        cut { $0 == address }
    }

    package func connect(
        host: String, port: Int, group: any EventLoopGroup, identity: ConnectionIdentity, timeout: Duration, heartbeat: Duration?,
        maxPending: Int
    ) async throws -> any FrameConnection {
        let address = "\(host):\(port)"
        guard let endpoint = endpoints.withLock({ $0[address] }) ?? anyAddress else {
            // The words a TCP connection refused uses: the cluster's failure detector reads them.
            throw CrucialError(.connectionFailed, "crucial-server at \(address) refused the connection (nothing listens there)")
        }
        let (store, settings) = (endpoint.store, endpoint.settings)
        // Both sides of the handshake, in memory: each frame one returns goes to the other.
        var client = ClientHandshake(name: identity.name, secret: identity.secret, address: address, run: identity.run)
        var server = ServerHandshake(
            serverID: settings.serverID, maxFrameSize: settings.maxFrameSize, credentials: settings.credentials,
            runRefusal: settings.runs.refusal)
        var toServer: Frame? = .hello(client.hello)
        while let frame = toServer {
            toServer = nil
            let reply: Frame
            var admitted: Bool?
            switch server.receive(frame, view: settings.cluster?.view) {
            case .send(let f): reply = f
            case .accept(let r, let isAdmin, _):
                reply = .helloReply(r)
                admitted = isAdmin
            case .refuse(let r, _): reply = .helloReply(r)
            case .fail(let id, let e): reply = .result(Reply(id: id, outcome: .error(e)))
            }
            switch client.receive(reply) {
            case .send(let f)?: toServer = f
            case .ready(let hello)?:
                let connection = InProcessConnection(
                    hello: hello, loop: loop, store: store, settings: settings,
                    connection: ConnectionID(nextConnection.wrappingAdd(1, ordering: .relaxed).newValue), logger: logger,
                    isAdmin: admitted ?? false, run: server.run, maxPending: maxPending)
                open.withLock { open in
                    open = open.filter { $0.value.connection.isActive }  // forget the closed ones
                    open[ObjectIdentifier(connection)] = (address, connection)
                }
                return connection
            case .fail(let error)?: throw error
            case nil: throw CrucialError(.protocolViolation, "the in-process handshake did not finish")
            }
        }
        throw CrucialError(.protocolViolation, "the in-process handshake did not finish")
    }

    /// Closes every connection made so far, failing their waiting requests with
    /// CONNECTION_LOST, as a network failure would: clients reconnect and retry.
    package func cutAll() { cut { _ in true } }

    /// Closes the connections to the addresses `which` picks.
    func cut(_ which: (String) -> Bool) {
        let cut = open.withLock { open in
            let cut = open.filter { which($0.value.address) }
            for key in cut.keys { open.removeValue(forKey: key) }
            return cut.values.map(\.connection)
        }
        for c in cut { c.close() }
    }
}

/// One in-process connection: its dispatcher and the promises of its waiting requests,
/// confined to the transport's event loop.
final class InProcessConnection: FrameConnection {
    let hello: HelloReply
    private let loop: any EventLoop
    private let active = Atomic<Bool>(true)
    private let state: NIOLoopBoundBox<State>
    /// What the dispatcher is made of, on the loop, with the first request.
    private let store: ObjectStore
    private let settings: ConnectionSettings
    private let connection: ConnectionID
    private let logger: Logger
    private let isAdmin: Bool
    /// The run of cloud threads its Hello named (0: none).
    private let run: UInt64

    private struct State {
        var dispatcher: RequestDispatcher?
        var closed = false
        var pending: PendingRequests
    }

    init(
        hello: HelloReply, loop: any EventLoop, store: ObjectStore, settings: ConnectionSettings, connection: ConnectionID, logger: Logger,
        isAdmin: Bool, run: UInt64, maxPending: Int
    ) {
        self.run = run
        self.hello = hello
        self.loop = loop
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(pending: PendingRequests(limit: maxPending)), eventLoop: loop)
        self.store = store
        self.settings = settings
        self.connection = connection
        self.logger = logger
        self.isAdmin = isAdmin
    }

    /// The connection's dispatcher, made on first use (on the loop).
    private func dispatcher() -> RequestDispatcher? {
        if let d = state.value.dispatcher { return d }
        guard !state.value.closed else { return nil }
        let d = RequestDispatcher(
            store: store, settings: settings, connection: connection, logger: logger, isAdmin: isAdmin,
            responder: InProcessResponder(connection: self), run: run, close: { [weak self] in self?.close() }
        ) { [weak self] frame, cluster in
            // A view change is under way: serve the frame once the cluster serves a view again.
            guard let self else { return }
            let loop = self.loop
            cluster.whenReady { [weak self] in loop.execute { [weak self] in self?.serveWaiting(frame) } }
        }
        state.value.dispatcher = d
        return d
    }

    var isActive: Bool { active.load(ordering: .relaxed) }

    func send(_ frame: Frame, id: UInt64) -> EventLoopFuture<Frame> {
        let promise = loop.makePromise(of: Frame.self)
        loop.execute { [self] in
            guard isActive, let dispatcher = dispatcher() else {
                return promise.fail(CrucialError(.connectionLost, "in-process connection closed"))
            }
            if let error = state.value.pending.refusal(of: frame, to: "in-process") { return promise.fail(error) }
            state.value.pending.add(id, frame, .promise(promise))
            if let answer = dispatcher.serve(frame) { deliver(answer) }
        }
        return promise.futureResult
    }

    /// Serves a frame that waited for a view change to end, on the loop.
    private func serveWaiting(_ frame: Frame) {
        guard isActive, let dispatcher = dispatcher() else { return }  // close() failed its promise
        if let answer = dispatcher.serve(frame) { deliver(answer) }
    }

    /// Completes the request `frame` answers, on the loop.
    fileprivate func deliver(_ frame: Frame) {
        guard let id = frame.requestID, let answer = state.value.pending.remove(id) else { return }
        answer.succeed(frame)
    }

    fileprivate func deliverFromAnyThread(_ frame: Frame) {
        loop.execute { [self] in deliver(frame) }
    }

    func close() {
        guard active.exchange(false, ordering: .relaxed) else { return }
        loop.execute { [state] in
            state.value.closed = true
            state.value.dispatcher?.closed()
            state.value.dispatcher = nil
            for answer in state.value.pending.removeAll() { answer.fail(CrucialError(.connectionLost, "in-process connection closed")) }
        }
    }
}

/// Late answers of an in-process connection's requests: back to its loop.
private struct InProcessResponder: Responder {
    weak var connection: InProcessConnection?

    func respond(_ reply: Reply) { connection?.deliverFromAnyThread(.result(reply)) }
}
