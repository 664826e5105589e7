import Synchronization
public import CoreMetrics

/// One server's metrics: swift-metrics handles made by a factory of its own (so that
/// several servers can run in one process), served by `MetricsEndpoint` as the text its
/// `exposition` writes. `crucial-server` keeps them in a Prometheus registry
/// (`ServerMetrics.prometheus()` in the CrucialServer library); ``init()`` keeps them
/// nowhere (a program's own local server, tests).
///
/// Names: `crucial_operations_total{type,method,outcome}` (outcome `ok`, `parked` or the
/// error code), `crucial_operation_duration_seconds{type,method}` (calls until their answer,
/// the wait for replicas and the disk included; parked calls are not timed),
/// `crucial_replication_duration_seconds` (a change until every replica applied it),
/// gauges `crucial_objects`, `crucial_sessions`, `crucial_parked_calls`,
/// `crucial_object_state_bytes`, `crucial_connections`, `crucial_view_id`,
/// `crucial_replication_pending`, `crucial_tombstones`, `crucial_holes{state}` (`away`: holes
/// with a member not back, whose objects are UNAVAILABLE; `lost`: holes with a loss no operator
/// accepted, whose objects are DATA_LOSS), and counters `crucial_connections_refused_total{reason}`,
/// `crucial_bad_frames_total`, and `crucial_build_info{version,protocol}` (always 1: the
/// release and wire protocol this server runs, as Prometheus's own `*_build_info`).
public final class ServerMetrics: Sendable {
    /// Why a connection was refused or closed by the server.
    enum Refusal: String {
        case unauthenticated, limit, `protocol`, handshakeTimeout = "handshake_timeout", idle, slowClient = "slow_client"
    }

    /// The handles of one method of one type.
    /// A class: a call passes its handles around with one retain, not one per metric.
    final class Operation: Sendable {
        let type: String
        let method: String
        let ok: CoreMetrics.Counter
        let parked: CoreMetrics.Counter
        let duration: CoreMetrics.Timer
        /// Calls of this method so far, answered or parked (`ServerInfo`'s `calls`, which
        /// `crucial top` turns into calls per second).
        let calls = AtomicCounter()

        init(type: String, method: String, ok: CoreMetrics.Counter, parked: CoreMetrics.Counter, duration: CoreMetrics.Timer) {
            self.type = type
            self.method = method
            self.ok = ok
            self.parked = parked
            self.duration = duration
        }
    }

    private let factory: any MetricsFactory
    /// The text of `GET /metrics`; nil when the metrics are kept nowhere.
    private let expose: (@Sendable () -> [UInt8])?
    private let operations = Mutex<[String: Operation]>([:])
    let objects: CoreMetrics.Gauge
    let sessions: CoreMetrics.Gauge
    let parkedCalls: CoreMetrics.Gauge
    let stateBytes: CoreMetrics.Gauge
    let connections: CoreMetrics.Gauge
    let viewID: CoreMetrics.Gauge
    let replicationPending: CoreMetrics.Gauge
    let tombstones: CoreMetrics.Gauge
    let awayHoles: CoreMetrics.Gauge
    let lostHoles: CoreMetrics.Gauge
    let replication: CoreMetrics.Timer
    private let badFrames: CoreMetrics.Counter

    /// Metrics kept nowhere: the handles count only the calls per method that `crucial top` shows.
    public convenience init() {
        self.init(factory: NOOPMetricsHandler.instance, exposition: nil)
    }

