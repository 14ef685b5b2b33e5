import NIOCore

extension Duration {
    /// Whole milliseconds for `timeout_ms`, rounded *up* so that a positive sub-millisecond
    /// timeout does not turn into 0, which the wire reads as "no deadline".
    var wireMilliseconds: UInt64 {
        let (seconds, attoseconds) = self.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        let perMillisecond: Int64 = 1_000_000_000_000_000
        let (wholeMs, remainder) = attoseconds.quotientAndRemainder(dividingBy: perMillisecond)
        let (product, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1000)
        if overflow { return UInt64.max }
        let (sum, overflow2) = product.addingReportingOverflow(UInt64(wholeMs) + (remainder > 0 ? 1 : 0))
        return overflow2 ? UInt64.max : sum
    }

    /// The same span as a NIO `TimeAmount` (saturating), for `scheduleTask`.
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = self.components
        let (nanosFromSeconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .nanoseconds(seconds < 0 ? Int64.min : Int64.max) }
        let (sum, overflow2) = nanosFromSeconds.addingReportingOverflow(attoseconds / 1_000_000_000)
        return .nanoseconds(overflow2 ? Int64.max : sum)
    }

    var isPositive: Bool { self > .zero }
}
