import SwitchboardCore
import SwitchboardProtocol
import Testing

/// Every deadline and stall timeout here is stretched by `TestTimeScale` together
/// with the waits around it (a backend's gaps, a slow sink, the hang guard), so under
/// Thread Sanitizer (scripts/test.sh), where everything runs many times slower, the
/// relation each test asserts still holds: a turn starts well inside its deadline,
/// output comes well inside the stall timeout, a slow sink outlasts it.
@Suite("Deadlines and stalls")
struct TimeoutTests {
    /// `milliseconds`, stretched, as a session setting.
    static func settingMs(_ milliseconds: Int) -> UInt64 { UInt64(TestTimeScale.ms(milliseconds)) }

    /// Guards only against a hang: far beyond every deadline and timeout below.
    static let hangGuard = TestTimeScale.seconds(20)

    @Test("the session's turn deadline ends a hung turn with DEADLINE_EXCEEDED")
    func sessionTurnDeadline() async throws {
        let harness = Harness()
        let deadlineMs = Self.settingMs(50)
        try await harness.createSession("s", settings: SessionSettings(turnDeadlineMs: deadlineMs, stallTimeoutMs: Self.settingMs(60_000)))
        let outcome = await value(of: harness.start(try harness.submit("s", "hang")), within: Self.hangGuard)
        #expect(outcome.code == .deadlineExceeded)
        #expect(outcome.finished.stopReason == "deadline")
        #expect(outcome.finished.durationMs >= deadlineMs)
        #expect(harness.gate.cancelledPrompts == ["hang"])
    }

    @Test("the call's deadline applies when it is earlier")
    func callDeadline() async throws {
        let harness = Harness()
        try await harness.createSession("s", settings: SessionSettings(turnDeadlineMs: Self.settingMs(60_000), stallTimeoutMs: Self.settingMs(60_000)))
        let turn = try harness.submit("s", "hang", deadline: .now + TestTimeScale.milliseconds(50))
        let outcome = await value(of: harness.start(turn), within: Self.hangGuard)
        #expect(outcome.code == .deadlineExceeded)
        #expect(outcome.finished.stopReason == "deadline")
    }

    @Test("the call's deadline also bounds the wait in the queue")
    func callDeadlineWhileQueued() async throws {
        let harness = Harness()
        try await harness.createSession("s")
        let held = harness.start(try harness.submit("s", "hold"))
        await harness.gate.waitForStarts(1)
        let queued = try harness.submit("s", "late", deadline: .now + TestTimeScale.milliseconds(30))
        let outcome = await value(of: harness.start(queued), within: Self.hangGuard)
        #expect(outcome.code == .deadlineExceeded)
        #expect(outcome.finished.stopReason == "deadline")
        #expect(harness.registry.statistics().queuedPrompts == 0)
        harness.gate.release("hold")
        #expect(await value(of: held, within: Self.hangGuard).code == .ok)
        #expect(harness.gate.startedPrompts == ["hold"])
    }

    @Test("no output for the stall timeout ends the turn as stalled")
    func stall() async throws {
        let harness = Harness()
        let stallMs = Self.settingMs(100)
        try await harness.createSession("s", settings: SessionSettings(turnDeadlineMs: Self.settingMs(60_000), stallTimeoutMs: stallMs))
        let recorder = EventRecorder()
        let outcome = await value(of: harness.start(try harness.submit("s", "emit:first"), recorder: recorder), within: Self.hangGuard)
        #expect(outcome.code == .deadlineExceeded)
        #expect(outcome.finished.stopReason == "stalled")
        #expect(outcome.message.contains("stalled"))
        #expect(outcome.message.contains("\(stallMs) ms"))
        #expect(outcome.finished.chunks == 1)
        #expect(recorder.text == "first")
    }

    @Test("steady output keeps a turn from stalling")
    func outputRefreshesStallTimer() async throws {
        // 40 chunks 30 ms apart: about 1.2 s in all, beyond the 1 s stall timeout,
        // but never anywhere near 1 s without output (all three stretched alike).
        let harness = Harness(extra: ["ticking": TickingBackend(interval: TestTimeScale.milliseconds(30), count: 40)])
        let stallMs = Self.settingMs(1_000)
        try await harness.createSession("s", backend: "ticking", settings: SessionSettings(stallTimeoutMs: stallMs))
        let outcome = await value(of: harness.start(try harness.submit("s", "go")), within: Self.hangGuard)
        #expect(outcome.code == .ok, "\(outcome.message)")
        #expect(outcome.finished.chunks == 40)
        #expect(outcome.finished.durationMs >= stallMs)
    }

    @Test("a slow reader is backpressure, not a stall")
    func slowSinkIsNotAStall() async throws {
        let harness = Harness()
        // Each chunk's sink suspends three times the stall timeout; the margin for
        // the backend's own gaps (250 ms) holds even on a loaded 2-core machine.
        try await harness.createSession("s", backend: "echo", settings: SessionSettings(stallTimeoutMs: Self.settingMs(250)))
        let turn = try harness.submit("s", "a b c")
        let sinkDelay = TestTimeScale.milliseconds(750)
        let outcome = await value(of: Task {
            await turn.run { event in
                if case .output = event { try await Task.sleep(for: sinkDelay) }
            }
        }, within: Self.hangGuard)
        #expect(outcome.code == .ok, "\(outcome.message)")
        #expect(outcome.finished.chunks == 3)
    }
}
