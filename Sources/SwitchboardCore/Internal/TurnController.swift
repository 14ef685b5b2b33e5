import Synchronization
import SwitchboardProtocol

/// The control block of one executing turn: numbers and forwards its output,
/// watches its deadline and stall timer, and cancels its backend task when the turn
/// is ended from outside (close, cancel, deadline, stall, failed sink).
///
/// The first ending wins; once the backend has returned, later endings are ignored.
final class TurnController: Sendable {
    let turnID: String
    let startedAt: ContinuousClock.Instant
    let deadline: ContinuousClock.Instant
    let stallTimeout: Duration
    private let sink: @Sendable (TurnEvent) async throws -> Void
    private let session: ManagedSession
    private let log: TurnLog

    let chunks = Atomic<UInt64>(0)
    let bytes = Atomic<UInt64>(0)
    /// Nanoseconds after `startedAt` of the last output (or of the sink returning).
    private let lastProgressNanoseconds = Atomic<Int64>(0)
    /// Non-zero while the stall clock is paused: until the backend's task actually
    /// runs (a busy pool is not a stalled backend), and while the sink is suspended
    /// (a slow reader is backpressure, not a stall).
    private let stallClockHolds = Atomic<Int>(1)
    private let isEnded = Atomic<Bool>(false)
    private let control = Mutex<Control>(Control())

    private struct Control: Sendable {
        var ending: TurnEnding?
        var backendReturned = false
        var backendTask: Task<String, any Error>?
        /// The deadline and stall timer while the turn runs (see `startWatchdog`).
        var watchdog: DeadlineTimer?
        var watchdogStopped = false
    }

    init(
        turnID: String,
        startedAt: ContinuousClock.Instant,
        deadline: ContinuousClock.Instant,
        stallTimeout: Duration,
        session: ManagedSession,
        log: TurnLog,
        sink: @escaping @Sendable (TurnEvent) async throws -> Void
    ) {
        self.turnID = turnID
        self.startedAt = startedAt
        self.deadline = deadline
        self.stallTimeout = stallTimeout
        self.session = session
        self.log = log
        self.sink = sink
    }

    /// Sends `.started`; a failing sink ends the turn before its backend runs.
    func emitStarted() async {
        do {
            try await callSink(.started)
        } catch {
            end(.outputFailed(error))
        }
    }

    /// `TurnOutput.write`: wait for room in the store, number, count, refresh
    /// timers, forward.
    func write(_ data: [UInt8]) async throws {
        if isEnded.load(ordering: .acquiring) { throw CancellationError() }
        // A store whose disk is behind has no room: the backend waits here, as it
        // does for a slow reader, rather than the store's backlog growing until
        // the process runs out of memory. Like a slow reader, that is not a stall
        // (the deadline still applies, and ending the turn cancels the wait). A
        // store that cannot write at all (a full disk) sends it away instead:
        // the turn ends UNAVAILABLE.
        do {
            try await withStallClockHeld { try await session.store.waitForRoom() }
        } catch {
            end(.notStored(error))
            throw error
        }
        // Ended while it waited (close, cancel, deadline): nothing more is recorded.
        if isEnded.load(ordering: .acquiring) { throw CancellationError() }
        let sequence = chunks.wrappingAdd(1, ordering: .relaxed).newValue
        bytes.wrappingAdd(UInt64(data.count), ordering: .relaxed)
        session.touch()
        // Recorded before the caller sees it, so that an attacher that learns of
        // chunk N from the log can read it from the store; and kept whatever
        // happens to the caller (a detached turn's sink drops everything).
        let chunk = OutputChunk(sequence: sequence, data: data)
        session.store.recordOutput(sessionID: session.id, turnID: turnID, chunk: chunk)
        log.recorded(sequence: sequence)
        do {
            try await callSink(.output(chunk))
        } catch {
            end(.outputFailed(error))
            throw error
        }
    }

    private func callSink(_ event: TurnEvent) async throws {
        try await withStallClockHeld { try await sink(event) }
    }

    /// Runs `body` with the stall clock stopped: time spent waiting for a slow
    /// reader or a slow disk is not the backend stalling.
    private func withStallClockHeld<Result>(_ body: () async throws -> Result) async rethrows -> Result {
        stallClockHolds.wrappingAdd(1, ordering: .relaxed)
        defer {
            recordProgress()
            stallClockHolds.wrappingSubtract(1, ordering: .relaxed)
        }
        return try await body()
    }

