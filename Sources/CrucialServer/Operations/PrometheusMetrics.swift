public import CrucialServerCore
internal import Prometheus

extension ServerMetrics {
    /// Metrics in a Prometheus registry of their own (so that several servers can run in
    /// one process): what `crucial-server` serves at `GET /metrics`.
    public static func prometheus() -> ServerMetrics {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Calls take microseconds to seconds (parked ones are not timed).
        factory.defaultDurationHistogramBuckets = [
            .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        return ServerMetrics(factory: factory, exposition: { registry.emitToBuffer() })
    }
}
