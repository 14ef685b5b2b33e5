import GRDB
import SwitchboardCore
import SwitchboardProtocol

extension SQLiteSessionStore {
    /// Rewrites turns left queued or running by a previous process as ABORTED
    /// ("interrupted", with `interruptedMessage`), recounting their chunks and
    /// bytes from the output actually stored (a turn that was running counts
    /// as completed, as its end would have); reads every session with its
    /// turns (oldest first, without output: two straight scans, grouped here),
    /// each prompt only up to `StoredTurnPage.promptPrefixScalars` scalars
    /// (restore keeps only its preview, so whole prompts are never all held in
    /// memory); applies every session's retention to what it read (see
    /// ``Retention``). One write transaction, on GRDB's writer queue. Then the
    /// writer compacts what retention freed.
    public func load(interruptedMessage: String) async throws -> [StoredSession] {
        try checkOpen()
        try await writer.flush()
        let now = EpochMilliseconds.now()
        let (sessions, interrupted) = try await pool.write { db -> ([StoredSession], Int) in
            // `state <> 3` lets the subquery use the partial index turns_unfinished.
            try db.execute(sql: """
                UPDATE sessions SET turns_completed = turns_completed
                    + (SELECT count(*) FROM turns WHERE turns.session_id = sessions.id AND turns.state = 2)
                WHERE id IN (SELECT session_id FROM turns WHERE state <> 3 AND state = 2)
                """)
            try db.execute(sql: """
                UPDATE turns SET state = 3, code = ?, message = ?, stop_reason = 'interrupted', ended_at_ms = ?,
                    chunks = (SELECT coalesce(sum(chunks), 0) FROM output WHERE turn = turns.position),
                    bytes = (SELECT coalesce(sum(length(data)), 0) FROM output WHERE turn = turns.position),
                    last_sequence = (SELECT coalesce(max(last_sequence), 0) FROM output WHERE turn = turns.position)
                WHERE state <> 3
                """, arguments: [Int64(StatusCode.aborted.rawValue), interruptedMessage, Int64(clamping: now)])
            let interrupted = db.changesCount
            return (try Self.readAll(db, nowMs: now), interrupted)
        }
        if interrupted > 0 {
            logger.notice("session store: \(interrupted) turns that were running when the previous process stopped were marked ABORTED")
        }
        writer.requestCompaction()
        return sessions
    }

    private static func readAll(_ db: Database, nowMs: UInt64) throws -> [StoredSession] {
        var sessions: [StoredSession] = []
        var index: [String: Int] = [:]
        let sessionRows = try Row.fetchCursor(db, sql: "SELECT \(Rows.sessionColumns) FROM sessions ORDER BY created_at_ms, id")
        while let row = try sessionRows.next() {
            let session = Rows.session(row)
            index[session.id] = sessions.count
            sessions.append(session)
        }
        let labelRows = try Row.fetchCursor(db, sql: "SELECT session_id, key, value FROM session_labels ORDER BY session_id, ordinal")
        while let row = try labelRows.next() {
            if let at = index[row[0]] {
                sessions[at].labels.append(Label(key: row[1], value: row[2]))
            }
        }
        // Positions alongside each session's turns, for retention.
        var positions = [[Int64]](repeating: [], count: sessions.count)
        let turnRows = try Row.fetchCursor(
            db,
            sql: "SELECT \(Rows.turnColumns(prompt: Rows.promptPrefix)) FROM \(Rows.turnSource) ORDER BY position"
        )
        while let row = try turnRows.next() {
            let turn = Rows.turn(row)
            if let at = index[turn.sessionID] {
                sessions[at].turns.append(turn)
                positions[at].append(row[13])
            }
        }
        for at in sessions.indices where Retention.limited(sessions[at].settings) {
            var finished: [Retention.Candidate] = []
            for (turn, position) in zip(sessions[at].turns, positions[at]) where turn.state == .finished {
                finished.append(.init(
                    position: position, endedAtMs: turn.ending?.endedAtMs ?? 0, bytes: turn.bytes, outputDropped: turn.outputDropped
                ))
            }
            let plan = Retention.plan(finished, settings: sessions[at].settings, nowMs: nowMs)
            guard !plan.isEmpty else { continue }
            try Retention.execute(plan, db)
            let deleted = Set(plan.delete), dropped = Set(plan.dropOutput)
            var kept: [StoredTurn] = []
            for (var turn, position) in zip(sessions[at].turns, positions[at]) where !deleted.contains(position) {
                if dropped.contains(position) { turn.outputDropped = true }
                kept.append(turn)
            }
            sessions[at].turns = kept
        }
        return sessions
    }
}
