import Foundation
import GRDB
import Logging
import SwitchboardCore
import SwitchboardProtocol

/// Applies one batch of operations inside the writer's transaction.
///
/// A turn's output in the batch is collected into one ``OutputSegment`` (one
/// `output` row) and written when the turn ends, when the segment reaches
/// `OutputSegment.maxBytes`, or at the end of the batch. Output counters
/// (`chunks`, `bytes`, `last_sequence`) are summed per turn and written with it,
/// so they always match the chunks committed with them. A constraint failure of
/// one operation (a turn of a session deleted meanwhile, a duplicate) is logged
/// and skipped; any other error fails the whole batch, which the writer retries.
///
/// A session's `turns_completed` counts its turns that started and then ended,
/// whatever the outcome (the registry's `TurnQueue.finishExecuting`): it grows
/// when the end of a turn still marked running is applied, so a turn that ended
/// while queued is not counted, and retention deleting turns does not lower it.
struct BatchApplier {
    let db: Database
    let logger: Logger

    private struct Delta {
        var chunks: Int64 = 0
        var bytes: Int64 = 0
        var lastSequence: Int64 = 0
    }

    /// What applying a batch did.
    struct Applied {
        /// The result of each create and delete, for their callers.
        var tickets: [(ticket: UInt64, error: (any Error)?)] = []
        /// A session, turns or output were deleted: pages may be free.
        var deletedRows = false
    }

    func apply(_ batch: [PendingOperation]) throws -> Applied {
        var results: [(ticket: UInt64, error: (any Error)?)] = []
        var deletedRows = false
        var deltas: [UInt64: Delta] = [:]
        var segments: [UInt64: (key: TurnKey, segment: OutputSegment)] = [:]
        var activity: [String: UInt64] = [:]
        var retentionSessions: [String] = []
        for operation in batch {
            switch operation {
            case .createSession(let session, let ticket):
                do {
                    try db.inSavepoint {
                        try Rows.insertSession(session, into: db)
                        return .commit
                    }
                    results.append((ticket, nil))
                } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                    results.append((ticket, SwitchboardError(
                        code: .alreadyExists, message: "session \(session.id) already exists in the session store", cause: error
                    )))
                }
            case .deleteSession(let id, let ticket):
                try db.execute(sql: "DELETE FROM sessions WHERE id = ?", arguments: [id])
                if db.changesCount > 0 { deletedRows = true }
                activity.removeValue(forKey: id)
                // Its turns are gone: their collected output has nowhere to go.
                for (position, open) in segments where open.key.sessionID == id {
                    segments.removeValue(forKey: position)
                    deltas.removeValue(forKey: position)
                }
                results.append((ticket, nil))
            case .activity(let sessionID, let atMs):
                activity[sessionID] = max(activity[sessionID] ?? 0, atMs)
            case .accepted(let turn, let position):
                try tolerant("accepting turn \(turn.turnID)") {
                    try Rows.insertTurn(turn, position: position, into: db)
                }
            case .started(let key, let position, let atMs):
                try tolerant("starting turn \(key.turnID)") {
                    try db.cachedStatement(sql: """
                        UPDATE turns SET started_at_ms = ?, state = CASE WHEN state = 1 THEN 2 ELSE state END
                        WHERE position = ?
                        """).execute(arguments: [Int64(clamping: atMs), Int64(clamping: position)])
                }
            case .output(let key, let position, let chunk):
                if let index = segments.index(forKey: position) {
                    segments.values[index].segment.append(chunk)
                    if segments.values[index].segment.data.count >= OutputSegment.maxBytes {
                        try writeSegment(segments.remove(at: index).value, position: position, deltas: &deltas)
                    }
                } else {
                    segments[position] = (key, OutputSegment(first: chunk))
                }
            case .finished(let key, let position, let ending):
                if let open = segments.removeValue(forKey: position) {
                    try writeSegment(open, position: position, deltas: &deltas)
                }
                if let delta = deltas.removeValue(forKey: position) {
                    try writeDelta(delta, position: position)
                }
                // Before the turn's state becomes 3: count it if it had started.
                try db.cachedStatement(sql: """
                    UPDATE sessions SET turns_completed = turns_completed + 1
                    WHERE id = ? AND EXISTS (SELECT 1 FROM turns WHERE position = ? AND state = 2)
                    """).execute(arguments: [key.sessionID, Int64(clamping: position)])
                try db.cachedStatement(sql: """
                    UPDATE turns SET state = 3, code = ?, message = ?, stop_reason = ?, ended_at_ms = ?
                    WHERE position = ?
                    """).execute(arguments: [
                        Int64(ending.code.rawValue), ending.message, ending.stopReason,
                        Int64(clamping: ending.endedAtMs), Int64(clamping: position),
                    ])
                if !retentionSessions.contains(key.sessionID) { retentionSessions.append(key.sessionID) }
            }
        }
        for (position, open) in segments {
            try writeSegment(open, position: position, deltas: &deltas)
        }
        for (position, delta) in deltas {
            try writeDelta(delta, position: position)
        }
        for (sessionID, atMs) in activity {
            try db.cachedStatement(sql: "UPDATE sessions SET last_activity_ms = max(last_activity_ms, ?) WHERE id = ?")
                .execute(arguments: [Int64(clamping: atMs), sessionID])
        }
        let now = EpochMilliseconds.now()
        for sessionID in retentionSessions {
            if try Retention.apply(db, sessionID: sessionID, nowMs: now) { deletedRows = true }
        }
        return Applied(tickets: results, deletedRows: deletedRows)
    }

    /// Inserts one segment and adds it to the turn's counters (skipped, with a
    /// warning, when the turn is gone: its session was deleted meanwhile).
    private func writeSegment(_ open: (key: TurnKey, segment: OutputSegment), position: UInt64, deltas: inout [UInt64: Delta]) throws {
        let segment = open.segment
        try tolerant("output of turn \(open.key.turnID)") {
            try db.cachedStatement(sql: """
                INSERT INTO output (turn, first_sequence, last_sequence, chunks, layout, data) VALUES (?, ?, ?, ?, ?, ?)
                """).execute(arguments: [
                    Int64(clamping: position), Int64(clamping: segment.firstSequence), Int64(clamping: segment.lastSequence),
                    segment.count, Data(segment.layout), Data(segment.data),
                ])
            var delta = deltas[position] ?? Delta()
            delta.chunks += Int64(segment.count)
            delta.bytes += Int64(segment.data.count)
            delta.lastSequence = max(delta.lastSequence, Int64(clamping: segment.lastSequence))
            deltas[position] = delta
        }
    }

    private func writeDelta(_ delta: Delta, position: UInt64) throws {
        try db.cachedStatement(sql: """
            UPDATE turns SET chunks = chunks + ?, bytes = bytes + ?, last_sequence = max(last_sequence, ?)
            WHERE position = ?
            """).execute(arguments: [delta.chunks, delta.bytes, delta.lastSequence, Int64(clamping: position)])
    }

    private func tolerant(_ what: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            logger.warning("session store: \(what) skipped: \(error.message ?? "constraint failed")")
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch (the unit of every stored time).
enum EpochMilliseconds {
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) * 1000 + UInt64(time.tv_nsec) / 1_000_000
    }
}
