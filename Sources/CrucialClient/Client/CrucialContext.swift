public import FoundationEssentials
import Synchronization

/// Where cloud functions run: AWS Lambda or the local emulator (`LambdaInvoker`), or this
/// process (`InProcessInvoker`, for tests), both in CrucialLambda.
public protocol CloudInvoker: Sendable {
    /// Runs `function` with `payload` (an invocation payload, JSON) once and returns
    /// its JSON answer. Throws `CloudFunctionError` when the function failed and
    /// `CloudThreadError` when it could not be run.
    func invoke(function: String, payload: Data) async throws -> Data
}

/// What shared objects and cloud threads use when they are given none: the client that
/// carries proxies' calls, and the invoker that runs cloud threads.
///
/// One context is in effect wherever code runs: the one bound to the task and its child
/// tasks by ``run(_:)``, else the process's. A test binds the context of its own
/// in-process server so (CrucialTesting's `InProcessServer.run`), and a cloud function
/// runs in a context whose client reaches its driver's servers. The process's is made on
/// first use: its client from the environment (``CrucialClient/Configuration/fromEnvironment()``),
/// its invoker by CrucialLambda from the environment too (the local emulator unless
/// `CRUCIAL_LAMBDA_ENDPOINT` says otherwise). A `CrucialProgram` sets both for its local
/// stack.
///
/// ```swift
/// let client = CrucialClient(servers: ["10.0.0.5:7400"])
/// try await CrucialContext(client: client, invoker: LambdaInvoker(configuration: try .aws(functionName: "crucial"))).run {
///     let hits = AtomicLong("hits")        // calls go through `client`
///     try await CloudThread(Worker()).run()  // runs on AWS Lambda, its objects on client's servers
/// }
/// ```
///
/// ``CrucialClient/shared`` is the client of the context in effect; CrucialLambda's
/// `CloudInvokers.default` its invoker.
public struct CrucialContext: Sendable {
    /// The client of proxies made without one.
    public var client: CrucialClient
    /// The invoker of cloud threads made without one; nil: the enclosing context's (the
    /// process's, made from the environment on first use).
    public var invoker: (any CloudInvoker)?

    /// A context of `client` and `invoker` (nil: the enclosing one's).
    public init(client: CrucialClient, invoker: (any CloudInvoker)? = nil) {
        self.client = client
        self.invoker = invoker
    }

    /// Runs `body` with this context in effect for the task and its child tasks alone
    /// (tests running at once each keep their own).
    public func run<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        Self.registerCaller
        var bound = self
        if bound.invoker == nil { bound.invoker = Self.bound?.invoker }
        return try await Self.$bound.withValue(bound) { try await body() }
    }

    /// The context in effect here: the task's, else the process's.
    public static var current: CrucialContext {
        if let bound { return bound }
        let (client, invoker) = process.withLock { process in
            let client = process.client ?? CrucialClient(configuration: .fromEnvironment())
            process.client = client
            return (client, process.invoker)
        }
        registerCaller
        return CrucialContext(client: client, invoker: invoker)
    }

    /// The invoker in effect here, if one was set: the task's, else the process's.
    public static var currentInvoker: (any CloudInvoker)? { bound?.invoker ?? process.withLock { $0.invoker } }

    /// Makes `client` the process's client; the previous one is closed.
    public static func setProcessClient(_ client: CrucialClient) {
        registerCaller
        let old = process.withLock { process in
            defer { process.client = client }
            return process.client
        }
        if let old, old !== client { old.close() }
    }

    /// Makes `invoker` the process's invoker.
    public static func setProcessInvoker(_ invoker: any CloudInvoker) {
        process.withLock { $0.invoker = invoker }
    }

    /// Makes `invoker` the process's invoker unless one was set meanwhile; answers the one in
    /// effect (CrucialLambda's default, made from the environment, on first use).
    public static func processInvoker(orSet invoker: any CloudInvoker) -> any CloudInvoker {
        process.withLock { process in
            if let current = process.invoker { return current }
            process.invoker = invoker
            return invoker
        }
    }

    @TaskLocal private static var bound: CrucialContext?
    private static let process = Mutex<(client: CrucialClient?, invoker: (any CloudInvoker)?)>((nil, nil))

    /// CrucialShared cannot see this module: its proxies made without a caller ask
    /// `SharedCallers`, which is told here, before any proxy or context of this library can
    /// be used, to ask the context in effect.
    static let registerCaller: Void = SharedCallers.setDefault { CrucialContext.current.client }
}
