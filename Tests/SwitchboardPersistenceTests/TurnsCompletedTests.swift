import Foundation
import Logging
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

/// A session's completed-turn count and its turns' previews are the same
/// after a restart as before it, whatever retention deleted.
@Suite("Completed turns and prompt previews across a restart")
struct TurnsCompletedTests {
    @Test("the store counts turns that started and ended; not turns ended while queued; retention and reload keep the count")
    func storeCounter() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        var settings = SessionSettings(backend: "echo")
        settings.retainTurns = 2
        do {
            let store = try openStore(directory)
            try await store.createSession(makeSession("s-1", settings: settings))
            for index in 1...3 {
                store.recordTurn(session: "s-1", turn: "t-\(index)", chunks: ["out"], endedAtMs: 1_700_000_000_500 + UInt64(index))
            }
            // Cancelled while queued: it never started.
            store.recordTurnAccepted(StoredTurn(sessionID: "s-1", turnID: "t-4", prompt: "p", state: .queued, acceptedAtMs: 1))
            store.recordTurnFinished(
                sessionID: "s-1", turnID: "t-4",
                ending: StoredTurnEnding(code: .cancelled, message: "cancelled", stopReason: "cancelled", endedAtMs: 2)
            )
            // Left running and queued by a process that dies.
            store.recordTurnAccepted(StoredTurn(sessionID: "s-1", turnID: "t-5", prompt: "p", state: .queued, acceptedAtMs: 3))
            store.recordTurnStarted(sessionID: "s-1", turnID: "t-5", atMs: 4)
            store.recordTurnAccepted(StoredTurn(sessionID: "s-1", turnID: "t-6", prompt: "p", state: .queued, acceptedAtMs: 5))
            try await store.flush()
            try await store.close()
        }
        let store = try openStore(directory)
        // t-1...t-3 ended after starting; t-5 was running: its end at load counts.
        let loaded = try await store.load(interruptedMessage: "restarted")
        #expect(loaded.first?.turnsCompleted == 4)
        #expect(loaded.first?.turns.count == 2, "retention kept 2 of the 6 finished turns")
        try await store.close()

        let again = try openStore(directory)
        let reloaded = try await again.load(interruptedMessage: "restarted again")
        #expect(reloaded.first?.turnsCompleted == 4)
        try await again.close()
    }

    @Test("load reads a bounded prefix of each prompt; the stored prompt stays whole")
    func loadReadsPromptPrefix() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let long = String(repeating: "é", count: 50_000)
        let store = try openStore(directory)
        try await store.createSession(makeSession("s-1"))
        store.recordTurn(session: "s-1", turn: "t-1", prompt: long, chunks: [])
        store.recordTurn(session: "s-1", turn: "t-2", prompt: "short", chunks: [])
        let loaded = try await store.load(interruptedMessage: "x")
        let prompts = try #require(loaded.first).turns.map(\.prompt)
        #expect(prompts == [String(repeating: "é", count: StoredTurnPage.promptPrefixScalars), "short"])
        #expect(try sqliteScalars(directory.database, ["SELECT max(length(prompt)) FROM turn_prompts"]) == [50_000])
        try await store.close()
    }

    @Test("a restored registry reports the turnsCompleted and prompt previews it had before")
    func registryRestore() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let configuration = CoreConfiguration(retainTurns: 2)
        // The preview stops before the cluster "e" + U+0301 that crosses 200 bytes;
        // cutting the prompt's scalars at 201 or more must not change that.
        let prompts = ["p1", "p2", "p3", String(repeating: "a", count: 199) + "e\u{301}" + String(repeating: "x", count: 5000)]
        let (before, previews): (Session, [String])
        do {
            let store = try openStore(directory)
            let registry = SessionRegistry(configuration: configuration, backends: BackendRegistry(), logger: testLogger, store: store)
            _ = try await registry.createSession(CreateSessionRequest(sessionID: "s-1"), ownerUID: 1000, ownerIsAdmin: false)
            // A turn cancelled while queued behind another is not a completed turn.
            let first = try registry.submitPrompt(PromptRequest(sessionID: "s-1", prompt: "first"), deadline: nil, caller: .server)
            let queued = try registry.submitPrompt(PromptRequest(sessionID: "s-1", prompt: "queued"), deadline: nil, caller: .server)
            queued.cancel(reason: "not wanted")
            #expect(await first.run(sink: { _ in }).code == .ok)
            #expect(await queued.run(sink: { _ in }).code == .cancelled)
            for prompt in prompts {
                let turn = try registry.submitPrompt(PromptRequest(sessionID: "s-1", prompt: prompt), deadline: nil, caller: .server)
                #expect(await turn.run(sink: { _ in }).code == .ok)
            }
            before = try registry.getSession(id: "s-1", caller: .server)
            previews = try registry.sessionStatus(id: "s-1", caller: .server).turns.map(\.promptPreview)
            try await store.close()
        }
        #expect(before.turnsCompleted == 5)
        // Status lists the newest turn first.
        #expect(previews.first == String(repeating: "a", count: 199))

        let store = try openStore(directory)
        let registry = SessionRegistry(configuration: configuration, backends: BackendRegistry(), logger: testLogger, store: store)
        #expect(try await registry.restore() == 1)
        let after = try registry.getSession(id: "s-1", caller: .server)
        #expect(after.turnsCompleted == before.turnsCompleted)
        // Retention kept 2 turns; their previews are the ones status showed before.
        let restored = try registry.sessionStatus(id: "s-1", caller: .server).turns.map(\.promptPreview)
        #expect(restored == Array(previews.prefix(2)))
        try await store.close()
    }
}
