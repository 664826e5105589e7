internal import FoundationEssentials
internal import NIOCore
internal import NIOHTTP1
internal import CrucialCore

/// AWS STS through its query API (form-encoded POST, XML answers): what the credential
/// chain needs of it. `https://sts.REGION.amazonaws.com` (the global endpoint without a
/// region), or `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL`.
struct STSClient {
    let endpoint: String
    let region: String

    init(environment env: [String: String], region: String?) {
        self.region = region ?? "us-east-1"
        let base = env.nonEmpty("AWS_ENDPOINT_URL_STS") ?? env.nonEmpty("AWS_ENDPOINT_URL")
            ?? (region.map { "https://sts.\($0).amazonaws.com" } ?? "https://sts.amazonaws.com")
        endpoint = base.hasSuffix("/") ? String(base.dropLast()) : base
    }

    /// `AssumeRole` of `role`, signed with `base`.
    func assumeRole(role: String, session: String, externalID: String?, using base: AWSCredentials) async throws -> AWSCredentials {
        var parameters = [("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", role), ("RoleSessionName", session)]
        if let externalID { parameters.append(("ExternalId", externalID)) }
        return try Self.credentials(in: try await post(parameters, signedWith: base), action: "AssumeRole of \(role)")
    }

    /// `AssumeRoleWithWebIdentity` of `role` with the token in `tokenFile` (unsigned: the
    /// token is the proof).
    func assumeRoleWithWebIdentity(role: String, session: String, tokenFile: String) async throws -> AWSCredentials {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
            throw CloudThreadError.configuration("cannot read the web identity token file \(tokenFile)")
        }
        let parameters = [
            ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", role), ("RoleSessionName", session),
            ("WebIdentityToken", token.trimmingWhitespace()),
        ]
        return try Self.credentials(in: try await post(parameters, signedWith: nil), action: "AssumeRoleWithWebIdentity of \(role)")
    }

    /// `GetCallerIdentity`: the ARN the credentials stand for (checks they sign).
    func callerIdentity(_ credentials: AWSCredentials) async throws -> String {
        let xml = try await post([("Action", "GetCallerIdentity"), ("Version", "2011-06-15")], signedWith: credentials)
        guard let arn = XMLText.first("Arn", in: xml) else { throw CloudThreadError.configuration("GetCallerIdentity answered no Arn: \(xml.prefix(300))") }
        return arn
    }

    private func post(_ parameters: [(String, String)], signedWith credentials: AWSCredentials?) async throws -> String {
        let body = Data(parameters.map { "\(SigV4Signer.uriEncode($0.0))=\(SigV4Signer.uriEncode($0.1))" }.joined(separator: "&").utf8)
        guard let url = URL(string: endpoint), let host = url.host else { throw CloudThreadError.configuration("STS endpoint \(endpoint) is not a URL") }
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        var request = HTTP1Client.Request(method: .POST, url: endpoint + "/", body: ByteBuffer(bytes: body))
        let contentType = "application/x-www-form-urlencoded; charset=utf-8"
        request.headers.add(name: "host", value: hostHeader)
        request.headers.add(name: "content-type", value: contentType)
        if let credentials {
            let signer = SigV4Signer(credentials: credentials, region: region, service: "sts")
            for (name, value) in signer.sign(method: "POST", host: hostHeader, path: "/", headers: [("content-type", contentType)], body: body) {
                request.headers.add(name: name, value: value)
            }
        }
        let (status, answer) = try await AWSHTTP.send(request, timeout: .seconds(10), what: "STS at \(endpoint)")
        let text = String(decoding: answer, as: UTF8.self)
        guard status == 200 else {
            let code = XMLText.first("Code", in: text) ?? "HTTP \(status)"
            let message = XMLText.first("Message", in: text) ?? text.prefix(300).description
            throw CloudThreadError.configuration("STS \(parameters.first?.1 ?? "") refused: \(code): \(message)")
        }
        return text
    }

    private static func credentials(in xml: String, action: String) throws -> AWSCredentials {
        guard let id = XMLText.first("AccessKeyId", in: xml), let secret = XMLText.first("SecretAccessKey", in: xml) else {
            throw CloudThreadError.configuration("STS \(action) answered no credentials: \(xml.prefix(300))")
        }
        return AWSCredentials(
            accessKeyID: id, secretAccessKey: secret, sessionToken: XMLText.first("SessionToken", in: xml),
            expiration: XMLText.first("Expiration", in: xml).flatMap(parseISO8601))
    }
}

/// The text of an element in the small, flat XML answers of AWS's query APIs, entities
/// decoded. (Not a general XML parser: Foundation's needs libxml2, which a static Lambda
/// bootstrap does not carry.)
enum XMLText {
    static func first(_ element: String, in xml: String) -> String? {
        guard let open = xml.firstRange(of: "<\(element)>"), let close = xml[open.upperBound...].firstRange(of: "</\(element)>") else {
            return nil
        }
        return String(xml[open.upperBound..<close.lowerBound])
            .replacing("&lt;", with: "<").replacing("&gt;", with: ">")
            .replacing("&quot;", with: "\"").replacing("&apos;", with: "'")
            .replacing("&amp;", with: "&")
            .trimmingWhitespace()
    }
}
