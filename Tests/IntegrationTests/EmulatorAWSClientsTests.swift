import CrucialCore
import CrucialProcess
import Foundation
import Testing

/// `crucial-lambda-emulator` as AWS's own clients see it: boto3 and the AWS CLI on the
/// Invoke API, and awslambdaric (AWS's Python runtime interface client) as the function on
/// the Runtime API. They come from `.build/aws-clients`, the virtual environment
/// tools/test.sh makes (pip: boto3, awscli, awslambdaric).
@Suite("The Lambda emulator against AWS's own clients (boto3, the AWS CLI, awslambdaric)")
struct EmulatorAWSClientsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let venv = root.appendingPathComponent(".build/aws-clients/bin")

    /// The Python function: echoes, prints, fails, sleeps or answers big, as the event says.
    static let handler = """
        import json, os, time

        def handle(event, context):
            action = event.get("action", "echo")
            if action == "echo":
                print("handling " + event.get("tag", ""), flush=True)
                custom = context.client_context.custom if context.client_context else None
                names = ["AWS_EXECUTION_ENV", "AWS_LAMBDA_INITIALIZATION_TYPE", "TZ", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
                         "CRUCIAL_EMULATOR_SECRET", "MY_SETTING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_DEFAULT_REGION"]
                return {"event": event, "function": context.function_name, "client_context": custom,
                        "env": {k: os.environ.get(k) for k in names}}
            if action == "fail":
                with open(os.environ["ATTEMPTS_FILE"], "a") as f:
                    f.write(event.get("tag", "") + "\\n")
                raise RuntimeError("failing on purpose")
            if action == "sleep":
                time.sleep(event["seconds"])
                return "slept"
            if action == "big":
                return "x" * event["bytes"]
            return None
        """

    /// A runtime of its own on the Runtime API, that answers its first invocation twice and
    /// then reports init errors: what the emulator answered goes to STATUS_FILE.
    static let rawRuntime = """
        import os, urllib.request, urllib.error
        api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
        def post(path, body=b"{}"):
            try:
                return urllib.request.urlopen(urllib.request.Request(api + path, data=body, method="POST")).status
            except urllib.error.HTTPError as e:
                return e.code
        first = True
        while True:
            with urllib.request.urlopen(api + "/invocation/next") as r:
                rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            statuses = [post("/invocation/" + rid + "/response", b'"ok"')]
            if first:
                statuses.append(post("/invocation/" + rid + "/response", b'"again"'))
                statuses.append(post("/init/error"))
                with open(os.environ["STATUS_FILE"], "w") as f:
                    f.write(" ".join(str(s) for s in statuses))
                first = False
        """

    /// boto3 against the emulator at ENDPOINT; prints one JSON object with what it saw.
    static let checks = """
        import base64, json, sys, threading, time
        import boto3, botocore.config
        from botocore.exceptions import ClientError
        endpoint, attempts_file = sys.argv[1], sys.argv[2]
        lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
                           config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=120))
        out = {}
        def error(call):
            try:
                call()
                return None
            except ClientError as e:
                return {"code": e.response["Error"]["Code"], "message": e.response["Error"].get("Message", ""),
                        "status": e.response["ResponseMetadata"]["HTTPStatusCode"], "reason": e.response.get("Reason")}
        r = lam.invoke(FunctionName="py", Payload=json.dumps({"action": "echo", "tag": "t0"}), LogType="Tail",
                       ClientContext=base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode())
        body = json.loads(r["Payload"].read())
        out["sync"] = {"status": r["StatusCode"], "version": r.get("ExecutedVersion"), "body": body,
                       "log": base64.b64decode(r["LogResult"]).decode()}
        # Forty at once, eight at a time: each log has its own printed line.
        logs, lock = {}, threading.Lock()
        def one(i):
            rr = lam.invoke(FunctionName="py", Payload=json.dumps({"action": "echo", "tag": "n%d" % i}), LogType="Tail")
            text = base64.b64decode(rr["LogResult"]).decode()
            with lock:
                logs[i] = text
        for batch in range(5):
            threads = [threading.Thread(target=one, args=(batch * 8 + j,)) for j in range(8)]
            [t.start() for t in threads]
            [t.join() for t in threads]
        out["logs_missing"] = [i for i, text in logs.items() if ("handling n%d" % i) not in text]
        out["latest"] = lam.invoke(FunctionName="py", Qualifier="$LATEST", Payload=b"{}")["StatusCode"]
        out["qualifier"] = error(lambda: lam.invoke(FunctionName="py", Qualifier="v1", Payload=b"{}"))
        out["arn_qualifier"] = error(lambda: lam.invoke(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:py:live", Payload=b"{}"))
        big = json.dumps("x" * (7 * 1024 * 1024)).encode()
        out["too_large"] = error(lambda: lam.invoke(FunctionName="py", Payload=big))
        out["bad_json"] = error(lambda: lam.invoke(FunctionName="py", Payload=b"{nope"))
        ev = lam.invoke(FunctionName="py", InvocationType="Event", Payload=json.dumps({"action": "echo", "tag": "ev"}))
        out["event"] = {"status": ev["StatusCode"], "request_id": ev["ResponseMetadata"]["RequestId"]}
        out["event_too_large"] = error(lambda: lam.invoke(FunctionName="py", InvocationType="Event", Payload=json.dumps("x" * (2 * 1024 * 1024)).encode()))
        dry = lam.invoke(FunctionName="py", InvocationType="DryRun", Payload=b"{}")
        out["dry_run"] = {"status": dry["StatusCode"], "request_id": dry["ResponseMetadata"]["RequestId"]}
        # 6 MiB and 100 bytes of response pass; more is the function's error.
        fits = lam.invoke(FunctionName="py", Payload=json.dumps({"action": "big", "bytes": 6 * 1024 * 1024 + 98}))
        out["fits"] = {"status": fits["StatusCode"], "error": fits.get("FunctionError"), "length": len(fits["Payload"].read())}
        over = lam.invoke(FunctionName="py", Payload=json.dumps({"action": "big", "bytes": 6 * 1024 * 1024 + 200}))
        out["over"] = {"error": over.get("FunctionError"), "body": json.loads(over["Payload"].read())}
        # A failed asynchronous invocation runs three times in all.
        lam.invoke(FunctionName="py", InvocationType="Event", Payload=json.dumps({"action": "fail", "tag": "e1"}))
        deadline = time.time() + 60
        attempts = 0
        while time.time() < deadline:
            try:
                attempts = open(attempts_file).read().split().count("e1")
            except FileNotFoundError:
                attempts = 0
            if attempts >= 3:
                time.sleep(1.0)  # and no fourth
                attempts = open(attempts_file).read().split().count("e1")
                break
            time.sleep(0.1)
        out["event_attempts"] = attempts
        print(json.dumps(out))
        """

    /// boto3 against a throttling emulator with one environment: a second call while the
    /// first runs is refused with 429.
    static let throttleCheck = """
        import json, sys, threading, time
        import boto3, botocore.config
        from botocore.exceptions import ClientError
        lam = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
                           config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=120))
        slow = threading.Thread(target=lambda: lam.invoke(FunctionName="py", Payload=json.dumps({"action": "sleep", "seconds": 3})))
        slow.start()
        time.sleep(1.0)
        try:
            lam.invoke(FunctionName="py", Payload=b"{}")
            result = None
        except ClientError as e:
            result = {"code": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"], "reason": e.response.get("Reason")}
        slow.join()
        print(json.dumps(result))
        """

    /// A folder with the function (a bootstrap running awslambdaric) and the scripts.
    static func functionFolder() throws -> URL {
        let python = venv.appendingPathComponent("python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw CrucialError(.invalidArgument, "\(python) is missing: tools/test.sh makes .build/aws-clients (pip install boto3 awscli awslambdaric)")
        }
        let dir = URL(fileURLWithPath: ScratchFolders.path("aws-clients"))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in [("handler.py", handler), ("raw_runtime.py", rawRuntime), ("checks.py", checks), ("throttle.py", throttleCheck)] {
            try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        for (name, command) in [("bootstrap", "-m awslambdaric handler.handle"), ("raw-bootstrap", "raw_runtime.py")] {
            let script = dir.appendingPathComponent(name).path
            try "#!/bin/sh\ncd \"$(dirname \"$0\")\"\nexec \(python) \(command)\n".write(toFile: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        }
        return dir
    }

    static func emulator(_ arguments: [String], environment: [String: String] = [:]) async throws -> ServerProcess {
        try await ServerProcess.start(
            executable: builtExecutable("crucial-lambda-emulator"), arguments: ["--port", "0", "--log-level", "warning"] + arguments,
            environment: environment)
    }

    static func json(_ text: String) throws -> [String: Any] {
        let line = text.split(separator: "\n").last.map(String.init) ?? ""
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    @Test("boto3 and awslambdaric: answers, errors, limits, logs, the environment, client context and asynchronous retries as AWS has them")
    func boto3() async throws {
        let dir = try Self.functionFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let attempts = dir.appendingPathComponent("attempts.txt").path
        // The emulator's own secrets must not reach the function.
        let emulator = try await Self.emulator(
            [
                "--function", "py=\(dir.appendingPathComponent("bootstrap").path)", "--runtime", "python3.11", "--concurrency", "8",
                "--env", "MY_SETTING=on", "--env", "ATTEMPTS_FILE=\(attempts)", "--event-retry-delay", "0.2",
            ],
            environment: ["AWS_SECRET_ACCESS_KEY": "emulator-secret", "AWS_ACCESS_KEY_ID": "emulator-key", "CRUCIAL_EMULATOR_SECRET": "s"])
        defer { emulator.stop() }
        let run = try await runProcess(
            Self.venv.appendingPathComponent("python").path, [dir.appendingPathComponent("checks.py").path, "http://\(emulator.address)", attempts])
        #expect(run.status == 0, "\(run.err.suffix(3000))")
        guard run.status == 0 else { return }
        let out = try Self.json(run.out)

        let sync = try #require(out["sync"] as? [String: Any])
        #expect(sync["status"] as? Int == 200)
        #expect(sync["version"] as? String == "$LATEST")
        let body = try #require(sync["body"] as? [String: Any])
        #expect((body["event"] as? [String: Any])?["tag"] as? String == "t0")
        #expect(body["function"] as? String == "py")
        #expect(body["client_context"] as? [String: String] == ["k": "v"], "X-Amz-Client-Context reaches the function")
        let env = try #require(body["env"] as? [String: Any])
        #expect(env["AWS_EXECUTION_ENV"] as? String == "AWS_Lambda_python3.11")
        #expect(env["AWS_LAMBDA_INITIALIZATION_TYPE"] as? String == "on-demand")
        #expect(env["TZ"] as? String == ":UTC")
        #expect(env["AWS_DEFAULT_REGION"] as? String == "us-east-1")
        #expect(env["MY_SETTING"] as? String == "on")
        #expect(env["AWS_SECRET_ACCESS_KEY"] is NSNull && env["AWS_ACCESS_KEY_ID"] is NSNull && env["CRUCIAL_EMULATOR_SECRET"] is NSNull,
            "the emulator's environment leaked into the function: \(env)")
        let log = try #require(sync["log"] as? String)
        #expect(log.contains("handling t0"))
        #expect(log.hasPrefix("START RequestId: ") && log.contains("END RequestId: ") && log.contains("REPORT RequestId: "))
        #expect((out["logs_missing"] as? [Int]) == [], "invocations whose LogResult lacks the line printed before answering")

        #expect(out["latest"] as? Int == 200)
        for key in ["qualifier", "arn_qualifier"] {
            let e = try #require(out[key] as? [String: Any], "\(key): no error")
            #expect(e["code"] as? String == "ResourceNotFoundException")
            #expect(e["status"] as? Int == 404)
        }
        let large = try #require(out["too_large"] as? [String: Any])
        #expect(large["code"] as? String == "RequestEntityTooLargeException")
        #expect(large["status"] as? Int == 413)
        #expect(large["message"] as? String == "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
        let bad = try #require(out["bad_json"] as? [String: Any])
        #expect(bad["code"] as? String == "InvalidRequestContentException")
        #expect((bad["message"] as? String)?.hasPrefix("Could not parse request body into json: Could not parse payload into json") == true)
        #expect((bad["message"] as? String)?.contains("NSCocoaErrorDomain") == false)

        let event = try #require(out["event"] as? [String: Any])
        #expect(event["status"] as? Int == 202)
        #expect((event["request_id"] as? String)?.isEmpty == false)
        let eventLarge = try #require(out["event_too_large"] as? [String: Any])
        #expect(eventLarge["code"] as? String == "RequestEntityTooLargeException")
        #expect(eventLarge["message"] as? String == "Request must be smaller than 1048576 bytes for the InvokeFunction operation")
        let dry = try #require(out["dry_run"] as? [String: Any])
        #expect(dry["status"] as? Int == 204)
        #expect((dry["request_id"] as? String)?.isEmpty == false)

        let fits = try #require(out["fits"] as? [String: Any])
        #expect(fits["status"] as? Int == 200)
        #expect(fits["error"] is NSNull || fits["error"] == nil)
        #expect(fits["length"] as? Int == 6 * 1024 * 1024 + 100)
        let over = try #require(out["over"] as? [String: Any])
        #expect(over["error"] as? String == "Unhandled")
        #expect((over["body"] as? [String: Any])?["errorType"] as? String == "Function.ResponseSizeTooLarge")
        #expect(out["event_attempts"] as? Int == 3, "a failed asynchronous invocation runs three times in all, as on AWS")
    }

    @Test("The AWS CLI invokes through the emulator and gets the log tail")
    func awsCLI() async throws {
        let dir = try Self.functionFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let emulator = try await Self.emulator(["--function", "py=\(dir.appendingPathComponent("bootstrap").path)", "--runtime", "python3.11"])
        defer { emulator.stop() }
        let outFile = dir.appendingPathComponent("out.json").path
        let run = try await runProcess(
            "/usr/bin/env",
            [
                "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=",
                Self.venv.appendingPathComponent("aws").path, "lambda", "invoke", "--endpoint-url", "http://\(emulator.address)", "--function-name", "py",
                "--payload", #"{"action":"echo","tag":"cli"}"#, "--log-type", "Tail", outFile,
            ])
        #expect(run.status == 0, "\(run.err)")
        let answer = try Self.json(run.out.replacingOccurrences(of: "\n", with: ""))
        #expect(answer["StatusCode"] as? Int == 200)
        #expect(answer["ExecutedVersion"] as? String == "$LATEST")
        let log = String(decoding: Data(base64Encoded: try #require(answer["LogResult"] as? String)) ?? Data(), as: UTF8.self)
        #expect(log.contains("handling cli"))
        let body = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: outFile))) as? [String: Any])
        #expect((body["event"] as? [String: Any])?["tag"] as? String == "cli")

        let missing = try await runProcess(
            "/usr/bin/env",
            [
                "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=",
                Self.venv.appendingPathComponent("aws").path, "lambda", "invoke", "--endpoint-url", "http://\(emulator.address)", "--function-name", "nope",
                "--payload", "{}", outFile,
            ])
        #expect(missing.status != 0)
        #expect(missing.err.contains("ResourceNotFoundException"), "\(missing.err)")
    }

    @Test("Over the concurrency limit with --throttle, a synchronous call is refused with 429 TooManyRequestsException")
    func throttle() async throws {
        let dir = try Self.functionFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let emulator = try await Self.emulator(["--function", "py=\(dir.appendingPathComponent("bootstrap").path)", "--concurrency", "1", "--throttle"])
        defer { emulator.stop() }
        let run = try await runProcess(Self.venv.appendingPathComponent("python").path, [dir.appendingPathComponent("throttle.py").path, "http://\(emulator.address)"])
        #expect(run.status == 0, "\(run.err.suffix(3000))")
        let result = try Self.json(run.out)
        #expect(result["code"] as? String == "TooManyRequestsException")
        #expect(result["status"] as? Int == 429)
        #expect(result["reason"] as? String == "ReservedFunctionConcurrentInvocationLimitExceeded")
    }

    @Test("The Runtime API refuses a second answer to one invocation, and an init error after init, with 403 as AWS's emulator does")
    func runtimeStateTransitions() async throws {
        let dir = try Self.functionFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let statusFile = dir.appendingPathComponent("status.txt").path
        let emulator = try await Self.emulator(["--function", "raw=\(dir.appendingPathComponent("raw-bootstrap").path)", "--env", "STATUS_FILE=\(statusFile)"])
        defer { emulator.stop() }
        let run = try await runProcess(
            "/usr/bin/env",
            [
                "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=",
                Self.venv.appendingPathComponent("aws").path, "lambda", "invoke", "--endpoint-url", "http://\(emulator.address)", "--function-name", "raw",
                "--payload", "{}", dir.appendingPathComponent("raw.json").path,
            ])
        #expect(run.status == 0, "\(run.err)")
        var statuses = ""
        for _ in 0..<100 where statuses.isEmpty {
            statuses = (try? String(contentsOfFile: statusFile, encoding: .utf8)) ?? ""
            if statuses.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(statuses == "202 403 403")
    }
}
