import CrucialCore
@testable import CrucialServerCore
import CrucialServer
import Logging
import NIOPosix
import Testing

/// A connection's requests served straight through its dispatcher: no socket, no channel.
@Suite("Request dispatcher, without sockets")
struct RequestDispatcherTests {
    static func settings(credentials: [Credential] = []) -> ConnectionSettings {
        ConnectionSettings(
            serverID: "s", maxFrameSize: 1 << 20, credentials: credentials, pluginDirectory: "/nonexistent", maxPluginBytes: 1 << 20,
            cluster: nil, limits: Limits(), metrics: ServerMetrics())
    }

    static func dispatcher(_ store: ObjectStore, connection: UInt64, admin: Bool = true, recorder: Recorder, credentials: [Credential] = [])
        -> RequestDispatcher
    {
        RequestDispatcher(
            store: store, settings: settings(credentials: credentials), connection: ConnectionID(connection), logger: Logger(label: "test"),
            isAdmin: admin, responder: recorder
        ) { _, _ in Issue.record("no cluster here: nothing waits for a view") }
    }

    static func invoke(_ id: UInt64, _ type: String, _ key: String, _ method: String, _ args: [Value] = [], initial: Value = .null) -> Frame {
        .invoke(Invoke(id: id, ref: ObjectRef(type: type, key: key), method: method, args: args, create: Create(initial: initial)))
    }

    @Test("A call answers at once; a barrier's first party parks and is answered through the responder when the last arrives")
    func parkAndWake() {
        let store = ObjectStore(timerLoop: MultiThreadedEventLoopGroup.singleton.next())
        let (r1, r2) = (Recorder(), Recorder())
        let (a, b) = (Self.dispatcher(store, connection: 1, recorder: r1), Self.dispatcher(store, connection: 2, recorder: r2))
        #expect(a.serve(Self.invoke(1, "AtomicLong", "n", "addAndGet", [.int(5)])) == .result(Reply(id: 1, outcome: .value(.int(5)))))
        #expect(a.serve(Self.invoke(2, "CyclicBarrier", "b", "await", initial: .int(2))) == nil)
        #expect(a.inFlight.load() == 1 && a.parkedOn == [ObjectRef(type: "CyclicBarrier", key: "b")])
        #expect(b.serve(Self.invoke(9, "CyclicBarrier", "b", "await", initial: .int(2))) == .result(Reply(id: 9, outcome: .value(.int(0)))))
        #expect(r1.all == [Reply(id: 2, outcome: .value(.int(1)))])
        #expect(a.inFlight.load() == 0 && r2.all.isEmpty)
    }

    @Test("A closed connection's parked calls are withdrawn: the barrier does not count them")
    func closedWithdraws() {
        let store = ObjectStore(timerLoop: MultiThreadedEventLoopGroup.singleton.next())
        let recorder = Recorder()
        let a = Self.dispatcher(store, connection: 1, recorder: recorder)
        #expect(a.serve(Self.invoke(1, "CyclicBarrier", "b", "await", initial: .int(2))) == nil)
        a.closed()
        let b = Self.dispatcher(store, connection: 2, recorder: recorder)
        #expect(b.serve(Self.invoke(2, "CyclicBarrier", "b", "getNumberWaiting", initial: .int(2))) == .result(Reply(id: 2, outcome: .value(.int(0)))))
    }

    @Test("Admin rights, member-only frames, misplaced frames and bad keep-alives are refused with precise errors")
    func refusals() {
        let store = ObjectStore(timerLoop: MultiThreadedEventLoopGroup.singleton.next())
        let plain = Self.dispatcher(store, connection: 1, admin: false, recorder: Recorder(), credentials: [Credential(name: "ops", secret: "k", isAdmin: true)])
        func error(_ frame: Frame?) -> CrucialError.Code? {
            guard case .result(let reply) = frame, case .error(let e) = reply.outcome else { return nil }
            return e.code
        }
        #expect(error(plain.serve(.loadPlugin(id: 1, name: "p", offset: 0, chunk: [1], last: true))) == .unauthenticated)
        #expect(error(plain.serve(.transferDone(TransferDone(id: 2, viewID: 1, from: "x")))) == .badRequest)  // not a cluster
        #expect(error(plain.serve(.hello(Hello(clientName: "again")))) == .badRequest)
        #expect(error(plain.serve(.challenge(serverNonce: [1]))) == .badRequest)
        #expect(error(plain.serve(.keepAlive(id: 3, session: 0, leaseMillis: 10, clientID: 0))) == .badRequest)
        #expect(plain.serve(.ping(id: 4)) == .result(Reply(id: 4, outcome: .void)))
        #expect(error(plain.serve(.getObject(id: 5, ref: ObjectRef(type: "AtomicLong", key: "none")))) == .notFound)
    }
}

@Suite("Late answers")
struct LateAnswerTests {
    @Test("An answer after waiting for replicas or the disk is counted and timed; a parked call's only leaves the in-flight count")
    func countedAndTimed() {
        let metrics = ServerMetrics.prometheus()
        let inFlight = AtomicCounter()
        let recorder = Recorder()
        let late = LateAnswer(
            base: recorder, inFlight: inFlight, metrics: metrics, type: "AtomicLong", method: "incrementAndGet", started: .now)
        func text() -> String { String(decoding: metrics.exposition() ?? [], as: UTF8.self) }
        inFlight.add()
        inFlight.add()
        late.respondAfterWaiting(Reply(id: 1, outcome: .value(.int(1))))
        #expect(text().contains(#"crucial_operations_total{type="AtomicLong",method="incrementAndGet",outcome="ok"} 1"#))
        #expect(text().contains(#"crucial_operation_duration_seconds_count{type="AtomicLong",method="incrementAndGet"} 1"#))
        late.respond(Reply(id: 2, outcome: .value(.int(2))))
        #expect(text().contains(#"outcome="ok"} 1"#))
        #expect(inFlight.load() == 0)
        #expect(recorder.all.map(\.id) == [1, 2])
    }
}
