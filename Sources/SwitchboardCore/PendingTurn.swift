import Logging
import SwitchboardProtocol

/// A prompt accepted into a session's queue: the handle the caller runs (or cancels).
///
/// `submitPrompt` admits it synchronously; `run` then waits for the session's FIFO
/// slot, runs the backend and reports how the turn ended. A turn that is never run
/// leaves the queue when its handle is released.
public final class PendingTurn: Sendable {
    public let turnID: String
    public let sessionID: String
    /// At acceptance: 0 = runs now; N = N turns ahead of it (the running one included).
    public let queuePosition: Int

    private let session: ManagedSession
    private let serial: UInt64
    private let log: TurnLog
    private let prompt: String
    private let callDeadline: ContinuousClock.Instant?

    init(
        session: ManagedSession,
        serial: UInt64,
        log: TurnLog,
        turnID: String,
        queuePosition: Int,
        prompt: String,
        callDeadline: ContinuousClock.Instant?
    ) {
        self.session = session
        self.serial = serial
        self.log = log
        self.turnID = turnID
        self.sessionID = session.id
        self.queuePosition = queuePosition
        self.prompt = prompt
        self.callDeadline = callDeadline
    }

    deinit {
        session.abandon(serial)
    }

    /// Waits for the session's FIFO slot, runs the backend, emits `.started` and
    /// `.output` through `sink` (which may suspend: that is the backpressure), and
    /// returns how the turn ended. Cancelling the calling task cancels the turn
    /// (dequeues it, or cancels the running backend). Never throws: every end is a
    /// ``TurnOutcome`` with a status. The sink should return promptly (or throw) when
    /// its task is cancelled. A second call returns FAILED_PRECONDITION.
    public func run(sink: @escaping @Sendable (TurnEvent) async throws -> Void) async -> TurnOutcome {
        await withTaskCancellationHandler {
            await runToEnd(sink: sink)
        } onCancel: {
            cancel(reason: "turn cancelled by its caller")
        }
    }

    /// Cancels the turn from outside its task (a Cancel frame, a vanished client):
    /// a queued turn leaves the queue, a running one has its backend cancelled. The
    /// turn ends CANCELLED with `reason`; no effect once it has ended.
    public func cancel(reason: String) {
        session.end(serial, with: .cancelled(reason))
    }

    private func runToEnd(sink: @escaping @Sendable (TurnEvent) async throws -> Void) async -> TurnOutcome {
        switch session.claimRun(serial) {
        case .alreadyClaimed:
            return TurnOutcome(
                turnID: turnID,
                ending: TurnEnding(code: .failedPrecondition, message: "turn \(turnID) was already run", stopReason: "error")
            )
        case .ended(let outcome):
            return outcome
        case .granted:
            break
        case .mustWait:
            if case .ended(let outcome) = await waitForSlot() { return outcome }
        }
        return await execute(sink: sink)
    }

    /// Waits in the FIFO; the call's own deadline also applies while waiting.
    private func waitForSlot() async -> SlotDecision {
        // A timer, not a sleeping task: see `DeadlineTimer`.
        let expiry = callDeadline.map { deadline in
            DeadlineTimer(deadline: deadline) { [session, serial] in
                session.end(serial, with: .deadlineWhileQueued, onlyIfWaiting: true)
            }
        }
        defer { expiry?.cancel() }
        return await session.waitForSlot(serial)
    }

    private func execute(sink: @escaping @Sendable (TurnEvent) async throws -> Void) async -> TurnOutcome {
        let startedAt = ContinuousClock.now
        // A zero turn deadline means none; "none" is a date no turn will see.
        var deadline = startedAt + (session.turnDeadline > .zero ? session.turnDeadline : .seconds(1 << 31))
        if let callDeadline, callDeadline < deadline { deadline = callDeadline }
        let controller = TurnController(
            turnID: turnID,
            startedAt: startedAt,
            deadline: deadline,
            stallTimeout: session.stallTimeout,
            session: session,
            log: log,
            sink: sink
        )
        if let outcome = session.startExecuting(serial, controller: controller, log: log) { return outcome }
        let logger = session.logger
        logger.debug("turn started", metadata: ["turn": "\(turnID)"])

        controller.startWatchdog()
        await controller.emitStarted()
        let request = TurnRequest(
            sessionID: sessionID,
            turnID: turnID,
            prompt: prompt,
            labels: session.labels,
            deadline: deadline
        )
        let backend = session.backend
        let output = TurnOutput { data in try await controller.write(data) }
        let backendTask = controller.launch {
            Task {
                controller.backendStarted()
                return try await backend.runTurn(request, output: output)
            }
        }
        let result: Result<String, any Error> = if let backendTask {
            await backendTask.result
        } else {
            .failure(CancellationError())
        }
        controller.stopWatchdog()

        let (ended, endedByCore) = controller.complete(with: result)
        session.finishExecuting(serial, outcome: ended)
        // The session's next turn may start meanwhile: only this answer waits.
        let outcome = await session.store.confirmingDurability(of: ended)
        if outcome.code != ended.code {
            logger.warning("turn not stored: \(outcome.message)", metadata: ["turn": "\(turnID)"])
        }
        let metadata: Logger.Metadata = [
            "turn": "\(turnID)",
            "code": "\(outcome.code.name)",
            "stop_reason": "\(outcome.finished.stopReason)",
            "chunks": "\(outcome.finished.chunks)",
            "duration_ms": "\(outcome.finished.durationMs)",
        ]
        if endedByCore {
            logger.info("turn ended early: \(outcome.message)", metadata: metadata)
        } else {
            logger.debug("turn finished", metadata: metadata)
        }
        return outcome
    }
}
