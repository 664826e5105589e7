internal import CrucialCore
import Synchronization

/// The runs of cloud threads a server knows: the open connections whose Hello named each,
/// and the runs their drivers cancelled (``cancel(_:reason:)``), whose connections are
/// closed and whose new handshakes are refused with CANCELLED for ``forgetAfter``.
package final class RunRegistry: Sendable {
    /// How long a cancelled run is refused (a cloud function runs 15 minutes at most).
    static let forgetAfter: Duration = .seconds(3600)
    /// How many cancelled runs are remembered at most (the oldest go first).
    static let limit = 4096

    private struct State {
        var connections: [UInt64: [ConnectionID: @Sendable () -> Void]] = [:]
        var cancelled: [UInt64: (reason: String, at: ContinuousClock.Instant)] = [:]
        var order: [UInt64] = []

        /// Forgets the runs cancelled longer than ``RunRegistry/forgetAfter`` ago.
        mutating func forgetOld(now: ContinuousClock.Instant) {
            while let oldest = order.first {
                guard let c = cancelled[oldest] else {  // dropped for the limit already
                    order.removeFirst()
                    continue
                }
                guard now - c.at > RunRegistry.forgetAfter else { break }
                order.removeFirst()
                cancelled.removeValue(forKey: oldest)
            }
        }
    }
    private let state = Mutex(State())

    package init() {}

    /// The refusal of a handshake or request of `run`, if it was cancelled.
    package func refusal(of run: UInt64) -> CrucialError? {
        state.withLock { s in
            s.forgetOld(now: .now)
            return s.cancelled[run].map { CrucialError(.cancelled, "run cancelled because \($0.reason)") }
        }
    }

    /// Records a connection of `run`, which `close` closes; refused when the run was
    /// cancelled meanwhile (the handshake went through just before).
    func register(_ run: UInt64, _ connection: ConnectionID, close: @escaping @Sendable () -> Void) -> CrucialError? {
        if let refused = refusal(of: run) { return refused }
        state.withLock { $0.connections[run, default: [:]][connection] = close }
        return nil
    }

    /// The connection closed.
    func unregister(_ run: UInt64, _ connection: ConnectionID) {
        state.withLock { s in
            s.connections[run]?.removeValue(forKey: connection)
            if s.connections[run]?.isEmpty == true { s.connections.removeValue(forKey: run) }
        }
    }

    /// Cancels `run`: closes its connections and refuses it from now on; returns how many
    /// connections were closed.
    @discardableResult
    func cancel(_ run: UInt64, reason: String) -> Int {
        let closing = state.withLock { s -> [@Sendable () -> Void] in
            s.forgetOld(now: .now)
            if s.cancelled[run] == nil {
                s.order.append(run)
                if s.order.count > Self.limit { s.cancelled.removeValue(forKey: s.order.removeFirst()) }
            }
            s.cancelled[run] = (reason, .now)
            return Array((s.connections.removeValue(forKey: run) ?? [:]).values)
        }
        for close in closing { close() }
        return closing.count
    }

    /// Runs cancelled and remembered now.
    var cancelledCount: Int { state.withLock { $0.cancelled.count } }
}
