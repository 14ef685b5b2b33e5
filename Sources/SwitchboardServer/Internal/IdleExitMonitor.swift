import NIOCore
import Synchronization
import SwitchboardCore

/// `serve --exit-idle-after`: tells when the server has had nothing to do for
/// long enough to exit.
///
/// Idle means: no open connection (counted from the moment it is accepted, not
/// when it is admitted, so a connection accepted a moment ago always counts), no
/// turn running or queued (detached turns included), and, when sessions are kept
/// in memory only, no session (an exit would lose them). With a state directory
/// idle sessions may be left behind: they are on disk and come back at the next
/// start. The decision and the closing of the listening channel happen
/// in one event-loop turn of the listening channel, the loop that accepts: once
/// the server decided to leave it accepts nothing more, and a connection that
/// arrives afterwards waits in the listening socket's backlog (systemd keeps its
/// own copy of the socket) for the next start.
final class IdleExitMonitor: Sendable {
    /// Connections accepted and not yet closed (any state).
    let openConnections = Atomic<Int>(0)

    /// The handler for the listening channel's pipeline: counts each accepted
    /// child before the bootstrap's acceptor sees it.
    func makeAcceptCounter() -> AcceptCounter {
        AcceptCounter(monitor: self)
    }

    /// Whether the server is idle right now.
    func isIdle(registry: SessionRegistry) -> Bool {
        guard openConnections.load(ordering: .acquiring) == 0 else { return false }
        let statistics = registry.statistics()
        let sessionsAreDurable = !registry.store.location.isEmpty
        return (sessionsAreDurable || statistics.sessionsTotal == 0)
            && statistics.turnsInFlight == 0
            && statistics.queuedPrompts == 0
    }

    /// Checks every so often on the listening channel's loop; calls `exit` (on
    /// that loop) once the server has been idle for `limit`. Returns the repeated
    /// task, to be cancelled when the server stops for another reason.
    func watch(
        limit: Duration,
        registry: SessionRegistry,
        on eventLoop: any EventLoop,
        exit: @escaping @Sendable () -> Void
    ) -> RepeatedTask {
        let period = max(.milliseconds(10), min(.seconds(1), limit / 5))
        let idleSince = NIOLoopBoundBox<NIODeadline?>.makeEmptyBox(eventLoop: eventLoop)
        return eventLoop.scheduleRepeatedTask(initialDelay: TimeAmount(period), delay: TimeAmount(period)) { task in
            guard self.isIdle(registry: registry) else {
                idleSince.value = nil
                return
            }
            let now = NIODeadline.now()
            guard let since = idleSince.value else {
                idleSince.value = now
                return
            }
            if now - since >= TimeAmount(limit) {
                task.cancel()
                exit()
            }
        }
    }
}

/// Counts accepted connections for ``IdleExitMonitor`` (see there).
final class AcceptCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let monitor: IdleExitMonitor

    init(monitor: IdleExitMonitor) {
        self.monitor = monitor
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = Self.unwrapInboundIn(data)
        let monitor = self.monitor
        monitor.openConnections.wrappingAdd(1, ordering: .releasing)
        child.closeFuture.whenComplete { _ in
            monitor.openConnections.wrappingSubtract(1, ordering: .releasing)
        }
        context.fireChannelRead(data)
    }
}
