import NIOCore
import NIOHTTP1
import NIOPosix

/// A whole HTTP/1.1 request, body collected (up to the server's limit).
struct HTTPRequest: Sendable {
    var method: HTTPMethod
    var path: String
    var query: String
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// The body's length as sent: more than `body` holds when it was over the limit.
    var bodyBytes: Int

    /// The value of `name` in the query string, percent-decoded.
    func query(_ name: String) -> String? {
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if kv.first.map(String.init)?.removingPercentEncoding == name {
                return kv.count > 1 ? String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding : ""
            }
        }
        return nil
    }

    init(_ full: NIOHTTPServerRequestFull) {
        method = full.head.method
        let uri = full.head.uri
        if let q = uri.firstIndex(of: "?") {
            path = String(uri[..<q])
            query = String(uri[uri.index(after: q)...])
        } else {
            path = uri
            query = ""
        }
        headers = full.head.headers
        body = full.body ?? ByteBuffer()
        bodyBytes = headers.first(name: BoundedRequestAggregator.discardedHeader).flatMap(Int.init) ?? body.readableBytes
        headers.remove(name: BoundedRequestAggregator.discardedHeader)
    }
}

/// Collects a request's head and body into one `NIOHTTPServerRequestFull`, keeping at most
/// `maxBody` bytes of the body: past that it reads and drops the rest and says how long the
/// body was (a header of its own), so that the handler can answer an over-size request
/// with a JSON error as AWS does, where NIO's aggregator would answer a bare 413.
final class BoundedRequestAggregator: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = NIOHTTPServerRequestFull
    static let discardedHeader = "x-crucial-emulator-body-bytes"

    private let maxBody: Int
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var total = 0

    init(maxBody: Int) { self.maxBody = maxBody }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = nil
            total = 0
        case .body(var chunk):
            total += chunk.readableBytes
            if total <= maxBody {
                if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
            } else {
                body = nil  // over the limit: only its length is kept
            }
        case .end:
            guard var h = head else { return }
            if total > maxBody { h.headers.replaceOrAdd(name: Self.discardedHeader, value: String(total)) }
            context.fireChannelRead(wrapInboundOut(NIOHTTPServerRequestFull(head: h, body: body)))
            head = nil
            body = nil
        }
    }
}

struct HTTPResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders = [:]
    var body = ByteBuffer()

    init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON answer.
    static func json(_ status: HTTPResponseStatus, _ text: String, headers: HTTPHeaders = [:]) -> HTTPResponse {
        var h = headers
        h.replaceOrAdd(name: "content-type", value: "application/json")
        return HTTPResponse(status: status, headers: h, body: ByteBuffer(string: text))
    }
}

/// A small HTTP/1.1 server on NIO's async channels: one task per connection,
/// requests on a connection answered in order (a long poll holds only its own connection).
struct HTTPServer: Sendable {
    typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse

    let port: Int
    private let channel: any Channel

    /// Binds `host:port` (0: a free port) and serves in a background task until ``close()``.
    static func start(host: String, port: Int, maxBody: Int, handler: @escaping Handler) async throws -> HTTPServer {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try child.pipeline.syncOperations.addHandler(BoundedRequestAggregator(maxBody: maxBody))
                    return try NIOAsyncChannel<NIOHTTPServerRequestFull, HTTPServerResponsePart>(wrappingChannelSynchronously: child)
                }
            }
        let bound = server.channel.localAddress?.port ?? port
        let channel = server.channel
        Task {
            try? await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { await serve(connection, handler) }
                    }
                }
            }
        }
        return HTTPServer(port: bound, channel: channel)
    }

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    /// Stops accepting connections; open ones end when their peer closes them.
    func close() {
        channel.close(promise: nil)
    }

    private static func serve(_ connection: NIOAsyncChannel<NIOHTTPServerRequestFull, HTTPServerResponsePart>, _ handler: Handler) async {
        try? await connection.executeThenClose { inbound, outbound in
            for try await request in inbound {
                var response = await handler(HTTPRequest(request))
                response.headers.replaceOrAdd(name: "content-length", value: String(response.body.readableBytes))
                try await outbound.write(.head(HTTPResponseHead(version: request.head.version, status: response.status, headers: response.headers)))
                if response.body.readableBytes > 0 { try await outbound.write(.body(.byteBuffer(response.body))) }
                try await outbound.write(.end(nil))
                if !request.head.isKeepAlive { break }
            }
        }
    }
}
