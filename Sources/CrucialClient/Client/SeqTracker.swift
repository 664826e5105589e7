/// Allocates retry sequence numbers and tracks the lowest one still unanswered
/// (`ackedBelow`), which lets servers forget answers the client already has.
struct SeqTracker: Sendable {
    private var next: UInt64 = 1
    private var low: UInt64 = 1
    private var completedAbove: Set<UInt64> = []

    mutating func allocate() -> UInt64 {
        defer { next += 1 }
        return next
    }

    /// Every seq below this has been answered.
    var ackedBelow: UInt64 { low }

    mutating func complete(_ seq: UInt64) {
        guard seq >= low else { return }
        if seq == low {
            low += 1
            while completedAbove.remove(low) != nil { low += 1 }
        } else {
            completedAbove.insert(seq)
        }
    }
}
