import SwitchboardCore
import SwitchboardProtocol
import Testing

@Suite("Statistics and session status")
struct StatusTests {
    @Test("statistics follow running, queued and finished turns")
    func statistics() async throws {
        let harness = Harness()
        try await harness.createSession("a")
        try await harness.createSession("b")
        try await harness.createSession("c")
        #expect(harness.registry.statistics() == RegistryStatistics(sessionsTotal: 3, sessionsIdle: 3))

        let a = harness.start(try harness.submit("a", "hold-a"))
        await harness.gate.waitForStarts(1)
        var queuedA: [Task<TurnOutcome, Never>] = []
        for index in 0..<3 { queuedA.append(harness.start(try harness.submit("a", "a\(index)"))) }
        let b = harness.start(try harness.submit("b", "hold-b"))
        await harness.gate.waitForStarts(2)
        let queuedB = harness.start(try harness.submit("b", "b0"))
        await eventually("queued") { harness.registry.statistics().queuedPrompts == 4 }

        #expect(harness.registry.statistics() == RegistryStatistics(
            sessionsTotal: 3, sessionsIdle: 1, sessionsBusy: 2, turnsInFlight: 2, queuedPrompts: 4, maxQueueDepth: 3
        ))
        let sessionA = try harness.registry.getSession(id: "a", caller: .server)
        #expect(sessionA.queuedPrompts == 3)
        #expect(sessionA.state == .busy)

        _ = try await harness.registry.closeSession(id: "a", reason: "done", caller: .server)
        for task in [a] + queuedA { #expect(await value(of: task).code == .cancelled) }
        #expect(harness.registry.statistics() == RegistryStatistics(
            sessionsTotal: 2, sessionsIdle: 1, sessionsBusy: 1, turnsInFlight: 1, queuedPrompts: 1, maxQueueDepth: 1,
            turnsCompleted: 1
        ))

        harness.gate.release("hold-b")
        harness.gate.release("b0")
        #expect(await value(of: b).code == .ok)
        #expect(await value(of: queuedB).code == .ok)
        #expect(harness.registry.statistics() == RegistryStatistics(
            sessionsTotal: 2, sessionsIdle: 2, turnsCompleted: 3
        ))
        #expect(try harness.registry.getSession(id: "b", caller: .server).turnsCompleted == 2)
    }

    @Test("session status lists running, queued, then finished turns, newest first")
    func sessionStatus() async throws {
        let harness = Harness(configuration: CoreConfiguration(finishedTurnsKept: 2))
        try await harness.createSession("s")
        for prompt in ["emit:one", "emit:two", "emit:three"] {
            let turn = try harness.submit("s", prompt)
            harness.gate.release(prompt)
            #expect(await value(of: harness.start(turn)).code == .ok)
        }
        let long = String(repeating: "é", count: 150)  // 300 bytes
        let running = try harness.submit("s", "emit:now")
        let runningTask = harness.start(running)
        await harness.gate.waitForStarts(4)
        let queued = try harness.submit("s", long)

        let status = try harness.registry.sessionStatus(id: "s", caller: .server)
        #expect(status.session?.id == "s")
        #expect(status.session?.currentTurnID == running.turnID)
        #expect(status.session?.queuedPrompts == 1)
        #expect(status.turns.map(\.state) == [.running, .queued, .finished, .finished])
        #expect(status.turns.map(\.promptPreview) == [
            "emit:now", String(repeating: "é", count: 100), "emit:three", "emit:two",
        ])
        #expect(status.turns[0].turnID == running.turnID)
        #expect(status.turns[0].startedAtMs > 0)
        #expect(status.turns[0].chunks == 1)
        #expect(status.turns[0].bytes == 3)
        #expect(status.turns[1].turnID == queued.turnID)
        let finished = status.turns[2]
        #expect(finished.code == .ok)
        #expect(finished.stopReason == "released")
        #expect(finished.chunks == 1)
        #expect(finished.bytes == 5)
        #expect(finished.startedAtMs > 0)
        #expect(finished.endedAtMs >= finished.startedAtMs)

        harness.gate.release("emit:now")
        #expect(await value(of: runningTask).code == .ok)
        queued.cancel(reason: "enough")
        let afterwards = try harness.registry.sessionStatus(id: "s", caller: .server).turns
        #expect(afterwards.map(\.promptPreview) == [String(repeating: "é", count: 100), "emit:now"])
        #expect(afterwards[0].code == .cancelled)
        #expect(afterwards[0].message == "enough")
        #expect(afterwards[0].startedAtMs == 0)
    }

    @Test("statistics stay cheap and exact with many idle sessions")
    func manyIdleSessions() async throws {
        let harness = Harness()
        for index in 0..<5_000 { try await harness.createSession("s\(index)") }
        let statistics = harness.registry.statistics()
        #expect(statistics.sessionsTotal == 5_000)
        #expect(statistics.sessionsIdle == 5_000)
        #expect(statistics.maxQueueDepth == 0)
    }
}
