import Dispatch
import Synchronization
import SwitchboardProtocol

/// Runs a handler at a deadline, unless cancelled first; cancelling frees the
/// timer at once.
///
/// Why not a task that awaits `Task.sleep(until:)` and is cancelled: a cancelled
/// sleep resumes its task, but the runtime's wake-up job stays enqueued in the
/// global executor (a dispatch timer source, a task and its first allocation
/// slab, about 1.7 KB) until the *original* deadline. A turn's watchdog sleeps
/// until its stall timeout or deadline (minutes), so a server answering prompts
/// faster than that grew by ~1.8 KB per prompt (issue #12). A dispatch timer
/// source that is cancelled is unregistered and released right away.
package final class DeadlineTimer: Sendable {
    /// The armed source; nil once cancelled (then `rearm` does nothing).
    private let source: Mutex<(any DispatchSourceTimer)?>

    /// Arms the timer: `handler` runs once on a global queue at `deadline` (at
    /// once when it has passed), and again after each `rearm`.
    package init(deadline: ContinuousClock.Instant, handler: @escaping @Sendable () -> Void) {
        source = Mutex(nil)
        source.withLockAnnotated { slot in
            let timer = DispatchSource.makeTimerSource(queue: .global())
            timer.setEventHandler(handler: handler)
            timer.schedule(deadline: Self.dispatchTime(of: deadline), repeating: .never, leeway: Self.leeway)
            timer.activate()
            slot = timer
        }
    }

    deinit {
        cancel()
    }

    /// Fires the handler (once more) at `deadline`; no effect after `cancel`.
    package func rearm(at deadline: ContinuousClock.Instant) {
        source.withLockAnnotated { slot in
            slot?.schedule(deadline: Self.dispatchTime(of: deadline), repeating: .never, leeway: Self.leeway)
        }
    }

    /// Disarms and releases the timer; the handler does not run afterwards
    /// (unless it is already running). Idempotent.
    package func cancel() {
        source.withLockAnnotated { slot in
            slot?.cancel()
            slot = nil
        }
    }

    private static let leeway = DispatchTimeInterval.milliseconds(1)

    /// `deadline` on Dispatch's monotonic clock, measured from now; a deadline
    /// decades away (a turn without a deadline) never fires.
    private static func dispatchTime(of deadline: ContinuousClock.Instant) -> DispatchTime {
        let remaining = ContinuousClock.now.duration(to: deadline)
        if remaining <= .zero { return .now() }
        let (seconds, attoseconds) = remaining.components
        if seconds >= 100 * 365 * 86_400 { return .distantFuture }
        return .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
    }
}
