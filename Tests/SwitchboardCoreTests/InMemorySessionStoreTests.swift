import SwitchboardCore
import SwitchboardProtocol
import Testing

@Suite("In-memory session store")
struct InMemorySessionStoreTests {
    private func session(_ id: String, settings: SessionSettings = SessionSettings()) -> StoredSession {
        StoredSession(id: id, labels: [Label(key: "k", value: "v")], settings: settings, ownerUID: 7, createdAtMs: 1_000, lastActivityMs: 1_000)
    }

    private func turn(_ session: String, _ id: String, at ms: UInt64 = 2_000) -> StoredTurn {
        StoredTurn(sessionID: session, turnID: id, prompt: "prompt of \(id)", state: .queued, acceptedAtMs: ms)
    }

    /// Accepts, starts, writes `chunks` chunks of "<id>:<n> " and (with `ending`) finishes a turn.
    private func runTurn(_ store: InMemorySessionStore, _ session: String, _ id: String, chunks: Int, ending: StoredTurnEnding?) {
        store.recordTurnAccepted(turn(session, id))
        store.recordTurnStarted(sessionID: session, turnID: id, atMs: 2_001)
        for sequence in 1...max(1, chunks) where chunks > 0 {
            store.recordOutput(sessionID: session, turnID: id, chunk: OutputChunk(sequence: UInt64(sequence), data: Array("\(id):\(sequence) ".utf8)))
        }
        if let ending { store.recordTurnFinished(sessionID: session, turnID: id, ending: ending) }
    }

