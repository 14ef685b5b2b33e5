import Logging
import NIOCore
import Synchronization
import SwitchboardCore
import SwitchboardProtocol

/// What every connection of one server shares: configuration, the registry, and
/// the few counters and tables that must be visible across event loops.
///
/// Each member is its own short critical section (an `Atomic` or a `Mutex`), so a
/// connection never waits on another connection's work.
final class ServerContext: Sendable {
    let configuration: ServerConfiguration
    let registry: SessionRegistry
    let logger: Logger
    let startedAt: ContinuousClock.Instant
    /// Prompts a session may queue, as announced in `Welcome`.
    let defaultMaxQueuedPrompts: UInt32

    /// Live (admitted) connections, for status. The table below is the authority
    /// for admission; this mirror makes status reads lock-free.
    let connectionCount = Atomic<Int>(0)
    /// Admitted connections whose channel has become active (registered with its
    /// event loop): only those can be written to. Tests wait on it.
    let activeConnectionCount = Atomic<Int>(0)
    /// Mirrors "the table is draining" for the health check and status.
    let draining = Atomic<Bool>(false)
    private let nextConnectionID = Atomic<UInt64>(1)
    private let connections = Mutex(ConnectionTable())
    private let promptTasks = Mutex(TaskCounter())
    /// Tells a timed-out wait's timer apart from a later wait's.
    private let nextWaiterToken = Atomic<UInt64>(1)

    /// Largest number of encoded bytes any streaming call had waiting in its
    /// writer (tests assert the bound).
    let maxPendingOutboundBytes = Atomic<Int>(0)

    init(configuration: ServerConfiguration, registry: SessionRegistry, logger: Logger, defaultMaxQueuedPrompts: UInt32) {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        self.startedAt = .now
        self.defaultMaxQueuedPrompts = defaultMaxQueuedPrompts
    }

    // MARK: Connections

    enum Admission {
        case accepted(connectionID: UInt64)
        case rejected(StatusCode, String)
    }

