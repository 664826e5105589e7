import CrucialClient
@testable import CrucialLambda
import Foundation
import Testing

/// The AWS Signature Version 4 test suite's credentials and instant (2015-08-30T12:36:00Z).
let suiteCredentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)

@Suite("SigV4 against AWS's published example vectors")
struct SigV4Tests {
    let signer = SigV4Signer(credentials: suiteCredentials, region: "us-east-1", service: "service")

    private func authorization(_ headers: [(String, String)]) -> String? {
        headers.first { $0.0 == "authorization" }?.1
    }

    @Test("get-vanilla")
    func getVanilla() {
        let headers = signer.sign(method: "GET", host: "example.amazonaws.com", path: "/", date: suiteDate)
        #expect(headers.first { $0.0 == "x-amz-date" }?.1 == "20150830T123600Z")
        #expect(authorization(headers) == """
            AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
            SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31
            """)
        let canonical = signer.canonicalRequest(
            method: "GET", path: "/", query: "", headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(canonical.request == """
            GET
            /

            host:example.amazonaws.com
            x-amz-date:20150830T123600Z

            host;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
    }

    @Test("get-vanilla-query-order-key-case: the query is sorted by key")
    func queryOrder() {
        let headers = signer.sign(method: "GET", host: "example.amazonaws.com", path: "/", query: "Param2=value2&Param1=value1", date: suiteDate)
        #expect(authorization(headers)?.hasSuffix("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500") == true)
    }

    @Test("post-vanilla")
    func postVanilla() {
        let headers = signer.sign(method: "POST", host: "example.amazonaws.com", path: "/", date: suiteDate)
        #expect(authorization(headers)?.hasSuffix("Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b") == true)
    }

    @Test("Amazon S3's documented GET Object example (range header, content hash, unencoded path)")
    func s3GetObject() {
        let s3 = SigV4Signer(
            credentials: AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1", service: "s3")
        let headers = s3.sign(
            method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", headers: [("Range", "bytes=0-9")],
            date: Date(timeIntervalSince1970: 1_369_353_600), includeContentHash: true)
        #expect(authorization(headers) == """
            AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
            SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
            Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41
            """)
    }

    @Test("Temporary credentials add and sign x-amz-security-token")
    func sessionToken() {
        var creds = suiteCredentials
        creds.sessionToken = "token/with+chars"
        let headers = SigV4Signer(credentials: creds, region: "us-east-1", service: "lambda")
            .sign(method: "POST", host: "lambda.us-east-1.amazonaws.com", path: "/", date: suiteDate)
        #expect(headers.contains { $0 == ("x-amz-security-token", "token/with+chars") })
        #expect(authorization(headers)?.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,") == true)
    }

    @Test("x-amz-date is UTC civil time, leap days included")
    func amzDate() {
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 0)) == "19700101T000000Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 1_709_164_800)) == "20240229T000000Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 4_102_444_799)) == "20991231T235959Z")
    }

    @Test("Credentials and region come from the environment, else from the profile files")
    func credentialsLookup() throws {
        let env = ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "TOKEN", "AWS_REGION": "eu-west-3"]
        #expect(AWSCredentials.fromEnvironment(env) == AWSCredentials(accessKeyID: "AKID", secretAccessKey: "SECRET", sessionToken: "TOKEN"))
        #expect(AWSCredentials.region(env) == "eu-west-3")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            # a comment
            [default]
            aws_access_key_id = DEFAULTID
            aws_secret_access_key = DEFAULTSECRET

            [work]
            aws_access_key_id=WORKID
            aws_secret_access_key=WORKSECRET
            aws_session_token = WORKTOKEN
            """.write(to: dir.appendingPathComponent("credentials"), atomically: true, encoding: .utf8)
        try "[default]\nregion = us-west-2\n[profile work]\nregion = ap-south-1\n"
            .write(to: dir.appendingPathComponent("config"), atomically: true, encoding: .utf8)
        let files = ["HOME": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": dir.appendingPathComponent("credentials").path,
                     "AWS_CONFIG_FILE": dir.appendingPathComponent("config").path]
        #expect(AWSCredentials.fromEnvironment(files) == AWSCredentials(accessKeyID: "DEFAULTID", secretAccessKey: "DEFAULTSECRET"))
        #expect(AWSCredentials.region(files) == "us-west-2")
        var work = files
        work["AWS_PROFILE"] = "work"
        #expect(AWSCredentials.fromEnvironment(work) == AWSCredentials(accessKeyID: "WORKID", secretAccessKey: "WORKSECRET", sessionToken: "WORKTOKEN"))
        #expect(AWSCredentials.region(work) == "ap-south-1")
        work["AWS_PROFILE"] = "absent"
        #expect(AWSCredentials.fromEnvironment(work) == nil)
    }
}
