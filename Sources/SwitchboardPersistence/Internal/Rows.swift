import GRDB
import SwitchboardCore
import SwitchboardProtocol

/// Conversions between the stored values and table rows. SQLite integers are
/// signed 64-bit: unsigned values are clamped on the way in (no real time,
/// count or size comes near 2^63).
enum Rows {
    static func insertSession(_ session: StoredSession, into db: Database) throws {
        let settings = session.settings
        try db.cachedStatement(sql: """
            INSERT INTO sessions (id, owner_uid, backend, idle_timeout_ms, turn_deadline_ms, stall_timeout_ms,
                max_queued_prompts, when_no_worker, retain_turns, retain_output_bytes, retain_age_ms,
                created_at_ms, last_activity_ms, turns_completed)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                session.id, Int64(session.ownerUID), settings.backend,
                Int64(clamping: settings.idleTimeoutMs), Int64(clamping: settings.turnDeadlineMs),
                Int64(clamping: settings.stallTimeoutMs), Int64(settings.maxQueuedPrompts),
                Int64(settings.whenNoWorker.rawValue), Int64(settings.retainTurns),
                Int64(clamping: settings.retainOutputBytes), Int64(clamping: settings.retainAgeMs),
                Int64(clamping: session.createdAtMs), Int64(clamping: session.lastActivityMs),
                Int64(clamping: session.turnsCompleted),
            ])
        for (ordinal, label) in session.labels.enumerated() {
            try db.cachedStatement(sql: "INSERT INTO session_labels (session_id, ordinal, key, value) VALUES (?, ?, ?, ?)")
                .execute(arguments: [session.id, ordinal, label.key, label.value])
        }
    }

    static func insertTurn(_ turn: StoredTurn, position: UInt64, into db: Database) throws {
        let ending = turn.ending
        try db.cachedStatement(sql: """
            INSERT INTO turns (position, session_id, turn_id, state, accepted_at_ms, started_at_ms,
                code, message, stop_reason, ended_at_ms, chunks, bytes, last_sequence, output_dropped)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                Int64(clamping: position), turn.sessionID, turn.turnID, Int64(turn.state.rawValue),
                Int64(clamping: turn.acceptedAtMs), Int64(clamping: turn.startedAtMs),
                ending.map { Int64($0.code.rawValue) }, ending?.message, ending?.stopReason,
                ending.map { Int64(clamping: $0.endedAtMs) },
                Int64(clamping: turn.chunks), Int64(clamping: turn.bytes), Int64(clamping: turn.chunks),
                turn.outputDropped,
            ])
        try db.cachedStatement(sql: "INSERT INTO turn_prompts (turn, prompt) VALUES (?, ?)")
            .execute(arguments: [Int64(clamping: position), turn.prompt])
    }

    /// Where `turnColumns` are read from (the prompt lives in its own table).
    static let turnSource = "turns LEFT JOIN turn_prompts ON turn_prompts.turn = turns.position"

    /// The columns `turn(_:)` reads, in order.
    static let turnColumns = turnColumns(prompt: "prompt")

    /// `turnColumns` with `prompt` (an expression of the `prompt` column) in
    /// place of the whole prompt.
    static func turnColumns(prompt: String) -> String {
        """
        session_id, turn_id, coalesce(\(prompt), ''), state, accepted_at_ms, started_at_ms, code, message, stop_reason,
        ended_at_ms, chunks, bytes, output_dropped, position, last_sequence
        """
    }

    /// `turnColumns` with only the first `StoredTurnPage.promptPrefixScalars`
    /// characters of the prompt (enough for its preview), then the whole
    /// prompt's size in bytes (index 15): a history page reads whole prompts only
    /// for the turns it sends with their output.
    static let turnColumnsWithPromptPrefix = turnColumns(prompt: promptPrefix) + ", coalesce(length(CAST(prompt AS BLOB)), 0)"

    /// The first `StoredTurnPage.promptPrefixScalars` characters of the prompt.
    static let promptPrefix = "substr(prompt, 1, \(StoredTurnPage.promptPrefixScalars))"

    static func turn(_ row: Row) -> StoredTurn {
        var ending: StoredTurnEnding?
        if let code: Int64 = row[6] {
            ending = StoredTurnEnding(
                code: StatusCode(rawValue: UInt32(clamping: code)),
                message: row[7] ?? "",
                stopReason: row[8] ?? "",
                endedAtMs: unsigned(row[9] ?? 0)
            )
        }
        return StoredTurn(
            sessionID: row[0],
            turnID: row[1],
            prompt: row[2],
            state: TurnState(rawValue: UInt32(clamping: row[3] as Int64)) ?? .unspecified,
            acceptedAtMs: unsigned(row[4]),
            startedAtMs: unsigned(row[5]),
            ending: ending,
            chunks: unsigned(row[10]),
            bytes: unsigned(row[11]),
            outputDropped: row[12]
        )
    }

    /// The columns `session(_:)` reads, in order.
    static let sessionColumns = """
        id, owner_uid, backend, idle_timeout_ms, turn_deadline_ms, stall_timeout_ms, max_queued_prompts,
        when_no_worker, retain_turns, retain_output_bytes, retain_age_ms, created_at_ms, last_activity_ms,
        turns_completed
        """

    static func session(_ row: Row) -> StoredSession {
        StoredSession(
            id: row[0],
            labels: [],
            settings: SessionSettings(
                backend: row[2],
                idleTimeoutMs: unsigned(row[3]),
                turnDeadlineMs: unsigned(row[4]),
                stallTimeoutMs: unsigned(row[5]),
                maxQueuedPrompts: UInt32(clamping: row[6] as Int64),
                whenNoWorker: NoWorkerPolicy(rawValue: UInt32(clamping: row[7] as Int64)) ?? .wait,
                retainTurns: UInt32(clamping: row[8] as Int64),
                retainOutputBytes: unsigned(row[9]),
                retainAgeMs: unsigned(row[10])
            ),
            ownerUID: UInt32(clamping: row[1] as Int64),
            createdAtMs: unsigned(row[11]),
            lastActivityMs: unsigned(row[12]),
            turnsCompleted: unsigned(row[13])
        )
    }

    static func unsigned(_ value: Int64) -> UInt64 {
        UInt64(clamping: value)
    }
}
