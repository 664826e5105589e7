package import NIOCore

/// The wire protocol version this build speaks.
package let crucialProtocolVersion: UInt32 = 2

/// Sent with an invocation so the server can create the object on first use.
package struct Create: Sendable, Equatable {
    package var initial: Value
    package var persistent: Bool
    /// The application session an ephemeral object belongs to (0 = none).
    package var session: UInt64
    package init(initial: Value, persistent: Bool = false, session: UInt64 = 0) {
        self.initial = initial
        self.persistent = persistent
        self.session = session
    }
}

/// Calls `method` on the object `ref` (see `Invoke` in crucial.proto).
package struct Invoke: Sendable, Equatable {
    package var id: UInt64
    package var viewID: UInt64 = 0
    package var ref: ObjectRef
    package var method: String
    package var args: [Value]
    package var create: Create?
    package var clientID: UInt64 = 0
    package var seq: UInt64 = 0
    package var ackedBelow: UInt64 = 0
    /// A user type's fingerprint as the caller knows it (`SharedType.crucialFingerprint`);
    /// empty: not checked.
    package var typeVersion = ""
    /// The Invoke message as it came off the wire, when it was decoded from a frame:
    /// replication forwards these bytes to the replicas instead of encoding the call again.
    /// Not part of the call's identity (ignored by `==`).
    package var encoded = Encoded(nil)

    /// Bytes that travel with a value without being part of it: equal to any other.
    package struct Encoded: Sendable, Equatable {
        package let bytes: ByteBuffer?
        package init(_ bytes: ByteBuffer?) { self.bytes = bytes }
        package static func == (_: Encoded, _: Encoded) -> Bool { true }
    }

    package init(
        id: UInt64, ref: ObjectRef, method: String, args: [Value] = [], create: Create? = nil,
        clientID: UInt64 = 0, seq: UInt64 = 0, ackedBelow: UInt64 = 0, viewID: UInt64 = 0, typeVersion: String = ""
    ) {
        self.typeVersion = typeVersion
        self.id = id
        self.ref = ref
        self.method = method
        self.args = args
        self.create = create
        self.clientID = clientID
        self.seq = seq
        self.ackedBelow = ackedBelow
        self.viewID = viewID
    }
}

/// A membership view of the DSO layer.
package struct View: Sendable, Equatable {
    package struct Member: Sendable, Equatable, Hashable {
        package var id: String
        package var address: String
        /// The etcd revision this member registered at: a member that restarts, or
        /// registers again after its lease lapsed, is a new incarnation of its id.
        package var incarnation: UInt64
        package init(id: String, address: String, incarnation: UInt64 = 0) {
            self.id = id
            self.address = address
            self.incarnation = incarnation
        }
    }
    package var id: UInt64
    package var members: [Member]
    package var rf: UInt32
    package init(id: UInt64, members: [Member], rf: UInt32) {
        self.id = id
        self.members = members
        self.rf = rf
    }
}

/// What a request came to.
package enum Outcome: Sendable, Equatable {
    case value(Value)
    case error(CrucialError)
    case wrongView(View)

    package static let void = Outcome.value(.null)
}

/// The answer to the request `id` (`Result` in crucial.proto).
package struct Reply: Sendable, Equatable {
    package var id: UInt64
    package var outcome: Outcome
    package init(id: UInt64, outcome: Outcome) {
        self.id = id
        self.outcome = outcome
    }
}

/// The client's first frame. Protocol 2 sends no secret: see ``HandshakeAuth``.
package struct Hello: Sendable, Equatable {
    package var protocolVersion: UInt32
    package var clientName: String
    /// Fresh random bytes the server's proof covers.
    package var clientNonce: [UInt8]
    /// The run of cloud threads the client is one of (0: none).
    package var run: UInt64
    package init(protocolVersion: UInt32 = crucialProtocolVersion, clientName: String = "", clientNonce: [UInt8] = [], run: UInt64 = 0) {
        self.protocolVersion = protocolVersion
        self.clientName = clientName
        self.clientNonce = clientNonce
        self.run = run
    }
}

