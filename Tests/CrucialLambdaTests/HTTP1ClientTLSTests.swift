@testable import CrucialLambda
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing

/// The bootstrap's HTTP/1.1 client over TLS, as it reaches AWS's endpoints, against a local
/// swift-nio-ssl server with a certificate of its own.
@Suite("HTTP1Client over TLS")
struct HTTP1ClientTLSTests {
    @Test("https: a server whose certificate is trusted answers, by name (SNI) and by address; with the system's roots alone it is refused")
    func https() async throws {
        let certificate = try NIOSSLCertificate(bytes: Array(Self.certificate.utf8), format: .pem)
        let context = try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: [.certificate(certificate)],
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(Self.key.utf8), format: .pem))))
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(NIOSSLServerHandler(context: context))
                    try pipeline.configureHTTPServerPipeline()
                    try pipeline.addHandler(NIOHTTPServerRequestAggregator(maxContentLength: 1 << 20))
                    try pipeline.addHandler(Echo())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let port = server.localAddress?.port ?? 0
        var trusting = TLSConfiguration.makeClientConfiguration()
        trusting.trustRoots = .certificates([certificate])
        let client = HTTP1Client(tls: trusting)
        for host in ["localhost", "127.0.0.1"] {
            for _ in 0..<2 {  // the second over the pooled connection
                let response = try await client.execute(
                    .init(method: .POST, url: "https://\(host):\(port)/echo", body: ByteBuffer(string: "over tls")), timeout: .seconds(30))
                #expect(response.status == .ok && String(buffer: response.body) == "over tls", "\(host)")
            }
        }
        #expect(client.idleConnections == 2, "one connection per origin, reused")
        await #expect(throws: (any Error).self) {
            _ = try await HTTP1Client().execute(.init(url: "https://localhost:\(port)/echo"), timeout: .seconds(30))
        }
    }

    /// A self-signed certificate for 127.0.0.1 and localhost, valid until 2126, and its key:
    /// made once with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
    /// -nodes -days 36500 -addext "subjectAltName=IP:127.0.0.1,DNS:localhost"`.
    static let certificate = """
        -----BEGIN CERTIFICATE-----
        MIIBrDCCAVOgAwIBAgIUQ25YKILpPy5JqC8gCw/a4+HciLwwCgYIKoZIzj0EAwIw
        HTEbMBkGA1UEAwwSY3J1Y2lhbC10ZXN0LWh0dHBzMCAXDTI2MTIwODAwNDkxNFoY
        DzIxMjYxMTE0MDA0OTE0WjAdMRswGQYDVQQDDBJjcnVjaWFsLXRlc3QtaHR0cHMw
        WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASwZ4j5GXnKaxoot5DZpj3L21XVlVlR
        /vRE1ZMDWNTcmzd8eqm+myDPZKwrn8I2slufV+jQRMDFla2r3PjFeUIlo28wbTAd
        BgNVHQ4EFgQUTyqA1JiOoYDS5URL7EkUrz/+oR4wHwYDVR0jBBgwFoAUTyqA1JiO
        oYDS5URL7EkUrz/+oR4wDwYDVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAAB
        gglsb2NhbGhvc3QwCgYIKoZIzj0EAwIDRwAwRAIgISyuq5cnrqps5zhYtpMFCTx3
        PcyMG/n+I6ti0vgDaJkCIHmYIQL3s+n7ZpTfKYHwoDSd6QPKv/754369SOr66s5N
        -----END CERTIFICATE-----
        """
    static let key = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJdhxYAmWNLGJAGPo
        BdfnTQG0Q8twj+RO3O96JroCxVOhRANCAASwZ4j5GXnKaxoot5DZpj3L21XVlVlR
        /vRE1ZMDWNTcmzd8eqm+myDPZKwrn8I2slufV+jQRMDFla2r3PjFeUIl
        -----END PRIVATE KEY-----
        """

    /// Answers each request with its body.
    private final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = NIOHTTPServerRequestFull
        typealias OutboundOut = HTTPServerResponsePart

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let request = unwrapInboundIn(data)
            let body = request.body ?? ByteBuffer()
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": String(body.readableBytes)])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
