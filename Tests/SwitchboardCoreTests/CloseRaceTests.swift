import Synchronization
import SwitchboardCore
import SwitchboardProtocol
import Testing

/// An in-memory store whose `createSession` and/or `deleteSession` wait for a gate
/// the test opens, so that other calls can run while the store is "slow".
final class SlowStore: ForwardingSessionStore {
    let inner = InMemorySessionStore()
    let createGate = Gate()
    let deleteGate = Gate()
    private let slowCreate: Bool
    private let slowDelete: Bool
    private let calls = Mutex<(creates: Int, deletes: Int)>((0, 0))

    init(slowCreate: Bool = false, slowDelete: Bool = false) {
        self.slowCreate = slowCreate
        self.slowDelete = slowDelete
    }

    /// `createSession` / `deleteSession` calls so far (counted on entry).
    var creates: Int { calls.withLockAnnotated { $0.creates } }
    var deletes: Int { calls.withLockAnnotated { $0.deletes } }

    func createSession(_ session: StoredSession) async throws {
        calls.withLockAnnotated { $0.creates += 1 }
        if slowCreate { try await createGate.wait() }
        try await inner.createSession(session)
    }
    func deleteSession(id: String) async throws {
        calls.withLockAnnotated { $0.deletes += 1 }
        if slowDelete { try await deleteGate.wait() }
        try await inner.deleteSession(id: id)
    }
}

@Suite("Close, idle cleanup and create racing the store")
struct CloseRaceTests {
    /// Far enough in the future that every session's idle timeout has passed.
    let later = UInt64.max / 2
    let feed = FeedBackend()

    @Test("idle cleanup skips a session still being created (idle_timeout_ms=1, slow store create)")
    func sweepSkipsSessionBeingCreated() async throws {
        let store = SlowStore(slowCreate: true)
        let harness = Harness(store: store)
        let creating = Task { try await harness.createSession("new", settings: SessionSettings(idleTimeoutMs: 1)) }
        await eventually("create waits for the store") { store.creates == 1 }
        #expect(harness.registry.managedSession(id: "new") != nil, "the id is taken while the store writes")
        try await Task.sleep(for: .milliseconds(5))
        #expect(harness.registry.removeIdleSessions().isEmpty)
        #expect(harness.registry.removeIdleSessions(nowMs: later).isEmpty)

        store.createGate.open()
        let created = try await creating.value
        #expect(created.state == .idle)
        #expect(try harness.registry.getSession(id: "new", caller: .server).state == .idle)
        // Once created, it is an ordinary idle session.
        #expect(harness.registry.removeIdleSessions(nowMs: later) == ["new"])
    }

    @Test("close keeps the id until the store's delete returned: a recreate meanwhile is UNAVAILABLE \"being closed\"")
    func recreateDuringCloseDelete() async throws {
        let store = SlowStore(slowDelete: true)
        let harness = Harness(store: store)
        try await harness.createSession("x")
        let closing = Task { try await harness.registry.closeSession(id: "x", reason: "", caller: .server) }
        await eventually("close waits for the store") { store.deletes == 1 }

        expectError(.notFound) { () throws(SwitchboardError) in try harness.registry.getSession(id: "x", caller: .server) }
        #expect(harness.registry.sessionSnapshots().isEmpty)
        let refused = await expectError(.unavailable) { () async throws(SwitchboardError) in try await harness.createSession("x") }
        #expect(refused?.message.contains("being closed") == true, "\(String(describing: refused))")
        #expect(store.creates == 1, "the refused create never reached the store")
        await expectError(.notFound) { () async throws(SwitchboardError) in
            try await harness.registry.closeSession(id: "x", reason: "", caller: .server)
        }

        store.deleteGate.open()
        _ = try await closing.value
        #expect(harness.registry.statistics().sessionsTotal == 0)
        try await harness.createSession("x")
        #expect(try await store.inner.load(interruptedMessage: "").map(\.id) == ["x"])
        #expect(try harness.registry.getSession(id: "x", caller: .server).state == .idle)
    }

