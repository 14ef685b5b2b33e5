import NIOCore
import Synchronization
import SwitchboardProtocol

/// The caller's handle on one call (or ping) while it is being started, runs and ends.
///
/// Why it exists: call ids must reach the wire strictly increasing, so they are
/// assigned on the event loop at the moment the `CallStart` is written, not by the
/// calling task. A task's cancellation handler can fire at any time, even before the
/// start has reached the loop; it only has the ticket, and the loop resolves the
/// ticket to the call (or records "cancelled before start" so that the start is
/// never sent).
final class CallTicket: Sendable {
    enum State: Sendable {
        /// The start has not reached the event loop yet.
        case notStarted
        /// Cancelled (or timed out) before the start reached the loop: never send it.
        case cancelledBeforeStart(SwitchboardError)
        /// Started as call `id`.
        case call(UInt64)
        /// Started as the ping with this nonce.
        case ping(UInt64)
    }

    /// Only touched on the connection's event loop.
    let state: NIOLoopBoundBox<State>
    /// Set (on the loop) once the call is over, read from any thread so that a stream's
    /// `didTerminate`/`produceMore` after a normal end costs no event-loop hop.
    private let over = Atomic<Bool>(false)

    init(eventLoop: any EventLoop) {
        self.state = .makeBoxSendingValue(.notStarted, eventLoop: eventLoop)
    }

    var hasEnded: Bool { self.over.load(ordering: .acquiring) }

    func markEnded() { self.over.store(true, ordering: .releasing) }
}
