public import FoundationEssentials
internal import Subprocess
internal import NIOCore
internal import SystemPackage
internal import NIOHTTP1
internal import CrucialCore

/// Something that hands out AWS credentials, fresh enough to sign a request now.
public protocol AWSCredentialProvider: Sendable {
    /// Credentials valid for at least a few more minutes.
    func credentials() async throws -> AWSCredentials
}

/// AWS credentials found the way the AWS SDKs and the CLI find them, in their order, the
/// first source that has some winning:
///
/// 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
/// 2. a web identity token (EKS's IAM roles for service accounts):
///    `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` (and `AWS_ROLE_SESSION_NAME`),
///    exchanged by STS `AssumeRoleWithWebIdentity`;
/// 3. the profile `AWS_PROFILE` (default `default`) of `~/.aws/credentials` and
///    `~/.aws/config` (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`): its keys, its
///    `credential_process`, or its `role_arn` assumed with STS `AssumeRole` from its
///    `source_profile` (itself resolved the same way), from `credential_source`
///    (`Environment`, `EcsContainer`, `Ec2InstanceMetadata`) or with its
///    `web_identity_token_file`;
/// 4. ECS container credentials: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (on
///    169.254.170.2) or `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with
///    `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `..._TOKEN_FILE` when set (EKS Pod Identity too);
///    5 s per try, three tries a second apart unless refused (4xx), as the SDKs try three times;
/// 5. EC2 instance metadata, IMDSv2 (a session token first), unless
///    `AWS_EC2_METADATA_DISABLED=true`; `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it, and
///    as in the SDKs `AWS_METADATA_SERVICE_TIMEOUT` (seconds per request, default 1) and
///    `AWS_METADATA_SERVICE_NUM_ATTEMPTS` (default 1) say how patient to be.
///
/// Temporary credentials are cached and fetched again 5 minutes before they expire. STS is
/// `https://sts.REGION.amazonaws.com` (`AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL` move it).
/// Not supported: SSO profiles (`sso_session`); run `aws sso login` and export credentials
/// (`aws configure export-credentials --format env`) instead.
public final class AWSCredentialChain: AWSCredentialProvider {
    /// The chain of this process's environment, shared (its cache too).
    public static let `default` = AWSCredentialChain()

    private let environment: [String: String]
    private let cache = AWSCredentialCache()

    /// A chain reading `environment` (by default this process's).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Credentials from the first source that has them (cached while fresh).
    public func credentials() async throws -> AWSCredentials {
        try await cache.get { try await self.resolve() }
    }

    /// Which source the credentials come from, as a word for messages and tests.
    public enum Source: String, Sendable {
        case environment, webIdentity = "web identity", profile, container = "ECS container", instanceMetadata = "EC2 instance metadata"
    }

    /// The credentials and the source they came from, without the cache.
    public func resolve() async throws -> AWSCredentials { try await resolveWithSource().credentials }

    /// The credentials and their source, without the cache.
    public func resolveWithSource() async throws -> (credentials: AWSCredentials, source: Source) {
        let env = environment
        var tried: [String] = []
        if let id = env.nonEmpty("AWS_ACCESS_KEY_ID"), let secret = env.nonEmpty("AWS_SECRET_ACCESS_KEY") {
            return (AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: env.nonEmpty("AWS_SESSION_TOKEN")), .environment)
        }
        tried.append("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
        if let tokenFile = env.nonEmpty("AWS_WEB_IDENTITY_TOKEN_FILE"), let role = env.nonEmpty("AWS_ROLE_ARN") {
            let session = env.nonEmpty("AWS_ROLE_SESSION_NAME") ?? "crucial-\(Int(Date().timeIntervalSince1970))"
            return (try await sts().assumeRoleWithWebIdentity(role: role, session: session, tokenFile: tokenFile), .webIdentity)
        }
        tried.append("AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN")
        let profiles = AWSProfiles(env)
        let name = env.nonEmpty("AWS_PROFILE") ?? "default"
        if profiles.exists(name) {
            return (try await fromProfile(name, profiles, visited: []), .profile)
        }
        tried.append("profile \(name) in \(profiles.credentialsPath) and \(profiles.configPath)")
        if let container = try await fromContainer() { return (container, .container) }
        tried.append("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI")
        if env.nonEmpty("AWS_EC2_METADATA_DISABLED")?.lowercased() != "true" {
            if let instance = try await InstanceMetadata(env).credentials() { return (instance, .instanceMetadata) }
            tried.append("EC2 instance metadata (IMDSv2)")
        }
        throw CloudThreadError.configuration("no AWS credentials found; looked at: " + tried.joined(separator: "; "))
    }

