import Foundation
import PackagePlugin

/// `swift package crucial-lambda-zip`: builds an executable of the package as an AWS Lambda
/// `bootstrap` for the provided.al2023 runtime, checks that Amazon Linux 2023 can run it, and
/// zips it. Works in any package that depends on Crucial.
@main
struct CrucialLambdaZip: CommandPlugin {
    static let usage = """
        USAGE: swift package --allow-writing-to-package-directory crucial-lambda-zip [--product NAME] [--output ZIP]
                                 [--function-name NAME] [--dynamic-glibc]
               swift package ... crucial-lambda-zip --binary PATH [--no-check] [--output ZIP]   zip a binary built already
               swift package ... crucial-lambda-zip --check PATH                                only check a binary

        Builds NAME (default: the package's only executable product) in release, statically linked
        (the Swift runtime, Foundation, libprotobuf-c and glibc: Amazon Linux 2023's glibc 2.34 is older
        than this toolchain's Foundation needs), in .build-lambda; checks that it needs no shared library
        and no glibc symbol that provided.al2023 lacks; and writes .build/lambda/NAME.zip with the stripped
        executable as `bootstrap` at its root. --dynamic-glibc links glibc dynamically instead (checked
        against glibc 2.34). Prints the aws CLI commands that deploy the zip.
        """

    func performCommand(context: PluginContext, arguments: [String]) async throws {
        var extractor = ArgumentExtractor(arguments)
        if extractor.extractFlag(named: "help") > 0 {
            print(Self.usage)
            return
        }
        let product = extractor.extractOption(named: "product").last
        let output = extractor.extractOption(named: "output").last
        let binary = extractor.extractOption(named: "binary").last
        let checkOnly = extractor.extractOption(named: "check").last
        let functionName = extractor.extractOption(named: "function-name").last ?? "crucial"
        let noCheck = extractor.extractFlag(named: "no-check") > 0
        let dynamicGlibc = extractor.extractFlag(named: "dynamic-glibc") > 0
        guard extractor.remainingArguments.isEmpty else {
            throw Failure("unknown argument(s) \(extractor.remainingArguments.joined(separator: " "))\n\n\(Self.usage)")
        }
        let packageDirectory = context.package.directoryURL
        let zipper = Zipper(packageDirectory: packageDirectory, workDirectory: context.pluginWorkDirectoryURL)

        if let checkOnly {
            try zipper.check(zipper.resolve(checkOnly))
            return
        }
        let executable: URL
        if let binary {
            executable = zipper.resolve(binary)
        } else {
            let executables = context.package.products(ofType: ExecutableProduct.self).map(\.name).sorted()
            let name: String
            if let product {
                guard executables.contains(product) else {
                    throw Failure(
                        "package \(context.package.displayName) has no executable product named '\(product)'; its executables: "
                            + (executables.isEmpty ? "none" : executables.joined(separator: ", ")))
                }
                name = product
            } else {
                guard executables.count == 1 else {
                    throw Failure("name the executable to package with --product (this package has: \(executables.joined(separator: ", ")))")
                }
                name = executables[0]
            }
            executable = try zipper.build(product: name, staticGlibc: !dynamicGlibc)
        }
        if !noCheck { try zipper.check(executable) }
        let zip = try zipper.zip(executable, to: output.map(zipper.resolve) ?? packageDirectory.appendingPathComponent(".build/lambda/\(executable.lastPathComponent).zip"))
        let arch = Zipper.machine == "aarch64" ? "arm64" : Zipper.machine
        print(
            """
            Deploy it (once), with a role that may write logs:
              aws lambda create-function --function-name \(functionName) --runtime provided.al2023 --architectures \(arch) \\
                --handler bootstrap --memory-size 1769 --timeout 900 \\
                --environment 'Variables={SWIFT_BACKTRACE=enable=no}' \\
                --role arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME --zip-file fileb://\(zip.path)
            (SWIFT_BACKTRACE=enable=no: a crash ends at once, and its "Fatal error:" line stays in the
            log tail the driver reports, instead of seconds of symbolication and a backtrace.)
            Update it after a rebuild:
              aws lambda update-function-code --function-name \(functionName) --zip-file fileb://\(zip.path)
            Then run the driver with CRUCIAL_LAMBDA_ENDPOINT=aws CRUCIAL_LAMBDA_FUNCTION=\(functionName) and
            CRUCIAL_SERVERS=<DSO servers the functions can reach>.
            """)
    }
}

