import GRDB
import SwitchboardCore
import SwitchboardProtocol

extension SQLiteSessionStore {
    /// Rewrites turns left queued or running by a previous process as ABORTED
    /// ("interrupted", with `interruptedMessage`), recounting their chunks and
    /// bytes from the output actually stored; applies every session's
    /// retention; then reads every session with its turns (oldest first,
    /// without output). One write transaction, on GRDB's writer queue.
    public func load(interruptedMessage: String) async throws -> [StoredSession] {
        try checkOpen()
        try await writer.flush()
        let now = EpochMilliseconds.now()
        let (sessions, interrupted) = try await pool.write { db -> ([StoredSession], Int) in
            try db.execute(sql: """
                UPDATE turns SET state = 3, code = ?, message = ?, stop_reason = 'interrupted', ended_at_ms = ?,
                    chunks = (SELECT count(*) FROM output WHERE turn = turns.position),
                    bytes = (SELECT coalesce(sum(length(data)), 0) FROM output WHERE turn = turns.position),
                    last_sequence = (SELECT coalesce(max(sequence), 0) FROM output WHERE turn = turns.position)
                WHERE state <> 3
                """, arguments: [Int64(StatusCode.aborted.rawValue), interruptedMessage, Int64(clamping: now)])
            let interrupted = db.changesCount
            try Retention.apply(db, sessionID: nil, nowMs: now)
            return (try Self.readAll(db), interrupted)
        }
        if interrupted > 0 {
            logger.notice("session store: \(interrupted) turns that were running when the previous process stopped were marked ABORTED")
        }
        return sessions
    }

    private static func readAll(_ db: Database) throws -> [StoredSession] {
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
        let turnRows = try Row.fetchCursor(db, sql: "SELECT \(Rows.turnColumns) FROM turns ORDER BY position")
        while let row = try turnRows.next() {
            let turn = Rows.turn(row)
            if let at = index[turn.sessionID] {
                sessions[at].turns.append(turn)
            }
        }
        return sessions
    }
}
