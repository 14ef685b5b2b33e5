import Foundation
import Testing
import SwitchboardAgentHost

@Suite(
    "An ACP agent process and connection, against the real Python test agents",
    .enabled(if: AgentFixtures.available, "needs .venv-acp (scripts/bootstrap.sh)"),
    // One Python agent starting at a time (about a second of CPU each), so this
    // suite does not starve the timing windows of the suites running beside it.
    .serialized,
    .timeLimit(.minutes(AgentFixtures.scale * 3))
)
struct AgentConnectionTests {
    @Test func countingAgentCountsAndALoadRestoresTheCount() async throws {
        let state = try AgentFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let (first, handshake) = try await AgentFixtures.connect("counting_agent.py", ["--state-dir", state])
        #expect(handshake.loadSession)
        var answers: [String] = []
        for index in 1...3 {
            let log = UpdateLog()
            let stop = try await first.prompt("prompt \(index)", onUpdate: log.record)
            #expect(stop == "end_turn")
            answers.append(log.text)
        }
        #expect(answers == ["1", "2", "3"])
        let firstPID = try #require(first.process.agentPID)
        first.close(killGrace: AgentFixtures.seconds(2))
        _ = await first.waitForExit()

        let second = try AgentConnection.spawn(launch: AgentFixtures.launch("counting_agent.py", ["--state-dir", state]), permissionPolicy: .deny)
        let replayed = try await second.load(sessionID: handshake.sessionID, cwd: AgentFixtures.root, timeout: AgentFixtures.handshakeTimeout)
        #expect(replayed == 6, "three prompts and three answers replayed, and dropped")
        #expect(second.process.agentPID != firstPID)
        let log = UpdateLog()
        _ = try await second.prompt("prompt 4", onUpdate: log.record)
        #expect(log.all == [.messageText("4")], "the replay is not streamed as output")
        second.close(killGrace: AgentFixtures.seconds(2))
        let exit = await second.waitForExit()
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(5)) {
            AgentFixtures.liveMembers(ofGroup: second.process.processGroupID).isEmpty
        })
        #expect(exit.cause == .killed(reason: "closed") || exit.cause == .exited(0) || exit.cause == .signaled(SIGTERM))
    }

    @Test func eventsArriveInOrderAndAnUnknownKindIsKeptAsSent() async throws {
        let (connection, _) = try await AgentFixtures.connect("events_agent.py")
        defer { connection.close(killGrace: .seconds(1)) }
        let log = UpdateLog()
        let stop = try await connection.prompt("hello", onUpdate: log.record)
        #expect(stop == "end_turn")
        let kinds = log.all.map { update -> String in
            switch update {
            case .messageText(let text): "text:\(text)"
            case .event(let kind, _): kind
            }
        }
        #expect(kinds == [
            "agent_thought_chunk", "plan", "tool_call", "tool_call_update", "tool_call_update", "usage_update",
            "switchboard_test_future_kind", "text:answer: ", "text:hello",
        ])
        guard case .event(_, let json) = log.all[6] else { Issue.record("no unknown kind"); return }
        let unknown = try JSONParser.parse(Array(json.utf8))
        #expect(unknown["sessionUpdate"] == .string("switchboard_test_future_kind"))
        #expect(unknown["turn"] == .number("1"))
        #expect(unknown["detail"] != nil)
    }

    @Test func aCrashMidTurnIsATypedErrorWithTheStderrTail() async throws {
        let (connection, _) = try await AgentFixtures.connect("crashing_agent.py")
        let log = UpdateLog()
        let error = await #expect(throws: AgentError.self) { try await connection.prompt("crash", onUpdate: log.record) }
        guard case .ended(let exit) = error else { Issue.record("not an end: \(String(describing: error))"); return }
        #expect(exit.cause == .exited(3))
        #expect(exit.stderrTail.contains("simulated crash mid-turn (exit 3)"))
        #expect(error?.description.hasPrefix("agent exited with status 3; stderr: ") == true)
        #expect(log.all == [.messageText("about to crash")])
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(5)) {
            AgentFixtures.liveMembers(ofGroup: connection.process.processGroupID).isEmpty
        })
        // The connection refuses further work with the same end.
        await #expect(throws: AgentError.ended(exit)) { try await connection.prompt("again", onUpdate: { _ in }) }
    }

    @Test(arguments: ["garbage", "garbage-json", "garbage-binary"])
    func aLineThatIsNotJSONRPCEndsTheTurn(_ prompt: String) async throws {
        let (connection, _) = try await AgentFixtures.connect("garbage_agent.py")
        let error = await #expect(throws: AgentError.self) { try await connection.prompt(prompt, onUpdate: { _ in }) }
        guard case .ended(let exit) = error, case .protocolViolation(.notJSONRPC) = exit.cause else {
            Issue.record("not a protocol violation: \(String(describing: error))")
            return
        }
        #expect(error?.description.hasPrefix("agent wrote a line that is not JSON-RPC") == true)
        // SIGKILLed with its keeper, which is reaped; the agent's own death may lag a moment.
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(5)) {
            AgentFixtures.liveMembers(ofGroup: connection.process.processGroupID).isEmpty
        })
    }

    @Test func aLineLongerThanTheLimitEndsTheTurn() async throws {
        let limit = 1 << 20
        let (connection, _) = try await AgentFixtures.connect("huge_line_agent.py", maxLineBytes: limit)
        let error = await #expect(throws: AgentError.self) { try await connection.prompt("huge", onUpdate: { _ in }) }
        guard case .ended(let exit) = error else { Issue.record("not an end: \(String(describing: error))"); return }
        #expect(exit.cause == .protocolViolation(.lineTooLong(limit: limit)))
        #expect(error?.description.hasPrefix("agent wrote a line longer than 1048576 bytes") == true)
        // SIGKILLed with its keeper, which is reaped; the agent's own death may lag a moment.
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(5)) {
            AgentFixtures.liveMembers(ofGroup: connection.process.processGroupID).isEmpty
        })
    }

    @Test func aSilentAgentIsKilledWithItsWholeGroupAfterTheCancelGrace() async throws {
        let (connection, _) = try await AgentFixtures.connect("silent_agent.py", ["--ignore-sigterm", "--spawn-child"])
        let group = connection.process.processGroupID
        let prompt = Task { try await connection.prompt("hang", onUpdate: { _ in }) }
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(30)) {
            connection.process.stderrTail.contains("never answering")
        })
        let childLine = try #require(connection.process.stderrTail.split(separator: "\n").first { $0.contains("child pid ") })
        let child = try #require(childLine.split(separator: " ").last.flatMap { pid_t($0) })
        #expect(AgentFixtures.isAlive(child))
        #expect(AgentFixtures.liveMembers(ofGroup: group).contains(child))
        let outcome = await connection.cancel(grace: AgentFixtures.milliseconds(300), killGrace: AgentFixtures.milliseconds(300))
        #expect(outcome == .killed)
        let result = await prompt.result
        guard case .failure(AgentError.ended(let exit)) = result, case .killed = exit.cause else {
            Issue.record("the prompt did not end with the kill: \(result)")
            return
        }
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(5)) {
            AgentFixtures.liveMembers(ofGroup: group).isEmpty && !AgentFixtures.isAlive(child)
        })
    }

    @Test func anAgentThatHonoursCancelEndsThePromptCancelledAndStaysUsable() async throws {
        let (connection, _) = try await AgentFixtures.connect("sleepy_agent.py", ["--seconds", "600"])
        defer { connection.close(killGrace: .seconds(1)) }
        let log = UpdateLog()
        let prompt = Task { try await connection.prompt("600", onUpdate: log.record) }
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(30)) { log.text.contains("tick") })
        // The grace only bounds the wait: a cooperating agent answers at once.
        let outcome = await connection.cancel(grace: AgentFixtures.seconds(30), killGrace: .seconds(1))
        #expect(outcome == .promptEnded)
        #expect(try await prompt.value == "cancelled")
        #expect(log.text.hasSuffix("cancelled"))
        #expect(connection.exit == nil)
        let next = UpdateLog()
        #expect(try await connection.prompt("0", onUpdate: next.record) == "end_turn")
        #expect(next.text.hasSuffix("done"))
        #expect(await connection.cancel(grace: .seconds(1), killGrace: .seconds(1)) == .nothingToCancel)
    }

    @Test func permissionRequestsAreAnsweredByPolicy() async throws {
        for (policy, answer) in [(AgentPermissionPolicy.allow, "permission granted: allow-once"), (.deny, "permission denied: reject-once")] {
            let (connection, _) = try await AgentFixtures.connect("permission_agent.py", policy: policy)
            let log = UpdateLog()
            let stop = try await connection.prompt("edit", onUpdate: log.record)
            #expect(stop == "end_turn")
            #expect(log.text == answer)
            connection.close(killGrace: .seconds(1))
        }
    }

    @Test func theSDKsOwnEchoAgentAnswers() async throws {
        let (connection, handshake) = try await AgentFixtures.connect(AgentFixtures.root + "/.venv-acp/examples/echo_agent.py")
        defer { connection.close(killGrace: .seconds(1)) }
        #expect(!handshake.sessionID.isEmpty)
        let log = UpdateLog()
        let stop = try await connection.prompt("hello, echo", onUpdate: log.record)
        #expect(stop == "end_turn")
        #expect(log.text == "hello, echo")
    }

    @Test func anAgentThatCannotStartFailsTheHandshakeWithItsStderr() async throws {
        let connection = try AgentConnection.spawn(launch: AgentLaunch(command: ["/nonexistent/agent"]), permissionPolicy: .deny)
        let error = await #expect(throws: AgentError.self) {
            try await connection.handshake(cwd: "/", timeout: AgentFixtures.handshakeTimeout)
        }
        guard case .ended(let exit) = error else { Issue.record("not an end: \(String(describing: error))"); return }
        #expect(exit.cause == .exited(127))
        #expect(exit.stderrTail.contains("cannot run /nonexistent/agent"))
    }

    @Test func aHandshakeThatTakesTooLongKillsTheGroup() async throws {
        // `sleep` never answers initialize.
        let connection = try AgentConnection.spawn(launch: AgentLaunch(command: ["sleep", "3600"]), permissionPolicy: .deny)
        let error = await #expect(throws: AgentError.self) {
            try await connection.handshake(cwd: "/", timeout: AgentFixtures.milliseconds(200))
        }
        guard case .handshakeTimeout = error else { Issue.record("not a timeout: \(String(describing: error))"); return }
        // SIGKILLed with its keeper, which is reaped; the agent's own death may lag a moment.
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(5)) {
            AgentFixtures.liveMembers(ofGroup: connection.process.processGroupID).isEmpty
        })
    }

    @Test func aConnectionNobodyHoldsTakesItsProcessGroupWithIt() async throws {
        var connection: AgentConnection? = try AgentConnection.spawn(launch: AgentLaunch(command: ["sleep", "3600"]), permissionPolicy: .deny)
        let group = try #require(connection?.process.processGroupID)
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(5)) { !AgentFixtures.liveMembers(ofGroup: group).isEmpty })
        connection = nil
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(5)) { AgentFixtures.liveMembers(ofGroup: group).isEmpty })
    }

    @Test func theEnvironmentIsClearedExceptTheAllowList() throws {
        let launch = AgentLaunch(command: ["x"], environmentAllowList: ["PATH", "HOME"], fixedEnvironment: ["HOME=/tmp/agent", "A=b"])
        let environment = launch.environment()
        #expect(ProcessInfo.processInfo.environment.count > 2, "this process has more to leak")
        #expect(environment.filter { $0 != "HOME=/tmp/agent" && $0 != "A=b" }.allSatisfy { $0.hasPrefix("PATH=") })
        #expect(environment.contains { $0.hasPrefix("PATH=") })
        #expect(environment.filter { $0.hasPrefix("HOME=") } == ["HOME=/tmp/agent"])
        #expect(environment.last == "A=b")
    }

    @Test func noProcessOfTheGroupOutlivesTheServer() async throws {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let helper = Process()
        helper.executableURL = directory.appendingPathComponent("switchboard-agent-host-helper")
        helper.arguments = [
            directory.appendingPathComponent("switchboard-agent-keeper").path,
            AgentFixtures.python, AgentFixtures.agents + "/silent_agent.py", "--spawn-child", "--ignore-sigterm",
        ]
        let output = Pipe()
        helper.standardOutput = output
        try helper.run()
        // Blocking reads happen on a thread of their own, not on the test's pool.
        let reader = output.fileHandleForReading
        let line = await AgentFixtures.offPool {
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")) {
                let data = reader.availableData
                if data.isEmpty { break }
                line.append(data)
            }
            return line
        }
        let words = String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard words.count == 4, let group = pid_t(words[1]), let agent = pid_t(words[3]) else {
            kill(helper.processIdentifier, SIGKILL)
            Issue.record("helper said: \(String(decoding: line, as: UTF8.self))")
            return
        }
        #expect(AgentFixtures.liveMembers(ofGroup: group).count >= 3, "keeper, agent and its child")
        #expect(AgentFixtures.isAlive(agent))
        kill(helper.processIdentifier, SIGKILL)
        await AgentFixtures.offPool { helper.waitUntilExit() }
        #expect(await AgentFixtures.eventually(within: AgentFixtures.seconds(10)) {
            AgentFixtures.liveMembers(ofGroup: group).isEmpty
        })
    }
}
