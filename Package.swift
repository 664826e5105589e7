// swift-tools-version:6.0
import CompilerPluginSupport
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]
/// The client side's async functions run on their caller's executor (SE-0461) instead of
/// hopping to the generic executor at every call and return: a call made on a client's
/// event loop stays there, and no call pays the runtime's executor-preference lookup per
/// async frame (perf: 9 % of the load's time on the loops).
let callerIsolated: [SwiftSetting] = strict + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
/// What a Lambda bootstrap links: members come only from modules a file imports (SE-0444),
/// so that Foundation proper, which async-http-client imports, cannot slip in through an
/// extension (`StringProtocol.contains` would link it, and its 30 MB of ICU data).
let bootstrapSide: [SwiftSetting] = strict + [.enableUpcomingFeature("MemberImportVisibility")]

/// The paper's applications, each as a plain threaded program and its Crucial port
/// (tools/table4.sh counts what the port changed); a port imports Crucial alone.
let paperApps: [Target] = [
    ("montecarlo", false), ("kmeans", true), ("logreg", true), ("santa", false), ("randomforest", false),
].flatMap { name, kernels in
    let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
    // k-means and logistic regression compute with OpenBLAS, the plain version and the port alike.
    let shared: [Target.Dependency] = [argumentParser] + (kernels ? ["AppKernels"] : [])
    return [
        Target.executableTarget(name: "\(name)-plain", dependencies: shared, path: "apps/\(name)/plain", swiftSettings: strict),
        Target.executableTarget(name: "\(name)-crucial", dependencies: ["Crucial"] + shared, path: "apps/\(name)/crucial", swiftSettings: strict),
    ]
}