package struct HelloReply: Sendable, Equatable {
    package var protocolVersion: UInt32
    package var serverID: String
    package var view: View?
    package var error: CrucialError?
    package var maxFrameSize: UInt32
    /// After a ``Frame/challenge(serverNonce:)``: the server's proof of the secret.
    package var serverProof: [UInt8]
    package init(
        protocolVersion: UInt32 = crucialProtocolVersion, serverID: String, view: View? = nil,
        error: CrucialError? = nil, maxFrameSize: UInt32, serverProof: [UInt8] = []
    ) {
        self.protocolVersion = protocolVersion
        self.serverID = serverID
        self.view = view
        self.error = error
        self.maxFrameSize = maxFrameSize
        self.serverProof = serverProof
    }
}

/// An object a server holds, as the admin calls list it (`crucial objects ls`).
public struct ObjectInfo: Sendable, Equatable {
    /// The object's (type, key).
    public var ref: ObjectRef
    /// Whether it outlives its application (kept on disk and on `rf` replicas).
    public var persistent: Bool
    /// Calls parked on it (barrier parties waiting, semaphore acquirers, ...).
    public var waiters: UInt32
    /// The session an ephemeral object belongs to (0 = none).
    public var session: UInt64
    package init(ref: ObjectRef, persistent: Bool, waiters: UInt32, session: UInt64 = 0) {
        self.ref = ref
        self.persistent = persistent
        self.waiters = waiters
        self.session = session
    }
}

/// The whole state of one object, as re-balancing moves it (`ObjectState` in crucial.proto).
package struct ObjectState: Sendable, Equatable {
    package var state: Value
    package var persistent: Bool
    package var session: UInt64
    /// The retry de-duplication table.
    package var retries: Value
    package init(state: Value, persistent: Bool, session: UInt64 = 0, retries: Value = .list([])) {
        self.state = state
        self.persistent = persistent
        self.session = session
        self.retries = retries
    }
}

/// The version of a replicated object: the view of the primary that made the last
/// change, then the number of changes. Copies are ordered by it.
package struct ObjectVersion: Sendable, Equatable, Comparable, Hashable, CustomStringConvertible {
    package var view: UInt64
    package var index: UInt64
    package init(view: UInt64, index: UInt64) {
        self.view = view
        self.index = index
    }
    package static let zero = ObjectVersion(view: 0, index: 0)
    package static func < (a: ObjectVersion, b: ObjectVersion) -> Bool { (a.view, a.index) < (b.view, b.index) }
    package var description: String { "\(view).\(index)" }
}

/// A primary to a replica: apply an operation or install a state (`Replicate` in crucial.proto).
package struct Replicate: Sendable, Equatable {
    package enum Operation: Sendable, Equatable {
        case invoke(Invoke)
        case install(ObjectState)
        case remove
        /// Forgets the tombstone at this version, and a copy older than it (tombstones are collected).
        case collect
    }
    package var id: UInt64
    package var viewID: UInt64
    package var ref: ObjectRef
    /// The object's version once this is applied.
    package var version: ObjectVersion
    package var operation: Operation
    /// With `.invoke`: the build of the plugin code the primary ran the call with ("" for
    /// built-in and linked types); a replica running another build refuses the call.
    package var codeBuild: String
    package init(id: UInt64, viewID: UInt64, ref: ObjectRef, version: ObjectVersion, operation: Operation, codeBuild: String = "") {
        self.codeBuild = codeBuild
        self.id = id
        self.viewID = viewID
        self.ref = ref
        self.version = version
        self.operation = operation
    }
}

/// Objects whose copies were all on members that left a view without handing them over
/// (`Hole` in crucial.proto): an object whose replicas on the ring of `members` are all
/// in `absent` or `lost` is unavailable while one of them is absent (it may come back with
/// its data), and lost once none is.
package struct Hole: Sendable, Equatable, Hashable {
    /// A member that came back without its data, and the view in which it did.
    package struct Lost: Sendable, Equatable, Hashable {
        package var id: String
        package var view: UInt64
        package init(id: String, view: UInt64) {
            self.id = id
            self.view = view
        }
    }
    package var members: [String]
    package var absent: [String]
    package var lost: [Lost]
    package init(members: [String], absent: [String], lost: [Lost] = []) {
        self.members = members
        self.absent = absent
        self.lost = lost
    }
}

