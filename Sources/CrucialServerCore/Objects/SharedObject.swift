package import CrucialCore

/// Identifies the connection a request came from, so that its parked waiters
/// can be removed when it closes.
package struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    package let raw: UInt64
    package init(_ raw: UInt64) { self.raw = raw }
    package var description: String { "conn#\(raw)" }
}

/// A parked request: who to answer, and how.
package struct WaiterID: Hashable, Sendable {
    package let connection: ConnectionID
    package let request: UInt64

    package init(connection: ConnectionID, request: UInt64) {
        self.connection = connection
        self.request = request
    }
}

/// Delivers an answer to a request, from any thread.
package protocol Responder: Sendable {
    /// Answers a call that parked (woken by another call, its timeout, or its object's end).
    func respond(_ reply: Reply)
    /// Answers a call that was done at once but waited for its replicas or its log record.
    func respondAfterWaiting(_ reply: Reply)
}

extension Responder {
    package func respondAfterWaiting(_ reply: Reply) { respond(reply) }
}

/// Answers nobody: the waiter of a call whose client is not connected here. A replica
/// applies the primary's calls with it, recovery replays logged calls with it, and a
/// waiting party of a replicated synchronizer keeps it on every copy but the one its
/// client reached, until that client's retry takes the party over (``Waiter/isDetached``).
struct DetachedResponder: Responder {
    func respond(_ reply: Reply) {}
}

/// A request that may be answered later.
package struct Waiter: Sendable {
    package let id: WaiterID
    /// Retry identity (0 = not de-duplicated); the store records late answers under it.
    let clientID: UInt64
    let seq: UInt64
    let responder: any Responder

    package init(id: WaiterID, clientID: UInt64 = 0, seq: UInt64 = 0, responder: any Responder) {
        self.id = id
        self.clientID = clientID
        self.seq = seq
        self.responder = responder
    }

    /// A waiting party known by its retry identity alone, as a copy of a synchronizer's
    /// state carries it (from another member or from disk): nobody here waits for its answer.
    static func detached(clientID: UInt64, seq: UInt64) -> Waiter {
        Waiter(id: WaiterID(connection: ConnectionID(0), request: seq), clientID: clientID, seq: seq, responder: DetachedResponder())
    }

    /// Whether no connection here waits for this call's answer: its client called another
    /// member (this is a replica's copy), or the copy came from disk. The client's retry
    /// (``isRetried(by:)``) takes the party over; a client gone leaves it.
    var isDetached: Bool { responder is DetachedResponder }

    /// Whether `other` is a retry of this waiting call: the same client and sequence number
    /// (never for calls that are not de-duplicated, `seq` 0).
    func isRetried(by other: Waiter) -> Bool { seq != 0 && other.seq == seq && other.clientID == clientID }

    /// This party as a copy of the state records it: `[client, seq]`.
    var identity: [Value] { [.int(Int64(bitPattern: clientID)), .int(Int64(bitPattern: seq))] }

    /// A party a copy of the state recorded as ``identity`` (and more fields after it).
    static func detached(from fields: [Value], of type: String) throws(CrucialError) -> Waiter {
        guard fields.count >= 2, let client = fields[0].intValue, let seq = fields[1].intValue else {
            throw CrucialError(.badInitialState, "\(type): a waiting party must be [client, seq, ...], got \(fields)")
        }
        return .detached(clientID: UInt64(bitPattern: client), seq: UInt64(bitPattern: seq))
    }
}

/// What an object's method did with a call.
package enum Response: Sendable, Equatable {
    /// The call completed with this value.
    case value(Value)
    /// The call waits; the object keeps `call.waiter` and answers it later through ``Effects``.
    case parked

    package static let void = Response.value(.null)
}

/// Side effects of a method, collected under the object's lock and carried out after it.
package struct Effects: Sendable {
    /// Parked calls to answer.
    package internal(set) var wakeups: [(Waiter, Outcome)] = []
    /// Parked calls whose wait is bounded: after `Duration`, the store calls `timeout(_:)`.
    package internal(set) var timers: [(WaiterID, Duration)] = []
    /// Clients that now hold something of the object (semaphore permits): the store calls
    /// ``SharedObject/clientGone(_:effects:)`` when one of them is gone.
    package internal(set) var holders: [UInt64] = []

    package init() {}

    package mutating func held(by client: UInt64) { if client != 0 { holders.append(client) } }

    package mutating func wake(_ waiter: Waiter, _ outcome: Outcome) { wakeups.append((waiter, outcome)) }
    package mutating func wake(_ waiter: Waiter, value: Value) { wakeups.append((waiter, .value(value))) }
    package mutating func wake(_ waiter: Waiter, error: CrucialError) { wakeups.append((waiter, .error(error))) }
}