    private func sts() -> STSClient { STSClient(environment: environment, region: AWSCredentials.region(environment)) }

    /// A profile's credentials: its keys, its process, or its role (recursively).
    private func fromProfile(_ name: String, _ profiles: AWSProfiles, visited: Set<String>) async throws -> AWSCredentials {
        guard !visited.contains(name) else {
            throw CloudThreadError.configuration("AWS profile \(name) takes its credentials from itself (source_profile loop)")
        }
        let p = profiles.settings(name)
        if let role = p["role_arn"] {
            let session = p["role_session_name"] ?? "crucial-\(Int(Date().timeIntervalSince1970))"
            if let tokenFile = p["web_identity_token_file"] {
                return try await sts().assumeRoleWithWebIdentity(role: role, session: session, tokenFile: tokenFile)
            }
            let base: AWSCredentials
            if let source = p["source_profile"] {
                // A source profile's own role_arn is followed too, unless it is this profile with keys.
                if source == name, let id = p["aws_access_key_id"], let secret = p["aws_secret_access_key"] {
                    base = AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: p["aws_session_token"])
                } else {
                    guard profiles.exists(source) else { throw CloudThreadError.configuration("AWS profile \(name): its source_profile \(source) does not exist") }
                    base = try await fromProfile(source, profiles, visited: visited.union([name]))
                }
            } else if let source = p["credential_source"] {
                base = try await fromCredentialSource(source, profile: name)
            } else {
                throw CloudThreadError.configuration("AWS profile \(name) has role_arn but no source_profile, credential_source or web_identity_token_file")
            }
            return try await sts().assumeRole(role: role, session: session, externalID: p["external_id"], using: base)
        }
        if let id = p["aws_access_key_id"], let secret = p["aws_secret_access_key"] {
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: p["aws_session_token"])
        }
        if let command = p["credential_process"] { return try await CredentialProcess.run(command) }
        if p["sso_session"] != nil || p["sso_start_url"] != nil {
            throw CloudThreadError.configuration(
                "AWS profile \(name) uses SSO, which Crucial does not read: `aws configure export-credentials --profile \(name) --format env` and export them")
        }
        throw CloudThreadError.configuration("AWS profile \(name) has no credentials (keys, credential_process or role_arn)")
    }

    private func fromCredentialSource(_ source: String, profile: String) async throws -> AWSCredentials {
        switch source {
        case "Environment":
            guard let id = environment.nonEmpty("AWS_ACCESS_KEY_ID"), let secret = environment.nonEmpty("AWS_SECRET_ACCESS_KEY") else {
                throw CloudThreadError.configuration("AWS profile \(profile): credential_source Environment, but AWS_ACCESS_KEY_ID is not set")
            }
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: environment.nonEmpty("AWS_SESSION_TOKEN"))
        case "EcsContainer":
            guard let c = try await fromContainer() else {
                throw CloudThreadError.configuration("AWS profile \(profile): credential_source EcsContainer, but no container credentials endpoint is set")
            }
            return c
        case "Ec2InstanceMetadata":
            guard let c = try await InstanceMetadata(environment).credentials() else {
                throw CloudThreadError.configuration("AWS profile \(profile): credential_source Ec2InstanceMetadata, but instance metadata did not answer")
            }
            return c
        default:
            throw CloudThreadError.configuration("AWS profile \(profile): unknown credential_source \(source) (Environment, EcsContainer, Ec2InstanceMetadata)")
        }
    }

    /// ECS (and EKS Pod Identity) container credentials, if an endpoint is set.
    private func fromContainer() async throws -> AWSCredentials? {
        let url: String
        if let relative = environment.nonEmpty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            url = "http://169.254.170.2" + relative
        } else if let full = environment.nonEmpty("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            url = full
        } else {
            return nil
        }
        var request = HTTP1Client.Request(url: url)
        if let token = environment.nonEmpty("AWS_CONTAINER_AUTHORIZATION_TOKEN") {
            request.headers.add(name: "Authorization", value: token)
        } else if let file = environment.nonEmpty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            guard let token = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CloudThreadError.configuration("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(file)")
            }
            request.headers.add(name: "Authorization", value: token.trimmingWhitespace())
        }
        // Three tries, a second apart, as the AWS SDKs make (the endpoint is a local agent that
        // may be slow to answer on a busy host); a refusal (4xx) is not tried again.
        var attempt = 1
        var answer: (status: Int, body: Data)
        while true {
            do {
                answer = try await AWSHTTP.send(request, timeout: .seconds(5), what: "the container credentials endpoint \(url)")
                if answer.status < 500 || attempt == 3 { break }
            } catch where attempt < 3 {}
            attempt += 1
            try await Task.sleep(for: .seconds(1))
        }
        let (status, body) = answer
        guard status == 200 else {
            throw CloudThreadError.configuration("the container credentials endpoint \(url) answered \(status): \(String(decoding: body, as: UTF8.self))")
        }
        return try AWSCredentials(json: body, from: "the container credentials endpoint")
    }
}