let package = Package(
    name: "crucial",
    platforms: [.macOS(.v15)],
    products: [
        // `import Crucial`: what an application uses, and its entry point (CrucialProgram).
        .library(name: "Crucial", targets: ["Crucial"]),
        .library(name: "CrucialClient", targets: ["CrucialClient"]),
        // What a @Shared type needs, without the client's network stack: for plugins.
        .library(name: "CrucialShared", targets: ["CrucialShared"]),
        .library(name: "CrucialServer", targets: ["CrucialServer"]),
        // The server core alone (no etcd, Prometheus, YAML settings or service lifecycle).
        .library(name: "CrucialServerCore", targets: ["CrucialServerCore"]),
        .executable(name: "crucial-server", targets: ["crucial-server"]),
        .executable(name: "crucial-bench", targets: ["crucial-bench"]),
        .executable(name: "crucial-demo", targets: ["crucial-demo"]),
        .executable(name: "crucial-lambda-emulator", targets: ["crucial-lambda-emulator"]),
        .executable(name: "crucial", targets: ["crucial"]),
        // The plugins the tests build and load into running servers: a first one, and two
        // other builds of one of its types (one that can replace it, one that cannot).
        .library(name: "CrucialTestPlugin", type: .dynamic, targets: ["CrucialTestPlugin"]),
        .library(name: "CrucialTestPluginV2", type: .dynamic, targets: ["CrucialTestPluginV2"]),
        .library(name: "CrucialTestPluginV3", type: .dynamic, targets: ["CrucialTestPluginV3"]),
        .library(name: "CrucialLambda", targets: ["CrucialLambda"]),
        .library(name: "CrucialTesting", targets: ["CrucialTesting", "CrucialProcess"]),
        // `swift package crucial-lambda-zip --product my-app`: a Lambda zip of the package's executable.
        .plugin(name: "CrucialLambdaZip", targets: ["CrucialLambdaZip"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Any swift-syntax from 600 on (checked with 600.0.1, 602.0.0 and 603.0.1: builds and the
        // macro tests pass), so that other macro packages do not pin it against Crucial.
        .package(url: "https://github.com/swiftlang/swift-syntax", "600.0.1"..<"700.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        // FileDescriptor, for the emulator's bootstrap output (swift-subprocess's own dependency).
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/jpsim/Yams", "5.4.0"..<"7.0.0"),
        // `swift package generate-documentation` (tools/docs.sh): the DocC catalogs.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Debian's libprotobuf-c (apt-get install libprotobuf-c-dev), found through pkg-config.
        .systemLibrary(
            name: "CProtobufC",
            pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]
        ),
        // protoc-c output for Protocol/crucial.proto, committed; tools/regen-proto.sh rewrites it.
        .target(
            name: "CCrucialProto",
            dependencies: ["CProtobufC"]
        ),
        // Values, the wire messages and their codec, errors, the hash ring: what every side shares.
        .target(
            name: "CrucialCore",
            dependencies: [
                "CCrucialProto", "CCrucialShims",
                // @BuiltinMethods: each built-in type's methods declared once (Objects/BuiltinMethods+*.swift).
                "CrucialMacros",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: callerIsolated
        ),
        // Framing, the handshake, connections and TLS: what client and server both speak.
        .target(
            name: "CrucialTransport",
            dependencies: [
                "CrucialCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: callerIsolated
        ),
        // Child processes: starting servers for tests, benchmarks and local runs, and a
        // child's watch on its parent. Applications do not link it.
        .target(
            name: "CrucialProcess",
            dependencies: [
                "CrucialCore",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // The server core: the object store, the built-in and user types, replication, the
        // cluster's view changes, persistence, plugins and the NIO server. A program's own
        // local server and the in-process test server link this and nothing of the
        // operations stack below.
        .target(
            name: "CrucialServerCore",
            dependencies: [
                "CrucialCore", "CCrucialShims", "CrucialTransport",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // `crucial-server`'s operations stack over the core: the command with its flags and
        // YAML settings, etcd membership, Prometheus metrics, graceful shutdown
        // (swift-service-lifecycle), systemd and SIGHUP. Custom server binaries link it.
        .target(
            name: "CrucialServer",
            dependencies: [
                "CrucialServerCore", "CrucialCore", "CrucialTransport", "CrucialProcess",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "crucial-server",
            dependencies: ["CrucialServer"],
            swiftSettings: strict
        ),
        // @Shared and @SharedKey: user-defined shared objects. The expansions are a library
        // of their own that the macro plugin only registers: tests that depend on a macro
        // target are built, with everything they depend on, for the host as well as the
        // target (SwiftPM's tool destination), which compiled every dependency twice.
        .target(
            name: "CrucialMacrosImplementation",
            dependencies: [
                .product(name: "SwiftSyntax", package: "swift-syntax"),
                .product(name: "SwiftSyntaxMacros", package: "swift-syntax"),
                .product(name: "SwiftDiagnostics", package: "swift-syntax"),
                .product(name: "SwiftSyntaxBuilder", package: "swift-syntax"),
            ]
        ),
        .macro(
            name: "CrucialMacros",
            dependencies: [
                "CrucialMacrosImplementation",
                .product(name: "SwiftSyntaxMacros", package: "swift-syntax"),
                .product(name: "SwiftCompilerPlugin", package: "swift-syntax"),
            ]
        ),
        // @Shared, @SharedKey, @ReadOnly, the proxies' handle and the plugin export: what a
        // user type needs to be shared. A plugin built from it links no client stack.
        .target(
            name: "CrucialShared",
            dependencies: ["CrucialCore", "CrucialMacros"],
            swiftSettings: strict
        ),
        .target(
            name: "CrucialClient",
            dependencies: [
                "CrucialCore", "CrucialShared", "CrucialTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        // C helpers Swift cannot write under strict concurrency.
        .target(name: "CCrucialShims"),
        // Cloud threads: CloudThread and its executor, the invokers (AWS Lambda with its
        // credentials and SigV4, the local emulator, in-process), and the custom-runtime loop
        // that serves registered Runnables when a Lambda runtime (AWS or
        // crucial-lambda-emulator) started the executable. Apart from CrucialClient, so that a
        // program using shared objects alone builds no HTTP client. Its HTTP/1.1 client is its
        // own, over NIOHTTP1 and NIOSSL (HTTP/HTTP1Client.swift says why).
        .target(
            name: "CrucialLambda",
            dependencies: [
                "CrucialClient", "CrucialCore", "CrucialTransport", "CCrucialShims", "CrucialProcess",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                // credential_process: Foundation's Process would link Foundation proper and ICU.
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: bootstrapSide
        ),
        .executableTarget(
            name: "crucial-lambda-emulator",
            dependencies: [
                "CrucialProcess", "CrucialCore", "CCrucialShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // Spawns the bootstraps: Foundation's Process.run over-reads /proc/self/fd
                // entries and crashed the emulator with hundreds of sandboxes' fds open
                // (swift-corelibs-foundation#5472); Subprocess closes fds with close_range.
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "tools/lambda-emulator",
            swiftSettings: strict
        ),
        // The fuzz target over the frame and argument decoders (tools/fuzz.sh); built
        // normally, it replays inputs (the tests replay tools/fuzz/{corpus,regressions}).
        .executableTarget(
            name: "crucial-fuzz",
            dependencies: [
                "CrucialServerCore", "CrucialTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "tools/fuzz",
            exclude: ["corpus", "regressions", "README.md"],
            swiftSettings: strict
        ),
        // The admin CLI: `crucial objects ls|get|rm`.
        .executableTarget(
            name: "crucial",
            dependencies: [
                "CrucialClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/crucial",
            swiftSettings: strict
        ),
        // docs/PORTING.md: a threaded program and its Crucial port, side by side.
        .executableTarget(name: "porting-before", path: "tools/examples/porting/before", swiftSettings: strict),
        // The README's first program (a CrucialProgram with options and a @Shared type).
        .executableTarget(name: "wordfreq-example", dependencies: ["Crucial"], path: "tools/examples/wordfreq", swiftSettings: strict),
        .executableTarget(
            name: "porting-after",
            dependencies: ["Crucial"],
            path: "tools/examples/porting/after",
            swiftSettings: strict
        ),
        // The paper's applications: apps/NAME/plain and apps/NAME/crucial (see paperApps).
        // OpenBLAS (apt-get install libopenblas-dev), for the applications' kernels.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .target(name: "AppKernels", dependencies: ["COpenBLAS"], path: "apps/kernels", swiftSettings: strict),
    ] + paperApps + [
        // What an application's own tests and local runs need: the local stack (a DSO server
        // and a Lambda emulator on free loopback ports) and the processes it starts.
        .target(
            name: "CrucialTesting",
            dependencies: ["CrucialClient", "CrucialLambda", "CrucialProcess", "CrucialServerCore", "CrucialTransport"],
            swiftSettings: strict
        ),
        // The umbrella an application imports: the client, cloud threads, @Shared, and the
        // entry point that serves Lambda invocations, runs the program's own DSO server for
        // its local stack, or starts that stack and runs the program.
        .target(
            name: "Crucial",
            dependencies: [
                "CrucialClient", "CrucialLambda", "CrucialShared", "CrucialServerCore", "CrucialProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Builds, checks and zips an executable as a provided.al2023 bootstrap, in any package
        // that depends on this one (tools/package-lambda.sh calls it here).
        .plugin(
            name: "CrucialLambdaZip",
            capability: .command(
                intent: .custom(verb: "crucial-lambda-zip", description: "Builds an executable as an AWS Lambda bootstrap (provided.al2023) and zips it"),
                permissions: [.writeToPackageDirectory(reason: "builds in .build-lambda and writes the zip to .build/lambda")]
            )
        ),
        // The paper's example programs, shared by the demo and the benchmarks.
        .target(
            name: "CrucialExamples",
            dependencies: ["CrucialClient", "CrucialLambda", "CrucialProcess"],
            path: "tools/examples",
            exclude: ["porting", "wordfreq"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "crucial-demo",
            dependencies: [
                "CrucialClient", "CrucialLambda", "CrucialExamples",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/demo",
            swiftSettings: strict
        ),
        // The cloud functions of the cloud-thread tests, and the bootstrap the emulator runs them in.
        .target(
            name: "CrucialTestFunctions",
            dependencies: ["CrucialClient", "CrucialLambda", "CrucialExamples"],
            path: "Tests/TestFunctions/Library",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "crucial-test-functions",
            dependencies: ["CrucialTestFunctions", "CrucialLambda"],
            path: "Tests/TestFunctions/Bootstrap",
            swiftSettings: strict
        ),
        // Programs with a newcomer's mistakes, which must stop at once saying how to fix them.
        .executableTarget(name: "crucial-newcomer-traps", dependencies: ["Crucial"], path: "Tests/TestFunctions/NewcomerTraps", swiftSettings: strict),
        .target(
            name: "CrucialTestPlugin",
            dependencies: ["CrucialShared"],
            path: "Tests/TestFunctions/Plugin",
            swiftSettings: strict
        ),
        .target(name: "CrucialTestPluginV2", dependencies: ["CrucialShared"], path: "Tests/TestFunctions/PluginV2", swiftSettings: strict),
        .target(name: "CrucialTestPluginV3", dependencies: ["CrucialShared"], path: "Tests/TestFunctions/PluginV3", swiftSettings: strict),
        // The linearizability workload as a process, for the partition tests' client namespace.
        .executableTarget(
            name: "crucial-test-workload",
            dependencies: ["CrucialClient", "CrucialTestFunctions"],
            path: "Tests/TestFunctions/Workload",
            swiftSettings: strict
        ),
        // A crucial-server that also knows the tests' @Shared types: CrucialServer as a library.
        .executableTarget(
            name: "crucial-test-server",
            dependencies: ["CrucialTestFunctions", "CrucialServer"],
            path: "Tests/TestFunctions/Server",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "crucial-bench",
            dependencies: [
                "CrucialClient", "CrucialServer", "CrucialLambda", "CrucialTesting", "CrucialExamples", "CrucialProcess", "CrucialTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "tools/bench",
            swiftSettings: strict
        ),
        .testTarget(
            name: "CrucialCoreTests",
            dependencies: [
                "CrucialCore", "CrucialProcess", "CrucialTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CrucialLambdaTests",
            dependencies: [
                "CrucialClient", "CrucialLambda", "CrucialTesting", "CrucialTransport", "CrucialCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CrucialTransportTests",
            dependencies: [
                "CrucialCore", "CrucialTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CrucialClientTests",
            dependencies: [
                "CrucialClient", "CrucialCore", "CrucialTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CrucialMacrosTests",
            dependencies: [
                "CrucialMacrosImplementation",
                .product(name: "SwiftSyntaxMacroExpansion", package: "swift-syntax"),
                .product(name: "SwiftSyntaxMacrosGenericTestSupport", package: "swift-syntax"),
                .product(name: "SwiftParser", package: "swift-syntax"),
                .product(name: "SwiftSyntax", package: "swift-syntax"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CrucialServerTests",
            dependencies: [
                "CrucialServer", "CrucialServerCore", "CrucialCore", "CrucialClient", "CrucialShared", "CrucialTransport", "CrucialLambda", "CrucialTesting",
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The semantics of one server's objects (counters, collections, synchronizers,
        // lifetimes, user types, retries), on CrucialTesting's in-process server: no socket,
        // no process, nothing a loaded machine can starve.
        .testTarget(
            name: "ObjectSemanticsTests",
            dependencies: ["CrucialClient", "CrucialLambda", "CrucialTesting", "CrucialTestFunctions", "CrucialCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "CrucialClient", "CrucialLambda", "CrucialCore", "CrucialServer", "CrucialTestFunctions", "CrucialExamples", "CrucialProcess",
                "CrucialTransport", "CrucialTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
