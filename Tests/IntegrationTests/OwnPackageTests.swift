import CrucialProcess
import Foundation
import Testing

/// What a user does with the README's "Use Crucial in your own package": a new package
/// outside this repository that depends on it by path, builds, and runs the README's
/// 10-line example against a real server.
@Suite("A package of the user's own that depends on Crucial")
struct OwnPackageTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The README's example, as a user pastes it (plus a `@Shared` type, to show the macro
    /// expands in a package that only depends on Crucial).
    static let main = """
        import CrucialClient

        @Shared struct Score {
            var points = 0
            mutating func add(_ n: Int) -> Int {
                points += n
                return points
            }
        }

        let counter = AtomicLong("counter", initial: 0)        // the object ("AtomicLong", "counter")
        let barrier = CyclicBarrier("round", parties: 4)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await counter.addAndGet(1)                 // runs on the server, atomically
                    try await barrier.await()                      // parks on the server until all 4 arrive
                }
            }
            try await group.waitForAll()
        }
        print(try await counter.get())                         // 4

        """

    /// The README's "Cloud threads" shape: a `CrucialProgram` with a `@Shared` type and
    /// cloud threads, in a package that depends on the `Crucial` product.
    static let program = """
        import Crucial

        @Shared final class Tally {
            var total = 0
            func add(_ n: Int) -> Int {
                total += n
                return total
            }
        }

        struct Add: Runnable {
            var counter: AtomicLong
            func run() async throws { try await counter.addAndGet(1) }
        }

        @main
        struct MyProgram: CrucialProgram {
            static var sharedTypes: [any SharedType.Type] { [Tally.self] }

            func run() async throws {
                let counter = AtomicLong()
                let tally = Tally.Shared(Tally())
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<3 { group.addTask { try await Add(counter: counter).runInCloud() } }
                    try await group.waitForAll()
                }
                print("result", try await counter.get(), try await tally.add(2))
            }
        }

        """

    /// The package's manifest: `my-app` on CrucialClient and, with `program`, `my-program` on Crucial.
    static func manifest(crucialPath: String, program: Bool = false) -> String {
        let crucial = URL(fileURLWithPath: crucialPath).lastPathComponent
        let programTarget = program
            ? "\n        .executableTarget(name: \"my-program\", dependencies: [.product(name: \"Crucial\", package: \"\(crucial)\")]),"
            : ""
        return """
        // swift-tools-version:6.0
        import PackageDescription

        let package = Package(
            name: "MyApp",
            platforms: [.macOS(.v15)],
            dependencies: [.package(path: "\(crucialPath)")],
            targets: [
                .executableTarget(name: "my-app", dependencies: [.product(name: "CrucialClient", package: "\(crucial)")]),\(programTarget)
            ]
        )

        """
    }

    @Test("A new package depending on Crucial by path builds CrucialClient alone (no HTTP client) and runs the README's example against a server; a CrucialProgram in it runs on a local stack of its own")
    func ownPackage() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crucial-own-package-\(UUID().uuidString)")
        let sources = dir.appendingPathComponent("Sources/my-app")
        try FileManager.default.createDirectory(at: sources, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.manifest(crucialPath: Self.root.path, program: true).write(to: dir.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        try Self.main.write(to: sources.appendingPathComponent("main.swift"), atomically: true, encoding: .utf8)
        let programSources = dir.appendingPathComponent("Sources/my-program")
        try FileManager.default.createDirectory(at: programSources, withIntermediateDirectories: true)
        try Self.program.write(to: programSources.appendingPathComponent("MyProgram.swift"), atomically: true, encoding: .utf8)

        // A build of its own, from nothing (minutes on a 2-core machine, most of it swift-nio,
        // BoringSSL and swift-syntax).
        let build = try await runProcess("/usr/bin/env", ["swift", "build", "--package-path", dir.path, "--product", "my-app"])
        #expect(build.status == 0, "swift build of the outside package failed:\n\(build.out.suffix(4000))\n\(build.err.suffix(4000))")
        guard build.status == 0 else { return }
        let modules = dir.appendingPathComponent(".build/debug/Modules").path
        let built = (try? FileManager.default.contentsOfDirectory(atPath: modules)) ?? []
        #expect(built.contains("CrucialClient.swiftmodule"), "\(built)")
        #expect(!built.contains { $0.hasPrefix("AsyncHTTPClient") || $0.hasPrefix("NIOHTTP2") }, "a shared-objects-only app built an HTTP client: \(built)")

        let server = try await TestServer()
        defer { server.stop() }
        let app = dir.appendingPathComponent(".build/debug/my-app").path
        let run = try await runProcess("/usr/bin/env", ["CRUCIAL_SERVERS=\(server.address)", app])
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.trimmingCharacters(in: .whitespacesAndNewlines) == "4", "it printed: \(run.out) \(run.err)")

        // The Crucial product: the program is its own DSO server; with no emulator next to
        // it (a dependency's executables are not built), its cloud threads run in-process.
        let programBuild = try await runProcess("/usr/bin/env", ["swift", "build", "--package-path", dir.path, "--product", "my-program"])
        #expect(programBuild.status == 0, "swift build of my-program failed:\n\(programBuild.out.suffix(4000))\n\(programBuild.err.suffix(4000))")
        guard programBuild.status == 0 else { return }
        let program = try await runProcess(dir.appendingPathComponent(".build/debug/my-program").path, [])
        #expect(program.status == 0, "\(program.out)\n\(program.err)")
        #expect(program.out.contains("started a local DSO server (my-program)"), "\(program.out)")
        #expect(program.out.contains("cloud threads run in this process"), "\(program.out)")
        #expect(program.out.contains("result 3 2"), "\(program.out)\n\(program.err)")
    }
}
