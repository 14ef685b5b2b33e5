import Foundation
import GRDB
import SwitchboardCore
import SwitchboardProtocol

/// Reads merge the database with what the writer has not committed yet. The
/// pending snapshot is taken *before* the read transaction starts, so every
/// recorded change is in one or the other (or both, for a batch committed in
/// between: chunks are then taken once, by sequence).
extension SQLiteSessionStore {
    /// At most `limit` chunks (≤ 0: none, as in the in-memory store). Reading
    /// past the end of a turn whose output was dropped gives no chunks, not an error.
    public func output(sessionID: String, turnID: String, afterSequence: UInt64, limit: Int) async throws -> [OutputChunk] {
        try checkOpen()
        let pending = writer.pendingView(sessionID: sessionID)
        let wanted = max(0, limit)
        enum Found: Sendable { case missing, dropped, chunks([OutputChunk]) }
        let found = try await pool.read { db -> Found in
            guard let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT position, output_dropped, chunks FROM turns WHERE session_id = ? AND turn_id = ?"),
                arguments: [sessionID, turnID]
            ) else { return .missing }
            if row[1] as Bool {
                return afterSequence < Rows.unsigned(row[2]) ? .dropped : .chunks([])
            }
            return .chunks(try Self.chunks(db, position: row[0], after: afterSequence, limit: wanted))
        }
        var chunks: [OutputChunk]
        switch found {
        case .dropped:
            throw SwitchboardError(
                code: .outOfRange,
                message: "the output of turn \(turnID) of session \(sessionID) was dropped by the session's retention settings"
            )
        case .missing:
            guard pending.acceptedTurns.contains(where: { $0.turn.turnID == turnID }) else {
                throw SwitchboardError(code: .notFound, message: "turn \(turnID) of session \(sessionID) not found")
            }
            chunks = []
        case .chunks(let stored):
            chunks = stored
        }
        var last = max(afterSequence, chunks.last?.sequence ?? 0)
        for chunk in pending.chunks(turnID: turnID) where chunks.count < wanted && chunk.sequence > last {
            chunks.append(chunk)
            last = chunk.sequence
        }
        return chunks
    }

    /// At most `page.limit` turns (at least 1, as in the in-memory store) within
    /// `page.maxBytes` (``TurnPageBudget``). Rows come with a prefix of their
    /// prompt and its size; a turn's whole prompt and output are read only once
    /// it is admitted to the page, so a page never loads more than it sends.
    public func turns(sessionID: String, page: TurnPage) async throws -> StoredTurnPage {
        try checkOpen()
        let pending = writer.pendingView(sessionID: sessionID)
        let limit = max(1, page.limit)
        let result = try await pool.read { db -> StoredTurnPage? in
            guard try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT 1 FROM sessions WHERE id = ?"), arguments: [sessionID]
            ) != nil else { return nil }
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT \(Rows.turnColumnsWithPromptPrefix) FROM \(Rows.turnSource)
                WHERE session_id = ? AND position > ? ORDER BY position LIMIT ?
                """), arguments: [sessionID, Int64(clamping: page.afterPosition), limit + 1])
            var budget = TurnPageBudget(page: page)
            var entries: [StoredTurnPage.Entry] = []
            var storedPositions = Set<UInt64>()
            for row in rows {
                var turn = Rows.turn(row)
                let position: Int64 = row[13]
                let lastSequence = Rows.unsigned(row[14])
                let promptBytes = Int(clamping: row[15] as Int64)
                storedPositions.insert(UInt64(clamping: position))
                pending.apply(to: &turn, lastSequence: lastSequence)
                let admission = budget.admit(turn, promptBytes: promptBytes)
                if admission == .pageFull { return StoredTurnPage(entries: entries, hasMore: true) }
                var entry = StoredTurnPage.Entry(turn: turn, position: UInt64(clamping: position))
                if case .omitted(let withoutPrompt) = admission {
                    entry.outputOmitted = true
                    entry.promptOmitted = withoutPrompt
                }
                guard page.includeOutput else {
                    entries.append(entry)
                    continue
                }
                if !entry.promptOmitted {
                    entry.turn.prompt = try String.fetchOne(
                        db.cachedStatement(sql: "SELECT prompt FROM turn_prompts WHERE turn = ?"), arguments: [position]
                    ) ?? ""
                }
                if !entry.outputOmitted && !turn.outputDropped {
                    entry.output = try Self.concatenatedOutput(db, position: position)
                    for chunk in pending.chunks(turnID: turn.turnID) where chunk.sequence > lastSequence {
                        entry.output += chunk.data
                    }
                }
                entries.append(entry)
            }
            // Turns whose acceptance is not committed yet come after every stored one.
            for (accepted, position) in pending.acceptedTurns
            where position > page.afterPosition && !storedPositions.contains(position) {
                var turn = accepted
                pending.apply(to: &turn, lastSequence: turn.chunks)
                var entry = StoredTurnPage.Entry(turn: turn, position: position)
                switch budget.admit(turn, promptBytes: turn.prompt.utf8.count) {
                case .pageFull:
                    return StoredTurnPage(entries: entries, hasMore: true)
                case .omitted(let withoutPrompt):
                    entry.outputOmitted = true
                    entry.promptOmitted = withoutPrompt
                case .whole:
                    if page.includeOutput {
                        for chunk in pending.chunks(turnID: turn.turnID) { entry.output += chunk.data }
                    }
                }
                entries.append(entry)
            }
            return StoredTurnPage(entries: entries, hasMore: false)
        }
        guard let result else {
            throw SwitchboardError(code: .notFound, message: "session \(sessionID) not found")
        }
        return result
    }

    /// A turn's stored output, chunks concatenated (segments hold the bytes
    /// already concatenated, in order).
    static func concatenatedOutput(_ db: Database, position: Int64) throws -> [UInt8] {
        var output: [UInt8] = []
        let segments = try Row.fetchCursor(
            db.cachedStatement(sql: "SELECT data FROM output WHERE turn = ? ORDER BY last_sequence"),
            arguments: [position]
        )
        while let segment = try segments.next() {
            try segment.withUnsafeData(atIndex: 0) { data in
                if let data { output.append(contentsOf: data) }
            }
        }
        return output
    }

    /// Splits the segments that hold chunks after `after` (the first one may
    /// start before it), stopping at `limit` chunks.
    static func chunks(_ db: Database, position: Int64, after: UInt64, limit: Int) throws -> [OutputChunk] {
        var chunks: [OutputChunk] = []
        guard limit > 0 else { return chunks }
        let rows = try Row.fetchCursor(
            db.cachedStatement(sql: """
                SELECT first_sequence, layout, data FROM output WHERE turn = ? AND last_sequence > ? ORDER BY last_sequence
                """),
            arguments: [position, Int64(clamping: after)]
        )
        var last = after
        while chunks.count < limit, let row = try rows.next() {
            let layout: Data = row[1]
            let data: Data = row[2]
            try OutputSegment.forEachChunk(firstSequence: Rows.unsigned(row[0]), layout: layout, data: [UInt8](data)) { chunk in
                if chunk.sequence > last {
                    chunks.append(chunk)
                    last = chunk.sequence
                }
                return chunks.count < limit
            }
        }
        return chunks
    }
}