/// A shared object living on a server.
///
/// The store serialises every call to one object under that object's lock, so an
/// implementation is plain single-threaded code; calls on different objects run in
/// parallel. Methods never block: a call that must wait returns ``Response/parked``
/// after keeping `call.waiter`, and a later call answers it with `call.effects.wake`.
package protocol SharedObject: AnyObject, SendableMetatype {
    /// The type name clients use in ``ObjectRef/type``.
    static var typeName: String { get }

    /// Creates the object from the initial state a client sent (the same form as ``snapshot()``).
    init(initial: Value) throws(CrucialError)

    /// Runs one method call.
    func invoke(_ call: inout Call) throws(CrucialError) -> Response

    /// The object's state, in the form ``init(initial:)`` accepts.
    func snapshot() -> Value

    /// Checks that a client's `Create` for an existing object does not contradict
    /// it (for example a barrier created with a different number of parties).
    func checkCompatible(initial: Value) throws(CrucialError)

    /// The number of parked calls.
    var waiterCount: Int { get }

    /// Forgets parked calls of a closed connection, waking whoever that unblocks.
    func cancelWaiters(of connection: ConnectionID, effects: inout Effects)

    /// A bounded wait of `waiter` expired: answer it (through `effects`) if still parked.
    func timeout(_ waiter: WaiterID, effects: inout Effects)

    /// The object is being removed: answer every parked call (with NOT_FOUND).
    func drainWaiters(effects: inout Effects, error: CrucialError)

    /// Another member serves the object now, or this one stops: answer the parked calls
    /// with `error` (WRONG_VIEW: their clients retry them there), and keep the parties that
    /// are part of the state, detached.
    func detachWaiters(effects: inout Effects, error: CrucialError)

    /// What `method` does to the object: a read is not logged by a persistent object; a
    /// write may make it bigger, so it is refused while the server is over its memory limit.
    /// A wrong `.read` loses updates on recovery: for a method it does not know, `.write`.
    func kind(of method: String) -> MethodKind

    /// Synchronization objects (barriers, semaphores, latches, futures) park calls and
    /// arm timers. A persistent one has `rf` copies like any object: its waiting parties
    /// are part of its state (by their retry identity), detached on every copy but the
    /// primary's (``Waiter/isDetached``).
    static var isSynchronizer: Bool { get }

    /// Whether no call changes how much memory the object takes (counters, arrays,
    /// synchronizers, whose waiters have their own limit).
    static var hasFixedSize: Bool { get }

    /// Roughly the bytes the object's state takes; counted against the server's
    /// `maxStateBytes`. Recomputed at most once a second after changes.
    var footprint: Int { get }

    /// Client `client` is gone (its keep-alive lapsed or its session ended): release what
    /// it held and withdraw its detached waiting calls, waking whoever that unblocks.
    func clientGone(_ client: UInt64, effects: inout Effects)

    /// The clients holding something of the object, or waiting on it detached (after a
    /// restart, a move or a failover, the store watches them again: a client that does not
    /// come back within its lease is gone).
    var holdingClients: [UInt64] { get }

    /// Withdraws every detached waiting call (a lone server recovered from disk: the
    /// connections of the calls it replayed are gone), waking whoever that unblocks.
    func withdrawDetached(effects: inout Effects)

    /// A user type's code as this object runs it (nil for built-in types): a plugin loaded
    /// since may have replaced the type's code for new objects but not for this one.
    var code: TypeCode? { get }

    /// ``code``'s fingerprint, without building the rest ("" for built-in types).
    var fingerprint: String { get }
}

extension SharedObject {
    package func checkCompatible(initial: Value) throws(CrucialError) {}
    package var waiterCount: Int { 0 }
    package func cancelWaiters(of connection: ConnectionID, effects: inout Effects) {}
    package func timeout(_ waiter: WaiterID, effects: inout Effects) {}
    package func drainWaiters(effects: inout Effects, error: CrucialError) {}
    package func detachWaiters(effects: inout Effects, error: CrucialError) { drainWaiters(effects: &effects, error: error) }
    package static var isSynchronizer: Bool { false }
    package static var hasFixedSize: Bool { isSynchronizer }
    package var footprint: Int { snapshot().estimatedBytes }
    /// Whether a call of `method` may make the object bigger.
    func mayGrow(_ method: String) -> Bool { !Self.hasFixedSize && kind(of: method).mayGrow }
    package func clientGone(_ client: UInt64, effects: inout Effects) {}
    package var holdingClients: [UInt64] { [] }
    package func withdrawDetached(effects: inout Effects) {}
    package var code: TypeCode? { nil }
    package var fingerprint: String { "" }

    /// The refusal of a call made by a caller built with another version of this user type.
    func versionMismatch(_ invoke: Invoke) -> CrucialError? {
        guard !invoke.typeVersion.isEmpty else { return nil }
        let mine = fingerprint
        guard !mine.isEmpty, mine != invoke.typeVersion else { return nil }
        return code?.mismatch(invoke.typeVersion, type: invoke.ref.type)
    }
}

/// A built-in type: its methods, their kinds and arguments come from its `Method` enum in
/// CrucialCore (``BuiltinMethods``), which the client's proxies call through too. An
/// implementation switches over the decoded call in ``run(_:_:)``.
package protocol BuiltinObject: SharedObject {
    associatedtype Method: BuiltinMethods
    static var builtin: BuiltinType { get }
    /// Runs one call, its arguments read already.
    func run(_ method: Method, _ call: inout Call) throws(CrucialError) -> Response
}

extension BuiltinObject {
    package static var typeName: String { builtin.typeName }
    package static var isSynchronizer: Bool { builtin.isSynchronizer }

    package func invoke(_ call: inout Call) throws(CrucialError) -> Response {
        guard let name = Method.Name(rawValue: call.method) else {
            throw call.unknownMethod(Method.Name.allCases.map(\.rawValue))
        }
        let arity = Method.arity(of: name)
        guard arity.contains(call.args.count) else { throw call.wrongArity(arity, Method.signature(of: name)) }
        return try run(Method(name, SharedCall(typeName: call.ref.type, method: call.method, args: call.args)), &call)
    }

    package func kind(of method: String) -> MethodKind { Method.kind(named: method) ?? .write }
}