/// A message for the user; the plugin fails with it.
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = "crucial-lambda-zip: " + description }
}

/// Building, checking and zipping, with the system's tools.
struct Zipper {
    let packageDirectory: URL
    let workDirectory: URL

    /// Shared libraries a provided.al2023 function can load: glibc's, libgcc's, libstdc++'s, zlib.
    static let allowedLibraries: Set<String> = [
        "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1", "libgcc_s.so.1", "libstdc++.so.6", "libz.so.1",
    ]
    /// Amazon Linux 2023's glibc.
    static let maxGlibc = [2, 34]

    static var machine: String {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// `path` as the user meant it: absolute, or relative to where they ran the command
    /// (else to the package).
    func resolve(_ path: String) -> URL {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path) }
        let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
        if FileManager.default.fileExists(atPath: here.path) { return here.standardizedFileURL }
        return packageDirectory.appendingPathComponent(path).standardizedFileURL
    }

    /// Runs `arguments` (found on PATH); its standard output, or a failure with its error output.
    @discardableResult
    func run(_ arguments: [String], environment: [String: String]? = nil, directory: URL? = nil, passOutput: Bool = false) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe()
        let err = Pipe()
        if !passOutput {
            process.standardOutput = out
            process.standardError = err
        }
        try process.run()
        let output = passOutput ? Data() : out.fileHandleForReading.readDataToEndOfFile()
        let errors = passOutput ? Data() : err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure("\(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus))\n\(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Runs a build, passing its output on line by line except glibc's warnings about a
    /// static binary's name services and dlopen (about 25 lines, `Using 'getaddrinfo' in
    /// statically linked applications requires at runtime the shared libraries...`), which
    /// are summed up in one line: they do not apply to a cloud thread, which resolves no host
    /// name (the driver sends IP addresses) and loads no shared library.
    func runShowingBuild(_ arguments: [String], environment: [String: String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        var pending = Data()
        var hidden = 0
        func show(_ line: Data) {
            let text = String(decoding: line, as: UTF8.self)
            if text.contains("in statically linked applications requires at runtime the shared libraries") {
                hidden += 1
            } else {
                print(text)
            }
        }
        while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            pending.append(chunk)
            while let newline = pending.firstIndex(of: 0x0A) {
                show(pending[pending.startIndex..<newline])
                pending = Data(pending[pending.index(after: newline)...])
            }
        }
        if !pending.isEmpty { show(pending) }
        process.waitUntilExit()
        if hidden > 0 {
            print("    (\(hidden) linker warnings of glibc about name services and dlopen in a static binary left out: a cloud thread resolves no host name and loads no library)")
        }
        guard process.terminationStatus == 0 else {
            throw Failure("\(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus)); its output is above")
        }
    }

    /// Builds `product` in release, statically linked, in `.build-lambda`; returns the executable.
    func build(product: String, staticGlibc: Bool) throws -> URL {
        var environment = ProcessInfo.processInfo.environment
        if !staticGlibc {
            // A folder holding only libprotobuf-c.a and a pkg-config file pointing there:
            // SwiftPM then links -lprotobuf-c from the archive instead of the shared library.
            // (A static executable links archives only anyway.)
            let libdir = try run(["pkg-config", "--variable=libdir", "libprotobuf-c"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let pcdir = try run(["pkg-config", "--variable=pcfiledir", "libprotobuf-c"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let archive = "\(libdir)/libprotobuf-c.a"
            guard FileManager.default.fileExists(atPath: archive) else { throw Failure("\(archive) is missing: apt-get install libprotobuf-c-dev") }
            let staticDir = workDirectory.appendingPathComponent("static-libs")
            let pkgconfig = staticDir.appendingPathComponent("pkgconfig")
            try FileManager.default.createDirectory(at: pkgconfig, withIntermediateDirectories: true)
            let link = staticDir.appendingPathComponent("libprotobuf-c.a")
            try? FileManager.default.removeItem(at: link)
            try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: archive)
            let pc = try String(contentsOfFile: "\(pcdir)/libprotobuf-c.pc", encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix("libdir=") ? "libdir=\(staticDir.path)" : String($0) }.joined(separator: "\n")
            try pc.write(to: pkgconfig.appendingPathComponent("libprotobuf-c.pc"), atomically: true, encoding: .utf8)
            environment["PKG_CONFIG_PATH"] = pkgconfig.path + (environment["PKG_CONFIG_PATH"].map { ":" + $0 } ?? "")
        }
        let scratch = packageDirectory.appendingPathComponent(".build-lambda")
        var arguments = [
            "swift", "build", "--package-path", packageDirectory.path, "-c", "release", "--product", product, "--scratch-path", scratch.path,
            "--static-swift-stdlib",
        ]
        if staticGlibc { arguments += ["-Xswiftc", "-static-executable"] }
        print("==> \(arguments.joined(separator: " "))")
        print("    (the first build takes long: every dependency in release, swift-syntax and SwiftNIO most; 15-20 minutes on 2 cores)")
        try runShowingBuild(arguments, environment: environment)
        return scratch.appendingPathComponent("release/\(product)")
    }

    /// Fails, saying why, when Amazon Linux 2023 could not run `binary`.
    func check(_ binary: URL) throws {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else { throw Failure("\(binary.path) is not an executable file") }
        let dynamic = (try? run(["readelf", "-d", binary.path])) ?? ""
        let needed = dynamic.split(separator: "\n").compactMap { line -> String? in
            guard line.contains("(NEEDED)"), let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        var problems: [String] = []
        for library in needed where !Self.allowedLibraries.contains(library) {
            problems.append("\(binary.path) needs \(library), which provided.al2023 does not have (build with --static-swift-stdlib; link it statically)")
        }
        // "(GLIBC_2.34) __libc_start_main" in objdump -T: the version each imported symbol needs.
        let symbols = (try? run(["objdump", "-T", binary.path])) ?? ""
        var newest: [Int] = []
        var tooNew: Set<String> = []
        for line in symbols.split(separator: "\n") {
            guard let range = line.range(of: #"GLIBC_[0-9.]+"#, options: .regularExpression) else { continue }
            let version = line[range].dropFirst(6).split(separator: ".").compactMap { Int($0) }
            if version.lexicographicallyPrecedes(newest) == false, version != newest { newest = version }
            if Self.maxGlibc.lexicographicallyPrecedes(version) {
                tooNew.insert("\(line.split(separator: " ").last ?? "")@GLIBC_\(version.map(String.init).joined(separator: "."))")
            }
        }
        if !tooNew.isEmpty {
            problems.append(
                "\(binary.path) needs glibc \(newest.map(String.init).joined(separator: ".")), Amazon Linux 2023 has 2.34: "
                    + "\(tooNew.sorted().joined(separator: " ")) (build without --dynamic-glibc)")
        }
        guard problems.isEmpty else { throw Failure(problems.joined(separator: "\n")) }
        if needed.isEmpty {
            print("==> \(binary.path): statically linked, no shared libraries")
        } else {
            print(
                "==> \(binary.path): needs \(needed.joined(separator: ",")), glibc \(newest.isEmpty ? "none" : newest.map(String.init).joined(separator: ".")) <= 2.34: runs on provided.al2023")
        }
    }

    /// Zips `binary`, stripped, as `bootstrap` at the root of `zip`.
    func zip(_ binary: URL, to zip: URL) throws -> URL {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else { throw Failure("\(binary.path) is not an executable file") }
        let stage = workDirectory.appendingPathComponent("stage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: stage, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: stage) }
        let bootstrap = stage.appendingPathComponent("bootstrap")
        try FileManager.default.copyItem(at: binary, to: bootstrap)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bootstrap.path)
        _ = try? run(["strip", "--strip-all", bootstrap.path])  // debug info is most of the size
        try FileManager.default.createDirectory(at: zip.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: zip)
        try run(["zip", "-q", "-X", zip.path, "bootstrap"], directory: stage)
        let size = (try? FileManager.default.attributesOfItem(atPath: zip.path)[.size] as? Int) ?? 0
        print("==> \(zip.path) (\(size / 1024) KiB): bootstrap at its root")
        return zip
    }
}
