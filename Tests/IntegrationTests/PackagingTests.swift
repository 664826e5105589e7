import CrucialProcess
import CrucialClient
import CrucialLambda
import CrucialTestFunctions
import Foundation
import Testing

/// `swift package crucial-lambda-zip` (the CrucialLambdaZip command plugin), run as a user
/// runs it: in a package of their own outside this repository that depends on Crucial by path.
/// Only the plugin is built there; the binaries it zips or checks are this repository's.
@Suite("Lambda packaging: the crucial-lambda-zip plugin in a package of the user's own")
struct PackagingTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A package `MyApp` with an executable `my-app`, depending on this one, kept between
    /// runs in this machine's cache (as ``OwnPackageTests/cache``: its resolution of the
    /// dependency graph is made once per machine).
    static func userPackage() throws -> URL {
        let dir = OwnPackageTests.cache.deletingLastPathComponent().appendingPathComponent("zip-package")
        let sources = dir.appendingPathComponent("Sources/my-app")
        try FileManager.default.createDirectory(at: sources, withIntermediateDirectories: true)
        try OwnPackageTests.write(OwnPackageTests.manifest(crucialPath: root.path), to: dir.appendingPathComponent("Package.swift"))
        if let resolved = try? String(contentsOf: root.appendingPathComponent("Package.resolved"), encoding: .utf8) {
            try OwnPackageTests.write(resolved, to: dir.appendingPathComponent("Package.resolved"))
        }
        try OwnPackageTests.write("print(\"hello\")\n", to: sources.appendingPathComponent("main.swift"))
        return dir
    }

    /// `swift package crucial-lambda-zip ARGUMENTS` in `package`, from the test's own directory.
    static func plugin(_ package: URL, _ arguments: [String]) async throws -> (status: Int32, out: String, err: String) {
        try await runProcess(
            "/usr/bin/env", ["swift", "package", "--package-path", package.path, "--allow-writing-to-package-directory", "crucial-lambda-zip"] + arguments)
    }

    @Test("In the user's package: the zip holds an executable bootstrap at its root that serves invocations; the check refuses a dynamic binary given by a relative path; an unknown product is named with the package's executables")
    func userPackageZip() async throws {
        let package = try Self.userPackage()
        let scratch = URL(fileURLWithPath: ScratchFolders.path("zip"))
        defer { ScratchFolders.remove(scratch.path) }

        // The debug bootstrap links the toolchain's shared libraries: zip it without the AL2023 check.
        let zip = scratch.appendingPathComponent("out/function.zip").path
        let packed = try await Self.plugin(package, ["--binary", builtExecutable("crucial-test-functions"), "--no-check", "--output", zip])
        #expect(packed.status == 0, "\(packed.err)")
        #expect(packed.out.contains("aws lambda update-function-code --function-name crucial --zip-file fileb://\(zip)"))

        let out = scratch.appendingPathComponent("unzipped")
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

        // The check, with a path relative to the user's package.
        let copy = package.appendingPathComponent(".build/debug/my-app")
        try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: copy)
        try FileManager.default.copyItem(atPath: try builtExecutable("crucial-test-functions"), toPath: copy.path)
        let checked = try await Self.plugin(package, ["--check", ".build/debug/my-app"])
        #expect(checked.status != 0)
        #expect(checked.err.contains("\(copy.path) needs libswiftCore.so, which provided.al2023 does not have"), "\(checked.err)")

        let unknown = try await Self.plugin(package, ["--product", "nope"])
        #expect(unknown.status != 0)
        #expect(unknown.err.contains("package MyApp has no executable product named 'nope'; its executables: my-app"), "\(unknown.err)")
    }
}

/// What an application links: the client side and the server core, never `crucial-server`'s
/// operations stack. Read from the symbols of executables this build made (a debug build
/// links every object of its targets' closure), through `nm`: the linker's answer, not the
/// manifest's.
@Suite("What applications link")
struct LinkedClosureTests {
    /// The symbol substrings (Swift module manglings and one type) of the operations stack,
    /// and async-http-client, which only the etcd client uses (a bootstrap speaks HTTP with
    /// CrucialLambda's own small client).
    static let operationsStack = [
        ("Prometheus", "10Prometheus"), ("Yams", "4Yams"), ("ServiceLifecycle", "16ServiceLifecycle"), ("the etcd client", "10EtcdClient"),
        ("async-http-client", "15AsyncHTTPClient"),
    ]

    @Test("A CrucialProgram (the README's wordfreq example) links the server core but no Prometheus, Yams, ServiceLifecycle, etcd client or async-http-client; crucial-server links all five")
    func applicationsLinkNoOperationsStack() async throws {
        func symbols(_ product: String) async throws -> String {
            let listed = try await runProcess("/usr/bin/env", ["nm", builtExecutable(product)])
            #expect(listed.status == 0, "nm \(product): \(listed.err)")
            return listed.out
        }
        let program = try await symbols("wordfreq-example")
        #expect(program.contains("17CrucialServerCore"), "the program's own local server is the server core")
        for (name, mangled) in Self.operationsStack {
            #expect(!program.contains(mangled), "a CrucialProgram links \(name)")
        }
        let server = try await symbols("crucial-server")
        for (name, mangled) in Self.operationsStack {
            #expect(server.contains(mangled), "crucial-server does not link \(name): the check above proves nothing")
        }
    }
}
