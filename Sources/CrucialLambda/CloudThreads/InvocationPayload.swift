public import CrucialClient
package import FoundationEssentials
#if canImport(Glibc)
internal import Glibc
#endif

/// The JSON a cloud function receives:
///
/// ```json
/// {"function": "MyApp.PiEstimator", "input": {"iterations": 1000000},
///  "crucial": {"servers": ["10.0.0.5:7420"], "authToken": ""}, "attempt": 1,
///  "swiftType": "5MyApp11PiEstimatorV"}
/// ```
///
/// Plain JSON, so `aws lambda invoke --payload` can start a function by hand.
package struct InvocationPayload<Input: Codable & Sendable>: Codable, Sendable {
    /// The ``CloudFunction/cloudName`` of the input's type.
    package var function: String
    package var input: Input
    /// How the function reaches the DSO layer; without it, the function's own
    /// environment (`CRUCIAL_SERVERS`) decides.
    package var crucial: DSOEndpoint?
    /// 1 for the first run, then 2, 3, ... for retries (1 when absent).
    package var attempt: Int?
    /// The input type's Swift mangled name: a bootstrap built from the driver's own
    /// executable finds the type by it without having registered it (optional).
    package var swiftType: String?

    package init(function: String, input: Input, crucial: DSOEndpoint?, attempt: Int) {
        self.function = function
        self.input = input
        self.crucial = crucial
        self.attempt = attempt
        self.swiftType = _mangledTypeName(Input.self)
    }

    package func encode() throws -> Data { try JSONEncoder().encode(self) }

    package static func decode(_ data: Data) throws -> InvocationPayload {
        try JSONDecoder().decode(InvocationPayload.self, from: data)
    }
}

/// The part of a payload every function reads before it knows the input's type.
package struct PayloadHeader: Codable, Sendable {
    package var function: String
    package var crucial: DSOEndpoint?
    package var attempt: Int?
    package var swiftType: String?

    package static func decode(_ data: Data) throws(CloudThreadError) -> PayloadHeader {
        do {
            return try JSONDecoder().decode(PayloadHeader.self, from: data)
        } catch {
            throw .invalidPayload("not a Crucial invocation payload (expected {\"function\": ..., \"input\": ...}): \(error)")
        }
    }
}

/// How a cloud function reaches the DSO layer: addresses already resolved to IPs,
/// because a statically linked bootstrap cannot use the system's name services.
public struct DSOEndpoint: Codable, Sendable, Hashable {
    /// The DSO servers the function connects to, `host:port` each (IP addresses: a static binary cannot resolve names).
    public var servers: [String]
    /// The shared secret for their handshake.
    public var authToken: String
    /// The driver's application session (hex), which the function's ephemeral objects join.
    public var session: String?
    /// The driver's TLS settings (its trusted certificates travel with them). Servers are
    /// IP addresses here: with TLS, their certificates need IP entries, or set
    /// `ClientTLS.serverHostname`.
    public var tls: ClientTLS?
    /// The driver's keep-alive lease, in ms (how soon the servers notice a function that died
    /// holding semaphore permits); nil: the default.
    public var leaseMillis: Int?
    /// The run of cloud threads the function is one of (hex): its client names it in each
    /// handshake, so that the servers end what it does when the driver cancels the run.
    public var run: String?

    /// An endpoint description for a cloud thread.
    public init(servers: [String], authToken: String = "", session: UInt64? = nil, tls: ClientTLS? = nil, leaseMillis: Int? = nil) {
        self.servers = servers
        self.authToken = authToken
        self.session = session.map { String($0, radix: 16) }
        self.tls = tls
        self.leaseMillis = leaseMillis
    }

    /// The endpoint of `client`, with host names resolved.
    public init(client: CrucialClient) {
        let lease = client.configuration.sessionLease.components
        self.init(
            servers: client.configuration.servers.map(resolveHostPort), authToken: client.configuration.authToken,
            session: client.session, tls: client.configuration.tls,
            leaseMillis: Int(lease.seconds * 1000 + lease.attoseconds / 1_000_000_000_000_000))
    }

    /// A client for this endpoint, in the driver's session (which it does not keep alive).
    public func makeClient() -> CrucialClient { makeClient(transport: nil) }

    /// ``makeClient()`` over `transport` (nil: TCP).
    package func makeClient(transport: (any Transport)?) -> CrucialClient {
        var configuration = CrucialClient.Configuration(
            servers: servers, authToken: authToken, session: session.flatMap { UInt64($0, radix: 16) }, tls: tls)
        if let leaseMillis, leaseMillis > 0 { configuration.sessionLease = .milliseconds(leaseMillis) }
        configuration.run = run.flatMap { UInt64($0, radix: 16) }
        if let transport { configuration.transport = transport }
        return CrucialClient(configuration: configuration)
    }
}

/// The body AWS Lambda uses for a function error, `{"errorType": ..., "errorMessage": ...}`.
package struct LambdaErrorBody: Error, Codable, Sendable {
    package var errorType: String?
    package var errorMessage: String?
    package var stackTrace: [String]?

    package init(errorType: String, errorMessage: String) {
        self.errorType = errorType
        self.errorMessage = errorMessage
        self.stackTrace = []
    }

    /// The error body of `error` thrown by user code: its Swift type and description.
    package init(describing error: any Error) {
        if let e = error as? CloudFunctionError {
            self.init(errorType: e.errorType, errorMessage: e.errorMessage)
        } else {
            self.init(errorType: String(reflecting: type(of: error)), errorMessage: String(describing: error))
        }
    }
}

/// "host:port" with the host resolved to an IP address ("[v6]:port" for IPv6);
/// unchanged when it does not resolve.
func resolveHostPort(_ address: String) -> String {
    guard let (host, port) = try? parseAddress(address) else { return address }
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var result: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return address }
    defer { freeaddrinfo(result) }
    var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
    guard getnameinfo(first.pointee.ai_addr, first.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
    else { return address }
    let ip = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
}
