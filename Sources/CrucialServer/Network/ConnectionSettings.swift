internal import CrucialCore
internal import CrucialTransport
internal import NIOCore

/// Answers parked calls from any thread by writing to the connection's channel.
struct ChannelResponder: Responder {
    let channel: any Channel

    func respond(_ reply: Reply) {
        var buffer = channel.allocator.buffer(capacity: 64)
        WireCodec.encode(.result(reply), into: &buffer)
        channel.writeAndFlush(buffer, promise: nil)
    }
}

/// A responder for a request counted in its connection's in-flight requests.
struct CountingResponder: Responder {
    let base: any Responder
    let inFlight: AtomicCounter

    func respond(_ reply: Reply) {
        inFlight.subtract()
        base.respond(reply)
    }
}

/// Settings every connection of a server shares.
struct ConnectionSettings: Sendable {
    let serverID: String
    let maxFrameSize: Int
    /// The secrets clients may prove. None: no authentication, every client is admin (a
    /// development server).
    let credentials: [Credential]
    let pluginDirectory: String
    let maxPluginBytes: Int
    /// This node's part in a cluster; nil for a server on its own.
    let cluster: Cluster?
    let limits: Limits
    let metrics: ServerMetrics

}
