import Foundation
import SwitchboardCore
@testable import SwitchboardPersistence
import SwitchboardProtocol
import Testing

/// Deleted sessions and turns give their pages back to the file system
/// (incremental auto-vacuum, run by the writer in bounded steps, down to a
/// small slack of free pages kept for reuse).
@Suite("SQLiteSessionStore compaction")
struct CompactionTests {
    /// One turn with `megabytes` MiB of output, in 128 KiB chunks.
    private func recordLargeTurn(_ store: SQLiteSessionStore, session: String, turn: String, megabytes: Int) {
        let chunk = String(repeating: "x", count: 128 << 10)
        store.recordTurn(session: session, turn: turn, chunks: Array(repeating: chunk, count: megabytes * 8))
    }

    private let slack = BatchWriter.compactionSlackPages

    private func pages(_ directory: ScratchDirectory) throws -> (total: Int, free: Int) {
        let values = try sqliteScalars(directory.database, ["PRAGMA page_count", "PRAGMA freelist_count"])
        return (values[0], values[1])
    }

    private func fileSize(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
    }

    @Test("a new database is created with incremental auto-vacuum")
    func newDatabaseIsIncremental() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        #expect(try sqliteScalars(directory.database, ["PRAGMA auto_vacuum"]) == [2])
        try await store.close()
        #expect(try sqliteScalars(directory.database, ["PRAGMA auto_vacuum"]) == [2])
    }

    @Test("deleting a large session gives its pages back: the free list shrinks to the slack, the file shrinks")
    func deleteShrinks() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        try await store.createSession(makeSession("big"))
        try await store.createSession(makeSession("small"))
        recordLargeTurn(store, session: "big", turn: "t-1", megabytes: 8)
        store.recordTurn(session: "small", turn: "t-1", chunks: ["still here"])
        try await store.flush()
        let before = try pages(directory)
        #expect(before.total > 2000, "8 MiB of output take more than 2000 pages of 4 KiB")

        try await store.deleteSession(id: "big")
        try await eventually("the free pages given back") {
            let now = try pages(directory)
            return now.free <= slack && now.total < before.total / 4
        }
        let output = try await store.output(sessionID: "small", turnID: "t-1", afterSequence: 0, limit: 10)
        #expect(output.map(\.data) == [Array("still here".utf8)])
        try await store.close()
        // The checkpoint at close copied the shorter database into the file.
        #expect(try fileSize(directory.database) < 2 << 20, "8 MiB before the delete")
    }

    @Test("retention deleting a turn gives its pages back too")
    func retentionShrinks() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        var settings = SessionSettings(backend: "echo")
        settings.retainTurns = 1
        try await store.createSession(makeSession("s-1", settings: settings))
        recordLargeTurn(store, session: "s-1", turn: "t-1", megabytes: 8)
        try await store.flush()
        let before = try pages(directory)
        #expect(before.total > 2000)
        // The next turn's end deletes t-1 (only the newest turn is kept).
        store.recordTurn(session: "s-1", turn: "t-2", chunks: ["new"])
        try await store.flush()
        try await eventually("the free pages given back") {
            let now = try pages(directory)
            return now.free <= slack && now.total < before.total / 4
        }
        let page = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 10, includeOutput: false))
        #expect(page.entries.map(\.turn.turnID) == ["t-2"])
        try await store.close()
    }
}
