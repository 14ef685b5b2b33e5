import Foundation
import SwitchboardClient
import SwitchboardProtocol
import Testing

/// Re-attach across several losses of one turn, and the server's hints while attaching.
@Suite("Re-attach across losses", .timeLimit(.minutes(TestTimeScale.hangGuardMinutes)))
struct ReattachLossTests {
    @Test("a second loss after the re-attached turn stayed silent for longer than the budget is re-attached too")
    func silentTurnSurvivesSecondLoss() async throws {
        // The echo backend waits `gap` between tokens: "a ", then silence, "b ", silence, "c".
        let gap = TestTimeScale.milliseconds(1000)
        let prompt = "a b c"
        try await withTestServer(echoDelay: gap) { server in
            try await server.withClient { direct in
                let session = try await direct.createSession()
                // Connection 1 (the prompt: Welcome, accepted, started, chunk 1 = frame 3):
                // cut as soon as chunk 1 is through, while the turn is silent.
                // Connection 2 (the re-attach: Welcome, attached, then silence): cut
                // when chunk 2 comes, `gap` later, before the client gets it.
                let proxy = try CuttingProxy(
                    target: server.socketPath,
                    cuts: [.before(frame: 4), CutPoint(frame: 2, offsetSelector: 0)]
                )
                defer { proxy.stop() }
                let log = ReattachLog()
                let outcome = await promptThroughProxy(proxy, sessionID: session.id, prompt: prompt, log: log) { policy in
                    // Far less than the silence between the two losses.
                    policy.totalBudget = TestTimeScale.milliseconds(200)
                }
                guard case .completed(let events) = outcome else {
                    Issue.record("the second loss must be re-attached as well: \(outcome)")
                    return
                }
                expectCompleteTurn(events, prompt: prompt)
                #expect(events.outputChunks.map(\.sequence) == [1, 2, 3])
                #expect(log.all.count == 2, "two losses, two re-attaches: \(log.all)")
                #expect(log.all.allSatisfy { $0.lastSequence >= 1 }, "\(log.all)")
                #expect(proxy.connections == 3)
                #expect(try await direct.sessionStatus(id: session.id).turns.count == 1, "the prompt must not be re-sent")
            }
        }
    }

    @Test("a server that accepts every re-attach and drops it before anything new ends the stream after maxAttempts")
    func droppingServerIsBounded() async throws {
        try await withTestServer(echoDelay: TestTimeScale.milliseconds(1000)) { server in
            try await server.withClient { direct in
                let session = try await direct.createSession()
                // The prompt's connection is cut after chunk 1, every re-attach right
                // after its `attached`: each attach gets through, nothing new arrives.
                let proxy = try CuttingProxy(
                    target: server.socketPath,
                    cuts: [.before(frame: 4)] + Array(repeating: .before(frame: 2), count: 10)
                )
                defer { proxy.stop() }
                let log = ReattachLog()
                let outcome = await promptThroughProxy(proxy, sessionID: session.id, prompt: "a b c", log: log) { policy in
                    policy.maxAttempts = 3
                    policy.totalBudget = TestTimeScale.seconds(30)
                }
                guard case .streamFailed(let error, let events) = outcome else {
                    Issue.record("the stream must give up: \(outcome)")
                    return
                }
                #expect(error.code == .unavailable, "\(error)")
                #expect(error.message.contains("gave up re-attaching") && error.message.hasSuffix("after 3 attempts)"), "\(error)")
                #expect(events.outputChunks.map(\.sequence) == [1])
                #expect(log.all.count == 3, "\(log.all)")
                #expect(proxy.connections == 4)
            }
        }
    }

    @Test("UNAVAILABLE \"turn … is ending; attach again\" is retried: the next attach replays the finished turn")
    func turnEndingIsRetried() async throws {
        let turnID = "t-000000000001"
        let fake = try FakeServer(connections: 3) { index, connection in
            try connection.acceptHandshake()
            let start = try connection.receive(until: { $0.isStart })
            func send(_ event: PromptEvent) {
                connection.send(Frame(callID: start.callID, kind: .message(CallMessage(payload: .promptEvent(event)))))
            }
            switch index {
            case 1:
                // The prompt: accepted, started, chunk 1, then the connection is lost.
                send(.accepted(TurnAccepted(turnID: turnID, queuePosition: 0)))
                send(.started(turnID: turnID))
                send(.output(OutputChunk(sequence: 1, data: Array("one ".utf8))))
            case 2:
                // The turn is passing from memory to the store.
                connection.send(Frame(callID: start.callID, kind: .end(CallEnd(code: .unavailable, message: "turn \(turnID) is ending; attach again"))))
                connection.drainUntilClosed()
            default:
                send(.attached(TurnAttached(turnID: turnID, state: .finished, lastSequence: 2)))
                send(.output(OutputChunk(sequence: 2, data: Array("two".utf8))))
                send(.finished(TurnFinished(turnID: turnID, stopReason: "end_turn", chunks: 2, bytes: 7, durationMs: 1)))
                connection.send(Frame(callID: start.callID, kind: .end(CallEnd(code: .ok))))
                connection.drainUntilClosed()
            }
        }
        defer { fake.stop() }
        var configuration = ClientConfiguration()
        var policy = RetryPolicy()
        policy.initialBackoff = .milliseconds(5)
        configuration.resume = .reattach(policy)
        let client = try await SwitchboardClient.connect(socketPath: fake.socketPath, configuration: configuration)
        let log = ReattachLog()
        let events = try await withTimeout(TestTimeScale.seconds(20)) {
            try await client.prompt(sessionID: "s", "one two", onReattach: { log.record($0) }).collect()
        }
        await client.close()
        expectCompleteTurn(events, prompt: "one two")
        #expect(log.all.map(\.turnID) == [turnID])
        try await fake.waitUntilScriptEnded()
        let attaches = fake.receivedFrames.compactMap { frame -> AttachRequest? in
            guard case .start(let start) = frame.kind, case .attachRequest(let request)? = start.payload else { return nil }
            return request
        }
        #expect(attaches.map(\.afterSequence) == [1, 1], "both attaches ask for what follows chunk 1")
    }
}
