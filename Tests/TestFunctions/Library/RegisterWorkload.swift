public import CrucialClient
import CrucialExamples

/// A call of the linearizability tests' workload: on a register (read or write) or on a
/// counter (read or increment).
public enum RegisterInput: Sendable, Equatable {
    case read
    case write(Int64)
    case increment

    public var isWrite: Bool {
        if case .write = self { return true }
        return false
    }
}

/// The register-and-counter workload of the linearizability tests, shared by the tests
/// in the test process and by `crucial-test-workload` (the same run inside a network
/// namespace): 16 clients, seeded, on 8 registers and 8 counters (persistent
/// `AtomicLong`s created on every call, so a member that lost one would make a new one
/// and be caught).
public enum RegisterWorkload {
    /// One call: what it was, what it answered (nil: it failed), and when it was made
    /// and answered (ns since the run's start; `response` is `.max` when it failed).
    public struct Call: Sendable {
        public let object: String
        public let input: RegisterInput
        public let output: Int64?
        public let call: UInt64
        public let response: UInt64
    }

    /// Calls until `end`; hands each finished call to `record`. `now` gives the time in
    /// ns since the run's start.
    public static func run(
        client: CrucialClient, until end: ContinuousClock.Instant, now: @escaping @Sendable () -> UInt64,
        record: @escaping @Sendable (Call) -> Void
    ) async {
        await run(client: client, while: { ContinuousClock.now < end }, now: now, record: record)
    }

    /// Calls while `keepGoing()` says so (each client asks before each call).
    public static func run(
        client: CrucialClient, while keepGoing: @escaping @Sendable () -> Bool, now: @escaping @Sendable () -> UInt64,
        record: @escaping @Sendable (Call) -> Void
    ) async {
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<16 {
                group.addTask {
                    var rng = SplitMix64(seed: UInt64(100 + t))
                    while keepGoing() {
                        let counter = rng.next() % 2 == 0
                        let key = "\(counter ? "counter" : "register")-\(rng.next() % 8)"
                        let input: RegisterInput =
                            counter
                            ? (rng.next() % 3 == 0 ? .read : .increment)
                            : (rng.next() % 2 == 0 ? .read : .write(Int64(rng.next() % 1000) + 1))
                        let (method, args): (String, [Value]) =
                            switch input {
                            case .read: ("get", [])
                            case .write(let v): ("set", [.int(v)])
                            case .increment: ("incrementAndGet", [])
                            }
                        let call = now()
                        let output = try? await client.invoke(
                            ObjectRef(type: "AtomicLong", key: key), method, args, create: Create(initial: .int(0), persistent: true),
                            readOnly: method == "get")
                        let response = output == nil ? UInt64.max : now()
                        record(
                            Call(
                                object: key, input: input, output: output.map { input.isWrite ? 0 : $0.intValue ?? -1 }, call: call,
                                response: response))
                    }
                }
            }
        }
    }
}
