import Synchronization
import SwitchboardProtocol

/// Where one turn's output stands, for the calls that follow it (Attach): the
/// highest sequence number recorded in the store, the phase, how it ended, and
/// the attachers waiting for more.
///
/// Why a separate object: attachers read output from the *store*, never from the
/// turn's sink, so a slow attacher never slows the backend. They only need to
/// know how far the store goes and to be woken when it goes further. Each chunk
/// is recorded in the store *before* `recorded(sequence:)` announces it here, so an
/// attacher that sees sequence N can read chunk N from the store.
///
/// The log also orders the turn's first and last store records: the accepted
/// record is written by `submit` after the queue lock is released, while a close
/// or cancel on another thread may end the turn in between. Whoever comes second
/// writes the finished record, so the store never sees an end before the start.
final class TurnLog: Sendable {
    let sessionID: String
    let turnID: String
    private let state: Mutex<State>

    fileprivate struct State {
        var phase: TurnState = .queued
        var lastSequence: UInt64 = 0
        var outcome: TurnOutcome?
        var acceptedRecorded = false
        /// An ending that arrived before the accepted record was written.
        var deferredEnding: StoredTurnEnding?
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiterID: UInt64 = 0
    }

    struct Snapshot: Sendable {
        var phase: TurnState
        var lastSequence: UInt64
        var outcome: TurnOutcome?
    }

    init(sessionID: String, turnID: String) {
        self.sessionID = sessionID
        self.turnID = turnID
        self.state = Mutex(State())
    }

    func snapshot() -> Snapshot {
        state.withLockAnnotated { Snapshot(phase: $0.phase, lastSequence: $0.lastSequence, outcome: $0.outcome) }
    }

    // MARK: Store ordering

    /// The accepted record has been written; returns an ending that came first,
    /// which the caller must now record.
    func acceptedRecorded() -> StoredTurnEnding? {
        state.withLockAnnotated { state in
            state.acceptedRecorded = true
            defer { state.deferredEnding = nil }
            return state.deferredEnding
        }
    }

    /// Returns whether the caller may record `ending` now (else it is kept for the
    /// accepted record's writer).
    func mayRecordEnding(_ ending: StoredTurnEnding) -> Bool {
        state.withLockAnnotated { state in
            if state.acceptedRecorded { return true }
            state.deferredEnding = ending
            return false
        }
    }

    // MARK: Progress

    func markStarted() {
        let waiters = state.withLockAnnotated { state in
            if state.phase == .queued { state.phase = .running }
            return state.takeWaiters()
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Chunk `sequence` is in the store.
    func recorded(sequence: UInt64) {
        let waiters = state.withLockAnnotated { state in
            state.lastSequence = max(state.lastSequence, sequence)
            return state.takeWaiters()
        }
        for waiter in waiters { waiter.resume() }
    }

    /// The turn has ended (its finished record is written or deferred).
    func finish(_ outcome: TurnOutcome) {
        let waiters = state.withLockAnnotated { state in
            guard state.outcome == nil else { return [CheckedContinuation<Void, Never>]() }
            state.phase = .finished
            state.outcome = outcome
            return state.takeWaiters()
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Suspends until output beyond `sequence` is recorded, the turn ends, or the
    /// calling task is cancelled (whichever comes first; may also return early).
    func waitForProgress(beyond sequence: UInt64) async {
        let id = state.withLockAnnotated { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let ready = state.withLockAnnotated { state in
                    // Checked under the lock: a cancellation handler that ran before
                    // the waiter is stored has already set the task's flag.
                    if state.lastSequence > sequence || state.outcome != nil || Task.isCancelled { return true }
                    state.waiters[id] = waiter
                    return false
                }
                if ready { waiter.resume() }
            }
        } onCancel: {
            let waiter = state.withLockAnnotated { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}

extension TurnLog.State {
    fileprivate mutating func takeWaiters() -> [CheckedContinuation<Void, Never>] {
        guard !waiters.isEmpty else { return [] }
        defer { waiters = [:] }
        return Array(waiters.values)
    }
}
