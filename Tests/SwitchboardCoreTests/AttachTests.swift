import Logging
import Synchronization
import SwitchboardCore
import SwitchboardProtocol
import Testing

/// A backend whose output the test feeds: each prompt's turn writes what is
/// pushed for it and ends when its feed is finished.
final class FeedBackend: Backend {
    private let feeds = Mutex<[String: (AsyncStream<[UInt8]>, AsyncStream<[UInt8]>.Continuation)]>([:])

    private func feed(_ prompt: String) -> (AsyncStream<[UInt8]>, AsyncStream<[UInt8]>.Continuation) {
        feeds.withLockAnnotated { feeds in
            if let feed = feeds[prompt] { return feed }
            let feed = AsyncStream<[UInt8]>.makeStream()
            feeds[prompt] = feed
            return feed
        }
    }

    func push(_ prompt: String, _ text: String) { feed(prompt).1.yield(Array(text.utf8)) }
    func finish(_ prompt: String) { feed(prompt).1.finish() }

    func runTurn(_ turn: TurnRequest, output: TurnOutput) async throws -> String {
        for await data in feed(turn.prompt).0 {
            try await output.write(data)
        }
        try Task.checkCancellation()
        return "end_turn"
    }
}

/// Collects what an attachment sends.
final class AttachRecorder: Sendable {
    private let recorded = Mutex<[PromptEvent]>([])
    var events: [PromptEvent] { recorded.withLockAnnotated { $0 } }
    var chunks: [OutputChunk] { events.compactMap { if case .output(let chunk) = $0 { chunk } else { nil } } }
    var attached: TurnAttached? { events.compactMap { if case .attached(let a) = $0 { a } else { nil } }.first }
    var finished: TurnFinished? { events.compactMap { if case .finished(let f) = $0 { f } else { nil } }.first }
    var sink: @Sendable (PromptEvent) async throws -> Void {
        { event in self.recorded.withLockAnnotated { $0.append(event) } }
    }
}

/// A store that fails its durable calls (wraps a working one for the rest).
final class FailingStore: SessionStore {
    let inner = InMemorySessionStore()
    var location: String { "failing" }
    func load(interruptedMessage: String) async throws -> [StoredSession] { try await inner.load(interruptedMessage: interruptedMessage) }
    func createSession(_ session: StoredSession) async throws {
        throw SwitchboardError(code: .internal, message: "disk full")
    }
    func deleteSession(id: String) async throws {
        throw SwitchboardError(code: .internal, message: "disk gone")
    }
    func recordActivity(sessionID: String, atMs: UInt64) {}
    func recordTurnAccepted(_ turn: StoredTurn) {}
    func recordTurnStarted(sessionID: String, turnID: String, atMs: UInt64) {}
    func recordOutput(sessionID: String, turnID: String, chunk: OutputChunk) {}
    func recordTurnFinished(sessionID: String, turnID: String, ending: StoredTurnEnding) {}
    func output(sessionID: String, turnID: String, afterSequence: UInt64, limit: Int) async throws -> [OutputChunk] { [] }
    func turns(sessionID: String, page: TurnPage) async throws -> StoredTurnPage { StoredTurnPage(entries: [], hasMore: false) }
    func flush() async throws {}
    func close() async throws {}
}

@Suite("Durable sessions, attach and history")
struct AttachTests {
    let feed = FeedBackend()

    func harness(store: any SessionStore = InMemorySessionStore(), configuration: CoreConfiguration = CoreConfiguration()) -> Harness {
        Harness(configuration: configuration, extra: ["feed": feed], store: store)
    }

    @Test("a created session is in the store when create returns; close deletes it")
    func createIsDurable() async throws {
        let store = InMemorySessionStore()
        let harness = harness(store: store)
        try await harness.createSession("s", backend: "feed", labels: [Label(key: "a", value: "b")])
        let stored = try await store.load(interruptedMessage: "")
        #expect(stored.map(\.id) == ["s"])
        #expect(stored.first?.ownerUID == 1000)
        #expect(stored.first?.labels == [Label(key: "a", value: "b")])
        #expect(stored.first?.settings.retainTurns == 100)
        _ = try await harness.registry.closeSession(id: "s", reason: "", caller: .server)
        #expect(try await store.load(interruptedMessage: "").isEmpty)
    }

    @Test("a store failure on create is UNAVAILABLE with its message and the session is not kept")
    func createFailure() async throws {
        let harness = harness(store: FailingStore())
        let error = await expectError(.unavailable) { () async throws(SwitchboardError) in
            try await harness.createSession("s", backend: "feed")
        }
        #expect(error?.message.contains("disk full") == true)
        expectError(.notFound) { () throws(SwitchboardError) in try harness.registry.getSession(id: "s", caller: .server) }
        #expect(harness.registry.statistics().sessionsTotal == 0)
        #expect(harness.registry.statistics().sessionsIdle == 0)
    }

