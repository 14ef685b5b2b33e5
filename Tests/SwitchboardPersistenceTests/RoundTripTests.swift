import Foundation
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

@Suite("SQLiteSessionStore round trips")
struct RoundTripTests {
    @Test("sessions with labels, settings and owner survive a reopen")
    func sessionsSurviveReopen() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let settings = SessionSettings(
            backend: "worker:gpu", idleTimeoutMs: 60_000, turnDeadlineMs: 120_000, stallTimeoutMs: 30_000,
            maxQueuedPrompts: 7, whenNoWorker: .fail, retainTurns: 5, retainOutputBytes: 1 << 20, retainAgeMs: 86_400_000
        )
        let first = makeSession("s-one", labels: [Label(key: "team", value: "a"), Label(key: "env", value: "ü 漢")], settings: settings, owner: 4242)
        let second = makeSession("s-two", owner: 0, createdAtMs: 1_700_000_000_001)
        do {
            let store = try openStore(directory)
            try await store.createSession(first)
            try await store.createSession(second)
            store.recordActivity(sessionID: "s-one", atMs: 1_700_000_009_999)
            try await store.close()
        }
        let store = try openStore(directory)
        let loaded = try await store.load(interruptedMessage: "restarted")
        var expectedFirst = first
        expectedFirst.lastActivityMs = 1_700_000_009_999
        #expect(loaded == [expectedFirst, second])
        try await store.close()
    }

    @Test("a duplicate session id is refused with ALREADY_EXISTS, and the first is kept")
    func duplicateSession() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        try await store.createSession(makeSession("s-dup", owner: 1))
        await #expect(throws: SwitchboardError.self) { try await store.createSession(makeSession("s-dup", owner: 2)) }
        do {
            try await store.createSession(makeSession("s-dup", owner: 2))
        } catch let error as SwitchboardError {
            #expect(error.code == .alreadyExists)
        }
        let loaded = try await store.load(interruptedMessage: "x")
        #expect(loaded.map(\.ownerUID) == [1])
        try await store.close()
    }

    @Test("turns and their output survive a reopen, byte for byte")
    func turnsAndOutputSurviveReopen() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let binary: [UInt8] = (0...255).map { UInt8($0) }
        do {
            let store = try openStore(directory)
            try await store.createSession(makeSession("s-1"))
            store.recordTurn(session: "s-1", turn: "t-a", prompt: "hello", chunks: ["he", "llo"])
            store.recordTurnAccepted(StoredTurn(sessionID: "s-1", turnID: "t-b", prompt: "bin", state: .queued, acceptedAtMs: 5))
            store.recordTurnStarted(sessionID: "s-1", turnID: "t-b", atMs: 6)
            store.recordOutput(sessionID: "s-1", turnID: "t-b", chunk: OutputChunk(sequence: 1, data: binary))
            store.recordOutput(sessionID: "s-1", turnID: "t-b", chunk: OutputChunk(sequence: 2, data: []))
            store.recordTurnFinished(
                sessionID: "s-1", turnID: "t-b",
                ending: StoredTurnEnding(code: .deadlineExceeded, message: "too slow", stopReason: "deadline", endedAtMs: 9)
            )
            try await store.close()
        }
        let store = try openStore(directory)
        let loaded = try await store.load(interruptedMessage: "restarted")
        let turns = try #require(loaded.first?.turns)
        #expect(turns.map(\.turnID) == ["t-a", "t-b"])
        #expect(turns[0].prompt == "hello")
        #expect(turns[0].state == .finished)
        #expect(turns[0].chunks == 2 && turns[0].bytes == 5)
        #expect(turns[1] == StoredTurn(
            sessionID: "s-1", turnID: "t-b", prompt: "bin", state: .finished, acceptedAtMs: 5, startedAtMs: 6,
            ending: StoredTurnEnding(code: .deadlineExceeded, message: "too slow", stopReason: "deadline", endedAtMs: 9),
            chunks: 2, bytes: 256
        ))
        let output = try await store.output(sessionID: "s-1", turnID: "t-b", afterSequence: 0, limit: 10)
        #expect(output == [OutputChunk(sequence: 1, data: binary), OutputChunk(sequence: 2, data: [])])
        let tail = try await store.output(sessionID: "s-1", turnID: "t-a", afterSequence: 1, limit: 10)
        #expect(tail == [OutputChunk(sequence: 2, data: Array("llo".utf8))])
        let limited = try await store.output(sessionID: "s-1", turnID: "t-a", afterSequence: 0, limit: 1)
        #expect(limited == [OutputChunk(sequence: 1, data: Array("he".utf8))])
        #expect(try await store.output(sessionID: "s-1", turnID: "t-a", afterSequence: 0, limit: 0) == [])
        let onePage = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 0, includeOutput: false))
        #expect(onePage.entries.map(\.turn.turnID) == ["t-a"] && onePage.hasMore)
        try await store.close()
    }

    @Test("output recorded but not yet written is visible, exactly once and in order; flush makes it durable")
    func pendingOutputIsVisible() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        // Batches never become due on their own: only flush writes.
        let lazy = SQLiteSessionStore.Options(batchMaxChunks: 1_000_000, batchMaxBytes: 1 << 30, batchInterval: .seconds(3600))
        do {
            let store = try openStore(directory, options: lazy)
            try await store.createSession(makeSession("s-1"))
            store.recordTurnAccepted(StoredTurn(sessionID: "s-1", turnID: "t-1", prompt: "p", state: .queued, acceptedAtMs: 1))
            store.recordTurnStarted(sessionID: "s-1", turnID: "t-1", atMs: 2)
            for sequence in 1...3 {
                store.recordOutput(sessionID: "s-1", turnID: "t-1", chunk: OutputChunk(sequence: UInt64(sequence), data: [UInt8(sequence)]))
            }
            try await store.flush()
            for sequence in 4...6 {
                store.recordOutput(sessionID: "s-1", turnID: "t-1", chunk: OutputChunk(sequence: UInt64(sequence), data: [UInt8(sequence)]))
            }
            // Written 1...3, pending 4...6: merged.
            let all = try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 0, limit: 100)
            #expect(all.map(\.sequence) == [1, 2, 3, 4, 5, 6])
            #expect(all.map(\.data) == (1...6).map { [UInt8($0)] })
            let middle = try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 2, limit: 3)
            #expect(middle.map(\.sequence) == [3, 4, 5])
            // A turn accepted but not written is visible too, with its pending counts.
            store.recordTurnAccepted(StoredTurn(sessionID: "s-1", turnID: "t-2", prompt: "q", state: .queued, acceptedAtMs: 3))
            store.recordOutput(sessionID: "s-1", turnID: "t-2", chunk: OutputChunk(sequence: 1, data: [9, 9]))
            let page = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 10, includeOutput: true))
            #expect(page.entries.map(\.turn.turnID) == ["t-1", "t-2"])
            #expect(page.entries.map(\.turn.chunks) == [6, 1])
            #expect(page.entries[0].turn.state == .running)
            #expect(page.entries[0].output == (1...6).map { UInt8($0) })
            #expect(page.entries[1].output == [9, 9])
            #expect(page.entries[0].position < page.entries[1].position)
            try await store.flush()
            // After the flush the same reads give the same answers (nothing doubled).
            let again = try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 0, limit: 100)
            #expect(again == all)
            let pageAgain = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 10, includeOutput: true))
            #expect(pageAgain == page)
            try await store.close()
        }
        // Flushed data is on disk: reopen (load marks both turns interrupted, output kept).
        let store = try openStore(directory)
        let loaded = try await store.load(interruptedMessage: "restarted")
        #expect(loaded.first?.turns.map(\.chunks) == [6, 1])
        #expect(loaded.first?.turns.map(\.ending?.code) == [.aborted, .aborted])
        let output = try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 0, limit: 1000)
        #expect(output.map(\.sequence) == [1, 2, 3, 4, 5, 6])
        try await store.close()
    }

    @Test("delete removes the session, its turns and their output, durably")
    func deleteRemovesEverything() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        do {
            let store = try openStore(directory)
            try await store.createSession(makeSession("s-keep"))
            try await store.createSession(makeSession("s-gone", labels: [Label(key: "a", value: "b")]))
            store.recordTurn(session: "s-gone", turn: "t-1", chunks: ["x", "y"])
            store.recordTurn(session: "s-keep", turn: "t-2", chunks: ["z"])
            try await store.deleteSession(id: "s-gone")
            try await store.deleteSession(id: "s-never-existed")
            await #expect(throws: SwitchboardError.self) {
                _ = try await store.output(sessionID: "s-gone", turnID: "t-1", afterSequence: 0, limit: 10)
            }
            await #expect(throws: SwitchboardError.self) {
                _ = try await store.turns(sessionID: "s-gone", page: TurnPage(limit: 10, includeOutput: false))
            }
            try await store.close()
        }
        let store = try openStore(directory)
        let loaded = try await store.load(interruptedMessage: "x")
        #expect(loaded.map(\.id) == ["s-keep"])
        try await store.close()
        // Nothing of the deleted session is left in any table.
        let counts = try sqliteScalars(directory.database, [
            "SELECT count(*) FROM turns WHERE session_id = 's-gone'",
            "SELECT count(*) FROM session_labels WHERE session_id = 's-gone'",
            "SELECT coalesce(sum(chunks), 0) FROM output",
            "SELECT count(*) FROM turn_prompts",
        ])
        #expect(counts == [0, 0, 1, 1])
    }

    @Test("unknown sessions and turns are NOT_FOUND; a closed store refuses calls")
    func notFoundAndClosed() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        try await store.createSession(makeSession("s-1"))
        do {
            _ = try await store.output(sessionID: "s-1", turnID: "t-nope", afterSequence: 0, limit: 1)
            Issue.record("expected NOT_FOUND")
        } catch let error as SwitchboardError {
            #expect(error.code == .notFound)
            #expect(error.message.contains("t-nope"))
        }
        do {
            _ = try await store.turns(sessionID: "s-nope", page: TurnPage(limit: 1, includeOutput: false))
            Issue.record("expected NOT_FOUND")
        } catch let error as SwitchboardError {
            #expect(error.code == .notFound)
        }
        try await store.close()
        try await store.close()
        do {
            try await store.createSession(makeSession("s-2"))
            Issue.record("expected a refusal")
        } catch let error as SwitchboardError {
            #expect(error.code == .failedPrecondition)
        }
    }
}
