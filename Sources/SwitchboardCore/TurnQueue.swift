import SwitchboardProtocol

/// Where a turn stands in its session.
enum TurnPhase: Sendable {
    /// Waiting in the FIFO behind the slot holder.
    case queued
    /// Holds the session's slot; its `run` has not started the backend yet.
    case granted
    /// Holds the slot and its backend is running.
    case executing(TurnController, startedAtMs: UInt64)
    /// Ended before its backend ran (cancelled, closed, expired); `run` reports this.
    case ended(TurnOutcome)
}

/// What a turn waiting for the slot is woken with.
enum SlotDecision: Sendable {
    case granted
    case ended(TurnOutcome)
}

/// What `PendingTurn.run` finds when it starts.
enum RunClaim: Sendable {
    case mustWait
    case granted
    case ended(TurnOutcome)
    case alreadyClaimed
}

struct TurnRecord: Sendable {
    let turnID: String
    let promptPreview: String
    let acceptedAtMs: UInt64
    /// Followed by attachers; told how the turn ended.
    let log: TurnLog
    var phase: TurnPhase
    /// Set while `run` is suspended waiting for the slot.
    var waiter: CheckedContinuation<SlotDecision, Never>?
    var runClaimed = false
}

/// What `TurnQueue.attachTarget` finds.
enum AttachTarget: Sendable {
    case live(TurnLog)
    case finished(TurnSummary)
}

/// Work decided under the session lock and done after releasing it: resuming
/// waiters and cancelling backends never happens inside the critical section.
struct TurnQueueEffects: Sendable {
    var resumes: [(CheckedContinuation<SlotDecision, Never>, SlotDecision)] = []
    var endings: [(TurnController, TurnEnding)] = []
    /// Turns that ended in this critical section: recorded in the store and
    /// announced to their logs by the session, after unlocking.
    var finished: [(log: TurnLog, outcome: TurnOutcome, endedAtMs: UInt64)] = []

    func perform() {
        for (controller, ending) in endings { controller.end(ending) }
        for (waiter, decision) in resumes { waiter.resume(returning: decision) }
    }
}

/// A session's strict-FIFO turn queue: the state behind its `Mutex`.
///
/// Exactly one turn holds the slot (`running`) at a time; holding it *is* the turn
/// lock. When the holder ends, the slot goes to the head of `waiting` under the
/// same lock, so a wake-up cannot be lost, and a waiter that is cancelled is simply
/// removed from `waiting`, which keeps the others in order. Nothing here blocks or
/// awaits; side effects are returned in ``TurnQueueEffects``.
struct TurnQueue: Sendable {
    let maxQueued: Int
    let historyLimit: Int

    private(set) var records: [UInt64: TurnRecord] = [:]
    /// The slot holder.
    private(set) var running: UInt64?
    /// Turns waiting for the slot, oldest first.
    private(set) var waiting: [UInt64] = []
    private(set) var closeReason: String?
    /// Finished turns, oldest first, at most `historyLimit`.
    private(set) var history: [TurnSummary] = []
    private(set) var turnsCompleted: UInt64 = 0
    /// What was last published to the registry counters (see `ManagedSession`).
    var publishedRunning = false
    private var nextSerial: UInt64 = 0

    init(maxQueued: Int, historyLimit: Int, history: [TurnSummary] = [], turnsCompleted: UInt64 = 0) {
        self.maxQueued = maxQueued
        self.historyLimit = historyLimit
        self.history = Array(history.suffix(max(0, historyLimit)))
        self.turnsCompleted = turnsCompleted
    }

    var isClosed: Bool { closeReason != nil }

    var runningTurnID: String? { running.flatMap { records[$0]?.turnID } }

    /// Admits a prompt: it takes the slot at once, or waits, or is refused.
    mutating func enqueue(
        turnID: String,
        promptPreview: String,
        acceptedAtMs: UInt64,
        log: TurnLog,
        whenBusy: BusyPolicy,
        sessionID: String
    ) throws(SwitchboardError) -> (serial: UInt64, position: Int) {
        if closeReason != nil {
            throw SwitchboardError(code: .failedPrecondition, message: "session \"\(sessionID)\" is closed")
        }
        let position = (running == nil ? 0 : 1) + waiting.count
        if position > 0 {
            if whenBusy == .reject {
                throw SwitchboardError(
                    code: .failedPrecondition,
                    message: "session \"\(sessionID)\" is busy (\(position) turn(s) running or queued)"
                )
            }
            if waiting.count >= maxQueued {
                throw SwitchboardError(
                    code: .resourceExhausted,
                    message: "session \"\(sessionID)\" queue is full (\(maxQueued) prompts waiting)"
                )
            }
        }
        nextSerial += 1
        let serial = nextSerial
        var record = TurnRecord(
            turnID: turnID,
            promptPreview: promptPreview,
            acceptedAtMs: acceptedAtMs,
            log: log,
            phase: .queued
        )
        if position == 0 {
            record.phase = .granted
            running = serial
        } else {
            waiting.append(serial)
        }
        records[serial] = record
        return (serial, position)
    }

