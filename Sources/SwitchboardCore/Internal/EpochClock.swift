#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unix-epoch milliseconds derived from the monotonic clock.
///
/// The wall clock is read once, at first use; later readings add monotonic time to
/// it. Timestamps therefore never go backwards and idle cleanup is immune to wall
/// clock steps, at the price of drifting from an adjusted wall clock.
enum EpochClock {
    private static let base: (epochMs: UInt64, instant: ContinuousClock.Instant) = {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let ms = UInt64(spec.tv_sec) * 1000 + UInt64(spec.tv_nsec) / 1_000_000
        return (ms, ContinuousClock.now)
    }()

    static func nowMs() -> UInt64 {
        milliseconds(at: ContinuousClock.now)
    }

    static func milliseconds(at instant: ContinuousClock.Instant) -> UInt64 {
        let elapsed = base.instant.duration(to: instant)
        let elapsedMs = elapsed.milliseconds
        return elapsedMs >= 0 ? base.epochMs &+ UInt64(elapsedMs) : base.epochMs &- UInt64(-elapsedMs)
    }
}

extension Duration {
    /// Whole milliseconds, truncated toward zero; saturates instead of trapping.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        return ms.addingReportingOverflow(attoseconds / 1_000_000_000_000_000).partialValue
    }
}
