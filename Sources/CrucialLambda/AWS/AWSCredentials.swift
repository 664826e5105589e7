internal import CrucialClient
public import FoundationEssentials

/// AWS credentials, found the way the AWS CLI and SDKs find them.
public struct AWSCredentials: Sendable, Equatable {
    /// The access key id (AKIA..., or ASIA... for temporary credentials).
    public var accessKeyID: String
    /// The secret that signs requests.
    public var secretAccessKey: String
    /// Set for temporary credentials (STS, SSO, a Lambda's role).
    public var sessionToken: String?
    /// When temporary credentials stop working; nil for long-term keys.
    public var expiration: Date?

    /// Credentials as given; `sessionToken` and `expiration` for temporary ones (STS, a role).
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    /// Long-term or given keys only: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN`; else the keys of profile `AWS_PROFILE` (default `default`) in
    /// the credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`);
    /// else `nil`. ``AWSCredentialChain`` looks everywhere the AWS SDKs do.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> AWSCredentials? {
        if let id = env.nonEmpty("AWS_ACCESS_KEY_ID"), let secret = env.nonEmpty("AWS_SECRET_ACCESS_KEY") {
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: env.nonEmpty("AWS_SESSION_TOKEN"))
        }
        let profile = env.nonEmpty("AWS_PROFILE") ?? "default"
        let path = env.nonEmpty("AWS_SHARED_CREDENTIALS_FILE") ?? awsHome(env) + "/credentials"
        guard let section = INIFile(path: path)?.sections[profile],
            let id = section["aws_access_key_id"], let secret = section["aws_secret_access_key"]
        else { return nil }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: section["aws_session_token"])
    }

    /// `AWS_REGION`, `AWS_DEFAULT_REGION`, or the `region` of the profile in the
    /// config file (`AWS_CONFIG_FILE`, default `~/.aws/config`).
    public static func region(_ env: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let r = env.nonEmpty("AWS_REGION") ?? env.nonEmpty("AWS_DEFAULT_REGION") { return r }
        let profile = env.nonEmpty("AWS_PROFILE") ?? "default"
        let path = env.nonEmpty("AWS_CONFIG_FILE") ?? awsHome(env) + "/config"
        guard let file = INIFile(path: path) else { return nil }
        // The config file names non-default profiles "[profile NAME]".
        return (file.sections[profile == "default" ? "default" : "profile \(profile)"] ?? file.sections[profile])?["region"]
    }

    static func awsHome(_ env: [String: String]) -> String {
        (env.nonEmpty("HOME") ?? FileManager.default.homeDirectoryForCurrentUser.path) + "/.aws"
    }
}

/// The INI dialect of `~/.aws/credentials` and `~/.aws/config`.
struct INIFile {
    var sections: [String: [String: String]] = [:]

    init?(path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        self.init(text: text)
    }

    init(text: String) {
        var current: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingWhitespace()
                current = name
                sections[name, default: [:]] = sections[name, default: [:]]
            } else if let current, let eq = line.firstIndex(of: "=") {
                let key = line[..<eq].trimmingWhitespace().lowercased()
                let value = line[line.index(after: eq)...].trimmingWhitespace()
                sections[current, default: [:]][key] = value
            }
        }
    }
}

extension [String: String] {
    func nonEmpty(_ key: String) -> String? {
        guard let v = self[key], !v.isEmpty else { return nil }
        return v
    }
}
