import Synchronization
import CrucialClient
@testable import CrucialLambda
import CrucialCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// A loopback HTTP server that answers from a script and keeps what it received.
final class ScriptedHTTPServer: Sendable {
    struct Received: Sendable {
        var head: HTTPRequestHead
        var body: [UInt8]
    }
    struct Answer: Sendable {
        var status: HTTPResponseStatus
        var headers: [(String, String)] = []
        var body = ""
        /// Closes the connection after this answer without saying so (as a server dropping
        /// an idle keep-alive connection does).
        var closeAfter = false
    }

    let channel: any Channel
    let received = LockedBox<[Received]>([])
    /// Connections accepted.
    let connections = LockedBox(0)
    private let script: LockedBox<[Answer]>

    var port: Int { channel.localAddress?.port ?? 0 }

    init(answers: [Answer]) async throws {
        let script = LockedBox(answers)
        let received = self.received
        let connections = self.connections
        self.script = script
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                connections.withLock { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(NIOHTTPServerRequestAggregator(maxContentLength: 1 << 20))
                    try channel.pipeline.syncOperations.addHandler(Responder(script: script, received: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() { channel.close(promise: nil) }

    private final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = NIOHTTPServerRequestFull
        typealias OutboundOut = HTTPServerResponsePart
        let script: LockedBox<[Answer]>
        let received: LockedBox<[Received]>

        init(script: LockedBox<[Answer]>, received: LockedBox<[Received]>) {
            self.script = script
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let request = unwrapInboundIn(data)
            received.withLock { $0.append(Received(head: request.head, body: Array(request.body?.readableBytesView ?? ByteBuffer().readableBytesView))) }
            let answer = script.withLock { $0.isEmpty ? Answer(status: .internalServerError, body: "script exhausted") : $0.removeFirst() }
            var headers = HTTPHeaders(answer.headers)
            headers.add(name: "content-length", value: String(answer.body.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: answer.body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            if answer.closeAfter { context.close(promise: nil) }
        }
    }
}

@Suite("LambdaInvoker against a local Invoke API")
struct LambdaInvokerTests {
    @Test("A signed invocation: the server recomputes the SigV4 signature from the headers it received")
    func signedRoundTrip() async throws {
        let server = try await ScriptedHTTPServer(answers: [.init(status: .ok, headers: [("X-Amzn-RequestId", "r1")], body: "42")])
        defer { server.close() }
        let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: "TOKEN")
        let invoker = LambdaInvoker(configuration: .init(
            endpoint: "http://127.0.0.1:\(server.port)", functionName: "arn:aws:lambda:eu-west-1:123456789012:function:crucial",
            region: "eu-west-1", credentials: credentials))
        let payload = Data(#"{"function":"X","input":{}}"#.utf8)
        let answer = try await invoker.invoke(function: "X", payload: payload)
        #expect(String(decoding: answer, as: UTF8.self) == "42")

        let request = try #require(server.received.withLock { $0.first })
        #expect(request.head.method == .POST)
        #expect(request.head.uri == "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Acrucial/invocations")
        #expect(request.head.headers.first(name: "x-amz-invocation-type") == "RequestResponse")
        #expect(request.head.headers.first(name: "x-amz-security-token") == "TOKEN")
        #expect(request.body == Array(payload))

        // Verify as AWS would: parse the Authorization header, rebuild the signed
        // headers from what arrived, and recompute the signature.
        let auth = try #require(request.head.headers.first(name: "authorization"))
        #expect(auth.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"))
        #expect(auth.contains("/eu-west-1/lambda/aws4_request, "))
        let fields = Dictionary(uniqueKeysWithValues: auth.dropFirst("AWS4-HMAC-SHA256 ".count).split(separator: ", ").map { field in
            let kv = field.split(separator: "=", maxSplits: 1)
            return (String(kv[0]), String(kv[1]))
        })
        let signedNames = try #require(fields["SignedHeaders"]).split(separator: ";").map(String.init)
        #expect(signedNames.contains("host") && signedNames.contains("x-amz-date") && signedNames.contains("x-amz-invocation-type"))
        let signedHeaders = signedNames.map { name in (name, request.head.headers[canonicalForm: name].joined(separator: ",")) }
        let amzDate = try #require(request.head.headers.first(name: "x-amz-date"))
        let signer = SigV4Signer(credentials: credentials, region: "eu-west-1", service: "lambda")
        let payloadHash = SHA256.hash(request.body).map { String(format: "%02x", $0) }.joined()
        let expected = signer.authorization(
            method: "POST", path: request.head.uri, query: "", headers: signedHeaders, payloadHash: payloadHash, amzDate: amzDate)
        #expect(auth == expected)
    }

    @Test("429 and 5xx answers are retried; a function error becomes CloudFunctionError with the log tail")
    func throttlingAndFunctionErrors() async throws {
        let log = Data("START\nboom happened\nEND\n".utf8).base64EncodedString()
        let server = try await ScriptedHTTPServer(answers: [
            .init(status: .tooManyRequests, headers: [("x-amzn-ErrorType", "TooManyRequestsException")], body: #"{"message":"Rate exceeded"}"#),
            .init(status: .serviceUnavailable, body: "{}"),
            .init(status: .ok, headers: [("X-Amz-Function-Error", "Unhandled"), ("X-Amz-Log-Result", log), ("X-Amzn-RequestId", "req-9")],
                  body: #"{"errorType":"MyApp.Bad","errorMessage":"went wrong","stackTrace":[]}"#),
            .init(status: .forbidden, headers: [("x-amzn-ErrorType", "AccessDeniedException:http://internal")], body: #"{"Message":"no access"}"#),
        ])
        defer { server.close() }
        let invoker = LambdaInvoker(configuration: .init(endpoint: "http://127.0.0.1:\(server.port)", throttleBackoff: .milliseconds(5)))
        let error = try await #require(throws: CloudFunctionError.self) { _ = try await invoker.invoke(function: "F", payload: Data("{}".utf8)) }
        #expect(server.received.withLock { $0.count } == 3)
        #expect(error.errorType == "MyApp.Bad")
        #expect(error.errorMessage == "went wrong")
        #expect(error.kind == "Unhandled")
        #expect(error.requestID == "req-9")
        #expect(error.log?.contains("boom happened") == true)
        let refused = try await #require(throws: CloudThreadError.self) { _ = try await invoker.invoke(function: "F", payload: Data("{}".utf8)) }
        #expect(refused == .invocationRefused(status: 403, type: "AccessDeniedException", message: "no access"))
    }

    @Test("Configuration mistakes are reported before anything is sent")
    func configuration() async throws {
        let bad = LambdaInvoker(configuration: .init(endpoint: "ftp://example.com"))
        await #expect(throws: CloudThreadError.configuration("Lambda endpoint \"ftp://example.com\" is not an http(s) URL")) {
            _ = try await bad.invoke(function: "F", payload: Data())
        }
        let unsigned = LambdaInvoker(configuration: .init(endpoint: "https://lambda.eu-west-1.amazonaws.com"))
        let error = try await #require(throws: CloudThreadError.self) { _ = try await unsigned.invoke(function: "F", payload: Data()) }
        guard case .configuration(let message) = error else { Issue.record("expected .configuration, got \(error)"); return }
        #expect(message.contains("no AWS credentials"))
    }

    @Test("invokeIterativeTask's split: contiguous, near-equal, covering the range once")
    func split() {
        #expect(CloudExecutor.split(0..<10, into: 3) == [0..<4, 4..<7, 7..<10])
        #expect(CloudExecutor.split(5..<7, into: 4) == [5..<6, 6..<7])
        #expect(CloudExecutor.split(3..<3, into: 4) == [])
        let parts = CloudExecutor.split(-50..<1_000_003, into: 16)
        #expect(parts.count == 16 && parts.first?.lowerBound == -50 && parts.last?.upperBound == 1_000_003)
        #expect(zip(parts, parts.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        #expect(Set(parts.map(\.count)).count <= 2)
    }

    @Test("RetryPolicy backs off exponentially up to its cap")
    func backoff() {
        let p = RetryPolicy(retries: 5, backoff: .milliseconds(100), maxBackoff: .milliseconds(350))
        #expect(RetryPolicy(retries: -3).retries == 0)
        #expect((1...5).map { p.delay(beforeRetry: $0) } == [100, 200, 350, 350, 350].map { .milliseconds($0) })
    }
}

