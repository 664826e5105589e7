internal import CrucialCore

/// How a call on the store ended: answered now, or later through its waiter's responder,
/// and why later.
package enum Completion: Sendable, Equatable {
    /// Answered now with this outcome.
    case done(Outcome)
    /// Parked on its object (a barrier's first parties, an acquire without permits): the
    /// object answers it when another call releases it, or its timeout expires.
    case parked
    /// Done, answered once every replica applied the change (and its log record is safe).
    case waitingForReplicas
    /// Done, answered once its log record is safe (fsynced under `--fsync always`).
    case waitingForDisk

    /// The outcome of a call answered now; nil when it is answered later.
    package var outcome: Outcome? {
        if case .done(let outcome) = self { return outcome }
        return nil
    }
}
