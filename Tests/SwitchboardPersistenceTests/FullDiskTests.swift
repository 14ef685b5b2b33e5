import Logging
import Synchronization
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

/// A full disk without root: the store's seam caps the database
/// (`PRAGMA max_page_count`), so SQLite itself fails the writes with
/// SQLITE_FULL, "database or disk is full", as on a full file system. The
/// end-to-end suite "A full disk" does the same on a real 2 MiB tmpfs.
@Suite("A store that cannot write (SQLITE_FULL through the store's seam)")
struct FullDiskTests {
    static let chunkBytes = 16 << 10

    /// Chunk `sequence` of a turn: its own bytes, so a read-back checks every one.
    static func chunk(_ sequence: UInt64) -> OutputChunk {
        OutputChunk(sequence: sequence, data: (0..<chunkBytes).map { UInt8(truncatingIfNeeded: Int(sequence) &* 7 &+ $0) })
    }

    /// Records turn `turn` of session "s" with `chunks` chunks (about 16 KiB each).
    func record(_ store: SQLiteSessionStore, turn: String, chunks: UInt64) {
        store.recordTurnAccepted(StoredTurn(sessionID: "s", turnID: turn, prompt: turn, state: .queued, acceptedAtMs: 1))
        store.recordTurnStarted(sessionID: "s", turnID: turn, atMs: 2)
        for sequence in 1...chunks {
            store.recordOutput(sessionID: "s", turnID: turn, chunk: Self.chunk(sequence))
        }
        store.recordTurnFinished(sessionID: "s", turnID: turn, ending: StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: 3))
    }

    @Test("a failed commit fails flush and create with the disk's words, publishes writeFailure, keeps the batch and commits it once space returns")
    func failedCommitIsRetried() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        try await store.createSession(makeSession("s"))
        record(store, turn: "before", chunks: 4)
        try await store.flush()
        #expect(store.writeFailure == nil)

        try await store.limitDatabaseGrowth(extraPages: 0)
        record(store, turn: "during", chunks: 64)  // 1 MiB: needs new pages
        let flushError = await #expect(throws: SwitchboardError.self) { try await store.flush() }
        #expect(flushError?.code == .unavailable)
        #expect(flushError?.message.contains("database or disk is full") == true, "\(String(describing: flushError))")
        let failure = try #require(store.writeFailure)
        #expect(failure.message == "database or disk is full")
        #expect(failure.sinceMs > 0)
        let createError = await #expect(throws: SwitchboardError.self) { try await store.createSession(makeSession("x")) }
        #expect(createError?.code == .unavailable)
        #expect(createError?.message.contains("database or disk is full") == true)

        // Space returns: the writer's own retry commits the kept batch.
        try await store.limitDatabaseGrowth(extraPages: nil)
        try await eventually("the store writes again") { store.writeFailure == nil }
        try await store.flush()
        try await store.close()

        let reopened = try openStore(directory)
        defer { Task { try? await reopened.close() } }
        let sessions = try await reopened.load(interruptedMessage: "interrupted")
        #expect(sessions.map(\.id) == ["s"])
        let turns = try #require(sessions.first?.turns)
        #expect(turns.map(\.turnID) == ["before", "during"])
        #expect(turns.allSatisfy { $0.state == .finished && $0.ending?.code == .ok })
        let during = try await reopened.output(sessionID: "s", turnID: "during", afterSequence: 0, limit: 100)
        #expect(during == (1...64).map(Self.chunk))
    }

    @Test("producers waiting for room are woken with UNAVAILABLE when the commit fails, and refused at once while it keeps failing")
    func roomWaitersAreWokenWithTheError() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let hold = WriterHold()
        var options = SQLiteSessionStore.Options(
            batchMaxBytes: 4 * Self.chunkBytes, batchInterval: .milliseconds(5), backlogLimitBytes: 8 * Self.chunkBytes
        )
        options.beforeWrite = { [hold] in hold.beforeWrite() }
        let store = try openStore(directory, options: options)
        defer { hold.release() }
        try await store.createSession(makeSession("s"))
        try await store.limitDatabaseGrowth(extraPages: 0)

        // The writer holds the first batch; the backlog passes the limit.
        hold.hold()
        store.recordTurnAccepted(StoredTurn(sessionID: "s", turnID: "t", prompt: "p", state: .queued, acceptedAtMs: 1))
        store.recordTurnStarted(sessionID: "s", turnID: "t", atMs: 2)
        for sequence in UInt64(1)...16 {
            store.recordOutput(sessionID: "s", turnID: "t", chunk: Self.chunk(sequence))
        }
        try await eventually("the writer holds a batch") { hold.blocked == 1 }
        let waiter = Task { try await store.waitForRoom() }
        try await eventually("waitForRoom suspends") { store.backlogStatus.waiters == 1 }

        // The held batch fails to commit: the waiter is told, not left waiting.
        hold.release()
        let woken = await #expect(throws: SwitchboardError.self) { try await waiter.value }
        #expect(woken?.code == .unavailable)
        #expect(woken?.message.contains("database or disk is full") == true, "\(String(describing: woken))")
        #expect(store.backlogStatus.waiters == 0)
        // Still over the limit and still failing: refused at once.
        let refused = await #expect(throws: SwitchboardError.self) { try await store.waitForRoom() }
        #expect(refused?.code == .unavailable)

        try await store.limitDatabaseGrowth(extraPages: nil)
        try await eventually("the store writes again") { store.writeFailure == nil }
        try await store.flush()
        try await store.waitForRoom()
        try await store.close()
    }

    @Test("through the registry: an OK answer is durable, a turn that cannot be stored ends UNAVAILABLE, prompts are refused while full and taken again once space returns")
    func registryAnswersOKOnlyWhenDurable() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory)
        let registry = SessionRegistry(
            configuration: CoreConfiguration(),
            backends: BackendRegistry(echo: EchoBackend()),
            logger: Logger(label: "full-disk") { _ in SwiftLogNoOpLogHandler() },
            store: store
        )
        _ = try await registry.createSession(CreateSessionRequest(sessionID: "s"), ownerUID: 0, ownerIsAdmin: true)
        func submit(_ text: String) async throws -> (turnID: String, outcome: TurnOutcome) {
            let turn = try registry.submitPrompt(PromptRequest(sessionID: "s", prompt: text), deadline: nil, caller: .server)
            return (turn.turnID, await turn.run { _ in })
        }
        func prompt(_ text: String) async throws -> TurnOutcome { try await submit(text).outcome }
        func attach(_ turnID: String) async throws -> TurnOutcome {
            try await registry.attach(AttachRequest(sessionID: "s", turnID: turnID), caller: .server).run { _ in }
        }
        let words = { (tag: String, count: Int) in (1...count).map { "\(tag)\($0)-" + String(repeating: "x", count: 200) }.joined(separator: " ") }

        let kept = words("kept", 20)
        let (keptID, keptOutcome) = try await submit(kept)
        #expect(keptOutcome.code == .ok)

        try await store.limitDatabaseGrowth(extraPages: 0)
        let (lostID, lost) = try await submit(words("lost", 4000))  // about 800 KiB of output
        #expect(lost.code == .unavailable)
        // While the store cannot write, an Attach replays the turn committed
        // before as OK; the one that could not be stored stays UNAVAILABLE.
        #expect(try await attach(keptID).code == .ok)
        #expect(try await attach(lostID).code == .unavailable)
        #expect(lost.message.hasPrefix("the turn could not be stored:"), "\(lost.message)")
        #expect(lost.message.contains("database or disk is full"), "\(lost.message)")
        var refused: SwitchboardError?
        do {
            _ = try await prompt("refused")
        } catch let error as SwitchboardError {
            refused = error
        }
        #expect(refused?.code == .unavailable)
        #expect(refused?.message.contains("cannot write to its disk (database or disk is full)") == true, "\(String(describing: refused))")

        try await store.limitDatabaseGrowth(extraPages: nil)
        let after = "after space returned"
        try await eventually("the store writes again") { store.writeFailure == nil }
        #expect(try await prompt(after).code == .ok)
        try await store.close()

        // Every turn answered OK is on disk, whole.
        let reopened = try openStore(directory)
        defer { Task { try? await reopened.close() } }
        let turns = try #require(try await reopened.load(interruptedMessage: "interrupted").first?.turns)
        for text in [kept, after] {
            // `load` may return only a prompt's beginning.
            let turn = try #require(turns.first { !$0.prompt.isEmpty && text.hasPrefix($0.prompt) }, "an OK turn is gone")
            #expect(turn.ending?.code == .ok)
            let output = try await reopened.output(sessionID: "s", turnID: turn.turnID, afterSequence: 0, limit: 10_000)
            #expect(String(decoding: output.flatMap(\.data), as: UTF8.self) == text)
        }
    }
}
