import SwitchboardProtocol

/// One Attach call's view of a turn: replays the output the store keeps after a
/// sequence number, then follows the turn live to its end.
///
/// Exactly once, in order, without gaps, even while the turn produces output:
/// the turn records each chunk in the store *before* its ``TurnLog`` announces
/// the new last sequence, and the attachment only ever asks the store for chunks
/// up to a sequence the log has announced, moving a cursor that must advance by
/// exactly one per chunk. So it reads (cursor, announced], sends them, and then
/// waits on the log for more, or for the end; the end is announced after the
/// last chunk was recorded, so nothing can follow it. Output is read from the
/// store, never taken from the turn's own sink: a slow attacher lags, it never
/// slows the backend.
public final class TurnAttachment: Sendable {
    public let sessionID: String
    private let requestedTurnID: String
    private let afterSequence: UInt64
    private let target: AttachTarget?
    private let store: any SessionStore

    /// Chunks read from the store at a time.
    static let pageSize = 256

    init(sessionID: String, requestedTurnID: String, afterSequence: UInt64, target: AttachTarget?, store: any SessionStore) {
        self.sessionID = sessionID
        self.requestedTurnID = requestedTurnID
        self.afterSequence = afterSequence
        self.target = target
        self.store = store
    }

    /// Sends `.attached`, every kept chunk with a sequence above the requested one,
    /// the live chunks as they come, and `.finished`; returns how the turn ended
    /// (for an interrupted turn: ABORTED with its message), which is the call's
    /// status. Throws NOT_FOUND (no such turn), OUT_OF_RANGE (retention dropped the
    /// output asked for), UNAVAILABLE (the store failed), CANCELLED (the calling
    /// task was cancelled), or what `sink` threw.
    public func run(sink: @escaping @Sendable (PromptEvent) async throws -> Void) async throws(SwitchboardError) -> TurnOutcome {
        switch target {
        case .live(let log):
            return try await follow(log, sink: sink)
        case .finished(let summary):
            return try await replayFinished(summary, sink: sink)
        case nil:
            let turn = try await storedTurn()
            guard turn.state == .finished else {
                // Only a turn that is ending right now can be in the store without
                // being in memory.
                throw SwitchboardError(code: .unavailable, message: "turn \(turn.turnID) is ending; attach again")
            }
            return try await replayFinished(SessionRegistry.summary(of: turn), sink: sink)
        }
    }

    private func follow(_ log: TurnLog, sink: @escaping @Sendable (PromptEvent) async throws -> Void) async throws(SwitchboardError) -> TurnOutcome {
        let first = log.snapshot()
        try await send(.attached(TurnAttached(turnID: log.turnID, state: first.phase, lastSequence: first.lastSequence)), sink)
        var cursor = afterSequence
        while true {
            let now = log.snapshot()
            if cursor < now.lastSequence {
                do throws(SwitchboardError) {
                    cursor = try await replay(turnID: log.turnID, after: cursor, through: now.lastSequence, sink: sink)
                } catch {
                    return try await endAfterClose(error, turnID: log.turnID, cursor: cursor, sink: sink) { () async throws(SwitchboardError) in
                        try await Self.outcome(of: log)
                    }
                }
                continue
            }
            if let ended = now.outcome {
                // Like the prompt's caller, an attacher is told OK only once the
                // turn is durable.
                let outcome = await store.confirmingDurability(of: ended, turn: (sessionID, log.turnID))
                try await send(.finished(outcome.finished), sink)
                return outcome
            }
            await log.waitForProgress(beyond: cursor)
            if Task.isCancelled {
                throw SwitchboardError(code: .cancelled, message: "attach cancelled")
            }
        }
    }

    private func replayFinished(_ summary: TurnSummary, sink: @escaping @Sendable (PromptEvent) async throws -> Void) async throws(SwitchboardError) -> TurnOutcome {
        try await send(.attached(TurnAttached(turnID: summary.turnID, state: .finished, lastSequence: summary.chunks)), sink)
        // A turn that just ended may not be durable yet (or at all, while the
        // store cannot write): OK only once it is.
        let outcome = await store.confirmingDurability(of: Self.outcome(of: summary), turn: (sessionID, summary.turnID))
        if afterSequence < summary.chunks {
            do throws(SwitchboardError) {
                _ = try await replay(turnID: summary.turnID, after: afterSequence, through: summary.chunks, sink: sink)
            } catch {
                return try await endAfterClose(error, turnID: summary.turnID, cursor: afterSequence, sink: sink) { outcome }
            }
        }
        try await send(.finished(outcome.finished), sink)
        return outcome
    }

    private static func outcome(of summary: TurnSummary) -> TurnOutcome {
        let duration = summary.endedAtMs > summary.startedAtMs && summary.startedAtMs > 0
            ? summary.endedAtMs - summary.startedAtMs : 0
        return TurnOutcome(
            code: summary.code,
            message: summary.message,
            finished: TurnFinished(
                turnID: summary.turnID,
                stopReason: summary.stopReason,
                chunks: summary.chunks,
                bytes: summary.bytes,
                durationMs: duration
            )
        )
    }

