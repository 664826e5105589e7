// The bootstrap the cloud-thread tests run under crucial-lambda-emulator: each
// type is one behaviour a test needs from a remote function.
import CrucialClient
import CrucialLambda

#if canImport(Glibc)
import Glibc
#endif

/// Adds 1 to a counter `times` times.
struct Increment: Runnable {
    var key: String
    var times: Int
    func run() async throws {
        let counter = AtomicLong(key, initial: 0)
        for _ in 0..<times { try await counter.incrementAndGet() }
    }
}

/// Throws a Swift error of its own type.
struct Fail: Runnable {
    var message: String
    func run() async throws { throw TestFailure(message: message) }
}

struct TestFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Runs longer than the emulator's timeout.
struct Sleep: Runnable {
    var seconds: Double
    func run() async throws { try await Task.sleep(for: .milliseconds(Int64(seconds * 1000))) }
}

/// Kills its process as a Swift runtime trap does.
struct Crash: Runnable {
    func run() async throws {
        print("about to trap")
        let divisor = Int(CloudInvocation.current?.attempt ?? 1) - 1
        _ = 1 / divisor  // a division by zero traps, as a force unwrap of nil would
    }
}

/// The process id, to tell a fresh process from a warm one.
struct ProcessID: Callable {
    func call() async throws -> Int32 { getpid() }
}

/// x², to check answers come back in order.
struct Square: Callable {
    var x: Int
    func call() async throws -> Int { x * x }
}

/// Adds every index of its share to a counter (sum over from..<to).
struct SumIndices: IterativeTask {
    var key: String
    func run(index: Int) async throws { try await AtomicLong(key, initial: 0).addAndGet(Int64(index)) }
}

/// Fails on its first attempt after writing shared state; a retry finds it and
/// completes once: the idempotence pattern with a shared progress marker.
struct FailOnce: Runnable {
    var key: String
    func run() async throws {
        let done = AtomicBoolean(key + "-done", initial: false)
        let attempts = AtomicLong(key + "-attempts", initial: 0)
        try await attempts.incrementAndGet()
        if CloudInvocation.current?.attempt == 1 { throw TestFailure(message: "first attempt fails on purpose") }
        if try await done.compareAndSet(false, true) {
            try await AtomicLong(key + "-total", initial: 0).addAndGet(1)
        }
    }
}

await CrucialLambda.serveIfLambda(registering: Increment.self, Fail.self, Sleep.self, Crash.self, ProcessID.self, Square.self,
    SumIndices.self, FailOnce.self)
print("crucial-test-functions is a Lambda bootstrap for the tests: run it under crucial-lambda-emulator")