    /// First thing in the backend's task: starts the stall clock.
    func backendStarted() {
        recordProgress()
        stallClockHolds.wrappingSubtract(1, ordering: .relaxed)
    }

    private func recordProgress() {
        let elapsed = startedAt.duration(to: .now)
        let (seconds, attoseconds) = elapsed.components
        lastProgressNanoseconds.store(seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000, ordering: .relaxed)
    }

    /// Starts the backend task unless the turn has already ended.
    func launch(_ makeTask: () -> Task<String, any Error>) -> Task<String, any Error>? {
        control.withLockAnnotated { control in
            guard control.ending == nil else { return nil }
            let task = makeTask()
            control.backendTask = task
            return task
        }
    }

    /// Ends the turn with `ending` (first ending wins) and cancels its backend.
    @discardableResult
    func end(_ ending: TurnEnding) -> Bool {
        let task: Task<String, any Error>?? = control.withLockAnnotated { control in
            guard control.ending == nil, !control.backendReturned else { return nil }
            control.ending = ending
            return .some(control.backendTask)
        }
        guard let task else { return false }
        isEnded.store(true, ordering: .releasing)
        task?.cancel()
        return true
    }

    /// Turns the backend's result (or the ending that stopped it) into the outcome.
    func complete(with result: Result<String, any Error>) -> (outcome: TurnOutcome, endedByCore: Bool) {
        let ending: TurnEnding? = control.withLockAnnotated { control in
            control.backendReturned = true
            control.backendTask = nil
            return control.ending
        }
        isEnded.store(true, ordering: .releasing)
        let code: StatusCode
        let message: String
        let stopReason: String
        if let ending {
            (code, message, stopReason) = (ending.code, ending.message, ending.stopReason)
        } else {
            switch result {
            case .success(let reason):
                (code, message, stopReason) = (.ok, "", reason)
            case .failure(let error as SwitchboardError):
                (code, message, stopReason) = (error.code, error.message, "error")
            case .failure(is CancellationError):
                (code, message, stopReason) = (.cancelled, "the backend cancelled the turn", "cancelled")
            case .failure(let error):
                (code, message, stopReason) = (.unknown, "backend failed: \(error)", "error")
            }
        }
        let duration = startedAt.duration(to: .now).milliseconds
        let finished = TurnFinished(
            turnID: turnID,
            stopReason: stopReason,
            chunks: chunks.load(ordering: .relaxed),
            bytes: bytes.load(ordering: .relaxed),
            durationMs: UInt64(max(0, duration))
        )
        return (TurnOutcome(code: code, message: message, finished: finished), ending != nil)
    }

    /// Starts watching the deadline and the stall timer: checks now, then on a
    /// ``DeadlineTimer`` at the next moment either could pass, ending the turn
    /// when one has. ``stopWatchdog()`` (the backend returned) releases the timer
    /// at once: a turn's watchdog must not outlive it (issue #12).
    func startWatchdog() {
        guard let first = checkTimers(now: .now) else { return }
        // Armed under the lock, so a timer that fires at once finds itself stored.
        control.withLockAnnotated { control in
            guard !control.watchdogStopped else { return }
            control.watchdog = DeadlineTimer(deadline: first) { [weak self] in self?.watchdogFired() }
        }
    }

    /// Stops the watchdog for good (idempotent).
    func stopWatchdog() {
        let timer = control.withLockAnnotated { control in
            control.watchdogStopped = true
            defer { control.watchdog = nil }
            return control.watchdog
        }
        timer?.cancel()
    }

    private func watchdogFired() {
        guard let next = checkTimers(now: .now) else { return }
        control.withLockAnnotated { $0.watchdog }?.rearm(at: next)
    }

    /// Ends the turn when its deadline or stall timeout has passed at `now` (then
    /// returns nil); otherwise returns when to check again.
    private func checkTimers(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        if now >= deadline {
            end(.deadline)
            return nil
        }
        var wake = deadline
        if stallTimeout > .zero {
            if stallClockHolds.load(ordering: .relaxed) > 0 {
                wake = min(wake, now + stallTimeout)
            } else {
                let lastProgress = startedAt + .nanoseconds(lastProgressNanoseconds.load(ordering: .relaxed))
                let stallAt = lastProgress + stallTimeout
                if now >= stallAt {
                    end(.stalled(after: stallTimeout))
                    return nil
                }
                wake = min(wake, stallAt)
            }
        }
        return wake
    }
}
