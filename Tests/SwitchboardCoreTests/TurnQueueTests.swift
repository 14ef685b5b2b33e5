import SwitchboardCore
import SwitchboardProtocol
import Testing

@Suite("Turn queue")
struct TurnQueueTests {
    @Test("ten concurrently submitted prompts run in strict FIFO order")
    func fifoOrder() async throws {
        let harness = Harness()
        try await harness.createSession("s")
        let first = try harness.submit("s", "hold")
        #expect(first.queuePosition == 0)
        let firstRun = harness.start(first)
        await harness.gate.waitForStarts(1)

        // Submit ten prompts from ten concurrent tasks; their acceptance order
        // (queue position) is the order they must start in.
        let accepted = await withTaskGroup(of: (position: Int, prompt: String, turn: PendingTurn)?.self) { group in
            for index in 0..<10 {
                group.addTask {
                    let prompt = "p\(index)"
                    guard let turn = try? harness.submit("s", prompt) else {
                        Issue.record("submit \(prompt) failed")
                        return nil
                    }
                    return (turn.queuePosition, prompt, turn)
                }
            }
            var accepted: [(position: Int, prompt: String, turn: PendingTurn)] = []
            for await entry in group { if let entry { accepted.append(entry) } }
            return accepted
        }
        let ordered = accepted.sorted { $0.position < $1.position }
        #expect(ordered.map(\.position) == Array(1...10))
        // Run them in reverse order of submission, to show `run` order is irrelevant.
        let runs = ordered.reversed().map { harness.start($0.turn) }

        harness.gate.release("hold")
        #expect(await value(of: firstRun).code == .ok)
        for (index, entry) in ordered.enumerated() {
            await harness.gate.waitForStarts(index + 2)
            harness.gate.release(entry.prompt)
        }
        for run in runs { #expect(await value(of: run).code == .ok) }
        #expect(harness.gate.startedPrompts == ["hold"] + ordered.map(\.prompt))
    }

    @Test("turns of different sessions run in parallel")
    func sessionsRunInParallel() async throws {
        let harness = Harness()
        try await harness.createSession("a")
        try await harness.createSession("b", backend: "echo")
        let held = harness.start(try harness.submit("a", "hold"))
        await harness.gate.waitForStarts(1)

        let recorder = EventRecorder()
        let outcome = await value(of: harness.start(try harness.submit("b", "hello there"), recorder: recorder))
        #expect(outcome.code == .ok)
        #expect(recorder.text == "hello there")
        #expect(try harness.registry.getSession(id: "a", caller: .server).state == .busy)

        harness.gate.release("hold")
        #expect(await value(of: held).code == .ok)
    }

    @Test("status, get, list and create answer while a turn is blocked")
    func registryStaysResponsive() async throws {
        let harness = Harness()
        try await harness.createSession("a")
        let held = harness.start(try harness.submit("a", "hold"))
        await harness.gate.waitForStarts(1)

        // None of these may wait for the held turn (it is only released at the end).
        let statistics = harness.registry.statistics()
        #expect(statistics.sessionsBusy == 1)
        #expect(statistics.turnsInFlight == 1)
        let session = try harness.registry.getSession(id: "a", caller: .server)
        #expect(session.state == .busy)
        #expect(!session.currentTurnID.isEmpty)
        #expect(try harness.registry.listSessions(ListSessionsRequest(), caller: .server).sessions.map(\.id) == ["a"])
        try await harness.createSession("b")
        #expect(try harness.registry.sessionStatus(id: "a", caller: .server).turns.first?.state == .running)
        #expect(harness.registry.sessionSnapshots().count == 2)
        #expect(harness.registry.removeIdleSessions().isEmpty)
        #expect(harness.gate.startedPrompts == ["hold"])

        harness.gate.release("hold")
        #expect(await value(of: held).code == .ok)
    }

    @Test("a prompt with BusyPolicy.reject fails at once when a turn runs or is queued")
    func busyReject() async throws {
        let harness = Harness()
        try await harness.createSession("s")
        let held = harness.start(try harness.submit("s", "hold"))
        await harness.gate.waitForStarts(1)

        let error = expectError(.failedPrecondition) { () throws(SwitchboardError) in
            try harness.submit("s", "nope", whenBusy: .reject)
        }
        #expect(error?.message.contains("busy") == true)

        harness.gate.release("hold")
        #expect(await value(of: held).code == .ok)
        // Idle again: a rejecting prompt runs.
        let now = try harness.submit("s", "now", whenBusy: .reject)
        #expect(now.queuePosition == 0)
        harness.gate.release("now")
        #expect(await value(of: harness.start(now)).code == .ok)
    }

    @Test("a full queue answers RESOURCE_EXHAUSTED")
    func queueFull() async throws {
        let harness = Harness(configuration: CoreConfiguration(maxQueuedPrompts: 2))
        try await harness.createSession("s")
        let held = harness.start(try harness.submit("s", "hold"))
        await harness.gate.waitForStarts(1)
        let q1 = try harness.submit("s", "q1")
        let q2 = try harness.submit("s", "q2")
        #expect([q1.queuePosition, q2.queuePosition] == [1, 2])
        expectError(.resourceExhausted) { () throws(SwitchboardError) in try harness.submit("s", "q3") }

        // A session may ask for less than the server's bound, never more.
        try await harness.createSession("small", settings: SessionSettings(maxQueuedPrompts: 1))
        try await harness.createSession("big", settings: SessionSettings(maxQueuedPrompts: 50))
        #expect(try harness.registry.getSession(id: "small", caller: .server).settings.maxQueuedPrompts == 1)
        #expect(try harness.registry.getSession(id: "big", caller: .server).settings.maxQueuedPrompts == 2)

        _ = try await harness.registry.closeSession(id: "s", reason: "test over", caller: .server)
        #expect(await value(of: held).code == .cancelled)
        _ = (q1, q2)
    }

    @Test("closing a session cancels its running turn and fails its queued prompts")
    func closeCancelsRunningAndQueued() async throws {
        let harness = Harness()
        try await harness.createSession("s")
        let running = harness.start(try harness.submit("s", "hold"))
        await harness.gate.waitForStarts(1)
        let queuedRunning = harness.start(try harness.submit("s", "q1"))
        let queuedNotRunning = try harness.submit("s", "q2")  // `run` not called yet

        let response = try await harness.registry.closeSession(id: "s", reason: "operator", caller: .server)
        #expect(response.cancelledTurns == 1)
        #expect(response.rejectedPrompts == 2)
        #expect(response.session?.state == .closed)

        let runningOutcome = await value(of: running)
        #expect(runningOutcome.code == .cancelled)
        #expect(runningOutcome.message == "session closed: operator")
        #expect(runningOutcome.finished.stopReason == "cancelled")
        #expect(harness.gate.cancelledPrompts == ["hold"])

        for outcome in [await value(of: queuedRunning), await value(of: harness.start(queuedNotRunning))] {
            #expect(outcome.code == .cancelled)
            #expect(outcome.message == "session closed: operator")
        }
        #expect(harness.gate.startedPrompts == ["hold"])

        // Removed: NOT_FOUND from now on.
        expectError(.notFound) { () throws(SwitchboardError) in try harness.submit("s", "late") }
        expectError(.notFound) { () throws(SwitchboardError) in try harness.registry.getSession(id: "s", caller: .server) }
        await expectError(.notFound) { () async throws(SwitchboardError) in try await harness.registry.closeSession(id: "s", reason: "", caller: .server) }
        let statistics = harness.registry.statistics()
        #expect(statistics.sessionsTotal == 0)
        #expect(statistics.turnsInFlight == 0)
        #expect(statistics.queuedPrompts == 0)
    }

    @Test("close does not wait for the running turn")
    func closeDoesNotWait() async throws {
        // The backend ignores cancellation until released: close must still return.
        let harness = Harness(extra: ["stubborn": StubbornBackend()])
        try await harness.createSession("s", backend: "stubborn")
        let running = harness.start(try harness.submit("s", "x"))
        await eventually("turn running") { (try? harness.registry.getSession(id: "s", caller: .server).state) == .busy }
        let response = try await harness.registry.closeSession(id: "s", reason: "bye", caller: .server)
        #expect(response.cancelledTurns == 1)
        StubbornBackend.release.open()
        #expect(await value(of: running).code == .cancelled)
    }

    @Test("cancelling a queued waiter's task keeps FIFO for the others")
    func cancelQueuedWaiterKeepsFIFO() async throws {
        let harness = Harness()
        try await harness.createSession("s")
        let held = harness.start(try harness.submit("s", "hold"))
        await harness.gate.waitForStarts(1)
        let b = harness.start(try harness.submit("s", "b"))
        let c = harness.start(try harness.submit("s", "c"))
        let d = harness.start(try harness.submit("s", "d"))
        let e = harness.start(try harness.submit("s", "e"))
        await eventually("four queued") { harness.registry.statistics().queuedPrompts == 4 }

        // Cancel the head of the queue and one in the middle.
        b.cancel()
        d.cancel()
        let bOutcome = await value(of: b)
        #expect(bOutcome.code == .cancelled)
        #expect(bOutcome.finished.stopReason == "cancelled")
        #expect(await value(of: d).code == .cancelled)
        #expect(harness.registry.statistics().queuedPrompts == 2)

        // The wake-up of the cancelled head goes to the next in line.
        harness.gate.release("hold")
        await harness.gate.waitForStarts(2)
        harness.gate.release("c")
        await harness.gate.waitForStarts(3)
        harness.gate.release("e")
        for task in [held, c, e] { #expect(await value(of: task).code == .ok) }
        #expect(harness.gate.startedPrompts == ["hold", "c", "e"])
    }

    @Test("cancelling the task of a running turn cancels its backend")
    func cancelRunningTask() async throws {
        let harness = Harness()
        try await harness.createSession("s")
        let running = harness.start(try harness.submit("s", "hold"))
        await harness.gate.waitForStarts(1)
        running.cancel()
        let outcome = await value(of: running)
        #expect(outcome.code == .cancelled)
        #expect(harness.gate.cancelledPrompts == ["hold"])
        // The session stays usable.
        let next = try harness.submit("s", "next")
        #expect(next.queuePosition == 0)
        harness.gate.release("next")
        #expect(await value(of: harness.start(next)).code == .ok)
    }

    @Test("PendingTurn.cancel ends a queued or running turn from outside")
    func cancelFromOutside() async throws {
        let harness = Harness()
        try await harness.createSession("s")
        let holdTurn = try harness.submit("s", "hold")
        let held = harness.start(holdTurn)
        await harness.gate.waitForStarts(1)
        let queuedTurn = try harness.submit("s", "queued")
        queuedTurn.cancel(reason: "client disconnected")
        let queuedOutcome = await value(of: harness.start(queuedTurn))
        #expect(queuedOutcome.code == .cancelled)
        #expect(queuedOutcome.message == "client disconnected")

        holdTurn.cancel(reason: "cancel frame")
        let heldOutcome = await value(of: held)
        #expect(heldOutcome.code == .cancelled)
        #expect(heldOutcome.message == "cancel frame")

        let history = try harness.registry.sessionStatus(id: "s", caller: .server).turns
        #expect(history.map(\.message) == ["cancel frame", "client disconnected"])
        #expect(history.allSatisfy { $0.state == .finished })
    }

    @Test("a turn that is dropped without running gives up its place")
    func abandonedTurnLeavesQueue() async throws {
        let harness = Harness()
        try await harness.createSession("s")
        do {
            let dropped = try harness.submit("s", "never run")
            #expect(dropped.queuePosition == 0)
        }
        #expect(harness.registry.statistics().turnsInFlight == 0)
        let next = try harness.submit("s", "next", whenBusy: .reject)
        #expect(next.queuePosition == 0)
        harness.gate.release("next")
        #expect(await value(of: harness.start(next)).code == .ok)
    }

    @Test("running a turn twice is refused")
    func runTwice() async throws {
        let harness = Harness()
        try await harness.createSession("s", backend: "echo")
        let turn = try harness.submit("s", "hi")
        #expect(await turn.run(sink: { _ in }).code == .ok)
        #expect(await turn.run(sink: { _ in }).code == .failedPrecondition)
    }

    @Test("a sink that throws ends the turn")
    func failingSink() async throws {
        let harness = Harness()
        try await harness.createSession("s", backend: "echo")
        let turn = try harness.submit("s", "one two three")
        let outcome = await turn.run { event in
            if case .output = event { throw SwitchboardError(code: .unavailable, message: "client gone") }
        }
        #expect(outcome.code == .unavailable)
        #expect(outcome.message == "client gone")
        #expect(outcome.finished.chunks == 1)
    }

    @Test("cancellation races with grants lose no turn and no wake-up", arguments: 0..<20)
    func cancellationRace(seed: Int) async throws {
        let harness = Harness(echo: EchoBackend(tokenDelay: .microseconds(50)))
        try await harness.createSession("s", backend: "echo")
        let tasks = try (0..<8).map { index in
            (index, harness.start(try harness.submit("s", "turn \(index) of \(seed)")))
        }
        for (index, task) in tasks where (index + seed) % 3 == 0 {
            task.cancel()
        }
        for (_, task) in tasks {
            let outcome = await value(of: task)
            #expect(outcome.code == .ok || outcome.code == .cancelled)
        }
        let statistics = harness.registry.statistics()
        #expect(statistics.turnsInFlight == 0)
        #expect(statistics.queuedPrompts == 0)
        #expect(statistics.sessionsIdle == 1)
        let last = try harness.submit("s", "after", whenBusy: .reject)
        #expect(await value(of: harness.start(last)).code == .ok)
    }
}

/// Ignores cancellation until `release` opens (an uncooperative backend).
struct StubbornBackend: Backend {
    static let release = Gate()
    func runTurn(_ turn: TurnRequest, output: TurnOutput) async throws -> String {
        await Task { try? await Self.release.wait() }.value
        try Task.checkCancellation()
        return "done"
    }
}
