internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix

/// A small HTTP server, as etcd's `/livez` and `/readyz`: `GET /metrics` answers the
/// Prometheus exposition; `GET /health` answers `ok` while the process runs (alive);
/// `GET /ready` answers `ready` while the server serves calls, else 503 with the reason
/// (starting, shutting down, or in a cluster: no view, leaving, a view change under way, the
/// etcd lease not renewed in time). Anything else is 404.
final class MetricsHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: ServerMetrics
    /// Refreshes the gauges before a scrape.
    let refresh: @Sendable () -> Void
    /// Why the server does not serve calls now (nil: it does).
    let notReady: @Sendable () -> String?

    init(metrics: ServerMetrics, refresh: @escaping @Sendable () -> Void, notReady: @escaping @Sendable () -> String?) {
        self.metrics = metrics
        self.refresh = refresh
        self.notReady = notReady
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = unwrapInboundIn(data) else { return }
        let status: HTTPResponseStatus
        let body: [UInt8]
        var contentType = "text/plain; charset=utf-8"
        switch (request.method, request.uri.split(separator: "?").first.map(String.init) ?? "") {
        case (.GET, "/metrics"):
            refresh()
            if let text = metrics.exposition() {
                status = .ok
                body = text
                contentType = "text/plain; version=0.0.4; charset=utf-8"
            } else {
                status = .notFound
                body = Array("this server keeps no metrics: it was made without a Prometheus registry (crucial-server keeps one)\n".utf8)
            }
        case (.GET, "/health"):
            status = .ok
            body = Array("ok\n".utf8)
        case (.GET, "/ready"):
            if let reason = notReady() {
                status = .serviceUnavailable
                body = Array("not ready: \(reason)\n".utf8)
            } else {
                status = .ok
                body = Array("ready\n".utf8)
            }
        case (_, "/metrics"), (_, "/health"), (_, "/ready"):
            status = .methodNotAllowed
            body = Array("only GET\n".utf8)
        default:
            status = .notFound
            body = Array("try /metrics, /health or /ready\n".utf8)
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: "\(body.count)")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let keepAlive = request.isKeepAlive
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}

enum MetricsEndpoint {
    /// Binds the endpoint on `group`; returns its channel (closed at shutdown).
    static func start(
        host: String, port: Int, group: any EventLoopGroup, metrics: ServerMetrics, refresh: @escaping @Sendable () -> Void,
        notReady: @escaping @Sendable () -> String?
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(metrics: metrics, refresh: refresh, notReady: notReady))
                }
            }
            .bind(host: host, port: port).get()
    }
}