    /// Metrics made by `factory`; `exposition` writes what `GET /metrics` answers.
    public init(factory: any MetricsFactory, exposition: (@Sendable () -> [UInt8])?) {
        self.expose = exposition
        self.factory = factory
        objects = CoreMetrics.Gauge(label: "crucial_objects", factory: factory)
        sessions = CoreMetrics.Gauge(label: "crucial_sessions", factory: factory)
        parkedCalls = CoreMetrics.Gauge(label: "crucial_parked_calls", factory: factory)
        stateBytes = CoreMetrics.Gauge(label: "crucial_object_state_bytes", factory: factory)
        connections = CoreMetrics.Gauge(label: "crucial_connections", factory: factory)
        viewID = CoreMetrics.Gauge(label: "crucial_view_id", factory: factory)
        replicationPending = CoreMetrics.Gauge(label: "crucial_replication_pending", factory: factory)
        tombstones = CoreMetrics.Gauge(label: "crucial_tombstones", factory: factory)
        awayHoles = CoreMetrics.Gauge(label: "crucial_holes", dimensions: [("state", "away")], factory: factory)
        lostHoles = CoreMetrics.Gauge(label: "crucial_holes", dimensions: [("state", "lost")], factory: factory)
        replication = CoreMetrics.Timer(label: "crucial_replication_duration_seconds", factory: factory)
        badFrames = CoreMetrics.Counter(label: "crucial_bad_frames_total", factory: factory)
        CoreMetrics.Gauge(
            label: "crucial_build_info", dimensions: [("version", CrucialVersion.release), ("protocol", "\(CrucialVersion.wireProtocol)")],
            factory: factory
        ).record(1)
    }

    /// The text exposition of every metric (Prometheus's, from `crucial-server`), or nil
    /// when the metrics are kept nowhere.
    public func exposition() -> [UInt8]? { expose?() }

    func handles(_ type: String, _ method: String) -> Operation {
        let key = "\(type)\u{0}\(method)"
        if let known = operations.withLock({ $0[key] }) { return known }
        let dimensions = [("type", type), ("method", method)]
        let made = Operation(
            type: type, method: method,
            ok: CoreMetrics.Counter(label: "crucial_operations_total", dimensions: dimensions + [("outcome", "ok")], factory: factory),
            parked: CoreMetrics.Counter(label: "crucial_operations_total", dimensions: dimensions + [("outcome", "parked")], factory: factory),
            duration: CoreMetrics.Timer(label: "crucial_operation_duration_seconds", dimensions: dimensions, factory: factory))
        return operations.withLock { operations in
            if let existing = operations[key] { return existing }
            operations[key] = made
            return made
        }
    }

    /// A call answered at once (`since` = when it arrived), with the handles of its method.
    func operation(_ h: Operation, _ outcome: Outcome, since: ContinuousClock.Instant) {
        h.calls.add()
        h.duration.recordNanoseconds((ContinuousClock.now - since).nanosecondsClamped)
        switch outcome {
        case .value: h.ok.increment()
        case .error(let e): counter("crucial_operations_total", [("type", h.type), ("method", h.method), ("outcome", e.code.name)])
        case .wrongView: counter("crucial_operations_total", [("type", h.type), ("method", h.method), ("outcome", "WRONG_VIEW")])
        }
    }


    /// A call that parked: counted here, and not again when it is answered.
    func parked(_ h: Operation) {
        h.calls.add()
        h.parked.increment()
    }

    /// Calls per method so far: (type, method, calls), the methods any call named.
    func callCounts() -> [(type: String, method: String, calls: Int)] {
        operations.withLock { Array($0.values) }.map { ($0.type, $0.method, $0.calls.load()) }.filter { $0.calls > 0 }
    }

    func refused(_ reason: Refusal) { counter("crucial_connections_refused_total", [("reason", reason.rawValue)]) }

    func badFrame() { badFrames.increment() }

    private func counter(_ label: String, _ dimensions: [(String, String)]) {
        CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory).increment()
    }
}

extension ServerMetrics {
    /// Recounts `store` (and `cluster`'s holes) and sets the gauges.
    func census(of store: ObjectStore, cluster: Cluster?) {
        let (bytes, count, parked) = store.refreshFootprints()
        stateBytes.record(bytes)
        objects.record(count)
        parkedCalls.record(parked)
        sessions.record(store.sessionCount)
        replicationPending.record(store.replicationsPending.load())
        viewID.record(Int64(clamping: cluster?.view?.id ?? 0))
        tombstones.record(store.tombstoneCount)
        let holes = cluster?.unsettledHoles ?? []
        awayHoles.record(holes.filter { !$0.absent.isEmpty }.count)
        lostHoles.record(holes.filter { !$0.lost.isEmpty }.count)
    }
}
