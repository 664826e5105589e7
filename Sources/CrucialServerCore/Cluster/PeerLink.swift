import Synchronization
internal import CrucialTransport
internal import CrucialCore
internal import NIOCore

/// One ordered connection from this node to another member.
///
/// Frames given to ``send(_:)`` are written in the order of the calls, also while the
/// connection is being made (they wait in a backlog), so that a primary that sends an
/// object's changes under the object's lock delivers them in that order. A send only
/// queues: the link's event loop writes, on its next turn, never inside the object's lock. A broken
/// connection fails what it carried; the next send connects again.
final class PeerLink: Sendable {
    private enum State {
        case idle
        case connecting(backlog: [(Frame, UInt64, EventLoopPromise<Frame>)])
        case connected(any FrameConnection)
    }

    let member: View.Member
    private let state = Mutex(State.idle)
    private let loop: any EventLoop
    private let identity: ConnectionIdentity
    private let transport: any Transport
    private let nextID = Mutex<UInt64>(0)

    /// `transport`: TCP for a real cluster; the in-process transport in the tests of view changes.
    init(member: View.Member, loop: any EventLoop, identity: ConnectionIdentity, transport: any Transport) {
        self.member = member
        self.loop = loop
        self.identity = identity
        self.transport = transport
    }

    /// Sends the frame `build` makes for a fresh request id; the future holds the answer.
    func send(_ build: (UInt64) -> Frame) -> EventLoopFuture<Frame> {
        state.withLock { state in
            let id = nextID.withLock { n in
                n += 1
                return n
            }
            let frame = build(id)
            switch state {
            case .connected(let c) where c.isActive:
                return c.send(frame, id: id)
            case .connecting(var backlog):
                let promise = loop.makePromise(of: Frame.self)
                backlog.append((frame, id, promise))
                state = .connecting(backlog: backlog)
                return promise.futureResult
            case .idle, .connected:
                let promise = loop.makePromise(of: Frame.self)
                state = .connecting(backlog: [(frame, id, promise)])
                connect()
                return promise.futureResult
            }
        }
    }

    private func connect() {
        Task {
            let result: Result<any FrameConnection, any Error>
            do {
                let (host, port) = try parseAddress(member.address)
                result = .success(
                    try await transport.connect(host: host, port: port, group: loop, identity: identity, timeout: .seconds(2), heartbeat: nil))
            } catch {
                result = .failure(error)
            }
            let (failed, unwanted) = state.withLock { state -> ([(Frame, UInt64, EventLoopPromise<Frame>)], (any FrameConnection)?) in
                guard case .connecting(let backlog) = state else {
                    // Closed meanwhile (the member left the view): close() failed the backlog.
                    if case .success(let c) = result { return ([], c) }
                    return ([], nil)
                }
                switch result {
                case .success(let c):
                    for (frame, id, promise) in backlog { promise.completeWith(c.send(frame, id: id)) }
                    state = .connected(c)
                    return ([], nil)
                case .failure:
                    state = .idle
                    return (backlog, nil)
                }
            }
            unwanted?.close()
            if case .failure(let error) = result {
                let e = CrucialError(.connectionFailed, "cannot reach member \(member.id) at \(member.address): \(error)")
                for (_, _, promise) in failed { promise.fail(e) }
            }
        }
    }

    /// Closes the link; requests still waiting for it to connect fail (never left hanging).
    func close() {
        let old = state.withLock { state -> State in
            defer { state = .idle }
            return state
        }
        switch old {
        case .connected(let c): c.close()
        case .connecting(let backlog):
            let e = CrucialError(.connectionFailed, "the link to member \(member.id) was closed (it left the view)")
            for (_, _, promise) in backlog { promise.fail(e) }
        case .idle: break
        }
    }
}
