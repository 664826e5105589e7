package import CrucialCore
package import NIOCore

/// One pipelined connection to a server, whatever carries it: a TCP (or TLS) socket
/// (``ClientConnection``), or the in-process transport of CrucialServer that hands frames
/// straight to a server's dispatcher (tests without sockets).
package protocol FrameConnection: AnyObject, Sendable {
    /// The server's answer to the handshake (its view, its frame limit).
    var hello: HelloReply { get }
    /// Whether requests may still be sent.
    var isActive: Bool { get }
    /// Queues `frame` at once (frames queued one after the other go out in that order); the
    /// future holds the frame that answers request `id`.
    func send(_ frame: Frame, id: UInt64) -> EventLoopFuture<Frame>
    /// Sends `frame` and waits for the frame that answers it.
    func request(_ frame: Frame, id: UInt64) async throws -> Frame
    /// Closes the connection; requests still waiting fail with CONNECTION_LOST.
    func close()
}

extension FrameConnection {
    /// Sends `frame` and waits for the frame that answers it, through ``send(_:id:)``'s future.
    package func request(_ frame: Frame, id: UInt64) async throws -> Frame {
        try await send(frame, id: id).get()
    }
}

/// Opens connections: to `host:port` over TCP, or by other means.
package protocol Transport: Sendable {
    /// Connects and performs the handshake within `timeout`; `heartbeat`: see ``ClientConnection``.
    /// A call (an `Invoke`) sent while `maxPending` calls wait for their answers fails with
    /// PENDING_LIMIT (``PendingRequests``); other requests are not counted.
    func connect(
        host: String, port: Int, group: any EventLoopGroup, identity: ConnectionIdentity, timeout: Duration, heartbeat: Duration?,
        maxPending: Int
    ) async throws -> any FrameConnection
}

extension Transport {
    /// A connection without a limit on waiting requests (a cluster's members, whose peers bound them).
    package func connect(
        host: String, port: Int, group: any EventLoopGroup, identity: ConnectionIdentity, timeout: Duration, heartbeat: Duration?
    ) async throws -> any FrameConnection {
        try await connect(host: host, port: port, group: group, identity: identity, timeout: timeout, heartbeat: heartbeat, maxPending: .max)
    }
}

/// Connections over TCP (and TLS when the identity has a context): what clients and the
/// members of a cluster use.
package struct TCPTransport: Transport {
    /// See ``WriteCoalescer``: false for a sender that queues under a lock of its own.
    package let writesInline: Bool

    package init(writesInline: Bool = true) { self.writesInline = writesInline }

    package func connect(
        host: String, port: Int, group: any EventLoopGroup, identity: ConnectionIdentity, timeout: Duration, heartbeat: Duration?,
        maxPending: Int
    ) async throws -> any FrameConnection {
        try await ClientConnection.connect(
            host: host, port: port, group: group, identity: identity, timeout: timeout, heartbeat: heartbeat, writesInline: writesInline,
            maxPending: maxPending)
    }
}