/// Credentials kept until 5 minutes before they expire; one fetch at a time.
actor AWSCredentialCache {
    private var current: AWSCredentials?
    private var fetching: Task<AWSCredentials, any Error>?

    func get(_ fetch: @escaping @Sendable () async throws -> AWSCredentials) async throws -> AWSCredentials {
        if let current, current.fresh { return current }
        if let fetching { return try await fetching.value }
        let task = Task { try await fetch() }
        fetching = task
        defer { fetching = nil }
        do {
            let fetched = try await task.value
            current = fetched
            return fetched
        } catch {
            // Still valid, if no longer fresh: better than nothing while the source is down.
            if let current, let expiration = current.expiration, expiration > Date() { return current }
            throw error
        }
    }
}

extension AWSCredentials {
    /// Long-term keys, or temporary ones that expire more than 5 minutes from now.
    var fresh: Bool { expiration.map { $0.timeIntervalSinceNow > 300 } ?? true }

    /// The JSON the container endpoint, instance metadata and `credential_process` answer
    /// (`AccessKeyId`, `SecretAccessKey`, `Token` or `SessionToken`, `Expiration` in ISO 8601).
    init(json: Data, from source: String) throws {
        guard let answer = try? JSONDecoder().decode(CredentialsJSON.self, from: json), let id = answer.AccessKeyId,
            let secret = answer.SecretAccessKey
        else {
            throw CloudThreadError.configuration("\(source) answered no credentials: \(String(decoding: json.prefix(300), as: UTF8.self))")
        }
        self.init(accessKeyID: id, secretAccessKey: secret, sessionToken: answer.Token ?? answer.SessionToken, expiration: answer.Expiration.flatMap(parseISO8601))
    }
}

/// What the credential sources answer, as AWS spells it.
private struct CredentialsJSON: Decodable {
    var Version: Int?
    var AccessKeyId: String?
    var SecretAccessKey: String?
    var Token: String?
    var SessionToken: String?
    var Expiration: String?
}

/// `2026-12-06T10:00:00Z`, with or without fractional seconds (of any length: STS writes
/// microseconds), or another UTC offset.
func parseISO8601(_ text: String) -> Date? {
    var whole = text
    if let dot = text.firstIndex(of: "."), let end = text[dot...].firstIndex(where: { !$0.isNumber && $0 != "." }) {
        whole = String(text[..<dot] + text[end...])
    }
    return try? Date(whole, strategy: .iso8601)
}

/// The profiles of `~/.aws/credentials` and `~/.aws/config` (where non-default profiles are
/// `[profile NAME]`); a setting in the credentials file wins.
struct AWSProfiles {
    let credentialsPath: String
    let configPath: String
    private let credentials: INIFile?
    private let config: INIFile?

    init(_ env: [String: String]) {
        credentialsPath = env.nonEmpty("AWS_SHARED_CREDENTIALS_FILE") ?? AWSCredentials.awsHome(env) + "/credentials"
        configPath = env.nonEmpty("AWS_CONFIG_FILE") ?? AWSCredentials.awsHome(env) + "/config"
        credentials = INIFile(path: credentialsPath)
        config = INIFile(path: configPath)
    }

    private func configSection(_ name: String) -> [String: String]? {
        config?.sections[name == "default" ? "default" : "profile \(name)"] ?? config?.sections[name]
    }

    func exists(_ name: String) -> Bool { credentials?.sections[name] != nil || configSection(name) != nil }

