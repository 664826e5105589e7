// The cloud functions of the cloud-thread tests: each type is one behaviour a test
// needs from a remote function. The tests and the bootstrap they run under
// crucial-lambda-emulator (crucial-test-functions) both link this module, so both
// know the types by the same names.
internal import CrucialClient
public import CrucialLambda

#if canImport(Glibc)
import Glibc
#endif

/// Every type below, for `CrucialLambda.serveIfLambda(registering:)`.
public var testFunctions: [any Codable.Type] {
    [Increment.self, Fail.self, Sleep.self, Crash.self, ProcessID.self, Square.self, SumIndices.self, FailOnce.self, Echo.self, CrashHolding.self, BarrierParty.self]
}

/// Adds 1 to a counter `times` times.
public struct Increment: Runnable {
    public var key: String
    public var times: Int
    public init(key: String, times: Int) { self.key = key; self.times = times }
    public func run() async throws {
        let counter = AtomicLong(key, initial: 0)
        for _ in 0..<times { try await counter.incrementAndGet() }
    }
}

/// Throws a Swift error of its own type.
public struct Fail: Runnable {
    public var message: String
    public init(message: String) { self.message = message }
    public func run() async throws { throw TestFailure(message: message) }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Runs longer than the emulator's timeout.
public struct Sleep: Runnable {
    public var seconds: Double
    public init(seconds: Double) { self.seconds = seconds }
    public func run() async throws { try await Task.sleep(for: .milliseconds(Int64(seconds * 1000))) }
}

/// Kills its process with a Swift runtime trap.
public struct Crash: Runnable {
    public init() {}
    public func run() async throws {
        print("about to trap")
        let zero = Int(getpid() < 0 ? 1 : 0)
        _ = 1 / zero  // traps, as a force unwrap of nil would
    }
}

/// The process id, to tell a fresh process from a warm one.
public struct ProcessID: Callable {
    public init() {}
    public func call() async throws -> Int32 { getpid() }
}

/// x², to check answers come back in order.
public struct Square: Callable {
    public var x: Int
    public init(x: Int) { self.x = x }
    public func call() async throws -> Int { x * x }
}

/// Its input back, with the attempt number the function saw.
public struct Echo: Callable {
    public var text: String
    public init(text: String) { self.text = text }
    public func call() async throws -> [String] { [text, String(CloudInvocation.current?.attempt ?? 0)] }
}

/// Adds every index of its share to a counter: the sum over from..<to.
public struct SumIndices: IterativeTask {
    public var key: String
    public init(key: String) { self.key = key }
    public func run(index: Int) async throws { try await AtomicLong(key, initial: 0).addAndGet(Int64(index)) }
}

/// Fails on its first attempt after writing shared state; the retry finds the
/// state and completes exactly once: the idempotence pattern of the README.
public struct FailOnce: Runnable {
    public var key: String
    public init(key: String) { self.key = key }
    public func run() async throws {
        try await AtomicLong(key + "-attempts", initial: 0).incrementAndGet()
        if CloudInvocation.current?.attempt == 1 { throw TestFailure(message: "first attempt fails on purpose") }
        if try await AtomicBoolean(key + "-done", initial: false).compareAndSet(false, true) {
            try await AtomicLong(key + "-total", initial: 0).addAndGet(1)
        }
    }
}

/// Takes the one permit of semaphore `key`, counts itself in `key-done` and gives the
/// permit back; with `crash`, its first attempt dies holding the permit (a trap).
public struct CrashHolding: Runnable {
    public var key: String
    public var crash: Bool
    public init(key: String, crash: Bool) { self.key = key; self.crash = crash }
    public func run() async throws {
        let semaphore = Semaphore(key, permits: 1)
        try await semaphore.acquire()
        if crash, CloudInvocation.current?.attempt == 1 {
            let zero = Int(getpid() < 0 ? 1 : 0)
            _ = 1 / zero  // dies holding the permit
        }
        try await AtomicLong(key + "-done", initial: 0).incrementAndGet()
        try await semaphore.release()
    }
}

/// One of `parties` threads that meet at two barriers in turn; with a `failure`
/// ("throw", "exit", "crash"), it fails instead of arriving at barrier `failAt` (1 or 2).
public struct BarrierParty: Runnable {
    public var key: String
    public var parties: Int
    public var failure: String?
    public var failAt: Int
    public init(key: String, parties: Int, failure: String? = nil, failAt: Int = 1) {
        self.key = key
        self.parties = parties
        self.failure = failure
        self.failAt = failAt
    }

    public func run() async throws {
        for round in 1...2 {
            if round == failAt, let failure {
                switch failure {
                case "throw": throw TestFailure(message: "party gave up at barrier \(round)")
                case "exit": exit(3)
                default:
                    let missing: Int? = getpid() < 0 ? 1 : nil
                    print("party \(missing!) arrived")  // Fatal error: Unexpectedly found nil
                }
            }
            try await CyclicBarrier("\(key)-\(round)", parties: parties).await()
        }
    }
}
