@testable import CrucialLambda
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing

/// The bootstrap's HTTP/1.1 client over TLS, as it reaches AWS's endpoints. Here, not with
/// its other tests in CrucialLambdaTests, for one reason: the certificate is made by the
/// openssl command (a process), as the server's TLS tests make theirs.
@Suite("HTTP1Client over TLS")
struct HTTP1ClientTLSTests {
    @Test("https: a server whose certificate is trusted answers, by name (SNI) and by address; with the system's roots alone it is refused")
    func https() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try await selfSignedCertificate(in: dir, name: "https")
        let context = try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))))
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
        trusting.trustRoots = .file(cert)
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
