import CrucialTesting
import CrucialClient
import CrucialLambda
import CrucialProcess
import CrucialTestFunctions
import Foundation
import Testing

/// The processes whose parent is `pid` (from /proc).
func children(of pid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { child in
        guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        // "pid (comm) state ppid ...": the fields after the name.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == pid
    }
}

/// A run of cloud threads fails fast and whole when one of them throws, exits or crashes.
/// Real processes: an exit and a crash are a bootstrap process's, reported by the emulator
/// as Lambda does; what the run does with that is also tested in process (CloudRunTests).
@Suite("A failing cloud thread ends its run at once (real emulator and bootstrap)", .serialized, .timeLimit(.minutes(6)))
struct FailFastTests {
    @Test("One of 8 threads throws, exits or crashes at the first or the second barrier: joined last, its error ends the run, with the crash's own line; the emulator leaves no worker behind")
    func oneFailureEndsTheRun() async throws {
        let server = try await TestServer()
        let emulator = try await TestEmulator(concurrency: 16)
        let client = server.client()
        defer { client.close(); emulator.stop() }
        for failure in ["throw", "exit", "crash"] {
            for failAt in [1, 2] {
                let key = "\(failure)-\(failAt)"
                let threads = (0..<8).map { i in
                    CloudThread(
                        BarrierParty(key: key, parties: 8, failure: i == 5 ? failure : nil, failAt: failAt), invoker: emulator.invoker(), client: client)
                }
                for t in threads { t.start() }
                // The failing thread is the sixth started; the joins wait on the first five
                // first, which are parked at a barrier that can never open.
                let error = try await #require(throws: CloudFunctionError.self, "\(key)") { for t in threads { try await t.join() } }
                #expect(error.thread == 6, "\(key): \(error)")
                switch failure {
                case "throw": #expect(error.errorMessage == "party gave up at barrier \(failAt)", "\(error)")
                case "exit": #expect(error.errorMessage.contains("exit status 3"), "\(error)")
                default:
                    #expect(error.crashReason?.contains("Fatal error: Unexpectedly found nil") == true, "\(error)")
                    #expect(error.description.contains("Fatal error: Unexpectedly found nil"), "\(error)")
                }
                // The others were cancelled, not left parked.
                let barrier = CyclicBarrier("\(key)-\(failAt)", parties: 8, client: client)
                try await waitUntil(within: .seconds(60)) { try await barrier.numberWaiting() == 0 }
            }
        }
        let workers = children(of: emulator.process.processIdentifier)
        #expect(!workers.isEmpty, "the emulator runs its workers as child processes")
        await emulator.stop()
        try await waitUntil(within: .seconds(30)) { workers.allSatisfy { kill($0, 0) != 0 } }
    }

    @Test("An emulator whose output reader is gone (its driver was stopped) serves on without crashing, and stops its workers when told")
    func emulatorSurvivesItsReader() async throws {
        // The reader: `head -n 1` takes the ready line and exits, as a stopped driver leaves
        // the pipe; every line the emulator logs after that meets a closed pipe.
        let emulatorPath = try builtExecutable("crucial-lambda-emulator")
        let shell = try await ServerProcess.start(
            executable: "/bin/bash",
            arguments: [
                "-c", "set -o pipefail; \"$0\" \"$@\" | head -n 1", emulatorPath, "--port", "0",
                "--function", "crucial=\(try builtExecutable("crucial-test-functions"))", "--concurrency", "4", "--log-level", "info",
            ],
            environment: [ParentWatch.environmentKey: ""])  // its parent is the shell, not this process
        defer { shell.stop() }
        let emulatorPID = try #require(children(of: shell.processIdentifier).first { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.contains("crucial-lambda-emulator") == true
        })
        let server = try await TestServer()
        let client = server.client()
        defer { client.close() }
        let invoker = LambdaInvoker(configuration: .init(endpoint: "http://\(shell.address)", functionName: "crucial"))
        // Each invocation logs START/END/REPORT lines to the closed pipe.
        for round in 1...3 {
            try await CloudExecutor(invoker: invoker, client: client).invokeAll([Increment(key: "after-pipe", times: 1)])
            #expect(try await AtomicLong("after-pipe", client: client).get() == Int64(round))
        }
        let workers = children(of: emulatorPID)
        #expect(!workers.isEmpty)
        #expect(kill(emulatorPID, SIGTERM) == 0)
        try await waitUntil(within: .seconds(30)) { kill(emulatorPID, 0) != 0 && workers.allSatisfy { kill($0, 0) != 0 } }
        // The shell ends with the pipeline: its status is the emulator's (pipefail; head's is 0).
        try await waitUntil(within: .seconds(30)) { !shell.isRunning }
        expectCleanExit(await shell.stop())
    }
}
