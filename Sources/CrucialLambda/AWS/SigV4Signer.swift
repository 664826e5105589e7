internal import CrucialClient
public import FoundationEssentials
internal import CrucialCore

/// AWS Signature Version 4 for one request, as AWS documents it
/// ("Create a signed AWS API request"): canonical request, string to sign,
/// derived signing key, `Authorization` header.
///
/// ```swift
/// let signer = SigV4Signer(credentials: creds, region: "eu-west-1", service: "lambda")
/// let headers = signer.sign(method: "POST", host: "lambda.eu-west-1.amazonaws.com",
///                           path: "/2015-03-31/functions/crucial/invocations", body: payload)
/// ```
public struct SigV4Signer: Sendable {
    /// Who signs.
    public var credentials: AWSCredentials
    /// The AWS region of the endpoint, e.g. `us-east-1`.
    public var region: String
    /// The signing name of the service, e.g. `lambda`.
    public var service: String

    /// A signer for requests to `service` in `region`.
    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The headers to add to the request: `x-amz-date`, `x-amz-content-sha256` when
    /// asked, `x-amz-security-token` with temporary credentials, and `authorization`.
    ///
    /// - Parameters:
    ///   - method: the HTTP method.
    ///   - host: the `host` header's value.
    ///   - path: the path as sent on the wire (already percent-encoded).
    ///   - query: the raw query string, without `?`.
    ///   - headers: the other headers to sign; `host` is added.
    ///   - body: the request's body (its SHA-256 is signed).
    ///   - date: the time of signing.
    ///   - includeContentHash: add `x-amz-content-sha256` (S3 wants it).
    public func sign(
        method: String, host: String, path: String, query: String = "", headers: [(String, String)] = [],
        body: some DataProtocol = Data(), date: Date = Date(), includeContentHash: Bool = false
    ) -> [(String, String)] {
        let amzDate = Self.amzDate(date)
        let payloadHash = hex(SHA256.hash(body))
        var added: [(String, String)] = [("x-amz-date", amzDate)]
        if includeContentHash { added.append(("x-amz-content-sha256", payloadHash)) }
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        let auth = authorization(
            method: method, path: path, query: query, headers: [("host", host)] + headers + added,
            payloadHash: payloadHash, amzDate: amzDate)
        return added + [("authorization", auth)]
    }

    /// The `Authorization` header value for a request whose headers (including
    /// `host` and `x-amz-date`) are all given.
    public func authorization(
        method: String, path: String, query: String, headers: [(String, String)], payloadHash: String, amzDate: String
    ) -> String {
        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let canonical = canonicalRequest(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash)
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(hex(SHA256.hash(canonical.request.utf8)))"
        let signature = hex(HMACSHA256.authenticationCode(for: stringToSign.utf8, key: signingKey(day: day)))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(canonical.signedHeaders), Signature=\(signature)"
    }

    /// The canonical request and its signed-header list.
    public func canonicalRequest(
        method: String, path: String, query: String, headers: [(String, String)], payloadHash: String
    ) -> (request: String, signedHeaders: String) {
        // Services other than S3 sign the path URI-encoded once more, segment by segment.
        let segments: [Substring] = (path.isEmpty ? "/" : path).split(separator: "/", omittingEmptySubsequences: false)
        let encodedSegments: [String] = segments.map { Self.uriEncode(String($0)) }
        let canonicalPath = service == "s3" ? path : encodedSegments.joined(separator: "/")
        var pairs: [(key: String, value: String)] = []
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.uriEncode(Self.percentDecode(String(parts[0])))
            let value = parts.count > 1 ? Self.uriEncode(Self.percentDecode(String(parts[1]))) : ""
            pairs.append((key, value))
        }
        pairs.sort { $0.key != $1.key ? $0.key < $1.key : $0.value < $1.value }
        let canonicalQuery = pairs.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let trimmed = value.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            merged[name.lowercased(), default: []].append(trimmed)
        }
        let names = merged.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(merged[$0, default: []].joined(separator: ","))\n" }.joined()
        let signed = names.joined(separator: ";")
        let request = [method, canonicalPath, canonicalQuery, canonicalHeaders, signed, payloadHash].joined(separator: "\n")
        return (request, signed)
    }

    func signingKey(day: String) -> [UInt8] {
        var key = Array("AWS4\(credentials.secretAccessKey)".utf8)
        for part in [day, region, service, "aws4_request"] {
            key = HMACSHA256.authenticationCode(for: part.utf8, key: key)
        }
        return key
    }

    /// "20150830T123600Z" for `date`, in UTC.
    public static func amzDate(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secs = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)\(two(month))\(two(day))T\(two(secs / 3600))\(two(secs / 60 % 60))\(two(secs % 60))Z"
    }

    /// RFC 3986 encoding as SigV4 wants it: everything but `A-Z a-z 0-9 - . _ ~`.
    static func uriEncode(_ s: String) -> String {
        var out = ""
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// `%XX` escapes decoded (as UTF-8); `s` itself when an escape is malformed, as
    /// Foundation's `removingPercentEncoding` would give nil (which links ICU).
    static func percentDecode(_ s: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = s.utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) else { return s }
            bytes.append(value)
            utf8 = utf8.dropFirst(2)
        }
        return String(validating: bytes, as: UTF8.self) ?? s
    }
}

private func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
