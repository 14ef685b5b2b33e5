import GRDB
import SwitchboardCore
import SwitchboardProtocol

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
/// The rules are one pure function (``plan(_:settings:nowMs:)``) over a
/// session's finished turns, so the two callers share them: after a turn ends
/// (the writer reads that session's finished turns, a few rows) and on load,
/// which has just read every turn anyway — there retention costs one pass in
/// memory plus a statement per turn actually affected, instead of whole-store
/// window-function queries (≈0.4 s of a 0.5 s load of 100,000 turns).
enum Retention {
    /// What retention needs to know of a finished turn.
    struct Candidate {
        var position: Int64
        var endedAtMs: UInt64
        var bytes: UInt64
        var outputDropped: Bool
    }

    struct Plan {
        /// Positions of turns to delete.
        var delete: [Int64] = []
        /// Positions of turns whose output to drop.
        var dropOutput: [Int64] = []
        var isEmpty: Bool { delete.isEmpty && dropOutput.isEmpty }
    }

    static func limited(_ settings: SessionSettings) -> Bool {
        settings.retainTurns > 0 || settings.retainOutputBytes > 0 || settings.retainAgeMs > 0
    }

    /// `finished`: one session's finished turns, oldest first.
    static func plan(_ finished: [Candidate], settings: SessionSettings, nowMs: UInt64) -> Plan {
        var plan = Plan()
        var kept = finished
        if settings.retainAgeMs > 0 {
            // As SQL would compare: signed, so an age longer than "now" expires nothing.
            let cutoff = Int64(clamping: nowMs) - Int64(clamping: settings.retainAgeMs)
            kept.removeAll { turn in
                let expired = Int64(clamping: turn.endedAtMs) < cutoff
                if expired { plan.delete.append(turn.position) }
                return expired
            }
        }
        if settings.retainTurns > 0, kept.count > Int(settings.retainTurns) {
            let excess = kept.count - Int(settings.retainTurns)
            plan.delete += kept.prefix(excess).map(\.position)
            kept.removeFirst(excess)
        }
        if settings.retainOutputBytes > 0 {
            var total: UInt64 = 0
            for turn in kept.reversed() where !turn.outputDropped {
                total = total.addingReportingOverflow(turn.bytes).partialValue
                if total > settings.retainOutputBytes && turn.bytes > 0 {
                    plan.dropOutput.append(turn.position)
                }
            }
        }
        return plan
    }

    /// Applies one session's retention in the writer's transaction; returns
    /// whether it deleted anything.
    static func apply(_ db: Database, sessionID: String, nowMs: UInt64) throws -> Bool {
        // Most sessions may have no limits at all: one lookup, then nothing.
        guard let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT retain_turns, retain_output_bytes, retain_age_ms FROM sessions WHERE id = ?
            """), arguments: [sessionID]) else { return false }
        var settings = SessionSettings()
        settings.retainTurns = UInt32(clamping: row[0] as Int64)
        settings.retainOutputBytes = Rows.unsigned(row[1])
        settings.retainAgeMs = Rows.unsigned(row[2])
        guard limited(settings) else { return false }
        var finished: [Candidate] = []
        let rows = try Row.fetchCursor(db.cachedStatement(sql: """
            SELECT position, ended_at_ms, bytes, output_dropped FROM turns
            WHERE session_id = ? AND state = 3 ORDER BY position
            """), arguments: [sessionID])
        while let row = try rows.next() {
            finished.append(Candidate(
                position: row[0], endedAtMs: Rows.unsigned(row[1] ?? 0), bytes: Rows.unsigned(row[2]), outputDropped: row[3]
            ))
        }
        let plan = plan(finished, settings: settings, nowMs: nowMs)
        try execute(plan, db)
        return !plan.isEmpty
    }

    static func execute(_ plan: Plan, _ db: Database) throws {
        for position in plan.delete {
            try db.cachedStatement(sql: "DELETE FROM turns WHERE position = ?").execute(arguments: [position])
        }
        for position in plan.dropOutput {
            try db.cachedStatement(sql: "DELETE FROM output WHERE turn = ?").execute(arguments: [position])
            try db.cachedStatement(sql: "UPDATE turns SET output_dropped = 1 WHERE position = ?").execute(arguments: [position])
        }
    }
}