    @Test("attach to a running turn after N chunks gets exactly N+1... to the end, while output keeps coming")
    func attachFollowsExactlyOnce() async throws {
        let harness = harness()
        try await harness.createSession("s", backend: "feed")
        let turn = try harness.submit("s", "p")
        let prompt = EventRecorder()
        let running = harness.start(turn, recorder: prompt)
        for index in 1...5 { feed.push("p", "c\(index) ") }
        await eventually("5 chunks") { prompt.chunks.count == 5 }

        let attacher = AttachRecorder()
        let attachment = try harness.registry.attach(AttachRequest(sessionID: "s", afterSequence: 3), caller: .server)
        let attach = Task { try await attachment.run(sink: attacher.sink) }
        // Attached while the turn runs (the turn cannot end before: its feed is
        // still open); then output produced concurrently with the replay.
        await eventually("attached") { attacher.attached != nil }
        for index in 6...400 { feed.push("p", "c\(index) ") }
        feed.finish("p")
        let outcome = try await attach.value
        let promptOutcome = await running.value
        #expect(promptOutcome.code == .ok)
        #expect(outcome.code == .ok)
        #expect(attacher.attached?.turnID == turn.turnID)
        #expect(attacher.attached?.state == .running)
        #expect(attacher.chunks.map(\.sequence) == Array(4...400))
        #expect(attacher.chunks.map { String(decoding: $0.data, as: UTF8.self) } == (4...400).map { "c\($0) " })
        #expect(attacher.finished?.chunks == 400)
        if case .finished = attacher.events.last {} else { Issue.record("finished must come last") }
    }

    @Test("attach to a queued turn waits until it runs; to a finished one replays and ends at once")
    func attachQueuedAndFinished() async throws {
        let harness = harness()
        try await harness.createSession("s", backend: "feed")
        let first = try harness.submit("s", "one")
        let second = try harness.submit("s", "two")
        let firstRun = harness.start(first)
        let secondRun = harness.start(second)
        let queued = AttachRecorder()
        let attachment = try harness.registry.attach(AttachRequest(sessionID: "s", turnID: second.turnID), caller: .server)
        let attach = Task { try await attachment.run(sink: queued.sink) }
        await eventually("attached") { queued.attached != nil }
        #expect(queued.attached?.state == .queued)
        feed.push("one", "a")
        feed.finish("one")
        _ = await firstRun.value
        feed.push("two", "b")
        feed.push("two", "c")
        feed.finish("two")
        #expect(try await attach.value.code == .ok)
        _ = await secondRun.value
        #expect(queued.chunks.map(\.data) == [Array("b".utf8), Array("c".utf8)])

        let replay = AttachRecorder()
        let finished = try harness.registry.attach(AttachRequest(sessionID: "s", turnID: first.turnID), caller: .server)
        let outcome = try await finished.run(sink: replay.sink)
        #expect(outcome.code == .ok)
        #expect(outcome.finished.stopReason == "end_turn")
        #expect(replay.attached == TurnAttached(turnID: first.turnID, state: .finished, lastSequence: 1))
        #expect(replay.chunks.map(\.data) == [Array("a".utf8)])

        // An empty turn id without a running turn: the most recent one.
        let latest = AttachRecorder()
        _ = try await harness.registry.attach(AttachRequest(sessionID: "s", afterSequence: 1), caller: .server).run(sink: latest.sink)
        #expect(latest.attached?.turnID == second.turnID)
        #expect(latest.chunks.map(\.sequence) == [2])
    }

    @Test("attach: unknown turn NOT_FOUND, no turns NOT_FOUND, another uid PERMISSION_DENIED")
    func attachErrors() async throws {
        let harness = harness()
        try await harness.createSession("s", backend: "feed")
        expectError(.notFound) { () throws(SwitchboardError) in
            try harness.registry.attach(AttachRequest(sessionID: "s"), caller: .server)
        }
        expectError(.notFound) { () throws(SwitchboardError) in
            try harness.registry.attach(AttachRequest(sessionID: "nope"), caller: .server)
        }
        expectError(.permissionDenied) { () throws(SwitchboardError) in
            try harness.registry.attach(AttachRequest(sessionID: "s"), caller: Caller(uid: 4242, isAdmin: false))
        }
        let attachment = try harness.registry.attach(AttachRequest(sessionID: "s", turnID: "t-nope"), caller: .server)
        await expectError(.notFound) { () async throws(SwitchboardError) in
            try await attachment.run(sink: AttachRecorder().sink)
        }
        await expectError(.permissionDenied) { () async throws(SwitchboardError) in
            try await harness.registry.listTurns(ListTurnsRequest(sessionID: "s"), caller: Caller(uid: 4242, isAdmin: false))
        }
    }

