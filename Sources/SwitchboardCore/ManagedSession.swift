import Logging
import Synchronization
import SwitchboardProtocol

/// The lifecycle published in a session's atomic state word.
package enum SessionLifecycle: UInt8, Sendable {
    case idle = 1
    case busy = 2
    case closed = 3

    var wireState: SessionState {
        switch self {
        case .idle: .idle
        case .busy: .busy
        case .closed: .closed
        }
    }
}

/// One live session: its immutable settings, its FIFO turn queue, and the atomics
/// that status and idle cleanup read without taking any lock.
///
/// The queue's `Mutex` is only held for short, synchronous bookkeeping (admit,
/// grant, end, snapshot); a running turn holds the queue's *slot*, never the lock.
package final class ManagedSession: Sendable {
    package let id: String
    let labels: [Label]
    /// Effective settings (server defaults filled in).
    let settings: SessionSettings
    let ownerUID: UInt32
    let createdAtMs: UInt64
    let backend: any Backend
    let turnDeadline: Duration
    let stallTimeout: Duration
    let idleTimeout: Duration
    let logger: Logger
    /// Where its turns are recorded (never called under the queue lock).
    let store: any SessionStore

    private let counters: RegistryCounters
    private let lifecycle = Atomic<UInt8>(SessionLifecycle.idle.rawValue)
    private let lastActivity: Atomic<UInt64>
    private let queueDepth = Atomic<Int>(0)
    private let queue: Mutex<TurnQueue>
    /// False while `createSession` waits for the store: lookups and listings do not
    /// see the session until it is durable (its id is taken all the same).
    private let visible: Atomic<Bool>

    /// `restored` carries what a session loaded from the store already has: its
    /// times, completed-turn count and finished turns (oldest first).
    init(
        id: String,
        labels: [Label],
        settings: SessionSettings,
        ownerUID: UInt32,
        backend: any Backend,
        historyLimit: Int,
        counters: RegistryCounters,
        logger: Logger,
        store: any SessionStore,
        visible: Bool = true,
        restored: RestoredState? = nil
    ) {
        self.id = id
        self.labels = labels
        self.settings = settings
        self.ownerUID = ownerUID
        self.backend = backend
        self.turnDeadline = .milliseconds(Int64(clamping: settings.turnDeadlineMs))
        self.stallTimeout = .milliseconds(Int64(clamping: settings.stallTimeoutMs))
        self.idleTimeout = .milliseconds(Int64(clamping: settings.idleTimeoutMs))
        self.counters = counters
        var logger = logger
        logger[metadataKey: "session"] = "\(id)"
        self.logger = logger
        self.store = store
        self.visible = Atomic(visible)
        let now = EpochClock.nowMs()
        self.createdAtMs = restored?.createdAtMs ?? now
        self.lastActivity = Atomic(restored?.lastActivityMs ?? now)
        self.queue = Mutex(TurnQueue(
            maxQueued: Int(settings.maxQueuedPrompts),
            historyLimit: historyLimit,
            history: restored?.history ?? [],
            turnsCompleted: restored?.turnsCompleted ?? 0
        ))
    }

    struct RestoredState: Sendable {
        var createdAtMs: UInt64
        var lastActivityMs: UInt64
        var turnsCompleted: UInt64
        var history: [TurnSummary]
    }

    /// The session as the store keeps it.
    func stored() -> StoredSession {
        StoredSession(
            id: id,
            labels: labels,
            settings: settings,
            ownerUID: ownerUID,
            createdAtMs: createdAtMs,
            lastActivityMs: lastActivityMs
        )
    }

    var isVisible: Bool { visible.load(ordering: .acquiring) }

    func becomeVisible() {
        visible.store(true, ordering: .releasing)
    }

    /// A closed session waiting for the store to delete it: its id stays taken,
    /// lookups and listings no longer see it.
    func becomeInvisible() {
        visible.store(false, ordering: .releasing)
    }

    // MARK: Lock-free reads

    package var state: SessionLifecycle {
        SessionLifecycle(rawValue: lifecycle.load(ordering: .acquiring)) ?? .closed
    }

    var lastActivityMs: UInt64 { lastActivity.load(ordering: .relaxed) }

    var queuedPrompts: Int { queueDepth.load(ordering: .relaxed) }

    func touch() {
        lastActivity.store(EpochClock.nowMs(), ordering: .relaxed)
    }

    /// Cheap pre-check for idle cleanup (atomics only); `closeIfIdle` rechecks.
    func looksIdleExpired(nowMs: UInt64) -> Bool {
        state == .idle && queuedPrompts == 0 && isExpired(nowMs: nowMs)
    }

    private func isExpired(nowMs: UInt64) -> Bool {
        let idleMs = UInt64(max(0, idleTimeout.milliseconds))
        return nowMs >= lastActivityMs &+ idleMs
    }

    // MARK: Critical sections

    /// Runs `body` under the queue lock, publishes the resulting state to the atomics
    /// and registry counters (still under the lock, so transitions stay ordered),
    /// then performs the collected effects after unlocking.
    private func withQueue<Result: Sendable, Failure: Error>(
        _ body: (inout TurnQueue, inout TurnQueueEffects) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let (result, effects) = try queue.withLockAnnotated { queue throws(Failure) -> (Result, TurnQueueEffects) in
            var effects = TurnQueueEffects()
            let result = try body(&queue, &effects)
            publish(&queue)
            return (result, effects)
        }
        effects.perform()
        for finished in effects.finished {
            recordFinished(finished.log, outcome: finished.outcome, endedAtMs: finished.endedAtMs)
        }
        return result
    }

    /// Records a turn's end in the store (unless its accepted record is still being
    /// written: then that writer records it, see ``TurnLog``) and tells its attachers.
    private func recordFinished(_ log: TurnLog, outcome: TurnOutcome, endedAtMs: UInt64) {
        let ending = StoredTurnEnding(
            code: outcome.code,
            message: outcome.message,
            stopReason: outcome.finished.stopReason,
            endedAtMs: endedAtMs
        )
        if log.mayRecordEnding(ending) {
            store.recordTurnFinished(sessionID: id, turnID: log.turnID, ending: ending)
        }
        log.finish(outcome)
    }

    private func publish(_ queue: inout TurnQueue) {
        let newState: SessionLifecycle =
            queue.isClosed ? .closed : (queue.running != nil ? .busy : .idle)
        let oldRaw = lifecycle.exchange(newState.rawValue, ordering: .acquiringAndReleasing)
        if let oldState = SessionLifecycle(rawValue: oldRaw) {
            counters.stateChanged(from: oldState, to: newState)
        }
        let newDepth = queue.waiting.count
        let oldDepth = queueDepth.exchange(newDepth, ordering: .relaxed)
        counters.queueDepthChanged(from: oldDepth, to: newDepth)
        let hasRunning = queue.running != nil
        if hasRunning != queue.publishedRunning {
            queue.publishedRunning = hasRunning
            counters.runningTurns.wrappingAdd(hasRunning ? 1 : -1, ordering: .relaxed)
        }
    }

    // MARK: Turns

    /// Admits a prompt (see `SessionRegistry.submitPrompt`).
    package func submit(
        _ request: PromptRequest,
        deadline: ContinuousClock.Instant?
    ) throws(SwitchboardError) -> PendingTurn {
        let turnID = IDGenerator.turnID()
        let preview = Self.preview(of: request.prompt)
        let log = TurnLog(sessionID: id, turnID: turnID)
        let now = EpochClock.nowMs()
        let (serial, position) = try withQueue { queue, _ throws(SwitchboardError) in
            try queue.enqueue(
                turnID: turnID,
                promptPreview: preview,
                acceptedAtMs: now,
                log: log,
                whenBusy: request.whenBusy,
                sessionID: id
            )
        }
        touch()
        store.recordTurnAccepted(StoredTurn(
            sessionID: id,
            turnID: turnID,
            prompt: request.prompt,
            state: .queued,
            acceptedAtMs: now
        ))
        if let ending = log.acceptedRecorded() {
            store.recordTurnFinished(sessionID: id, turnID: turnID, ending: ending)
        }
        logger.debug("prompt accepted", metadata: ["turn": "\(turnID)", "queue_position": "\(position)"])
        return PendingTurn(
            session: self,
            serial: serial,
            log: log,
            turnID: turnID,
            queuePosition: position,
            prompt: request.prompt,
            callDeadline: deadline
        )
    }

    func claimRun(_ serial: UInt64) -> RunClaim {
        withQueue { queue, _ in queue.claimRun(serial) }
    }

    /// Suspends until the turn holds the slot or has ended. Cancellation is handled
    /// by the caller (it ends the turn, which resumes this wait).
    func waitForSlot(_ serial: UInt64) async -> SlotDecision {
        await withCheckedContinuation { (waiter: CheckedContinuation<SlotDecision, Never>) in
            if let decision = withQueue({ queue, _ in queue.park(serial, waiter: waiter) }) {
                waiter.resume(returning: decision)
            }
        }
    }

    func startExecuting(_ serial: UInt64, controller: TurnController, log: TurnLog) -> TurnOutcome? {
        let now = EpochClock.nowMs()
        let outcome = withQueue { queue, _ in queue.startExecuting(serial, controller: controller, nowMs: now) }
        if outcome == nil {
            touch()
            store.recordTurnStarted(sessionID: id, turnID: log.turnID, atMs: now)
            log.markStarted()
        }
        return outcome
    }

    func finishExecuting(_ serial: UInt64, outcome: TurnOutcome) {
        touch()
        store.recordActivity(sessionID: id, atMs: lastActivityMs)
        let now = EpochClock.nowMs()
        withQueue { queue, effects in
            queue.finishExecuting(serial, outcome: outcome, nowMs: now, effects: &effects)
        }
        counters.turnsCompleted.wrappingAdd(1, ordering: .relaxed)
    }

    /// Ends one turn (see `TurnQueue.end`).
    func end(_ serial: UInt64, with ending: TurnEnding, onlyIfWaiting: Bool = false) {
        let now = EpochClock.nowMs()
        withQueue { queue, effects in
            _ = queue.end(serial, with: ending, onlyIfWaiting: onlyIfWaiting, nowMs: now, effects: &effects)
        }
    }

    func abandon(_ serial: UInt64) {
        let now = EpochClock.nowMs()
        withQueue { queue, effects in queue.abandon(serial, nowMs: now, effects: &effects) }
    }

    // MARK: Lifecycle

    /// Closes the session: fails queued prompts, cancels the running turn without
    /// waiting for it. NOT_FOUND when it was already closed (it is going away).
    func close(reason: String) throws(SwitchboardError) -> CloseSessionResponse {
        let now = EpochClock.nowMs()
        let (cancelled, rejected) = try withQueue { queue, effects throws(SwitchboardError) in
            if queue.isClosed {
                throw SwitchboardError(code: .notFound, message: "session \"\(id)\" not found")
            }
            return queue.close(reason: reason, nowMs: now, effects: &effects)
        }
        logger.info(
            "session closed",
            metadata: ["reason": "\(reason)", "cancelled_turns": "\(cancelled)", "rejected_prompts": "\(rejected)"]
        )
        return CloseSessionResponse(
            session: snapshot(),
            cancelledTurns: UInt32(cancelled),
            rejectedPrompts: UInt32(rejected)
        )
    }

    /// Idle cleanup's short critical section: closes only if still idle, with nothing
    /// queued and no activity for the idle timeout.
    func closeIfIdle(nowMs: UInt64) -> Bool {
        let closed = withQueue { queue, _ in
            isExpired(nowMs: nowMs) && queue.closeIfIdle(reason: "idle timeout")
        }
        if closed { logger.info("session closed: idle timeout") }
        return closed
    }

    /// Cancels the running turn and fails the queued ones; the session stays open.
    func cancelAllTurns(reason: String) {
        let now = EpochClock.nowMs()
        let (cancelled, rejected) = withQueue { queue, effects in
            queue.endAll(with: .cancelled(reason), nowMs: now, effects: &effects)
        }
        if cancelled + rejected > 0 {
            logger.info(
                "turns cancelled",
                metadata: ["reason": "\(reason)", "cancelled_turns": "\(cancelled)", "rejected_prompts": "\(rejected)"]
            )
        }
    }

    /// What an attacher follows (see `TurnQueue.attachTarget`).
    func attachTarget(turnID: String) -> AttachTarget? {
        queue.withLockAnnotated { $0.attachTarget(turnID: turnID) }
    }

    // MARK: Snapshots

    func snapshot() -> Session {
        let (queued, currentTurnID, completed) = queue.withLockAnnotated { queue in
            (queue.waiting.count, queue.runningTurnID ?? "", queue.turnsCompleted)
        }
        return makeSession(queued: queued, currentTurnID: currentTurnID, turnsCompleted: completed)
    }

    func status() -> SessionStatus {
        let (queued, currentTurnID, completed, turns) = queue.withLockAnnotated { queue in
            (queue.waiting.count, queue.runningTurnID ?? "", queue.turnsCompleted, queue.summaries())
        }
        return SessionStatus(
            session: makeSession(queued: queued, currentTurnID: currentTurnID, turnsCompleted: completed),
            turns: turns
        )
    }

    private func makeSession(queued: Int, currentTurnID: String, turnsCompleted: UInt64) -> Session {
        Session(
            id: id,
            labels: labels,
            settings: settings,
            state: state.wireState,
            createdAtMs: createdAtMs,
            lastActivityMs: lastActivityMs,
            queuedPrompts: UInt32(clamping: queued),
            currentTurnID: currentTurnID,
            turnsCompleted: turnsCompleted,
            ownerUID: ownerUID
        )
    }

    /// The first at most 200 bytes of `prompt`, cut at a character boundary.
    static func preview(of prompt: String) -> String {
        let limit = 200
        if prompt.utf8.count <= limit { return prompt }
        var end = prompt.startIndex
        var bytes = 0
        for character in prompt {
            let size = character.utf8.count
            if bytes + size > limit { break }
            bytes += size
            end = prompt.index(after: end)
        }
        return String(prompt[..<end])
    }
}
