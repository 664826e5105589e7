internal import Foundation

/// What one server lets its clients use. A request over a limit gets RESOURCE_EXHAUSTED
/// (a connection over `maxConnections` gets it in its handshake) and everything else
/// carries on; nothing crashes and no other object is touched.
public struct Limits: Sendable, Equatable {
    /// Open client and peer connections.
    public var maxConnections: Int
    /// Requests of one connection that are waiting for their answer (parked calls,
    /// replication, fsync): past it, a call that would park is refused (calls answered at
    /// once still run), so a pipelining client gets errors, not server memory.
    public var maxInFlightPerConnection: Int
    /// Calls one object keeps parked (barrier parties, semaphore acquires, latch and future waits).
    public var maxWaitersPerObject: Int
    /// Ephemeral objects one application session may own.
    public var maxObjectsPerSession: Int
    /// Estimated bytes of all object state. Over it, new objects and calls that may grow
    /// an object are refused; reads, removals and fixed-size updates still run.
    public var maxStateBytes: Int
    /// A client that sends nothing for this long while nothing of it is parked is
    /// disconnected (its client reconnects when used again); nil = never.
    public var idleTimeout: Duration?
    /// A connection must finish its handshake within this.
    public var handshakeTimeout: Duration
    /// A client that reads none of its answers for this long is disconnected.
    public var writeTimeout: Duration

    /// Limits; the defaults suit a shared production server.
    public init(
        maxConnections: Int = 10_000, maxInFlightPerConnection: Int = 10_000, maxWaitersPerObject: Int = 100_000,
        maxObjectsPerSession: Int = 1_000_000, maxStateBytes: Int? = nil, idleTimeout: Duration? = .seconds(600),
        handshakeTimeout: Duration = .seconds(10), writeTimeout: Duration = .seconds(60)
    ) {
        self.maxConnections = max(1, maxConnections)
        self.maxInFlightPerConnection = max(1, maxInFlightPerConnection)
        self.maxWaitersPerObject = max(1, maxWaitersPerObject)
        self.maxObjectsPerSession = max(1, maxObjectsPerSession)
        self.maxStateBytes = maxStateBytes ?? Limits.defaultStateBytes
        self.idleTimeout = idleTimeout
        self.handshakeTimeout = handshakeTimeout
        self.writeTimeout = writeTimeout
    }

    /// Half of this machine's memory.
    public static var defaultStateBytes: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory / 2) }
}