    /// How a followed turn ended, waiting for it if need be (the turn of a closed
    /// session ends as soon as its backend has stopped).
    private static func outcome(of log: TurnLog) async throws(SwitchboardError) -> TurnOutcome {
        while true {
            if let outcome = log.snapshot().outcome { return outcome }
            await log.waitForProgress(beyond: .max)
            if Task.isCancelled {
                throw SwitchboardError(code: .cancelled, message: "attach cancelled")
            }
        }
    }

    /// A read of the turn's output failed. When that is because the session was
    /// closed while this attacher lagged behind (the store deleted the session:
    /// NOT_FOUND, or DATA_LOSS for a read that raced the delete), the attach ends
    /// as documented, with `finished` and the turn's status (CANCELLED for the turn
    /// the close cancelled), without the output it had not read yet. A turn that
    /// had ended OK ends NOT_FOUND instead: a missed tail is never reported as a
    /// success. Any other failure is the caller's error.
    private func endAfterClose(
        _ error: SwitchboardError,
        turnID: String,
        cursor: UInt64,
        sink: @escaping @Sendable (PromptEvent) async throws -> Void,
        outcome: () async throws(SwitchboardError) -> TurnOutcome
    ) async throws(SwitchboardError) -> TurnOutcome {
        guard error.code == .notFound || error.code == .dataLoss, await sessionIsDeleted() else { throw error }
        let outcome = try await outcome()
        guard outcome.code != .ok else {
            throw SwitchboardError(
                code: .notFound,
                message: "session \"\(sessionID)\" was closed: the output of turn \(turnID) after sequence \(cursor) is no longer kept"
            )
        }
        try await send(.finished(outcome.finished), sink)
        return outcome
    }

    /// Whether the store no longer has the session (it was closed and deleted).
    private func sessionIsDeleted() async -> Bool {
        do {
            _ = try await store.turns(sessionID: sessionID, page: TurnPage(limit: 1, includeOutput: false))
            return false
        } catch {
            return (error as? SwitchboardError)?.code == .notFound
        }
    }

    /// Sends chunks (after, through] from the store, in pages; returns the new cursor.
    private func replay(
        turnID: String,
        after: UInt64,
        through last: UInt64,
        sink: @escaping @Sendable (PromptEvent) async throws -> Void
    ) async throws(SwitchboardError) -> UInt64 {
        var cursor = after
        while cursor < last {
            let limit = Int(min(UInt64(Self.pageSize), last - cursor))
            let chunks: [OutputChunk]
            do {
                chunks = try await store.output(sessionID: sessionID, turnID: turnID, afterSequence: cursor, limit: limit)
            } catch {
                throw SessionRegistry.storeError(error, reading: "the output of turn \(turnID)")
            }
            guard !chunks.isEmpty else {
                throw SwitchboardError(
                    code: .dataLoss,
                    message: "the store has no output of turn \(turnID) after sequence \(cursor) (expected up to \(last))"
                )
            }
            for chunk in chunks {
                guard chunk.sequence == cursor + 1 else {
                    throw SwitchboardError(
                        code: .dataLoss,
                        message: "the store returned chunk \(chunk.sequence) of turn \(turnID) after chunk \(cursor)"
                    )
                }
                try await send(.output(chunk), sink)
                cursor = chunk.sequence
            }
        }
        return cursor
    }

    private func send(_ event: PromptEvent, _ sink: @Sendable (PromptEvent) async throws -> Void) async throws(SwitchboardError) {
        do {
            try await sink(event)
        } catch let error as SwitchboardError {
            throw error
        } catch {
            throw SwitchboardError(code: .cancelled, message: "attach output failed: \(error)", cause: error)
        }
    }

    /// A turn that is not in memory: the requested one, or the most recent kept.
    private func storedTurn() async throws(SwitchboardError) -> StoredTurn {
        var position: UInt64 = 0
        var latest: StoredTurn?
        while true {
            let page: StoredTurnPage
            do {
                page = try await store.turns(sessionID: sessionID, page: TurnPage(afterPosition: position, limit: 100, includeOutput: false))
            } catch {
                throw SessionRegistry.storeError(error, reading: "the turns of session \"\(sessionID)\"")
            }
            for entry in page.entries {
                if requestedTurnID.isEmpty {
                    latest = entry.turn
                } else if entry.turn.turnID == requestedTurnID {
                    return entry.turn
                }
            }
            guard page.hasMore, let last = page.entries.last else { break }
            position = last.position
        }
        if let latest { return latest }
        throw SwitchboardError(
            code: .notFound,
            message: requestedTurnID.isEmpty
                ? "session \"\(sessionID)\" has no turns"
                : "turn \"\(requestedTurnID.prefix(140))\" of session \"\(sessionID)\" not found"
        )
    }
}