    mutating func claimRun(_ serial: UInt64) -> RunClaim {
        guard var record = records[serial] else { return .alreadyClaimed }
        if record.runClaimed { return .alreadyClaimed }
        record.runClaimed = true
        switch record.phase {
        case .queued:
            records[serial] = record
            return .mustWait
        case .granted:
            records[serial] = record
            return .granted
        case .ended(let outcome):
            records[serial] = nil
            return .ended(outcome)
        case .executing:
            records[serial] = record
            return .alreadyClaimed
        }
    }

    /// Parks `waiter` until the slot is granted, or returns the decision at once
    /// when it is already known (the caller then resumes it after unlocking).
    mutating func park(_ serial: UInt64, waiter: CheckedContinuation<SlotDecision, Never>) -> SlotDecision? {
        guard let record = records[serial] else {
            return .ended(TurnOutcome(turnID: "", ending: .cancelled("turn vanished")))
        }
        switch record.phase {
        case .queued:
            records[serial]?.waiter = waiter
            return nil
        case .granted, .executing:
            return .granted
        case .ended(let outcome):
            records[serial] = nil
            return .ended(outcome)
        }
    }

    /// Marks a granted turn as executing; returns its outcome instead when it was
    /// ended in the meantime.
    mutating func startExecuting(_ serial: UInt64, controller: TurnController, nowMs: UInt64) -> TurnOutcome? {
        guard let record = records[serial] else {
            return TurnOutcome(turnID: controller.turnID, ending: .cancelled("turn vanished"))
        }
        switch record.phase {
        case .granted:
            records[serial]?.phase = .executing(controller, startedAtMs: nowMs)
            return nil
        case .ended(let outcome):
            records[serial] = nil
            return outcome
        case .queued, .executing:
            return TurnOutcome(turnID: record.turnID, ending: .cancelled("turn started twice"))
        }
    }

    /// The executing turn's backend returned: record it and pass the slot on.
    mutating func finishExecuting(_ serial: UInt64, outcome: TurnOutcome, nowMs: UInt64, effects: inout TurnQueueEffects) {
        guard let record = records.removeValue(forKey: serial) else { return }
        var startedAtMs: UInt64 = 0
        if case .executing(_, let started) = record.phase { startedAtMs = started }
        turnsCompleted += 1
        appendHistory(record: record, outcome: outcome, startedAtMs: startedAtMs, nowMs: nowMs, effects: &effects)
        if running == serial { releaseSlot(effects: &effects) }
    }

    /// Ends one turn from outside: a waiting one leaves the queue (or gives up the
    /// slot) with `ending`; an executing one has its controller ended.
    /// With `onlyIfWaiting`, an executing turn is left alone. Returns whether a
    /// queued turn was removed and whether the slot holder was ended.
    @discardableResult
    mutating func end(
        _ serial: UInt64,
        with ending: TurnEnding,
        onlyIfWaiting: Bool = false,
        nowMs: UInt64,
        effects: inout TurnQueueEffects
    ) -> (dequeued: Bool, endedHolder: Bool) {
        guard let record = records[serial] else { return (false, false) }
        switch record.phase {
        case .ended:
            return (false, false)
        case .executing(let controller, _):
            if onlyIfWaiting { return (false, false) }
            effects.endings.append((controller, ending))
            return (false, true)
        case .queued, .granted:
            let wasQueued: Bool
            if case .queued = record.phase { wasQueued = true } else { wasQueued = false }
            let outcome = TurnOutcome(turnID: record.turnID, ending: ending)
            if let waiter = record.waiter {
                // `run` is parked: hand it the outcome; it keeps no record.
                records[serial] = nil
                effects.resumes.append((waiter, .ended(outcome)))
            } else {
                // `run` has not parked yet (or not been called): it collects this later.
                records[serial]?.phase = .ended(outcome)
            }
            appendHistory(record: record, outcome: outcome, startedAtMs: 0, nowMs: nowMs, effects: &effects)
            if wasQueued {
                waiting.removeAll { $0 == serial }
            } else if running == serial {
                releaseSlot(effects: &effects)
            }
            return (wasQueued, !wasQueued)
        }
    }

