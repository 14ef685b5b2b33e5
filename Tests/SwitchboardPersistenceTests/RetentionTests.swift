import Foundation
import GRDB
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

@Suite("SQLiteSessionStore retention and paging")
struct RetentionTests {
    private func nowMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    @Test("retainTurns keeps the newest N finished turns and never touches a running one")
    func retainTurns() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        try await store.createSession(makeSession("s-1", settings: SessionSettings(retainTurns: 2)))
        store.recordTurnAccepted(StoredTurn(sessionID: "s-1", turnID: "t-running", prompt: "r", state: .queued, acceptedAtMs: 1))
        store.recordTurnStarted(sessionID: "s-1", turnID: "t-running", atMs: 2)
        for index in 1...4 {
            store.recordTurn(session: "s-1", turn: "t-\(index)", chunks: ["x\(index)"])
        }
        try await store.flush()
        let page = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 10, includeOutput: true))
        #expect(page.entries.map(\.turn.turnID) == ["t-running", "t-3", "t-4"])
        #expect(page.entries.map(\.output) == [[], Array("x3".utf8), Array("x4".utf8)])
        do {
            _ = try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 0, limit: 10)
            Issue.record("a dropped turn's output was returned")
        } catch let error as SwitchboardError {
            #expect(error.code == .notFound)
        }
        try await store.close()
    }

    @Test("retainOutputBytes drops the output of older turns, keeping their summary; OUT_OF_RANGE when read")
    func retainOutputBytes() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        try await store.createSession(makeSession("s-1", settings: SessionSettings(retainOutputBytes: 10)))
        store.recordTurn(session: "s-1", turn: "t-1", chunks: ["aa", "aa"])
        store.recordTurn(session: "s-1", turn: "t-2", chunks: ["bbbb"])
        store.recordTurn(session: "s-1", turn: "t-3", chunks: ["cc", "cc"])
        try await store.flush()
        let page = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 10, includeOutput: true))
        #expect(page.entries.map(\.turn.turnID) == ["t-1", "t-2", "t-3"])
        #expect(page.entries.map(\.turn.outputDropped) == [true, false, false])
        #expect(page.entries.map(\.turn.bytes) == [4, 4, 4])
        #expect(page.entries.map(\.output) == [[], Array("bbbb".utf8), Array("cccc".utf8)])
        do {
            _ = try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 0, limit: 10)
            Issue.record("dropped output was returned")
        } catch let error as SwitchboardError {
            #expect(error.code == .outOfRange)
            #expect(error.message.contains("t-1") && error.message.contains("retention"))
        }
        #expect(try await store.output(sessionID: "s-1", turnID: "t-2", afterSequence: 0, limit: 10).count == 1)
        // Past the end of the dropped output there is nothing to miss: no error.
        #expect(try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 2, limit: 10) == [])
        try await store.close()
        #expect(try sqliteScalars(directory.database, ["SELECT coalesce(sum(chunks), 0) FROM output"]) == [3])
    }

    @Test("retainAgeMs drops finished turns that ended too long ago, when a turn ends and on load")
    func retainAge() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let now = nowMs()
        do {
            let store = try openStore(directory)
            try await store.createSession(makeSession("s-1", settings: SessionSettings(retainAgeMs: 60_000)))
            store.recordTurn(session: "s-1", turn: "t-old", chunks: ["o"], endedAtMs: now - 120_000)
            store.recordTurn(session: "s-1", turn: "t-new", chunks: ["n"], endedAtMs: now)
            try await store.flush()
            let page = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 10, includeOutput: false))
            #expect(page.entries.map(\.turn.turnID) == ["t-new"])
            try await store.close()
        }
        // Age the remaining turn while "the server is down": load compacts it.
        let queue = try DatabaseQueue(path: directory.database)
        try await queue.write { db in try db.execute(sql: "UPDATE turns SET ended_at_ms = ended_at_ms - 120000") }
        try queue.close()
        let store = try openStore(directory)
        let loaded = try await store.load(interruptedMessage: "x")
        #expect(loaded.map(\.id) == ["s-1"])
        #expect(loaded.first?.turns == [])
        try await store.close()
        #expect(try sqliteScalars(directory.database, ["SELECT count(*) FROM output"]) == [0])
    }

    @Test("load applies retainTurns and retainOutputBytes to what it read, in the database too")
    func retentionOnLoad() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        do {
            let store = try openStore(directory)
            try await store.createSession(makeSession("s-1"))
            try await store.createSession(makeSession("s-free"))
            for index in 1...4 {
                store.recordTurn(session: "s-1", turn: "t-\(index)", chunks: ["x", "\(index)"])
                store.recordTurn(session: "s-free", turn: "f-\(index)", chunks: ["y"])
            }
            try await store.close()
        }
        // Tighten s-1's limits while "the server is down": load enforces them.
        let queue = try DatabaseQueue(path: directory.database)
        try await queue.write { db in
            try db.execute(sql: "UPDATE sessions SET retain_turns = 3, retain_output_bytes = 4 WHERE id = 's-1'")
        }
        try queue.close()
        let store = try openStore(directory)
        let loaded = try await store.load(interruptedMessage: "x")
        let limited = try #require(loaded.first { $0.id == "s-1" })
        #expect(limited.turns.map(\.turnID) == ["t-2", "t-3", "t-4"])
        // Newest first: t-4 (2 B), t-3 (4 B in all), t-2 takes the total over 4.
        #expect(limited.turns.map(\.outputDropped) == [true, false, false])
        #expect(limited.turns.map(\.bytes) == [2, 2, 2])
        #expect(loaded.first { $0.id == "s-free" }?.turns.count == 4)
        let page = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 10, includeOutput: true))
        #expect(page.entries.map(\.turn.turnID) == ["t-2", "t-3", "t-4"])
        #expect(page.entries.map(\.output) == [[], Array("x3".utf8), Array("x4".utf8)])
        try await store.close()
        #expect(try sqliteScalars(directory.database, [
            "SELECT count(*) FROM turns WHERE session_id = 's-1'",
            "SELECT coalesce(sum(output.chunks), 0) FROM output JOIN turns ON turns.position = output.turn WHERE session_id = 's-1'",
        ]) == [3, 4])
    }

    @Test("turn pages are oldest first, after an exclusive position, with hasMore")
    func paging() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        try await store.createSession(makeSession("s-1"))
        try await store.createSession(makeSession("s-other"))
        for index in 1...5 {
            store.recordTurn(session: "s-1", turn: "t-\(index)", chunks: ["\(index)"])
            store.recordTurn(session: "s-other", turn: "u-\(index)", chunks: ["-"])
        }
        try await store.flush()
        var seen: [String] = []
        var after: UInt64 = 0
        var pages = 0
        while true {
            let page = try await store.turns(sessionID: "s-1", page: TurnPage(afterPosition: after, limit: 2, includeOutput: false))
            seen += page.entries.map(\.turn.turnID)
            pages += 1
            #expect(page.entries.allSatisfy { $0.output.isEmpty })
            guard page.hasMore, let last = page.entries.last else { break }
            after = last.position
        }
        #expect(seen == ["t-1", "t-2", "t-3", "t-4", "t-5"])
        #expect(pages == 3)
        let all = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 5, includeOutput: false))
        #expect(all.entries.count == 5 && !all.hasMore)
        try await store.close()
    }
}
