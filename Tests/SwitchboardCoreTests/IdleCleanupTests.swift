import SwitchboardCore
import SwitchboardProtocol
import Testing

@Suite("Idle cleanup")
struct IdleCleanupTests {
    /// Far enough in the future that every session's idle timeout has passed.
    let later = UInt64.max / 2

    @Test("an idle session past its timeout is closed and removed; a fresh one stays")
    func removesExpiredIdleSession() async throws {
        let harness = Harness()
        let created = try await harness.createSession("old", settings: SessionSettings(idleTimeoutMs: 1_000))
        try await harness.createSession("fresh", settings: SessionSettings(idleTimeoutMs: 3_600_000))

        #expect(harness.registry.removeIdleSessions(nowMs: created.lastActivityMs + 999).isEmpty)
        #expect(harness.registry.removeIdleSessions(nowMs: created.lastActivityMs + 1_000) == ["old"])
        expectError(.notFound) { () throws(SwitchboardError) in try harness.registry.getSession(id: "old", caller: .server) }
        #expect(try harness.registry.getSession(id: "fresh", caller: .server).state == .idle)
        // The entry goes once the store's delete (on a task of its own) returned.
        await eventually("the closed session leaves the map") { harness.registry.statistics().sessionsTotal == 1 }
        #expect(harness.registry.statistics().sessionsIdle == 1)
    }

    @Test("the real-clock sweep removes a session with a tiny idle timeout")
    func realClockSweep() async throws {
        let harness = Harness()
        try await harness.createSession("brief", settings: SessionSettings(idleTimeoutMs: 1))
        try await Task.sleep(for: .milliseconds(5))
        #expect(harness.registry.removeIdleSessions() == ["brief"])
    }

    @Test("a session with a running or a queued turn is never removed")
    func skipsBusySessions() async throws {
        let harness = Harness()
        try await harness.createSession("running", settings: SessionSettings(idleTimeoutMs: 1))
        try await harness.createSession("queued", settings: SessionSettings(idleTimeoutMs: 1))
        let held = harness.start(try harness.submit("running", "hold"))
        // "queued": a turn holds the slot but has not been run yet, another waits.
        let first = try harness.submit("queued", "q-first")
        let second = try harness.submit("queued", "q-second")
        await harness.gate.waitForStarts(1)

        #expect(harness.registry.removeIdleSessions(nowMs: later).isEmpty)
        #expect(harness.registry.sessionSnapshots().map(\.id) == ["queued", "running"])

        harness.gate.release("hold")
        #expect(await value(of: held).code == .ok)
        first.cancel(reason: "test")
        second.cancel(reason: "test")
        #expect(await value(of: harness.start(second)).code == .cancelled)
        #expect(await value(of: harness.start(first)).code == .cancelled)
        #expect(harness.registry.removeIdleSessions(nowMs: later) == ["queued", "running"])
    }

    @Test("removal is guarded by identity: a replacement under the same id survives")
    func identityGuardedRemoval() async throws {
        let harness = Harness()
        try await harness.createSession("x", settings: SessionSettings(idleTimeoutMs: 1))
        let stale = try #require(harness.registry.managedSession(id: "x"))

        // A concurrent close-and-recreate put a new object under "x" after the sweep
        // took its snapshot (which still holds `stale`).
        try harness.registry.replaceSession(id: "x")
        let replacement = try #require(harness.registry.managedSession(id: "x"))
        #expect(replacement !== stale)

        #expect(!harness.registry.removeIfIdle(stale, nowMs: later))
        #expect(stale.state == .closed)
        #expect(harness.registry.managedSession(id: "x") === replacement)
        #expect(try harness.registry.getSession(id: "x", caller: .server).state == .idle)
        #expect(!harness.registry.removeEntry(id: "x", ifSameAs: stale))
        #expect(harness.registry.managedSession(id: "x") === replacement)

        // The stale object is closed: a prompt that still reaches it is refused.
        let error = expectError(.failedPrecondition) { () throws(SwitchboardError) in
            try stale.submit(PromptRequest(sessionID: "x", prompt: "hi"), deadline: nil)
        }
        #expect(error?.message.contains("closed") == true)
    }
}
