import Logging
import NIOCore
import Synchronization
import SwitchboardCore
import SwitchboardProtocol

/// One `/switchboard.v1.Workers/Connect` call: a worker process's membership in
/// its task queue's pool.
///
/// Messages from the worker are handled on the connection's event loop (pool
/// bookkeeping only, never an await). Commands to the worker (registered,
/// assignments, cancellations, heartbeats) are small and bounded by the worker's
/// capacity, so they are written without backpressure: `send` hops to the event
/// loop and never suspends, which keeps the pool's critical sections free of I/O.
///
/// Liveness: once registered, the server sends a heartbeat every
/// `heartbeatInterval`; a worker it has heard nothing from (any message, heartbeat
/// answers included) for `heartbeatTimeout` is dropped: removed from the pool, its
/// turns end UNAVAILABLE, the call ends UNAVAILABLE, and, when it was the
/// connection's only call, the connection ends with GoAway(UNAVAILABLE) and closes.
///
/// Backpressure: a turn's output waits for its prompting client in a per-turn
/// backlog bounded by `maxBufferedOutputBytesPerCall`. Over the bound the server
/// stops reading the worker's connection (every call on it, so all of the
/// worker's turns pause: the worker protocol has no per-turn flow control) until
/// the backlog is down to half. Time spent paused does not count against the
/// heartbeat timeout: the server, not the worker, stopped listening.
final class WorkerCall: WorkerLink, Sendable {
    let callID: UInt64
    private let server: ServerContext
    private let eventLoop: any EventLoop
    private let handler: NIOLoopBound<ConnectionHandler>
    private let logger: Logger
    private let heartbeatInterval: Duration
    private let heartbeatTimeout: Duration
    private let origin = ContinuousClock.now
    /// Nanoseconds after `origin` when the worker last sent anything.
    private let lastHeardNanoseconds = Atomic<Int64>(0)
    /// The server is not reading this call's connection (set on the event loop).
    private let readsPaused = Atomic<Bool>(false)
    private let state = Mutex(State())

    private struct State {
        var worker: RegisteredWorker?
        var ended = false
        var heartbeat: Task<Void, Never>?
        /// Turns whose output backlog is over the limit.
        var backloggedTurns: Set<String> = []
    }

    init(
        callID: UInt64,
        server: ServerContext,
        eventLoop: any EventLoop,
        handler: NIOLoopBound<ConnectionHandler>,
        logger: Logger
    ) {
        self.callID = callID
        self.server = server
        self.eventLoop = eventLoop
        self.handler = handler
        self.logger = logger
        self.heartbeatInterval = server.configuration.workerHeartbeatInterval
        self.heartbeatTimeout = server.configuration.workerHeartbeatTimeout
    }

    // MARK: From the worker (event loop)

    /// One message of the call (nil: a half-close or a payload this build does not know).
    func receive(_ payload: Payload?, halfClose: Bool) {
        heard()
        if let payload {
            guard case .workerMessage(let message) = payload else {
                end(.invalidArgument, "\(MethodName.workerConnect) expects worker_message payloads, got \(payload.caseName)")
                return
            }
            handle(message)
        } else if !halfClose {
            end(.invalidArgument, "\(MethodName.workerConnect): a message without a worker_message payload")
            return
        }
        if halfClose {
            end(.ok, "worker half-closed", reason: "the worker closed its call")
        }
    }

    private func handle(_ message: WorkerMessage) {
        let worker = state.withLockAnnotated { $0.ended ? nil : $0.worker }
        switch message {
        case .register(let request):
            register(request)
            return
        case .heartbeatAck:
            return
        case .output, .finished, .failed:
            break
        }
        guard let worker else {
            if !state.withLockAnnotated({ $0.ended }) {
                end(.failedPrecondition, "the first message of a worker call must be register")
            }
            return
        }
        do throws(SwitchboardError) {
            switch message {
            case .output(let turnID, let data):
                try worker.output(turnID: turnID, data: data)
            case .finished(let turnID, let stopReason):
                try worker.finish(turnID: turnID, stopReason: stopReason)
            case .failed(let turnID, let code, let message):
                try worker.fail(turnID: turnID, code: code, message: message)
            case .register, .heartbeatAck:
                break
            }
        } catch {
            end(error.code, error.message, reason: "protocol error: \(error.message)")
        }
    }

