import CrucialProcess
import CrucialTesting
import Foundation
import Testing

@Suite("Protocol code generation")
struct ProtocolDriftTests {
    @Test("The committed protoc-c code is what protoc-c makes of Protocol/crucial.proto")
    func generatedCodeIsCurrent() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [root.appendingPathComponent("tools/regen-proto.sh").path, "--check"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Read to the end (the script's exit closes the pipe) off the cooperative pool, which the other tests' tasks need.
        let text = await offCooperativePool { String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        let status = await offCooperativePool { ServerProcess.exitStatus(of: process) }
        #expect(status == 0, "\(text)")
    }
}
