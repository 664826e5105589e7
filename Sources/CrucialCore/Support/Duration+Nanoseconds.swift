extension Duration {
    /// The duration in whole nanoseconds, clamped to what an Int64 holds (for NIO's
    /// `TimeAmount` and for histograms).
    package var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (ns, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : ns &+ attoseconds / 1_000_000_000
    }
}
