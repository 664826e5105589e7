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

    /// Where the outside package lives between runs: a cache of this machine's, outside
    /// every clone (`$XDG_CACHE_HOME/crucial/own-package`, else `~/.cache/...`). Its
    /// dependencies' build (swift-nio, BoringSSL, swift-syntax: minutes on 2 cores) is made
    /// once per machine and kept, as SwiftPM keeps its own caches there; each run rewrites
    /// the package's files and rebuilds what changed (Crucial's own targets, from the clone
    /// under test). `rm -rf ~/.cache/crucial/own-package` gives the space back.
    static var cache: URL {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        let preferred = base.appendingPathComponent("crucial/own-package")
        if (try? FileManager.default.createDirectory(at: preferred, withIntermediateDirectories: true)) != nil { return preferred }
        // No writable home (a locked-down CI user): the system's temporary directory, kept as long as it is.
        return FileManager.default.temporaryDirectory.appendingPathComponent("crucial-cache/own-package")
    }

    /// Writes `text` unless the file holds it already (a rewrite would rebuild its target).
    static func write(_ text: String, to file: URL) throws {
        if (try? String(contentsOf: file, encoding: .utf8)) == text { return }
        try text.write(to: file, atomically: true, encoding: .utf8)
    }

    @Test("A new package depending on Crucial by path builds CrucialClient alone (no HTTP client) and runs the README's example against a server; a CrucialProgram in it runs on a local stack of its own")
    func ownPackage() async throws {
        let dir = Self.cache
        let sources = dir.appendingPathComponent("Sources/my-app")
        try FileManager.default.createDirectory(at: sources, withIntermediateDirectories: true)
        try Self.write(Self.manifest(crucialPath: Self.root.path, program: true), to: dir.appendingPathComponent("Package.swift"))
        // The versions this repository resolved, so that the cached dependencies are the ones under test.
        if let resolved = try? String(contentsOf: Self.root.appendingPathComponent("Package.resolved"), encoding: .utf8) {
            try Self.write(resolved, to: dir.appendingPathComponent("Package.resolved"))
        }
        try Self.write(Self.main, to: sources.appendingPathComponent("main.swift"))
        let programSources = dir.appendingPathComponent("Sources/my-program")
        try FileManager.default.createDirectory(at: programSources, withIntermediateDirectories: true)
        try Self.write(Self.program, to: programSources.appendingPathComponent("MyProgram.swift"))

        // A build of its own: from nothing the first time on a machine (minutes on 2 cores,
        // most of it swift-nio, BoringSSL and swift-syntax), then Crucial's targets only.
        let build = try await runProcess("/usr/bin/env", ["swift", "build", "--package-path", dir.path, "--product", "my-app"])
        #expect(build.status == 0, "swift build of the outside package failed:\n\(build.out.suffix(4000))\n\(build.err.suffix(4000))")
        guard build.status == 0 else { return }
        // What the app links (its symbols; the cache's module folder also holds my-program's).
        let symbols = try await runProcess("/usr/bin/env", ["nm", dir.appendingPathComponent(".build/debug/my-app").path])
        #expect(symbols.status == 0, "\(symbols.err)")
        #expect(symbols.out.contains("13CrucialClient"))
        #expect(!symbols.out.contains("15AsyncHTTPClient") && !symbols.out.contains("8NIOHTTP2"), "a shared-objects-only app links an HTTP client")

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