    private func register(_ request: WorkerRegister) {
        let alreadyRegistered = state.withLockAnnotated { $0.worker != nil || $0.ended }
        guard !alreadyRegistered else {
            end(.failedPrecondition, "the worker is already registered on this call")
            return
        }
        let worker: RegisteredWorker
        do throws(SwitchboardError) {
            worker = try server.registry.workers.register(request, link: self) { id in
                send(.registered(WorkerRegistered(
                    workerID: id,
                    heartbeatIntervalMs: UInt64(heartbeatInterval.milliseconds),
                    heartbeatTimeoutMs: UInt64(heartbeatTimeout.milliseconds)
                )))
            }
        } catch {
            end(error.code, error.message)
            return
        }
        let task = Task { [self] in await heartbeatLoop() }
        let stillOpen = state.withLockAnnotated { state in
            guard !state.ended else { return false }
            state.worker = worker
            state.heartbeat = task
            return true
        }
        guard stillOpen else {
            task.cancel()
            worker.deregister(reason: "the call ended during registration")
            return
        }
        logger.info(
            "worker registered",
            metadata: ["worker": "\(worker.id)", "queue": "\(request.taskQueue)", "capacity": "\(request.capacity)"]
        )
    }

    /// The cancel frame, a closed connection or shutdown: the worker leaves its pool.
    func cancelled(reason: String) {
        end(.cancelled, reason, reason: reason)
    }

    // MARK: To the worker

    func send(_ command: WorkerCommand) {
        write(Frame(callID: callID, kind: .message(CallMessage(payload: .workerCommand(command)))))
    }

    private func write(_ frame: Frame, closingConnection: Bool = false) {
        let handler = self.handler
        eventLoop.execute {
            if closingConnection {
                handler.value.endWorkerCallClosingConnection(frame)
            } else {
                handler.value.writeWorkerFrame(frame)
            }
        }
    }

    // MARK: Flow control (WorkerLink)

    var outputBacklogLimit: Int { server.configuration.maxBufferedOutputBytesPerCall }

    func outputBacklog(turnID: String, paused: Bool) {
        let changed = state.withLockAnnotated { state in
            let wasEmpty = state.backloggedTurns.isEmpty
            if paused { state.backloggedTurns.insert(turnID) } else { state.backloggedTurns.remove(turnID) }
            return wasEmpty != state.backloggedTurns.isEmpty
        }
        guard changed else { return }
        // Applied on the loop with the state current *then*, so pause and resume
        // requests from different threads cannot be applied out of order. On the
        // loop already (output being read), at once: no further read starts.
        if eventLoop.inEventLoop {
            syncReadPause()
        } else {
            eventLoop.execute { [self] in syncReadPause() }
        }
    }

    /// On the event loop: asks the connection to pause or resume reading.
    private func syncReadPause() {
        let wantsPause = state.withLockAnnotated { !$0.ended && !$0.backloggedTurns.isEmpty }
        handler.value.setReadsPaused(wantsPause, by: callID)
    }

    /// The connection stopped (true) or resumed (false) reading, for this call's
    /// backlog or another one's (event loop).
    func readsPausedChanged(_ paused: Bool) {
        // Refreshed first, so the liveness check never sees the old silence unpaused.
        if !paused { heard() }
        readsPaused.store(paused, ordering: .relaxed)
    }

    /// Ends the call once: deregisters the worker (its turns end UNAVAILABLE) and
    /// writes `CallEnd(code, message)`; with `closingConnection`, the connection
    /// then closes if this was its only call.
    func end(_ code: StatusCode, _ message: String, reason: String? = nil, closingConnection: Bool = false) {
        let (first, worker, heartbeat) = state.withLockAnnotated { state in
            guard !state.ended else { return (false, RegisteredWorker?.none, Task<Void, Never>?.none) }
            state.ended = true
            state.backloggedTurns = []
            defer { state.heartbeat = nil }
            return (true, state.worker, state.heartbeat)
        }
        guard first else { return }
        heartbeat?.cancel()
        if let worker {
            worker.deregister(reason: reason ?? message)
            logger.info("worker left", metadata: ["worker": "\(worker.id)", "reason": "\(reason ?? message)"])
        }
        write(Frame(callID: callID, kind: .end(CallEnd(code: code, message: message))), closingConnection: closingConnection)
    }

    /// The connection is gone: nothing can be written any more.
    func connectionClosed() {
        end(.unavailable, "connection closed", reason: "connection closed")
    }

    // MARK: Liveness

    private func heard() {
        let (seconds, attoseconds) = origin.duration(to: .now).components
        lastHeardNanoseconds.store(seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000, ordering: .relaxed)
    }

    private func heartbeatLoop() async {
        var nonce: UInt64 = 0
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: heartbeatInterval)
            } catch {
                return
            }
            let lastHeard = origin + .nanoseconds(lastHeardNanoseconds.load(ordering: .relaxed))
            // While the server is not reading the connection (output backlog),
            // silence says nothing about the worker; the clock restarts on resume.
            if !readsPaused.load(ordering: .relaxed), lastHeard.duration(to: .now) > heartbeatTimeout {
                let ms = heartbeatTimeout.milliseconds
                end(.unavailable, "worker missed its heartbeats (nothing heard for \(ms) ms)",
                    reason: "missed heartbeats for \(ms) ms", closingConnection: true)
                return
            }
            nonce &+= 1
            send(.heartbeat(nonce: nonce))
        }
    }
}