    private func ok(at ms: UInt64 = 3_000) -> StoredTurnEnding {
        StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: ms)
    }

    @Test("sessions: create is durable at once, a duplicate is ALREADY_EXISTS, delete forgets it and its turns")
    func createAndDelete() async throws {
        let store = InMemorySessionStore()
        try await store.createSession(session("a"))
        await #expect(throws: SwitchboardError.self) { try await store.createSession(session("a")) }
        runTurn(store, "a", "t1", chunks: 2, ending: ok())
        #expect(try await store.load(interruptedMessage: "x").map(\.id) == ["a"])
        try await store.deleteSession(id: "a")
        #expect(try await store.load(interruptedMessage: "x").isEmpty)
        do {
            _ = try await store.output(sessionID: "a", turnID: "t1", afterSequence: 0, limit: 10)
            Issue.record("expected NOT_FOUND")
        } catch let error as SwitchboardError {
            #expect(error.code == .notFound)
        }
        // Records for a session that is gone are dropped, not resurrected.
        store.recordTurnAccepted(turn("a", "t2"))
        #expect(try await store.load(interruptedMessage: "x").isEmpty)
    }

    @Test("output is read after a sequence, in pages, in order; unknown turns are NOT_FOUND")
    func outputPages() async throws {
        let store = InMemorySessionStore()
        try await store.createSession(session("s"))
        runTurn(store, "s", "t", chunks: 10, ending: nil)
        let first = try await store.output(sessionID: "s", turnID: "t", afterSequence: 0, limit: 4)
        #expect(first.map(\.sequence) == [1, 2, 3, 4])
        let rest = try await store.output(sessionID: "s", turnID: "t", afterSequence: 4, limit: 100)
        #expect(rest.map(\.sequence) == Array(5...10))
        #expect(rest.first?.data == Array("t:5 ".utf8))
        #expect(try await store.output(sessionID: "s", turnID: "t", afterSequence: 10, limit: 5).isEmpty)
        // A chunk out of order is not kept (sequences have no gaps).
        store.recordOutput(sessionID: "s", turnID: "t", chunk: OutputChunk(sequence: 12, data: [1]))
        #expect(try await store.output(sessionID: "s", turnID: "t", afterSequence: 10, limit: 5).isEmpty)
        do {
            _ = try await store.output(sessionID: "s", turnID: "nope", afterSequence: 0, limit: 1)
            Issue.record("expected NOT_FOUND")
        } catch let error as SwitchboardError {
            #expect(error.code == .notFound)
        }
    }

    @Test("turns are paged oldest first with positions; include_output concatenates the chunks")
    func turnPages() async throws {
        let store = InMemorySessionStore()
        try await store.createSession(session("s"))
        for index in 1...5 { runTurn(store, "s", "t\(index)", chunks: 2, ending: ok()) }
        let first = try await store.turns(sessionID: "s", page: TurnPage(limit: 2, includeOutput: true))
        #expect(first.entries.map(\.turn.turnID) == ["t1", "t2"])
        #expect(first.hasMore)
        #expect(first.entries[0].output == Array("t1:1 t1:2 ".utf8))
        #expect(first.entries[0].turn.chunks == 2)
        #expect(first.entries[0].turn.state == .finished)
        let next = try await store.turns(sessionID: "s", page: TurnPage(afterPosition: first.entries[1].position, limit: 10, includeOutput: false))
        #expect(next.entries.map(\.turn.turnID) == ["t3", "t4", "t5"])
        #expect(!next.hasMore)
        #expect(next.entries.allSatisfy { $0.output.isEmpty })
    }

    @Test("retention: finished turns beyond retain_turns go, oldest first; running turns stay")
    func retainTurns() async throws {
        let store = InMemorySessionStore()
        try await store.createSession(session("s", settings: SessionSettings(retainTurns: 2)))
        runTurn(store, "s", "running", chunks: 1, ending: nil)
        for index in 1...4 { runTurn(store, "s", "t\(index)", chunks: 1, ending: ok()) }
        let page = try await store.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: false))
        #expect(page.entries.map(\.turn.turnID) == ["running", "t3", "t4"])
    }

    @Test("retention: past retain_output_bytes the oldest outputs are dropped (OUT_OF_RANGE), summaries stay")
    func retainBytes() async throws {
        let store = InMemorySessionStore()
        // Each turn below writes 3 chunks of 6 bytes ("tN:k "): 18 bytes.
        try await store.createSession(session("s", settings: SessionSettings(retainOutputBytes: 40)))
        for index in 1...3 { runTurn(store, "s", "t\(index)", chunks: 3, ending: ok()) }
        let page = try await store.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: true))
        #expect(page.entries.map(\.turn.turnID) == ["t1", "t2", "t3"])
        #expect(page.entries.map(\.turn.outputDropped) == [true, false, false])
        #expect(page.entries[0].output.isEmpty)
        #expect(page.entries[0].turn.chunks == 3)
        do {
            _ = try await store.output(sessionID: "s", turnID: "t1", afterSequence: 0, limit: 10)
            Issue.record("expected OUT_OF_RANGE")
        } catch let error as SwitchboardError {
            #expect(error.code == .outOfRange)
        }
        #expect(try await store.output(sessionID: "s", turnID: "t3", afterSequence: 0, limit: 10).count == 3)
    }

    @Test("retention: finished turns older than retain_age_ms go when another turn finishes")
    func retainAge() async throws {
        let store = InMemorySessionStore()
        try await store.createSession(session("s", settings: SessionSettings(retainAgeMs: 1_000)))
        runTurn(store, "s", "old", chunks: 1, ending: ok(at: 3_000))
        runTurn(store, "s", "new", chunks: 1, ending: ok(at: 10_000))
        let page = try await store.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: false))
        #expect(page.entries.map(\.turn.turnID) == ["new"])
    }

    @Test("load: a turn that was queued or running comes back ABORTED \"interrupted\" with its output so far")
    func loadInterrupts() async throws {
        let store = InMemorySessionStore()
        try await store.createSession(session("s"))
        runTurn(store, "s", "done", chunks: 2, ending: ok())
        runTurn(store, "s", "cut", chunks: 3, ending: nil)
        store.recordTurnAccepted(turn("s", "waiting"))
        let loaded = try await store.load(interruptedMessage: "interrupted: test")
        let turns = try #require(loaded.first).turns
        #expect(turns.map(\.turnID) == ["done", "cut", "waiting"])
        #expect(turns.allSatisfy { $0.state == .finished })
        #expect(turns[0].ending?.code == .ok)
        #expect(turns[1].ending?.code == .aborted)
        #expect(turns[1].ending?.stopReason == "interrupted")
        #expect(turns[1].ending?.message == "interrupted: test")
        #expect(turns[1].chunks == 3)
        #expect(turns[2].ending?.code == .aborted)
        let partial = try await store.output(sessionID: "s", turnID: "cut", afterSequence: 0, limit: 10)
        #expect(partial.map(\.sequence) == [1, 2, 3])
        // Loading again finds them finished already.
        let again = try await store.load(interruptedMessage: "other")
        #expect(again.first?.turns[1].ending?.message == "interrupted: test")
    }

    @Test("a closed store refuses durable calls and reads")
    func closed() async throws {
        let store = InMemorySessionStore()
        try await store.createSession(session("s"))
        try await store.close()
        await #expect(throws: SwitchboardError.self) { try await store.createSession(session("t")) }
        await #expect(throws: SwitchboardError.self) { try await store.turns(sessionID: "s", page: TurnPage(limit: 1, includeOutput: false)) }
    }
}
