import SwitchboardCore
import SwitchboardProtocol
import Testing

@Suite("Deadlines and stalls")
struct TimeoutTests {
    @Test("the session's turn deadline ends a hung turn with DEADLINE_EXCEEDED")
    func sessionTurnDeadline() async throws {
        let harness = Harness()
        try harness.createSession("s", settings: SessionSettings(turnDeadlineMs: 50, stallTimeoutMs: 60_000))
        let outcome = await value(of: harness.start(try harness.submit("s", "hang")))
        #expect(outcome.code == .deadlineExceeded)
        #expect(outcome.finished.stopReason == "deadline")
        #expect(outcome.finished.durationMs >= 50)
        #expect(harness.gate.cancelledPrompts == ["hang"])
    }

    @Test("the call's deadline applies when it is earlier")
    func callDeadline() async throws {
        let harness = Harness()
        try harness.createSession("s", settings: SessionSettings(turnDeadlineMs: 60_000, stallTimeoutMs: 60_000))
        let turn = try harness.submit("s", "hang", deadline: .now + .milliseconds(50))
        let outcome = await value(of: harness.start(turn))
        #expect(outcome.code == .deadlineExceeded)
        #expect(outcome.finished.stopReason == "deadline")
    }

    @Test("the call's deadline also bounds the wait in the queue")
    func callDeadlineWhileQueued() async throws {
        let harness = Harness()
        try harness.createSession("s")
        let held = harness.start(try harness.submit("s", "hold"))
        await harness.gate.waitForStarts(1)
        let queued = try harness.submit("s", "late", deadline: .now + .milliseconds(30))
        let outcome = await value(of: harness.start(queued))
        #expect(outcome.code == .deadlineExceeded)
        #expect(outcome.finished.stopReason == "deadline")
        #expect(harness.registry.statistics().queuedPrompts == 0)
        harness.gate.release("hold")
        #expect(await value(of: held).code == .ok)
        #expect(harness.gate.startedPrompts == ["hold"])
    }

    @Test("no output for the stall timeout ends the turn as stalled")
    func stall() async throws {
        let harness = Harness()
        try harness.createSession("s", settings: SessionSettings(turnDeadlineMs: 60_000, stallTimeoutMs: 100))
        let recorder = EventRecorder()
        let outcome = await value(of: harness.start(try harness.submit("s", "emit:first"), recorder: recorder))
        #expect(outcome.code == .deadlineExceeded)
        #expect(outcome.finished.stopReason == "stalled")
        #expect(outcome.message.contains("stalled"))
        #expect(outcome.message.contains("100 ms"))
        #expect(outcome.finished.chunks == 1)
        #expect(recorder.text == "first")
    }

    @Test("steady output keeps a turn from stalling")
    func outputRefreshesStallTimer() async throws {
        // 40 chunks 30 ms apart: about 1.2 s in all, beyond the 1 s stall timeout,
        // but never anywhere near 1 s without output.
        let harness = Harness(extra: ["ticking": TickingBackend(interval: .milliseconds(30), count: 40)])
        try harness.createSession("s", backend: "ticking", settings: SessionSettings(stallTimeoutMs: 1_000))
        let outcome = await value(of: harness.start(try harness.submit("s", "go")))
        #expect(outcome.code == .ok, "\(outcome.message)")
        #expect(outcome.finished.chunks == 40)
        #expect(outcome.finished.durationMs >= 1_000)
    }

    @Test("a slow reader is backpressure, not a stall")
    func slowSinkIsNotAStall() async throws {
        let harness = Harness()
        // Each chunk's sink suspends three times the stall timeout; the margin for
        // the backend's own gaps (250 ms) holds even on a loaded 2-core machine.
        try harness.createSession("s", backend: "echo", settings: SessionSettings(stallTimeoutMs: 250))
        let turn = try harness.submit("s", "a b c")
        let outcome = await value(of: Task {
            await turn.run { event in
                if case .output = event { try await Task.sleep(for: .milliseconds(750)) }
            }
        })
        #expect(outcome.code == .ok, "\(outcome.message)")
        #expect(outcome.finished.chunks == 3)
    }
}
