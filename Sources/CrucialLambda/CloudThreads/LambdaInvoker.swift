internal import CrucialClient
public import FoundationEssentials
internal import NIOCore
internal import NIOHTTP1

/// Runs cloud functions through the Lambda Invoke API (`RequestResponse`): on AWS
/// Lambda, SigV4-signed, or on `crucial-lambda-emulator` on this machine.
///
/// ```swift
/// // The local emulator (the default): crucial-lambda-emulator --port 7421 --function crucial=.build/release/my-app
/// let local = LambdaInvoker(configuration: .init(endpoint: "http://127.0.0.1:7421", functionName: "crucial"))
/// // AWS: the region from the environment or ~/.aws/config, credentials wherever the AWS
/// // SDKs find them (environment, profiles, web identity, ECS, EC2 instance metadata)
/// let aws = LambdaInvoker(configuration: try .aws(functionName: "crucial"))
/// ```
///
/// Throttling (429) and server errors (5xx) are retried with back-off; a function
/// error comes back as ``CloudFunctionError``.
public struct LambdaInvoker: CloudInvoker {
    /// Where and how to invoke.
    public struct Configuration: Sendable {
        /// Base URL of the Invoke API: `https://lambda.REGION.amazonaws.com`, or the emulator's `http://127.0.0.1:PORT`.
        public var endpoint: String
        /// The function to invoke: a name, `name:qualifier` or an ARN.
        public var functionName: String
        /// The AWS region (ignored by the local emulator).
        public var region: String
        /// Signs requests when set.
        public var credentials: AWSCredentials?
        /// Gives the credentials that sign each request when ``credentials`` is nil
        /// (``AWSCredentialChain``: refreshed before they expire). One of the two is
        /// required unless the endpoint is on loopback.
        public var credentialProvider: (any AWSCredentialProvider)?
        /// How often a 429 or 5xx answer is retried, and the first wait (doubled each time).
        public var throttleRetries: Int
        /// The first wait after a throttled invocation (429); doubled each time.
        public var throttleBackoff: Duration
        /// Ask for the last 4 KB of the function's log (`X-Amz-Log-Type: Tail`); it is
        /// attached to ``CloudFunctionError/log`` when the function fails.
        public var logTail: Bool

        /// A configuration; set `endpoint` for the local emulator.
        public init(
            endpoint: String = "http://127.0.0.1:\(LambdaDefaults.emulatorPort)", functionName: String = LambdaDefaults.functionName,
            region: String = "us-east-1", credentials: AWSCredentials? = nil, credentialProvider: (any AWSCredentialProvider)? = nil,
            throttleRetries: Int = 6, throttleBackoff: Duration = .milliseconds(100), logTail: Bool = true
        ) {
            self.endpoint = endpoint
            self.functionName = functionName
            self.region = region
            self.credentials = credentials
            self.credentialProvider = credentialProvider
            self.throttleRetries = max(0, throttleRetries)
            self.throttleBackoff = throttleBackoff
            self.logTail = logTail
        }

        /// AWS Lambda in `region` (default: `AWS_REGION`, `AWS_DEFAULT_REGION` or the
        /// profile's), with credentials wherever the AWS SDKs find them
        /// (``AWSCredentialChain/default``, looked up at the first invocation).
        public static func aws(
            functionName: String, region: String? = nil, credentials: any AWSCredentialProvider = AWSCredentialChain.default
        ) throws(CloudThreadError) -> Configuration {
            guard let region = region ?? AWSCredentials.region() else {
                throw .configuration("no AWS region: set AWS_REGION, or a region in ~/.aws/config")
            }
            return Configuration(
                endpoint: "https://lambda.\(region).amazonaws.com", functionName: functionName, region: region, credentialProvider: credentials)
        }

        /// From the environment:
        /// - `CRUCIAL_LAMBDA_ENDPOINT`: the Invoke API's base URL, or `aws` for AWS Lambda
        ///   in the configured region; default `http://127.0.0.1:7421` (the local emulator).
        /// - `CRUCIAL_LAMBDA_FUNCTION`: the function (default `crucial`).
        /// - AWS credentials and region as the AWS CLI finds them.
        public static func fromEnvironment() throws(CloudThreadError) -> Configuration {
            let function = environment("CRUCIAL_LAMBDA_FUNCTION") ?? LambdaDefaults.functionName
            let endpoint = environment("CRUCIAL_LAMBDA_ENDPOINT") ?? "http://127.0.0.1:\(LambdaDefaults.emulatorPort)"
            if endpoint == "aws" { return try .aws(functionName: function) }
            var c = Configuration(endpoint: endpoint, functionName: function, region: AWSCredentials.region() ?? "us-east-1")
            c.credentials = AWSCredentials.fromEnvironment()
            if c.credentials == nil, !isLoopback(endpoint) { c.credentialProvider = AWSCredentialChain.default }
            return c
        }
    }

    /// What this invoker was made with.
    public let configuration: Configuration
    private let target: Target

    private struct Target: Sendable {
        var url: String
        var host: String
        var path: String
        var signs: Bool
    }

    /// An invoker for `configuration`; a bad endpoint or missing credentials surface
    /// at the first invocation as ``CloudThreadError/configuration(_:)``.
    public init(configuration: Configuration) {
        self.configuration = configuration
        self.target = (try? Self.target(configuration)) ?? Target(url: "", host: "", path: "", signs: false)
    }