    /// `PendingTurn` went away without `run` having collected its end.
    mutating func abandon(_ serial: UInt64, nowMs: UInt64, effects: inout TurnQueueEffects) {
        guard records[serial] != nil else { return }
        end(serial, with: .abandoned, nowMs: nowMs, effects: &effects)
        records[serial] = nil
    }

    /// Stops admitting prompts, fails the queued ones and ends the slot holder.
    mutating func close(
        reason: String,
        nowMs: UInt64,
        effects: inout TurnQueueEffects
    ) -> (cancelledTurns: Int, rejectedPrompts: Int) {
        closeReason = reason
        return endAll(with: .sessionClosed(reason), nowMs: nowMs, effects: &effects)
    }

    /// Ends every turn of the session (queued ones first, so none inherits the slot).
    mutating func endAll(
        with ending: TurnEnding,
        nowMs: UInt64,
        effects: inout TurnQueueEffects
    ) -> (cancelledTurns: Int, rejectedPrompts: Int) {
        var rejected = 0
        for serial in waiting {
            if end(serial, with: ending, nowMs: nowMs, effects: &effects).dequeued { rejected += 1 }
        }
        var cancelled = 0
        if let running, end(running, with: ending, nowMs: nowMs, effects: &effects).endedHolder {
            cancelled = 1
        }
        return (cancelled, rejected)
    }

    /// Marks the session closed if it is idle: no slot holder, nothing queued.
    mutating func closeIfIdle(reason: String) -> Bool {
        guard closeReason == nil, running == nil, waiting.isEmpty else { return false }
        closeReason = reason
        return true
    }

    /// Running, queued (in order), then finished turns, most recent first.
    func summaries() -> [TurnSummary] {
        var result: [TurnSummary] = []
        result.reserveCapacity(1 + waiting.count + history.count)
        if let running, let record = records[running] {
            var summary = TurnSummary(
                turnID: record.turnID,
                state: .running,
                promptPreview: record.promptPreview,
                acceptedAtMs: record.acceptedAtMs
            )
            if case .executing(let controller, let startedAtMs) = record.phase {
                summary.startedAtMs = startedAtMs
                summary.chunks = controller.chunks.load(ordering: .relaxed)
                summary.bytes = controller.bytes.load(ordering: .relaxed)
            }
            result.append(summary)
        }
        for serial in waiting {
            if let record = records[serial] {
                result.append(TurnSummary(
                    turnID: record.turnID,
                    state: .queued,
                    promptPreview: record.promptPreview,
                    acceptedAtMs: record.acceptedAtMs
                ))
            }
        }
        result.append(contentsOf: history.reversed())
        return result
    }

    /// The turn an attacher follows: `turnID` empty = the running turn, else the
    /// most recent one; a live turn gives its log, a finished one its summary.
    /// Nil when it is not in memory (older than the history kept here).
    func attachTarget(turnID: String) -> AttachTarget? {
        if turnID.isEmpty {
            if let running, let record = records[running] { return .live(record.log) }
            return history.last.map { .finished($0) }
        }
        if let record = records.values.first(where: { $0.turnID == turnID }) {
            if case .ended = record.phase, let summary = history.last(where: { $0.turnID == turnID }) {
                return .finished(summary)
            }
            return .live(record.log)
        }
        return history.last { $0.turnID == turnID }.map { .finished($0) }
    }

    private mutating func releaseSlot(effects: inout TurnQueueEffects) {
        running = nil
        guard closeReason == nil, !waiting.isEmpty else { return }
        let next = waiting.removeFirst()
        running = next
        records[next]?.phase = .granted
        if let waiter = records[next]?.waiter {
            records[next]?.waiter = nil
            effects.resumes.append((waiter, .granted))
        }
    }

    private mutating func appendHistory(
        record: TurnRecord,
        outcome: TurnOutcome,
        startedAtMs: UInt64,
        nowMs: UInt64,
        effects: inout TurnQueueEffects
    ) {
        effects.finished.append((record.log, outcome, nowMs))
        guard historyLimit > 0 else { return }
        if history.count >= historyLimit { history.removeFirst(history.count - historyLimit + 1) }
        history.append(
            TurnSummary(
                turnID: record.turnID,
                state: .finished,
                code: outcome.code,
                message: outcome.message,
                stopReason: outcome.finished.stopReason,
                chunks: outcome.finished.chunks,
                bytes: outcome.finished.bytes,
                startedAtMs: startedAtMs,
                endedAtMs: nowMs,
                promptPreview: record.promptPreview,
                acceptedAtMs: record.acceptedAtMs
            )
        )
    }
}