    func settings(_ name: String) -> [String: String] {
        (configSection(name) ?? [:]).merging(credentials?.sections[name] ?? [:]) { _, fromCredentials in fromCredentials }
    }
}

/// `credential_process`: a command that prints credentials as JSON (`Version` 1).
enum CredentialProcess {
    static func run(_ command: String) async throws -> AWSCredentials {
        let result: ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>>
        do {
            result = try await Subprocess.run(
                .path("/bin/sh"), arguments: ["-c", command], output: .string(limit: 1 << 20), error: .string(limit: 1 << 16))
        } catch {
            throw CloudThreadError.configuration("credential_process \(command): \(error)")
        }
        switch result.terminationStatus {
        case .exited(0): break
        case .exited(let status):
            throw CloudThreadError.configuration("credential_process \(command) exited \(status): \(result.standardError)")
        default:
            throw CloudThreadError.configuration("credential_process \(command) ended with \(result.terminationStatus): \(result.standardError)")
        }
        let data = Data(result.standardOutput.utf8)
        if let version = (try? JSONDecoder().decode(CredentialsJSON.self, from: data))?.Version, version != 1 {
            throw CloudThreadError.configuration("credential_process \(command) printed Version \(version); only 1 is known")
        }
        return try AWSCredentials(json: data, from: "credential_process \(command)")
    }
}

/// EC2 instance metadata, version 2: a session token (PUT), then the instance role's name,
/// then its credentials, each with that token; a second of patience at each step, tried
/// once, unless `AWS_METADATA_SERVICE_TIMEOUT` and `AWS_METADATA_SERVICE_NUM_ATTEMPTS` say
/// otherwise (as for the AWS SDKs and CLI).
struct InstanceMetadata {
    let endpoint: String
    let timeout: TimeAmount
    let attempts: Int

    init(_ env: [String: String]) {
        let base = env.nonEmpty("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? "http://169.254.169.254"
        endpoint = base.hasSuffix("/") ? String(base.dropLast()) : base
        let seconds = env.nonEmpty("AWS_METADATA_SERVICE_TIMEOUT").flatMap(Double.init).map { max(0.1, $0) } ?? 1
        timeout = .milliseconds(Int64(seconds * 1000))
        attempts = max(1, env.nonEmpty("AWS_METADATA_SERVICE_NUM_ATTEMPTS").flatMap { Int($0) } ?? 1)
    }

    /// The instance role's credentials; nil when no metadata service answers (not on EC2).
    func credentials() async throws -> AWSCredentials? {
        var tokenRequest = HTTP1Client.Request(method: .PUT, url: endpoint + "/latest/api/token")
        tokenRequest.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "21600")
        var answer: (status: Int, body: Data)?
        for _ in 0..<attempts where answer == nil {
            answer = try? await AWSHTTP.send(tokenRequest, timeout: timeout, what: "instance metadata")
        }
        guard let (status, tokenBody) = answer, status == 200 else { return nil }
        let token = String(decoding: tokenBody, as: UTF8.self)
        func get(_ path: String) async throws -> Data {
            var request = HTTP1Client.Request(url: endpoint + path)
            request.headers.add(name: "X-aws-ec2-metadata-token", value: token)
            let (status, body) = try await AWSHTTP.send(request, timeout: timeout * 2, what: "instance metadata \(path)")
            guard status == 200 else {
                throw CloudThreadError.configuration("instance metadata \(path) answered \(status) (does the instance have an IAM role?)")
            }
            return body
        }
        let roles = String(decoding: try await get("/latest/meta-data/iam/security-credentials/"), as: UTF8.self)
        guard let role = roles.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
            throw CloudThreadError.configuration("instance metadata lists no IAM role: the instance has no instance profile")
        }
        return try AWSCredentials(json: try await get("/latest/meta-data/iam/security-credentials/" + role), from: "instance metadata")
    }
}

/// The HTTP client of the credential sources.
enum AWSHTTP {
    static func send(_ request: HTTP1Client.Request, timeout: TimeAmount, what: String) async throws -> (status: Int, body: Data) {
        do {
            let response = try await HTTP1Client.shared.execute(request, timeout: timeout, maxBody: 1 << 20)
            return (Int(response.status.code), Data(response.body.readableBytesView))
        } catch {
            throw CloudThreadError.unreachable("\(what): \(error)")
        }
    }
}