    private static func target(_ c: Configuration) throws(CloudThreadError) -> Target {
        guard let url = URL(string: c.endpoint), let scheme = url.scheme, scheme == "http" || scheme == "https", let host = url.host
        else { throw .configuration("Lambda endpoint \"\(c.endpoint)\" is not an http(s) URL") }
        guard !c.functionName.isEmpty else { throw .configuration("empty Lambda function name") }
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        let path = "/2015-03-31/functions/\(SigV4Signer.uriEncode(c.functionName))/invocations"
        let base = c.endpoint.hasSuffix("/") ? String(c.endpoint.dropLast()) : c.endpoint
        let signs = c.credentials != nil || c.credentialProvider != nil
        if !signs, !isLoopback(c.endpoint) {
            throw .configuration(
                "no AWS credentials for \(c.endpoint): give the configuration credentials or a credentialProvider (AWSCredentialChain)")
        }
        return Target(url: base + path, host: hostHeader, path: path, signs: signs)
    }

    /// Invokes `function` (RequestResponse) with `payload`; returns its JSON answer, or throws its error.
    public func invoke(function: String, payload: Data) async throws -> Data {
        if target.url.isEmpty { _ = try Self.target(configuration) }  // rethrows the configuration error
        var attempt = 0
        while true {
            let response = try await send(payload)
            let status = Int(response.status.code)
            if status == 429 || status >= 500, attempt < configuration.throttleRetries {
                attempt += 1
                var delay = configuration.throttleBackoff
                for _ in 1..<attempt { delay *= 2 }
                try await Task.sleep(for: delay)
                continue
            }
            return try outcome(of: response, function: function)
        }
    }

    private struct Response {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: Data
    }

    private func send(_ payload: Data) async throws -> Response {
        var request = HTTP1Client.Request(method: .POST, url: target.url, body: ByteBuffer(bytes: payload))
        request.headers.add(name: "host", value: target.host)
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "x-amz-invocation-type", value: "RequestResponse")
        if configuration.logTail { request.headers.add(name: "x-amz-log-type", value: "Tail") }
        if target.signs {
            let credentials: AWSCredentials
            if let given = configuration.credentials {
                credentials = given
            } else if let provider = configuration.credentialProvider {
                do { credentials = try await provider.credentials() } catch let error as CloudThreadError { throw error } catch {
                    throw CloudThreadError.configuration("AWS credentials: \(error)")
                }
            } else {
                throw CloudThreadError.configuration("no AWS credentials for \(configuration.endpoint)")
            }
            let signer = SigV4Signer(credentials: credentials, region: configuration.region, service: "lambda")
            let signed = signer.sign(
                method: "POST", host: target.host, path: target.path,
                headers: request.headers.filter { $0.name != "host" }.map { ($0.name, $0.value) }, body: payload)
            for (name, value) in signed { request.headers.add(name: name, value: value) }
        }
        do {
            // A function runs at most 15 minutes; its answer is at most 6 MB (AWS's limit; 16 here).
            let response = try await HTTP1Client.shared.execute(request, timeout: .minutes(16), maxBody: 16 * 1024 * 1024)
            return Response(status: response.status, headers: response.headers, body: Data(response.body.readableBytesView))
        } catch {
            throw CloudThreadError.unreachable("\(configuration.endpoint): \(error)" + (!target.signs
                ? " (is crucial-lambda-emulator running there? start it, or set CRUCIAL_LAMBDA_ENDPOINT)" : ""))
        }
    }

    private func outcome(of response: Response, function: String) throws -> Data {
        let requestID = response.headers.first(name: "x-amzn-requestid")
        if response.status == .ok {
            guard let kind = response.headers.first(name: "x-amz-function-error") else { return response.body }
            let body = try? JSONDecoder().decode(LambdaErrorBody.self, from: response.body)
            var error = CloudFunctionError(
                function: function, errorType: body?.errorType ?? "Unknown",
                errorMessage: body?.errorMessage ?? String(decoding: response.body, as: UTF8.self), kind: kind, requestID: requestID)
            if let tail = response.headers.first(name: "x-amz-log-result"), let log = Data(base64Encoded: tail) {
                error.log = String(decoding: log, as: UTF8.self)
            }
            throw error
        }
        // AWS's service errors: {"Type": "User", "message": "..."} or {"Message": "..."}, type in a header.
        let json = try? JSONDecoder().decode(ServiceError.self, from: response.body)
        let message = json?.message ?? json?.Message ?? String(decoding: response.body, as: UTF8.self)
        let type = response.headers.first(name: "x-amzn-errortype")?.split(separator: ":").first.map(String.init)
            ?? json?.__type ?? response.status.reasonPhrase
        throw CloudThreadError.invocationRefused(status: Int(response.status.code), type: type, message: message)
    }

    /// An AWS service error's body, as AWS spells it.
    private struct ServiceError: Decodable {
        var message: String?
        var Message: String?
        var __type: String?
    }
}

/// Defaults shared by the invoker, the emulator and the bootstrap.
public enum LambdaDefaults {
    /// The local emulator's default port.
    public static let emulatorPort = 7421
    /// The default function name.
    public static let functionName = "crucial"
}

/// Whether `endpoint` is on this machine (the emulator needs no signature).
func isLoopback(_ endpoint: String) -> Bool {
    guard let host = URL(string: endpoint)?.host else { return false }
    return host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
}
