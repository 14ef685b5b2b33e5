import SwitchboardCore
import SwitchboardProtocol
import Testing

@Suite("Retention limits")
struct RetentionLimitTests {
    let feed = FeedBackend()

    @Test("a session's retain_* settings are capped by the server's; 0 takes the server's")
    func retentionIsCapped() async throws {
        let configuration = CoreConfiguration(retainTurns: 10, retainOutputBytes: 1_000, retainAge: .seconds(60))
        let harness = Harness(configuration: configuration)
        let greedy = try await harness.createSession("greedy", settings: SessionSettings(
            retainTurns: .max, retainOutputBytes: .max, retainAgeMs: .max
        ))
        #expect(greedy.settings.retainTurns == 10)
        #expect(greedy.settings.retainOutputBytes == 1_000)
        #expect(greedy.settings.retainAgeMs == 60_000)

        let modest = try await harness.createSession("modest", settings: SessionSettings(
            retainTurns: 3, retainOutputBytes: 500, retainAgeMs: 1_000
        ))
        #expect(modest.settings.retainTurns == 3)
        #expect(modest.settings.retainOutputBytes == 500)
        #expect(modest.settings.retainAgeMs == 1_000)

        let defaults = try await harness.createSession("defaults")
        #expect(defaults.settings.retainTurns == 10)
        #expect(defaults.settings.retainOutputBytes == 1_000)
        #expect(defaults.settings.retainAgeMs == 60_000)

        // What the store applies is the capped value.
        let stored = try await harness.registry.store.load(interruptedMessage: "")
        #expect(stored.first { $0.id == "greedy" }?.settings.retainOutputBytes == 1_000)
    }

    @Test("in-memory store: a running turn past retain_output_bytes stops keeping output (OUT_OF_RANGE), counts go on")
    func runningTurnIsBoundedInTheStore() async throws {
        let store = InMemorySessionStore()
        try await store.createSession(StoredSession(
            id: "s", labels: [], settings: SessionSettings(retainOutputBytes: 40), ownerUID: 7, createdAtMs: 1, lastActivityMs: 1
        ))
        store.recordTurnAccepted(StoredTurn(sessionID: "s", turnID: "t", prompt: "p", state: .queued, acceptedAtMs: 2))
        store.recordTurnStarted(sessionID: "s", turnID: "t", atMs: 3)
        let chunk = Array("0123456789".utf8)
        for sequence in 1...4 {
            store.recordOutput(sessionID: "s", turnID: "t", chunk: OutputChunk(sequence: UInt64(sequence), data: chunk))
        }
        // 40 bytes: at the bound, all kept.
        #expect(try await store.output(sessionID: "s", turnID: "t", afterSequence: 0, limit: 10).count == 4)

        for sequence in 5...100 {
            store.recordOutput(sessionID: "s", turnID: "t", chunk: OutputChunk(sequence: UInt64(sequence), data: chunk))
        }
        let running = try #require(try await store.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: true)).entries.first)
        #expect(running.turn.state == .running)
        #expect(running.turn.outputDropped)
        #expect(running.output.isEmpty)
        #expect(running.turn.chunks == 100)
        #expect(running.turn.bytes == 1_000)
        await expectCode(.outOfRange) { _ = try await store.output(sessionID: "s", turnID: "t", afterSequence: 4, limit: 10) }
        // Past the last chunk there is nothing to miss.
        #expect(try await store.output(sessionID: "s", turnID: "t", afterSequence: 100, limit: 10).isEmpty)

        store.recordTurnFinished(sessionID: "s", turnID: "t", ending: StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: 4))
        let finished = try #require(try await store.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: true)).entries.first)
        #expect(finished.turn.state == .finished)
        #expect(finished.turn.outputDropped)
        #expect(finished.turn.chunks == 100)
    }

    @Test("a detached turn printing past retain_output_bytes: Attach answers OUT_OF_RANGE, the prompt's own stream is whole")
    func runningTurnIsBoundedThroughTheRegistry() async throws {
        let store = InMemorySessionStore()
        let harness = Harness(extra: ["feed": feed], store: store)
        try await harness.createSession("s", backend: "feed", settings: SessionSettings(retainOutputBytes: 30))
        let turn = try harness.submit("s", "p")
        let prompt = EventRecorder()
        let running = harness.start(turn, recorder: prompt)
        feed.push("p", "0123456789")
        feed.push("p", "0123456789")
        await eventually("2 chunks") { prompt.chunks.count == 2 }

        // A follower caught up at chunk 2, while the output is still kept.
        let follower = AttachRecorder()
        let attachment = try harness.registry.attach(AttachRequest(sessionID: "s", afterSequence: 2), caller: .server)
        let following = Task { try await attachment.run(sink: follower.sink) }
        await eventually("attached") { follower.attached != nil }

        for _ in 3...5 { feed.push("p", "0123456789") }
        await eventually("5 chunks") { prompt.chunks.count == 5 }
        let page = try await store.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: true))
        #expect(page.entries.first?.turn.outputDropped == true)
        #expect(page.entries.first?.output.isEmpty == true)

        // A new attacher of the running turn from the start.
        let late = try harness.registry.attach(AttachRequest(sessionID: "s"), caller: .server)
        let lateRecorder = AttachRecorder()
        let lateRun = Task { try await late.run(sink: lateRecorder.sink) }

        // The turn ends (so that an attacher that still follows cannot hang the test).
        feed.finish("p")
        let outcome = await value(of: running)
        #expect(outcome.code == .ok)
        #expect(outcome.finished.chunks == 5)
        #expect(prompt.text == String(repeating: "0123456789", count: 5))

        // Neither can read what is no longer kept: the follower from chunk 3, the
        // new one from chunk 1.
        await expectCode(.outOfRange) { _ = try await following.value }
        await expectCode(.outOfRange) { _ = try await lateRun.value }
        #expect(follower.finished == nil)
        #expect(lateRecorder.chunks.isEmpty)

        // A later turn within the bound keeps its output.
        feed.push("small", "abc")
        feed.finish("small")
        let small = try harness.submit("s", "small")
        #expect(await small.run(sink: { _ in }).code == .ok)
        let replay = AttachRecorder()
        let replayed = try await harness.registry.attach(AttachRequest(sessionID: "s", turnID: small.turnID), caller: .server)
            .run(sink: replay.sink)
        #expect(replayed.code == .ok)
        #expect(replay.chunks.map(\.data) == [Array("abc".utf8)])
    }

    /// Expects `body` to throw a `SwitchboardError` with `code`.
    private func expectCode(
        _ code: StatusCode,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record("expected \(code.name), got success", sourceLocation: sourceLocation)
        } catch {
            #expect((error as? SwitchboardError)?.code == code, "\(error)", sourceLocation: sourceLocation)
        }
    }
}
