import GRDB

/// History retention and compaction, from each session's stored settings
/// (0 = no limit at this layer: the registry stores effective values).
///
/// Only finished turns (state 3) are ever touched. In order:
/// 1. `retain_age_ms`: finished turns that ended longer ago are deleted;
/// 2. `retain_turns`: only the newest N finished turns are kept;
/// 3. `retain_output_bytes`: walking finished turns newest first, the output of
///    the first turn that takes the running total over the bound, and of every
///    older turn, is deleted and the turn marked `output_dropped` (its summary,
///    counts included, stays).
///
/// The same statements serve one session (after a turn ends, in the writer's
/// batch transaction) and every session at once (on load), using window
/// functions so the whole-store pass is three statements, not one per session.
enum Retention {
    static func apply(_ db: Database, sessionID: String?, nowMs: UInt64) throws {
        if let sessionID {
            // Most sessions may have no limits at all: one lookup instead of three passes.
            let limited = try Bool.fetchOne(db.cachedStatement(sql: """
                SELECT retain_turns > 0 OR retain_output_bytes > 0 OR retain_age_ms > 0 FROM sessions WHERE id = ?
                """), arguments: [sessionID]) ?? false
            guard limited else { return }
        }
        let filter = sessionID == nil ? "" : "AND t.session_id = ?"
        let scope: StatementArguments = sessionID.map { [$0] } ?? []
        try db.cachedStatement(sql: """
            DELETE FROM turns WHERE position IN (
                SELECT t.position FROM turns t JOIN sessions s ON s.id = t.session_id
                WHERE t.state = 3 AND s.retain_age_ms > 0 AND t.ended_at_ms < ? - s.retain_age_ms \(filter))
            """).execute(arguments: [Int64(clamping: nowMs)] + scope)
        try db.cachedStatement(sql: """
            DELETE FROM turns WHERE position IN (
                SELECT position FROM (
                    SELECT t.position, s.retain_turns AS keep,
                        ROW_NUMBER() OVER (PARTITION BY t.session_id ORDER BY t.position DESC) AS newest
                    FROM turns t JOIN sessions s ON s.id = t.session_id
                    WHERE t.state = 3 AND s.retain_turns > 0 \(filter))
                WHERE newest > keep)
            """).execute(arguments: scope)
        let over = try Int64.fetchAll(db.cachedStatement(sql: """
            SELECT position FROM (
                SELECT t.position, t.bytes, s.retain_output_bytes AS bound,
                    SUM(t.bytes) OVER (PARTITION BY t.session_id ORDER BY t.position DESC
                        ROWS UNBOUNDED PRECEDING) AS total
                FROM turns t JOIN sessions s ON s.id = t.session_id
                WHERE t.state = 3 AND t.output_dropped = 0 AND s.retain_output_bytes > 0 \(filter))
            WHERE total > bound AND bytes > 0
            """), arguments: scope)
        for position in over {
            try db.cachedStatement(sql: "DELETE FROM output WHERE turn = ?").execute(arguments: [position])
            try db.cachedStatement(sql: "UPDATE turns SET output_dropped = 1 WHERE position = ?").execute(arguments: [position])
        }
    }
}
