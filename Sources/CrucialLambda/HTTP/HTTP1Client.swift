internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import NIOSSL
internal import Synchronization

/// The HTTP/1.1 client of a bootstrap and an invoker: the Lambda Invoke API (many
/// invocations at once, so a pool of keep-alive connections per origin), the Runtime API's
/// long poll, STS and the credential endpoints. Over SwiftNIO's HTTP/1 codec and
/// aggregator and swift-nio-ssl, which the client already links, as swift-aws-lambda-runtime
/// does for its Runtime API client: async-http-client brought HTTP/2, SOCKS, compression,
/// tracing, swift-configuration and the regex engine into every Lambda zip (3.3 MB of a
/// static bootstrap's 22 MB), none of which these few requests use.
final class HTTP1Client: Sendable {
    /// One client for the process: its pool is what makes many invocations cheap.
    static let shared = HTTP1Client()

    struct Request: Sendable {
        var method: HTTPMethod = .GET
        /// `http://host[:port]/path?query` or `https://…`; the path is sent as written.
        var url: String
        var headers = HTTPHeaders()
        var body: ByteBuffer?
    }

    struct Response: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    enum Failure: Error, CustomStringConvertible {
        case badURL(String)
        case timedOut(TimeAmount)
        case closed
        case tooLarge(limit: Int)
        /// The request did not leave: a pooled connection closed under it (tried again on a new one).
        case notSent(any Error)

        var description: String {
            switch self {
            case .badURL(let url): "\"\(url)\" is not an http(s) URL"
            case .timedOut(let after): "no answer within \(after.nanoseconds / 1_000_000) ms"
            case .closed: "the connection closed before the answer"
            case .tooLarge(let limit): "the answer is larger than \(limit) bytes"
            case .notSent(let error): "the request could not be sent: \(error)"
            }
        }
    }

    /// Where a connection goes: what a pooled connection is kept under.
    struct Origin: Hashable, Sendable {
        var tls: Bool
        var host: String
        var port: Int
        /// The `Host` header: the URL's authority as written.
        var authority: String
    }

    private struct Idle: Sendable {
        var channel: any Channel
        var since: NIODeadline
    }

    private let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    private let idle = Mutex<[Origin: [Idle]]>([:])
    /// A pooled connection idle this long is closed: a server may have dropped it meanwhile
    /// (its close would race the next request), and a driver that ran a thousand threads at
    /// once keeps no thousand sockets afterwards.
    private let idleTimeout: TimeAmount
    /// Made once (a context loads the trust roots), or why it could not be: said at the first
    /// https request.
    private let tls: Result<NIOSSLContext, any Error>

    /// A client whose TLS connections trust what `tls` says (the system's roots by default),
    /// closing connections idle for `idleTimeout`.
    init(tls: TLSConfiguration = .makeClientConfiguration(), idleTimeout: TimeAmount = .seconds(20)) {
        self.tls = Result { try NIOSSLContext(configuration: tls) }
        self.idleTimeout = idleTimeout
    }

    /// Connections waiting in the pool.
    var idleConnections: Int { idle.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Sends `request` and waits for the whole answer, at most `timeout` in all (connecting
    /// included) and `maxBody` bytes of body. A task cancelled meanwhile closes the connection.
    func execute(_ request: Request, timeout: TimeAmount, maxBody: Int = 16 << 20) async throws -> Response {
        let (origin, path) = try Self.parse(request.url)
        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: path, headers: request.headers)
        if !head.headers.contains(name: "host") { head.headers.add(name: "host", value: origin.authority) }
        let length = request.body?.readableBytes ?? 0
        if length > 0 || request.method == .POST || request.method == .PUT {
            head.headers.replaceOrAdd(name: "content-length", value: String(length))
        }
        let deadline = NIODeadline.now() + timeout
        let exchange = Exchange(head: head, body: request.body, maxBody: maxBody)
        if let pooled = takeIdle(origin) {
            do {
                return try await run(exchange, on: pooled, origin: origin, deadline: deadline, timeout: timeout)
            } catch Failure.notSent {}  // closed while idle: a new connection below
        }
        let channel: any Channel
        do { channel = try await connect(origin, deadline: deadline) } catch ChannelError.connectTimeout {
            throw Failure.timedOut(timeout)  // one error for a deadline, whichever step it ended
        }
        return try await run(exchange, on: channel, origin: origin, deadline: deadline, timeout: timeout)
    }

    private func run(_ exchange: Exchange, on channel: any Channel, origin: Origin, deadline: NIODeadline, timeout: TimeAmount) async throws -> Response {
        let answer = channel.eventLoop.makePromise(of: NIOHTTPClientResponseFull.self)
        var exchange = exchange
        exchange.answer = answer
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
            answer.fail(Failure.timedOut(timeout))
            channel.close(promise: nil)
        }
        channel.writeAndFlush(exchange).whenFailure { answer.fail(Failure.notSent($0)) }
        let full: NIOHTTPClientResponseFull
        do {
            full = try await withTaskCancellationHandler {
                try await answer.futureResult.get()
            } onCancel: {
                answer.fail(CancellationError())
                channel.close(promise: nil)
            }
        } catch {
            timer.cancel()
            channel.close(promise: nil)
            throw error
        }
        timer.cancel()
        if full.head.isKeepAlive { giveBack(channel, origin: origin) } else { channel.close(promise: nil) }
        let body = full.body ?? ByteBuffer()
        if body.readableBytes > exchange.maxBody { throw Failure.tooLarge(limit: exchange.maxBody) }
        return Response(status: full.head.status, headers: full.head.headers, body: body)
    }