    @Test("list turns: oldest first, paged with an opaque token, prompt and output on request")
    func listTurns() async throws {
        let harness = harness()
        try await harness.createSession("s", backend: "echo")
        for index in 1...5 {
            _ = await (try harness.submit("s", "hello \(index)")).run(sink: { _ in })
        }
        let first = try await harness.registry.listTurns(ListTurnsRequest(sessionID: "s", pageSize: 2, includeOutput: true), caller: .server)
        #expect(first.turns.map(\.prompt) == ["hello 1", "hello 2"])
        #expect(first.turns.map { String(decoding: $0.output, as: UTF8.self) } == ["hello 1", "hello 2"])
        #expect(first.turns.allSatisfy { $0.summary.state == .finished && $0.summary.code == .ok && $0.summary.acceptedAtMs > 0 })
        #expect(!first.nextPageToken.isEmpty)
        let rest = try await harness.registry.listTurns(
            ListTurnsRequest(sessionID: "s", pageSize: 0, pageToken: first.nextPageToken),
            caller: .server
        )
        #expect(rest.turns.map(\.summary.promptPreview) == ["hello 3", "hello 4", "hello 5"])
        #expect(rest.turns.allSatisfy { $0.prompt.isEmpty && $0.output.isEmpty })
        #expect(rest.nextPageToken.isEmpty)
        await expectError(.invalidArgument) { () async throws(SwitchboardError) in
            try await harness.registry.listTurns(ListTurnsRequest(sessionID: "s", pageToken: "garbage"), caller: .server)
        }
    }

    @Test("restore: sessions come back with their finished turns; a running turn is ABORTED \"interrupted\" with its output so far")
    func restore() async throws {
        let store = InMemorySessionStore()
        let before = harness(store: store)
        try await before.createSession("done", backend: "echo", labels: [Label(key: "x", value: "1")])
        try await before.createSession("cut", backend: "feed")
        let finished = await (try before.submit("done", "all of it")).run(sink: { _ in })
        #expect(finished.code == .ok)
        let recorder = EventRecorder()
        let running = try before.submit("cut", "p")
        _ = before.start(running, recorder: recorder)
        feed.push("p", "part1 ")
        feed.push("p", "part2 ")
        await eventually("2 chunks") { recorder.chunks.count == 2 }

        // A new registry on the same store, as a restarted server would build.
        let after = Harness(extra: ["feed": FeedBackend()], store: store)
        #expect(try await after.registry.restore() == 2)
        let sessions = after.registry.sessionSnapshots()
        #expect(sessions.map(\.id) == ["cut", "done"])
        #expect(sessions[1].labels == [Label(key: "x", value: "1")])
        #expect(sessions[1].ownerUID == 1000)
        #expect(sessions[1].turnsCompleted == 1)

        let status = try after.registry.sessionStatus(id: "cut", caller: .server)
        #expect(status.turns.first?.turnID == running.turnID)
        #expect(status.turns.first?.code == .aborted)
        #expect(status.turns.first?.stopReason == "interrupted")

        let replay = AttachRecorder()
        let outcome = try await after.registry.attach(AttachRequest(sessionID: "cut"), caller: .server).run(sink: replay.sink)
        #expect(outcome.code == .aborted)
        #expect(outcome.message == SessionRegistry.interruptedMessage)
        #expect(replay.chunks.map { String(decoding: $0.data, as: UTF8.self) } == ["part1 ", "part2 "])

        let history = try await after.registry.listTurns(ListTurnsRequest(sessionID: "done", includeOutput: true), caller: .server)
        #expect(history.turns.map { String(decoding: $0.output, as: UTF8.self) } == ["all of it"])

        // The restored session takes new prompts.
        let next = await (try after.submit("done", "again")).run(sink: { _ in })
        #expect(next.code == .ok)
        feed.finish("p")
    }

    @Test("a restored session whose backend this server lacks fails its prompts with FAILED_PRECONDITION")
    func restoreUnknownBackend() async throws {
        let store = InMemorySessionStore()
        try await harness(store: store).createSession("s", backend: "feed")
        let after = Harness(store: store)
        try await after.registry.restore()
        let outcome = await (try after.submit("s", "hi")).run(sink: { _ in })
        #expect(outcome.code == .failedPrecondition)
        #expect(outcome.message.contains("\"feed\""))
    }

    @Test("a turn cancelled while queued is recorded as finished in the store")
    func queuedEndIsRecorded() async throws {
        let store = InMemorySessionStore()
        let harness = harness(store: store)
        try await harness.createSession("s", backend: "feed")
        let first = try harness.submit("s", "one")
        let second = try harness.submit("s", "two")
        let firstRun = harness.start(first)
        second.cancel(reason: "changed my mind")
        feed.finish("one")
        _ = await firstRun.value
        let page = try await store.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: false))
        #expect(page.entries.map(\.turn.state) == [.finished, .finished])
        #expect(page.entries[1].turn.ending?.code == .cancelled)
        #expect(page.entries[1].turn.ending?.message == "changed my mind")
        _ = second
    }
}
