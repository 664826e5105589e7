import CrucialClient
@testable import CrucialLambda
import Foundation
import Synchronization
import Testing

/// A Lambda Runtime API played from a script: the invocations to hand out, in order, and
/// what the loop posted for each. No HTTP, no process.
final class ScriptedRuntime: RuntimeAPI {
    enum Posted: Equatable {
        case response(String, String)
        case error(String, type: String)
    }

    private let queue: Mutex<[RuntimeClient.Invocation]>
    private let posted = Mutex<[Posted]>([])
    private let failPosts: Bool

    init(_ invocations: [RuntimeClient.Invocation], failPosts: Bool = false) {
        queue = Mutex(invocations)
        self.failPosts = failPosts
    }

    var all: [Posted] { posted.withLock { $0 } }

    struct Gone: Error {}

    func next() async throws -> RuntimeClient.Invocation {
        guard let next = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { throw Gone() }
        return next
    }

    func respond(requestID: String, body: Data) async throws {
        if failPosts { throw Gone() }
        posted.withLock { $0.append(.response(requestID, String(decoding: body, as: UTF8.self))) }
    }

    func fail(requestID: String, error: LambdaErrorBody) async throws {
        if failPosts { throw Gone() }
        posted.withLock { $0.append(.error(requestID, type: error.errorType ?? "")) }
    }
}

/// A function for the loop to run.
struct Triple: Callable {
    var x: Int
    func call() async throws -> Int {
        #expect(CloudInvocation.current?.requestID != nil)
        return 3 * x
    }
}

/// The X-Ray trace id the function runs under (AWS's SDKs read it from the environment).
struct TraceID: Callable {
    func call() async throws -> String { ProcessInfo.processInfo.environment["_X_AMZN_TRACE_ID"] ?? "none" }
}

/// A function no test registers: the runtime finds it by its `swiftType`.
struct Unlisted: Callable {
    var x: Int
    func call() async throws -> Int { x + 1 }
}

/// An iterative task no test registers: its `IterationRange` is found by its generic mangled name.
struct UnlistedLoop: IterativeTask {
    func run(index: Int) async throws { if index == 2 { throw Refuse.Refused() } }
}

/// A function that fails.
struct Refuse: Runnable {
    struct Refused: Error {}
    func run() async throws { throw Refused() }
}

// Serialized: each invocation sets or clears the process-wide _X_AMZN_TRACE_ID, which a loop
// running beside it would change under the function reading it.
@Suite("The Lambda runtime loop, against a scripted Runtime API", .serialized)
struct RuntimeLoopTests {
    init() throws { try CloudFunctions.register([Triple.self, Refuse.self, TraceID.self]) }

    static func invocation(_ id: String, _ json: String, trace: String? = nil) -> RuntimeClient.Invocation {
        RuntimeClient.Invocation(requestID: id, payload: Data(json.utf8), deadline: nil, traceID: trace, functionARN: nil)
    }

    @Test("Each invocation's answer or error is posted under its request id; the loop ends with 1 when the API goes away")
    func answersAndErrors() async {
        let runtime = ScriptedRuntime([
            Self.invocation("r1", #"{"function": "\#(Triple.cloudName)", "input": {"x": 14}}"#),
            Self.invocation("r2", #"{"function": "\#(Refuse.cloudName)", "input": {}}"#),
            Self.invocation("r3", #"{"function": "NoSuchFunction", "input": {}}"#),
            Self.invocation("r4", #"not json"#),
            Self.invocation("r5", #"{"function": "\#(Triple.cloudName)", "input": {"y": 1}}"#),
        ])
        var loop = RuntimeLoop(runtime: runtime)
        #expect(await loop.run() == 1)
        #expect(
            runtime.all == [
                .response("r1", "42"),
                .error("r2", type: String(reflecting: Refuse.Refused.self)),
                .error("r3", type: "Crucial.UnknownFunction"),
                .error("r4", type: "Crucial.InvalidPayload"),
                .error("r5", type: "Crucial.InvalidPayload"),
            ])
    }

    @Test("A payload's swiftType finds a cloud function this executable has but never registered, and nothing else")
    func discovery() async throws {
        let unlisted = try #require(_mangledTypeName(Unlisted.self))
        let loop = try #require(_mangledTypeName(IterationRange<UnlistedLoop>.self))
        let notCloud = try #require(_mangledTypeName(RuntimeLoopTests.self))
        let runtime = ScriptedRuntime([
            Self.invocation("r1", #"{"function": "\#(Unlisted.cloudName)", "input": {"x": 41}, "swiftType": "\#(unlisted)"}"#),
            // The name must match the type's cloudName.
            Self.invocation("r2", #"{"function": "Other", "input": {"x": 1}, "swiftType": "\#(unlisted)"}"#),
            Self.invocation("r3", #"{"function": "\#(String(reflecting: RuntimeLoopTests.self))", "input": {}, "swiftType": "\#(notCloud)"}"#),
            Self.invocation("r4", #"{"function": "X", "input": {}, "swiftType": "no such mangled name"}"#),
            Self.invocation("r5", #"{"function": "\#(IterationRange<UnlistedLoop>.cloudName)", "input": {"task": {}, "lower": 0, "upper": 2}, "swiftType": "\#(loop)"}"#),
            Self.invocation("r6", #"{"function": "\#(IterationRange<UnlistedLoop>.cloudName)", "input": {"task": {}, "lower": 0, "upper": 3}, "swiftType": "\#(loop)"}"#),
        ])
        var runner = RuntimeLoop(runtime: runtime)
        #expect(await runner.run() == 1)
        #expect(
            runtime.all == [
                .response("r1", "42"),
                .error("r2", type: "Crucial.UnknownFunction"),
                .error("r3", type: "Crucial.UnknownFunction"),
                .error("r4", type: "Crucial.UnknownFunction"),
                .response("r5", "null"),
                .error("r6", type: String(reflecting: Refuse.Refused.self)),
            ])
        // The payload a CloudThread sends names its type so.
        let payload = try InvocationPayload(function: Unlisted.cloudName, input: Unlisted(x: 1), crucial: nil, attempt: 1).encode()
        #expect(try PayloadHeader.decode(payload).swiftType == unlisted)
    }

    @Test("Each invocation runs under its own trace id, and one without runs under none")
    func traceIDs() async {
        let runtime = ScriptedRuntime([
            Self.invocation("r1", #"{"function": "\#(TraceID.cloudName)", "input": {}}"#, trace: "Root=1-5759e988-bd862e3fe1be46a994272793"),
            Self.invocation("r2", #"{"function": "\#(TraceID.cloudName)", "input": {}}"#),
        ])
        var loop = RuntimeLoop(runtime: runtime)
        _ = await loop.run()
        #expect(runtime.all == [.response("r1", #""Root=1-5759e988-bd862e3fe1be46a994272793""#), .response("r2", #""none""#)])
    }

    @Test("A result that cannot be posted ends the loop")
    func postFails() async {
        let runtime = ScriptedRuntime([Self.invocation("r1", #"{"function": "\#(Triple.cloudName)", "input": {"x": 1}}"#)], failPosts: true)
        var loop = RuntimeLoop(runtime: runtime)
        #expect(await loop.run() == 1)
    }
}