/// A member to the others: it moved everything they get in `viewID` (`TransferDone` in
/// crucial.proto), with what it knows of the cluster's past.
package struct TransferDone: Sendable, Equatable {
    package var id: UInt64
    package var viewID: UInt64
    package var from: String
    /// The last view the sender served (0: none) and its members' ids.
    package var stableViewID: UInt64
    package var stableMembers: [String]
    package var holes: [Hole]
    /// Members of the stable view that left it gracefully, having handed their objects over.
    package var left: [String]
    /// The sender holds no data of an earlier incarnation: a new or emptied data directory, or none.
    package var empty: Bool
    package init(
        id: UInt64, viewID: UInt64, from: String, stableViewID: UInt64 = 0, stableMembers: [String] = [], holes: [Hole] = [],
        left: [String] = [], empty: Bool = false
    ) {
        self.id = id
        self.viewID = viewID
        self.from = from
        self.stableViewID = stableViewID
        self.stableMembers = stableMembers
        self.holes = holes
        self.left = left
        self.empty = empty
    }
}

/// One object of an ``Frame/offer(id:viewID:entries:)``: the version the sender has.
package struct OfferEntry: Sendable, Equatable {
    package var ref: ObjectRef
    package var version: ObjectVersion
    package init(ref: ObjectRef, version: ObjectVersion) {
        self.ref = ref
        self.version = version
    }
}

/// One protocol frame: exactly one of these travels in each length-prefixed frame.
package enum Frame: Sendable, Equatable {
    case hello(Hello)
    case helloReply(HelloReply)
    case invoke(Invoke)
    case result(Reply)
    case remove(id: UInt64, ref: ObjectRef)
    case ping(id: UInt64)
    /// The objects whose type starts with `typePrefix`, in (type, key) order: those after
    /// `after` (nil: from the first), at most `limit` (0: all).
    case listObjects(id: UInt64, typePrefix: String, after: ObjectRef? = nil, limit: UInt32 = 0)
    /// A page of objects; `more`: some follow the last of them.
    case objectList(id: UInt64, objects: [ObjectInfo], more: Bool = false)
    /// What a server is and holds (answered with a record: docs/PROTOCOL.md).
    case serverInfo(id: UInt64)
    /// Keeps `session` (0: none) and client `clientID` (0: none) alive for `leaseMillis`
    /// more (0 = the server's default); answered with the lease applied, in ms.
    case keepAlive(id: UInt64, session: UInt64, leaseMillis: UInt32, clientID: UInt64 = 0)
    /// Ends `session`: its ephemeral objects are removed.
    case endSession(id: UInt64, session: UInt64)
    /// Asks for the state of one object.
    case getObject(id: UInt64, ref: ObjectRef)
    /// One chunk of a plugin upload; `checkOnly`: the last one only checks it.
    case loadPlugin(id: UInt64, name: String, offset: UInt64, chunk: [UInt8], last: Bool, checkOnly: Bool = false)
    /// Server to server: an operation or a state for a replica.
    case replicate(Replicate)
    /// Server to server: the sender moved everything the receiver gets in the view.
    case transferDone(TransferDone)
    /// Server to client, after Hello: prove the secret over these bytes.
    case challenge(serverNonce: [UInt8])
    /// Client to server: the answer to a challenge (empty without a secret).
    case authenticate(proof: [UInt8])
    /// Server to server: the versions the sender would move to the receiver; answered with
    /// the indices of those it wants.
    case offer(id: UInt64, viewID: UInt64, entries: [OfferEntry])
    /// An operator accepts lost objects: `ref` alone, or (nil) every one lost so far.
    case acceptLoss(id: UInt64, ref: ObjectRef?)
    /// A driver cancels its run of cloud threads (one failed): `reason` says why.
    case cancelRun(id: UInt64, run: UInt64, reason: String)

    /// The request id, for frames that carry one.
    package var requestID: UInt64? {
        switch self {
        case .hello, .helloReply, .challenge, .authenticate: nil
        case .invoke(let i): i.id
        case .result(let r): r.id
        case .remove(let id, _), .ping(let id), .listObjects(let id, _, _, _), .objectList(let id, _, _), .serverInfo(let id): id
        case .keepAlive(let id, _, _, _), .endSession(let id, _), .getObject(let id, _), .loadPlugin(let id, _, _, _, _, _): id
        case .replicate(let r): r.id
        case .transferDone(let t): t.id
        case .offer(let id, _, _), .acceptLoss(let id, _), .cancelRun(let id, _, _): id
        }
    }
}