    private func connect(_ origin: Origin, deadline: NIODeadline) async throws -> any Channel {
        let tls = origin.tls ? try self.tls.get() : nil
        // SNI names a host, never an address.
        let serverName = origin.host.contains(":") || origin.host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : origin.host
        let left = deadline - .now()
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(max(.milliseconds(1), left))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                    try pipeline.addHTTPClientHandlers()
                    try pipeline.addHandlers([NIOHTTPClientResponseAggregator(maxContentLength: 64 << 20), ExchangeHandler()])
                }
            }
            .connect(host: origin.host, port: origin.port)
            .get()
        // A connection the server closes while idle leaves the pool at once.
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.idle.withLock { pool in pool[origin]?.removeAll { $0.channel === channel } }
        }
        return channel
    }

    private func takeIdle(_ origin: Origin) -> (any Channel)? {
        let now = NIODeadline.now()
        let (found, stale) = idle.withLock { pool -> ((any Channel)?, [any Channel]) in
            var stale: [any Channel] = []
            while let last = pool[origin]?.popLast() {
                if last.channel.isActive, now - last.since < idleTimeout { return (last.channel, stale) }
                stale.append(last.channel)
            }
            return (nil, stale)
        }
        for channel in stale { channel.close(promise: nil) }
        return found
    }

    private func giveBack(_ channel: any Channel, origin: Origin) {
        guard channel.isActive else { return }
        let since = NIODeadline.now()
        idle.withLock { $0[origin, default: []].append(Idle(channel: channel, since: since)) }
        // Still idle then (not taken, not given back again since): closed.
        channel.eventLoop.scheduleTask(in: idleTimeout) { [weak self] in
            let expired = self?.idle.withLock { pool -> Bool in
                guard let i = pool[origin]?.firstIndex(where: { $0.channel === channel && $0.since == since }) else { return false }
                pool[origin]?.remove(at: i)
                return true
            }
            if expired == true { channel.close(promise: nil) }
        }
    }

    /// `scheme://authority/path?query` split without decoding: SigV4 signs the path as sent.
    static func parse(_ url: String) throws(Failure) -> (Origin, path: String) {
        guard let separator = url.firstRange(of: "://") else { throw .badURL(url) }
        let scheme = url[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { throw .badURL(url) }
        let rest = url[separator.upperBound...]
        let end = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = String(rest[..<end])
        var path = String(rest[end...])
        if path.isEmpty || path.first == "?" { path = "/" + path }
        guard !authority.isEmpty, !authority.contains("@") else { throw .badURL(url) }
        var host = authority
        var port = scheme == "https" ? 443 : 80
        if authority.first == "[" {  // [IPv6]:port
            guard let close = authority.firstIndex(of: "]") else { throw .badURL(url) }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.first == ":" { guard let given = Int(after.dropFirst()) else { throw .badURL(url) }; port = given }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let given = Int(authority[authority.index(after: colon)...]) else { throw .badURL(url) }
            host = String(authority[..<colon])
            port = given
        }
        guard !host.isEmpty, (1...65_535).contains(port) else { throw .badURL(url) }
        return (Origin(tls: scheme == "https", host: host, port: port, authority: authority), path)
    }
}

/// One request and where its answer goes.
private struct Exchange: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer?
    var maxBody: Int
    var answer: EventLoopPromise<NIOHTTPClientResponseFull>?
}

/// Writes an exchange's request and completes its promise with the aggregated answer, or
/// fails it when the connection errs or closes first. One exchange at a time per connection.
private final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOHTTPClientResponseFull
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    private var pending: EventLoopPromise<NIOHTTPClientResponseFull>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        pending = exchange.answer
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if let body = exchange.body, body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let full = unwrapInboundIn(data)
        let answer = pending
        pending = nil
        answer?.succeed(full)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(HTTP1Client.Failure.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error is NIOHTTPObjectAggregatorError ? HTTP1Client.Failure.tooLarge(limit: 64 << 20) : error)
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        let answer = pending
        pending = nil
        answer?.fail(error)
    }
}