    func makeConnectionID() -> UInt64 {
        nextConnectionID.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Admits a new connection unless the server is draining or full, or its uid
    /// (when not an administrator) holds `maxConnectionsPerUID` already. O(1).
    func admit(_ handle: ConnectionHandle) -> Admission {
        let limit = configuration.maxConnections
        let perUIDLimit = configuration.maxConnectionsPerUID
        let admission: Admission = connections.withLockAnnotated { table in
            if table.draining {
                return .rejected(.unavailable, "server is shutting down")
            }
            if table.handles.count >= limit {
                return .rejected(.resourceExhausted, "too many connections (limit \(limit))")
            }
            if handle.limitedPerUID {
                let held = table.perUID[handle.peerUID, default: 0]
                if perUIDLimit > 0, held >= perUIDLimit {
                    return .rejected(
                        .resourceExhausted,
                        "too many connections for uid \(handle.peerUID) (limit \(perUIDLimit))"
                    )
                }
                table.perUID[handle.peerUID] = held + 1
            }
            table.handles[handle.connectionID] = handle
            return .accepted(connectionID: handle.connectionID)
        }
        if case .accepted = admission {
            connectionCount.wrappingAdd(1, ordering: .relaxed)
        }
        return admission
    }

    /// Forgets a closed connection; wakes the drain when it was the last one.
    func connectionClosed(_ connectionID: UInt64) {
        let waiter: CheckedContinuation<Void, Never>? = connections.withLockAnnotated { table in
            guard let handle = table.handles.removeValue(forKey: connectionID) else { return nil }
            connectionCount.wrappingSubtract(1, ordering: .relaxed)
            if handle.limitedPerUID {
                let remaining = table.perUID[handle.peerUID, default: 0] - 1
                table.perUID[handle.peerUID] = remaining > 0 ? remaining : nil
            }
            guard table.handles.isEmpty else { return nil }
            defer { table.emptyWaiter = nil }
            return table.emptyWaiter?.continuation
        }
        waiter?.resume()
    }

    /// Marks the server as draining (new connections are refused from now on) and
    /// returns the connections that were admitted before.
    func startDraining() -> [ConnectionHandle] {
        draining.store(true, ordering: .relaxed)
        return connections.withLockAnnotated { table in
            table.draining = true
            return Array(table.handles.values)
        }
    }

    func liveConnections() -> [ConnectionHandle] {
        connections.withLockAnnotated { Array($0.handles.values) }
    }

    /// Waits until no connection is left, or until `timeout` has passed. Not
    /// cancellable on purpose: a drain always runs to its end.
    /// - Returns: true when every connection closed in time.
    func waitForNoConnections(timeout: Duration, on eventLoop: any EventLoop) async -> Bool {
        let token = nextWaiterToken.wrappingAdd(1, ordering: .relaxed).oldValue
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isEmpty = connections.withLockAnnotated { table in
                if table.handles.isEmpty { return true }
                precondition(table.emptyWaiter == nil, "only the drain waits for the connections")
                table.emptyWaiter = (token, continuation)
                return false
            }
            if isEmpty {
                continuation.resume()
                return
            }
            eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in
                let waiter: CheckedContinuation<Void, Never>? = connections.withLockAnnotated { table in
                    guard let waiter = table.emptyWaiter, waiter.token == token else { return nil }
                    table.emptyWaiter = nil
                    return waiter.continuation
                }
                waiter?.resume()
            }
        }
        return connections.withLockAnnotated { $0.handles.isEmpty }
    }

    // MARK: Prompt tasks

    func promptTaskStarted() {
        promptTasks.withLockAnnotated { $0.running += 1 }
    }

    func promptTaskEnded() {
        let waiters = promptTasks.withLockAnnotated { counter in
            counter.running -= 1
            guard counter.running == 0 else { return [(id: UInt64, continuation: CheckedContinuation<Void, Never>)]() }
            defer { counter.waiters = [] }
            return counter.waiters
        }
        for waiter in waiters { waiter.continuation.resume() }
    }

    /// Waits for every prompt task to return (they end soon after their
    /// connection is closed), or until `timeout`.
    func waitForPromptTasks(timeout: Duration, on eventLoop: any EventLoop) async {
        let id = nextWaiterToken.wrappingAdd(1, ordering: .relaxed).oldValue
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = promptTasks.withLockAnnotated { counter in
                if counter.running == 0 { return true }
                counter.waiters.append((id, continuation))
                return false
            }
            if done {
                continuation.resume()
                return
            }
            eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in
                let waiter: CheckedContinuation<Void, Never>? = promptTasks.withLockAnnotated { counter in
                    // Gone when the last task ended first and resumed it.
                    guard let index = counter.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return counter.waiters.remove(at: index).continuation
                }
                waiter?.resume()
            }
        }
    }

    // MARK: Test counters

    func recordPendingOutboundBytes(_ bytes: Int) {
        var current = maxPendingOutboundBytes.load(ordering: .relaxed)
        while bytes > current {
            let (exchanged, original) = maxPendingOutboundBytes.compareExchange(
                expected: current,
                desired: bytes,
                ordering: .relaxed
            )
            if exchanged { return }
            current = original
        }
    }
}

/// How the server reaches a connection's handler from outside its event loop.
struct ConnectionHandle: Sendable {
    let connectionID: UInt64
    let channel: any Channel
    let handler: NIOLoopBound<ConnectionHandler>
    /// The peer's uid, and whether it counts against `maxConnectionsPerUID`
    /// (administrators do not).
    var peerUID: UInt32 = 0
    var limitedPerUID = false

    /// Runs `body` on the connection's event loop with its handler.
    func execute(_ body: @escaping @Sendable (ConnectionHandler) -> Void) {
        let handler = self.handler
        channel.eventLoop.execute { body(handler.value) }
    }

    /// Like ``execute(_:)`` but lets the caller wait for it.
    func submit(_ body: @escaping @Sendable (ConnectionHandler) -> Void) -> EventLoopFuture<Void> {
        let handler = self.handler
        return channel.eventLoop.submit { body(handler.value) }
    }
}

private struct ConnectionTable {
    var handles: [UInt64: ConnectionHandle] = [:]
    /// Admitted connections per uid, of the handles that are `limitedPerUID`.
    var perUID: [UInt32: Int] = [:]
    var draining = false
    var emptyWaiter: (token: UInt64, continuation: CheckedContinuation<Void, Never>)?
}

private struct TaskCounter {
    var running = 0
    /// Each waiter with its id, in one array so a timer and the last task's end
    /// can never disagree about who is still waiting.
    var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
}
