import CrucialClient
import CrucialProcess
@testable import CrucialLambda
import Foundation
import Testing

/// Endpoints that answer as AWS documents EC2's instance metadata (IMDSv2: a session token
/// first, 401 without it) and the ECS container credentials endpoint (the Authorization
/// header checked); each credentials answer gets a new key id, so a test sees every fetch.
private let metadataServer = #"""
    import http.server, json, sys, datetime, itertools
    expires_in = int(sys.argv[1])
    counter = itertools.count(1)
    flaky = itertools.count(1)
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args): pass
        def answer(self, status, body, kind="text/plain"):
            data = body.encode()
            self.send_response(status); self.send_header("Content-Type", kind); self.send_header("Content-Length", str(len(data)))
            self.end_headers(); self.wfile.write(data)
        def credentials(self, prefix):
            n = next(counter)
            expiration = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%SZ")
            return json.dumps({"Code": "Success", "AccessKeyId": f"{prefix}{n}", "SecretAccessKey": "s3cr3t", "Token": f"token{n}", "Expiration": expiration})
        def do_PUT(self):
            if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self.answer(200, "imds-session-token")
            self.answer(400, "bad request")
        def do_GET(self):
            if self.path.startswith("/latest/"):
                if self.headers.get("X-aws-ec2-metadata-token") != "imds-session-token":
                    return self.answer(401, "")
                if self.path == "/latest/meta-data/iam/security-credentials/":
                    return self.answer(200, "instance-role\n")
                if self.path == "/latest/meta-data/iam/security-credentials/instance-role":
                    return self.answer(200, self.credentials("ASIAIMDS"), "application/json")
            if self.path == "/ecs/flaky" and next(flaky) <= 2:
                return self.answer(500, "busy")
            if self.path in ("/ecs/credentials", "/ecs/flaky"):
                if self.headers.get("Authorization") != "ecs-secret":
                    return self.answer(401, json.dumps({"message": "unauthorized"}))
                return self.answer(200, self.credentials("ASIAECS"), "application/json")
            self.answer(404, "not found")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
    """#

@Suite("AWS credentials the way the SDKs find them, against moto's STS and local metadata endpoints")
struct AWSCredentialsTests {
    /// A scratch HOME with `~/.aws/credentials` and `~/.aws/config`.
    struct AWSHome {
        let path = ScratchFolders.path("aws")
        init(credentials: String = "", config: String = "") throws {
            try FileManager.default.createDirectory(atPath: path + "/.aws", withIntermediateDirectories: true)
            try credentials.write(toFile: path + "/.aws/credentials", atomically: true, encoding: .utf8)
            try config.write(toFile: path + "/.aws/config", atomically: true, encoding: .utf8)
        }
        func cleanup() { try? FileManager.default.removeItem(atPath: path) }
        /// An environment with only this HOME (no instance metadata unless a test adds it).
        var environment: [String: String] { ["HOME": path, "AWS_EC2_METADATA_DISABLED": "true"] }
    }

    /// moto's server, a real implementation of STS, on a free loopback port.
    static func moto() async throws -> (ServerProcess, String) {
        for attempt in 1...5 {
            let port = try ServerProcess.freePort()
            do {
                let process = try await ServerProcess.start(
                    executable: "/bin/sh", arguments: ["-c", "exec moto_server -H 127.0.0.1 -p \(port) 2>&1"], readyText: "Running on")
                return (process, "http://127.0.0.1:\(port)")
            } catch where attempt < 5 {}  // the port was taken meanwhile
        }
        throw CrucialError(.connectionFailed, "moto_server did not start (pip install 'moto[server]')")
    }

    static func metadata(expiresIn seconds: Int) async throws -> (ServerProcess, String) {
        let script = ScratchFolders.path("metadata", suffix: ".py")
        try metadataServer.write(toFile: script, atomically: true, encoding: .utf8)
        // Python has read the script once it listens.
        defer { try? FileManager.default.removeItem(atPath: script) }
        let process = try await ServerProcess.start(executable: "/usr/bin/env", arguments: ["python3", script, String(seconds)])
        return (process, "http://\(process.address)")
    }

    @Test("The environment's keys come first, before a profile that has others")
    func environmentFirst() async throws {
        let home = try AWSHome(credentials: "[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = p\n")
        defer { home.cleanup() }
        var env = home.environment
        env["AWS_ACCESS_KEY_ID"] = "AKIDENV"
        env["AWS_SECRET_ACCESS_KEY"] = "e"
        let (credentials, source) = try await AWSCredentialChain(environment: env).resolveWithSource()
        #expect(credentials.accessKeyID == "AKIDENV" && source == .environment)
        let (fromProfile, profileSource) = try await AWSCredentialChain(environment: home.environment).resolveWithSource()
        #expect(fromProfile.accessKeyID == "AKIDPROFILE" && profileSource == .profile)
    }

    @Test("A profile's role_arn is assumed through STS (moto) from its source_profile; the credentials sign a GetCallerIdentity as that role")
    func assumeRoleFromSourceProfile() async throws {
        let (moto, sts) = try await Self.moto()
        defer { moto.stop() }
        let home = try AWSHome(
            credentials: "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = base-secret\n",
            config: "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deployer\nsource_profile = base\nrole_session_name = crucial-test\nregion = eu-west-1\n")
        defer { home.cleanup() }
        var env = home.environment
        env["AWS_PROFILE"] = "deploy"
        env["AWS_ENDPOINT_URL_STS"] = sts
        let chain = AWSCredentialChain(environment: env)
        let credentials = try await chain.credentials()
        #expect(credentials.accessKeyID.hasPrefix("ASIA") && credentials.sessionToken != nil)
        #expect((credentials.expiration?.timeIntervalSinceNow ?? 0) > 600, "an hour, as STS gives")
        #expect(AWSCredentials.region(env) == "eu-west-1")
        let arn = try await STSClient(environment: env, region: "eu-west-1").callerIdentity(credentials)
        #expect(arn == "arn:aws:sts::123456789012:assumed-role/deployer/crucial-test", "\(arn)")
        // Cached: the same credentials until 5 minutes before they expire.
        #expect(try await chain.credentials() == credentials)

        // A profile whose source is missing, or that loops, says so.
        let broken = try AWSHome(config: "[profile a]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = b\n[profile b]\nrole_arn = arn:aws:iam::1:role/y\nsource_profile = a\n")
        defer { broken.cleanup() }
        var loop = broken.environment
        loop["AWS_PROFILE"] = "a"
        await #expect(throws: CloudThreadError.configuration("AWS profile a takes its credentials from itself (source_profile loop)")) {
            try await AWSCredentialChain(environment: loop).resolve()
        }
    }

    @Test("A web identity token (EKS service accounts) is exchanged by STS AssumeRoleWithWebIdentity")
    func webIdentity() async throws {
        let (moto, sts) = try await Self.moto()
        defer { moto.stop() }
        let home = try AWSHome()
        defer { home.cleanup() }
        let token = home.path + "/token"
        try "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl\n".write(toFile: token, atomically: true, encoding: .utf8)
        var env = home.environment
        env["AWS_WEB_IDENTITY_TOKEN_FILE"] = token
        env["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/pod-role"
        env["AWS_ENDPOINT_URL_STS"] = sts
        let (credentials, source) = try await AWSCredentialChain(environment: env).resolveWithSource()
        #expect(source == .webIdentity && credentials.accessKeyID.hasPrefix("ASIA") && credentials.sessionToken != nil)
    }

    @Test("credential_process: a command that prints the credentials as JSON; its failure is reported with its stderr")
    func credentialProcess() async throws {
        let home = try AWSHome(config: """
            [default]
            credential_process = /bin/echo '{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "x", "SessionToken": "t", "Expiration": "2099-01-01T00:00:00Z"}'
            [profile broken]
            credential_process = /bin/sh -c 'echo no such vault >&2; exit 3'
            """)
        defer { home.cleanup() }
        let credentials = try await AWSCredentialChain(environment: home.environment).resolve()
        #expect(credentials.accessKeyID == "AKIDPROC" && credentials.sessionToken == "t")
        #expect(credentials.expiration == ISO8601DateFormatter().date(from: "2099-01-01T00:00:00Z"))
        var env = home.environment
        env["AWS_PROFILE"] = "broken"
        do {
            _ = try await AWSCredentialChain(environment: env).resolve()
            Issue.record("a failing credential_process gave credentials")
        } catch {
            #expect("\(error)".contains("exited 3") && "\(error)".contains("no such vault"), "\(error)")
        }
    }

    @Test("ECS container credentials with the authorization token; a wrong token is refused; an endpoint failing twice is tried a third time")
    func container() async throws {
        let (server, base) = try await Self.metadata(expiresIn: 3600)
        defer { server.stop() }
        let home = try AWSHome()
        defer { home.cleanup() }
        var env = home.environment
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = base + "/ecs/credentials"
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "ecs-secret"
        let (credentials, source) = try await AWSCredentialChain(environment: env).resolveWithSource()
        #expect(source == .container && credentials.accessKeyID.hasPrefix("ASIAECS") && credentials.sessionToken != nil)
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "wrong"
        await #expect(throws: CloudThreadError.self) { try await AWSCredentialChain(environment: env).resolve() }
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "ecs-secret"
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = base + "/ecs/flaky"  // 500, 500, then the credentials
        #expect(try await AWSCredentialChain(environment: env).resolve().accessKeyID.hasPrefix("ASIAECS"))
    }

    @Test("EC2 instance metadata, IMDSv2: cached while fresh, fetched again once they expire within 5 minutes")
    func instanceMetadata() async throws {
        let home = try AWSHome()
        defer { home.cleanup() }
        for (expiresIn, refetched) in [(3600, false), (120, true)] {
            let (server, base) = try await Self.metadata(expiresIn: expiresIn)
            defer { server.stop() }
            var env = home.environment
            env.removeValue(forKey: "AWS_EC2_METADATA_DISABLED")
            env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = base
            // A loaded machine's metadata server (a Python process) may take more than the default second.
            env["AWS_METADATA_SERVICE_TIMEOUT"] = "20"
            let chain = AWSCredentialChain(environment: env)
            let first = try await chain.credentials()
            let (_, source) = try await chain.resolveWithSource()
            #expect(source == .instanceMetadata && first.accessKeyID == "ASIAIMDS1" && first.sessionToken == "token1")
            let second = try await chain.credentials()
            #expect((second.accessKeyID != first.accessKeyID) == refetched, "expiring in \(expiresIn) s: \(first.accessKeyID) then \(second.accessKeyID)")
        }
    }

    @Test("With nothing anywhere, the error says where it looked")
    func nothing() async throws {
        let home = try AWSHome()
        defer { home.cleanup() }
        do {
            _ = try await AWSCredentialChain(environment: home.environment).resolve()
            Issue.record("credentials from nowhere")
        } catch {
            let text = "\(error)"
            #expect(text.contains("no AWS credentials found") && text.contains("AWS_ACCESS_KEY_ID") && text.contains("profile default"), "\(text)")
        }
    }
}