    @Test("idle cleanup removes the entry only after the store's delete returned: the new session survives it")
    func recreateDuringIdleDelete() async throws {
        let store = SlowStore(slowDelete: true)
        let harness = Harness(store: store)
        try await harness.createSession("y", settings: SessionSettings(idleTimeoutMs: 1))
        #expect(harness.registry.removeIdleSessions(nowMs: later) == ["y"])
        await eventually("the sweep's delete waits for the store") { store.deletes == 1 }

        expectError(.notFound) { () throws(SwitchboardError) in try harness.registry.getSession(id: "y", caller: .server) }
        let refused = await expectError(.unavailable) { () async throws(SwitchboardError) in try await harness.createSession("y") }
        #expect(refused?.message.contains("being closed") == true, "\(String(describing: refused))")
        #expect(harness.registry.removeIdleSessions(nowMs: later).isEmpty, "a closing session is not swept twice")

        store.deleteGate.open()
        await eventually("the entry is gone once the delete returned") { harness.registry.managedSession(id: "y") == nil }
        #expect(harness.registry.statistics().sessionsTotal == 0)
        try await harness.createSession("y")
        #expect(try await store.inner.load(interruptedMessage: "").map(\.id) == ["y"])
        #expect(try harness.registry.getSession(id: "y", caller: .server).state == .idle)
    }

    /// Runs a feed turn with 3 chunks, attaches with a sink that blocks on chunk
    /// 1 (so the attacher has read the store up to 3 and lags), produces chunks
    /// 4...10, and returns what the test needs to close the session under it.
    private func lagBehind(_ harness: Harness) async throws -> (turn: PendingTurn, running: Task<TurnOutcome, Never>, attacher: AttachRecorder, gate: Gate, attach: Task<TurnOutcome, any Error>) {
        try await harness.createSession("s", backend: "feed")
        let turn = try harness.submit("s", "p")
        let prompt = EventRecorder()
        let running = harness.start(turn, recorder: prompt)
        for index in 1...3 { feed.push("p", "c\(index) ") }
        await eventually("3 chunks") { prompt.chunks.count == 3 }

        let attacher = AttachRecorder()
        let gate = Gate()
        let record = attacher.sink
        let attachment = try harness.registry.attach(AttachRequest(sessionID: "s"), caller: .server)
        let attach = Task {
            try await attachment.run { event in
                try await record(event)
                if case .output(let chunk) = event, chunk.sequence == 1 { try await gate.wait() }
            }
        }
        await eventually("the attacher holds chunk 1") { attacher.chunks.count == 1 }
        for index in 4...10 { feed.push("p", "c\(index) ") }
        await eventually("10 chunks") { prompt.chunks.count == 10 }
        return (turn, running, attacher, gate, attach)
    }

    @Test("an attacher lagging behind a turn whose session was closed ends with the turn's status (CANCELLED)")
    func laggingAttacherOfClosedSession() async throws {
        let harness = Harness(extra: ["feed": feed])
        let (_, running, attacher, gate, attach) = try await lagBehind(harness)

        _ = try await harness.registry.closeSession(id: "s", reason: "operator", caller: .server)
        #expect(await value(of: running).code == .cancelled)
        gate.open()
        let outcome = try await attach.value
        #expect(outcome.code == .cancelled)
        #expect(outcome.message == "session closed: operator")
        #expect(attacher.chunks.map(\.sequence) == [1, 2, 3], "what was read before the close, nothing invented")
        #expect(attacher.finished?.chunks == 10)
        if case .finished = attacher.events.last {} else { Issue.record("finished must come last") }
    }

    @Test("an attacher lagging behind a turn that ended OK before the close ends NOT_FOUND, never OK with a gap")
    func laggingAttacherOfFinishedTurn() async throws {
        let harness = Harness(extra: ["feed": feed])
        let (_, running, attacher, gate, attach) = try await lagBehind(harness)

        feed.finish("p")
        #expect(await value(of: running).code == .ok)
        _ = try await harness.registry.closeSession(id: "s", reason: "", caller: .server)
        gate.open()
        do {
            let outcome = try await attach.value
            Issue.record("expected NOT_FOUND, got \(outcome)")
        } catch {
            let error = error as? SwitchboardError
            #expect(error?.code == .notFound, "\(String(describing: error))")
            #expect(error?.message.contains("was closed") == true, "\(String(describing: error))")
        }
        #expect(attacher.finished == nil)
    }
}
