import CrucialClient
import Foundation
import Testing

/// The paper's applications (apps/): each plain threaded program and its Crucial port,
/// at a small size, give the same result.
@Suite("The paper's applications, plain and on Crucial")
struct AppTests {
    /// The line of `output` starting with `prefix`.
    func line(_ output: String, _ prefix: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
    }

    @Test("Monte Carlo π: cloud threads on the emulator count exactly the points plain threads count")
    func montecarlo() async throws {
        let arguments = ["--threads", "4", "--iterations", "250000"]
        let plain = try await runCLI(arguments, executable: "montecarlo-plain")
        let crucial = try await runCLI(arguments, executable: "montecarlo-crucial")
        #expect(plain.status == 0 && crucial.status == 0, "\(plain.out)\n\(crucial.out)")
        let p = line(plain.out, "pi = ").map { $0.split(separator: " ")[2] }
        let c = line(crucial.out, "pi = ").map { $0.split(separator: " ")[2] }
        #expect(p != nil && p == c, "plain: \(plain.out)\ncrucial: \(crucial.out)")
        #expect(crucial.out.components(separatedBy: "a thread finished").count == 5)
    }

    @Test("A CrucialProgram answers --help and bad options without starting anything, and reports its own errors with a non-zero status")
    func programEntryPoint() async throws {
        let help = try await runCLI(["--help"], executable: "montecarlo-crucial")
        #expect(help.status == 0 && help.out.contains("USAGE: monte-carlo") && !help.out.contains("started a local"), "\(help)")
        let bad = try await runCLI(["--threads", "many"], executable: "montecarlo-crucial")
        #expect(bad.status == 64 && bad.err.contains("'many' is invalid") && !bad.out.contains("started a local"), "\(bad)")
        // No points: run() throws (π is off), after the stack started; the error is the command line's.
        let failing = try await runCLI(["--threads", "1", "--iterations", "0"], executable: "montecarlo-crucial")
        #expect(failing.status == 64 && failing.err.contains("Error: π is off"), "\(failing)")
    }

    @Test("docs/PORTING.md's example: the port, on its own local stack, prints what the plain program prints")
    func portingExample() async throws {
        let before = try await runCLI([], executable: "porting-before")
        let after = try await runCLI([], executable: "porting-after")
        #expect(before.status == 0 && after.status == 0, "\(before)\n\(after)")
        let centroids = try #require(line(after.out, "[["), "\(after.out)")
        #expect(before.out == centroids + "\n")
        #expect(after.out.contains("started a local crucial-lambda-emulator"))
    }

    @Test("A CrucialProgram uses the servers CRUCIAL_SERVERS names and starts none; its session ends when it returns")
    func programConfiguredServers() async throws {
        let server = try await TestServer()
        defer { server.stop() }
        let run = try await runCLI(
            ["--threads", "2", "--iterations", "1000"], executable: "montecarlo-crucial",
            environment: ["CRUCIAL_SERVERS": server.address, "CRUCIAL_INVOKER": "in-process"])
        #expect(run.status == 0 && run.out.contains("pi = ") && !run.out.contains("started a local"), "\(run)")
        // The counter was an ephemeral object of the program's session: gone with it.
        let client = server.client()
        defer { client.close() }
        #expect(try await client.listObjects().isEmpty)
    }

    @Test("k-means: cloud threads sharing centroids, delta and a barrier reach the plain version's objective")
    func kmeans() async throws {
        let arguments = ["--threads", "3", "--points", "3000", "--k", "6", "--dims", "20", "--iterations", "6", "--seed", "7"]
        let plain = try await runCLI(arguments, executable: "kmeans-plain")
        let crucial = try await runCLI(arguments, executable: "kmeans-crucial")
        #expect(plain.status == 0 && crucial.status == 0, "\(plain.out)\n\(crucial.out)")
        func objective(_ out: String) -> Double? { line(out, "objective = ").flatMap { Double($0.split(separator: " ")[2]) } }
        let p = try #require(objective(plain.out), "\(plain.out)"), c = try #require(objective(crucial.out), "\(crucial.out)")
        // Same data, same seeds: equal up to the order in which threads added their sums.
        #expect(abs(p - c) <= 1e-6 * p, "plain \(p), crucial \(c)")
        #expect(crucial.out.contains("done by every thread"))
    }

    @Test("Logistic regression: cloud threads summing gradients on the servers reach the plain version's loss, decreasing")
    func logreg() async throws {
        let arguments = ["--threads", "3", "--points", "800", "--dims", "20", "--iterations", "15", "--seed", "3"]
        let plain = try await runCLI(arguments, executable: "logreg-plain")
        let crucial = try await runCLI(arguments, executable: "logreg-crucial")
        #expect(plain.status == 0 && crucial.status == 0, "\(plain.out)\n\(crucial.out)")
        func loss(_ out: String) -> Double? { line(out, "loss = ").flatMap { Double($0.split(separator: " ")[2]) } }
        let p = try #require(loss(plain.out), "\(plain.out)"), c = try #require(loss(crucial.out), "\(crucial.out)")
        #expect(abs(p - c) <= 1e-9 * p, "plain \(p), crucial \(c)")
        #expect(p < 0.693, "the loss must fall below log 2 (all-zero weights): \(p)")
    }

    @Test("Random forest: cloud threads growing trees into a shared forest give the plain version's forest, tree for tree, whatever the number of threads")
    func randomForest() async throws {
        let common = ["--trees", "6", "--samples", "1500", "--test-samples", "400", "--seed", "11"]
        let plain = try await runCLI(common + ["--threads", "2"], executable: "randomforest-plain")
        let crucial = try await runCLI(common + ["--threads", "3"], executable: "randomforest-crucial")
        #expect(plain.status == 0 && crucial.status == 0, "\(plain.out)\n\(crucial.out)")
        let p = try #require(line(plain.out, "accuracy = "), "\(plain.out)"), c = try #require(line(crucial.out, "accuracy = "), "\(crucial.out)")
        // Same seed: the same trees (their fingerprint), so the same accuracy and out-of-bag error.
        #expect(p == c)
        #expect(line(crucial.out, "trained 6 trees") != nil, "\(crucial.out)")
        let accuracy = try #require(Double(p.split(separator: " ")[2].dropLast()))
        #expect(accuracy > 0.8, "a forest must beat a coin on these classes: \(p)")
    }

    @Test("Santa Claus: Santa, 9 reindeer and 6 elves as cloud threads on shared semaphores make every delivery and help every elf group, breaking no rule")
    func santa() async throws {
        let arguments = ["--deliveries", "4", "--elves", "6", "--helps", "2"]
        for program in ["santa-plain", "santa-crucial"] {
            let run = try await runCLI(arguments, executable: program)
            #expect(run.status == 0, "\(program): \(run.out)")
            #expect(line(run.out, "deliveries = ")?.hasPrefix("deliveries = 4, elf groups = 4, violations = 0") == true, "\(program): \(run.out)")
        }
    }
}
