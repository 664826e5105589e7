internal import CrucialClient
import Synchronization
package import FoundationEssentials

/// Code that runs as a cloud function: its stored properties are its input, sent
/// to the function encoded as JSON, so it must be `Codable`.
///
/// Do not adopt it directly: adopt ``Runnable``, ``Callable`` or ``IterativeTask``.
public protocol CloudFunction: Codable, Sendable {
    /// The stable name the driver and the Lambda bootstrap both know this type by.
    /// The default is the fully qualified type name (`"MyApp.PiEstimator"`); set your
    /// own when the driver and the deployed bootstrap may be built from different
    /// module layouts.
    static var cloudName: String { get }
}

extension CloudFunction {
    /// The name a function is registered and invoked under: its full Swift type name.
    public static var cloudName: String { String(reflecting: Self.self) }
}

/// The body of a cloud thread, as a `Runnable` is in Java.
///
/// ```swift
/// struct PiEstimator: Runnable {
///     var iterations: Int
///     func run() async throws {
///         var inside: Int64 = 0
///         for _ in 0..<iterations {
///             let x = Double.random(in: 0..<1), y = Double.random(in: 0..<1)
///             if x * x + y * y <= 1 { inside += 1 }
///         }
///         try await AtomicLong("counter").addAndGet(inside)
///     }
/// }
/// ```
public protocol Runnable: CloudFunction {
    func run() async throws
}

/// A cloud function that returns a value to the driver (`CloudExecutor.invokeAll(_:)`).
public protocol Callable: CloudFunction {
    associatedtype Output: Codable & Sendable
    func call() async throws -> Output
}

/// The body of a loop over `from..<to` that ``CloudExecutor/invokeIterativeTask(_:workers:from:to:)``
/// splits among cloud threads; each worker calls ``run(index:)`` for every index of its share.
public protocol IterativeTask: Codable, Sendable {
    func run(index: Int) async throws
}

/// The share of an ``IterativeTask`` one worker runs: `range` of the whole loop.
public struct IterationRange<Task: IterativeTask>: Runnable {
    /// The task run on each index.
    public var task: Task
    /// The first index.
    public var lower: Int
    /// One past the last index.
    public var upper: Int

    /// Runs `task` on every index of `range`.
    public init(task: Task, range: Range<Int>) {
        self.task = task
        self.lower = range.lowerBound
        self.upper = range.upperBound
    }

    /// Runs the task on each index in turn.
    public func run() async throws {
        for index in lower..<upper { try await task.run(index: index) }
    }
}

/// What a running cloud function can learn about its invocation.
public struct CloudInvocation: Sendable {
    /// The Lambda request id (or a local one in-process).
    public var requestID: String
    /// 1 for the first run, 2 for the first retry, ... A retried function may find
    /// shared state its earlier attempt left: see the idempotence pattern in the README.
    public var attempt: Int
    /// When the platform will stop the function, if known.
    public var deadline: ContinuousClock.Instant?

    /// The context of one invocation.
    public init(requestID: String, attempt: Int, deadline: ContinuousClock.Instant?) {
        self.requestID = requestID
        self.attempt = attempt
        self.deadline = deadline
    }

    /// The invocation the current task runs in; `nil` outside cloud functions.
    @TaskLocal public static var current: CloudInvocation?
}

/// The cloud functions this process can run, by ``CloudFunction/cloudName``.
///
/// A ``CloudThread`` registers its runnable's type itself; a Lambda bootstrap, which
/// has created no thread, registers them in `CrucialLambda.serveIfLambda(registering:)`.
public enum CloudFunctions {
    /// Runs one invocation: the whole JSON payload in, the JSON answer out.
    package typealias Handler = @Sendable (_ payload: Data, _ invocation: CloudInvocation) async throws -> Data

    private static let handlers = Mutex<[String: Handler]>([:])

    /// Makes `types` runnable by name. Accepts ``Runnable``, ``Callable`` and
    /// ``IterativeTask`` types (the last registers its ``IterationRange``).
    public static func register(_ types: [any Codable.Type]) throws(CloudThreadError) {
        for type in types {
            switch type {
            case let r as any Runnable.Type: register(runnable: r)
            case let c as any Callable.Type: register(callable: c)
            case let i as any IterativeTask.Type: register(iterative: i)
            default:
                throw .invalidFunction("\(String(reflecting: type)) is not a Runnable, Callable or IterativeTask")
            }
        }
    }

    /// The registered names, sorted.
    public static var names: [String] { handlers.withLock { $0.keys.sorted() } }

    package static func handler(named name: String) -> Handler? {
        handlers.withLock { $0[name] }
    }

    /// The handler of a payload's function: a registered one, or else the type the payload
    /// names by its Swift mangled name (`swiftType`), when this executable has that type
    /// and it is a cloud function of that ``CloudFunction/cloudName``. A bootstrap built
    /// from the driver's own executable, as the local emulator and `crucial-lambda-zip`
    /// run it, so finds every `Runnable` and `Callable` the driver starts without a list.
    package static func handler(for header: PayloadHeader) -> Handler? {
        if let registered = handler(named: header.function) { return registered }
        guard let mangled = header.swiftType, let type = _typeByName(mangled) as? any CloudFunction.Type,
            type.cloudName == header.function
        else { return nil }
        try? register([type])
        return handler(named: header.function)
    }

    static func register<R: Runnable>(runnable: R.Type) {
        add(R.cloudName) { payload, invocation in
            let envelope = try InvocationPayload<R>.decode(payload)
            try await CloudInvocation.$current.withValue(invocation) { try await envelope.input.run() }
            return Data("null".utf8)
        }
    }

    static func register<C: Callable>(callable: C.Type) {
        add(C.cloudName) { payload, invocation in
            let envelope = try InvocationPayload<C>.decode(payload)
            let output = try await CloudInvocation.$current.withValue(invocation) { try await envelope.input.call() }
            return try JSONEncoder().encode(output)
        }
    }

    static func register<T: IterativeTask>(iterative: T.Type) {
        register(runnable: IterationRange<T>.self)
    }

    private static func add(_ name: String, _ handler: @escaping Handler) {
        handlers.withLock { $0[name] = handler }
    }
}
