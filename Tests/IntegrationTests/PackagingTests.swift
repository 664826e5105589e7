import CrucialProcess
import CrucialClient
import CrucialLambda
import CrucialTestFunctions
import Foundation
import Testing

@Suite("Lambda packaging (tools/package-lambda.sh)")
struct PackagingTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = root.appendingPathComponent("tools/package-lambda.sh").path

    @Test("The zip holds an executable bootstrap at its root, and the unzipped bootstrap serves invocations")
    func zipLayout() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-zip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let zip = dir.appendingPathComponent("function.zip").path
        // The debug bootstrap links the toolchain's shared libraries: zip it without the AL2023 check.
        let packed = try await runProcess("/bin/bash", [Self.script, "--binary", builtExecutable("crucial-test-functions"), "--no-check", "--output", zip])
        #expect(packed.status == 0, "\(packed.err)")

        let out = dir.appendingPathComponent("unzipped")
        let unzipped = try await runProcess("/usr/bin/unzip", ["-q", zip, "-d", out.path])
        #expect(unzipped.status == 0, "\(unzipped.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path) == ["bootstrap"])
        let bootstrap = out.appendingPathComponent("bootstrap").path
        #expect(FileManager.default.isExecutableFile(atPath: bootstrap))
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: bootstrap)[.posixPermissions] as? Int)
        #expect(mode & 0o555 == 0o555, "readable and executable by all: Lambda runs it as another user")

        // The unzipped file is a working bootstrap.
        let emulator = try await ServerProcess.start(
            executable: builtExecutable("crucial-lambda-emulator"), arguments: ["--port", "0", "--function", "crucial=\(bootstrap)"])
        defer { emulator.stop() }
        let invoker = LambdaInvoker(configuration: .init(endpoint: "http://\(emulator.address)"))
        let server = try await TestServer()
        let client = server.client()
        defer { client.close() }
        #expect(try await CloudExecutor(invoker: invoker, client: client).invokeAll([Square(x: 12)]) == [144])
    }

    @Test("The Amazon Linux 2023 check refuses a binary that needs the toolchain's shared libraries")
    func checkRefuses() async throws {
        let result = try await runProcess("/bin/bash", [Self.script, "--check", builtExecutable("crucial-test-functions")])
        #expect(result.status != 0)
        #expect(result.err.contains("needs libswiftCore.so, which provided.al2023 does not have"))
    }
}
