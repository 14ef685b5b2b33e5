import Foundation
import SwitchboardClient
import SwitchboardProtocol
import Testing

@Suite("Attach and turn history", .timeLimit(.minutes(TestTimeScale.hangGuardMinutes)))
struct AttachTests {
    /// Runs one prompt to its end; returns its turn id.
    private func runTurn(_ client: SwitchboardClient, _ sessionID: String, _ prompt: String) async throws -> String {
        let events = try await client.prompt(sessionID: sessionID, prompt).collect()
        expectCompleteTurn(events, prompt: prompt)
        guard case .accepted(let accepted)? = events.first else { throw TimedOut(what: "no accepted event") }
        return accepted.turnID
    }

    @Test("listTurns pages oldest first; turnHistory walks every page; includeOutput carries prompt and output")
    func listTurnsPaging() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let prompts = (1...5).map { "turn \($0): " + words($0 + 1) }
                var ids: [String] = []
                for prompt in prompts { ids.append(try await runTurn(client, session.id, prompt)) }

                let first = try await client.listTurns(ListTurnsRequest(sessionID: session.id, pageSize: 2))
                #expect(first.turns.map(\.summary.turnID) == Array(ids[0..<2]))
                #expect(!first.nextPageToken.isEmpty)
                #expect(first.turns.allSatisfy { $0.prompt.isEmpty && $0.output.isEmpty }, "no output unless asked for")
                let second = try await client.listTurns(ListTurnsRequest(sessionID: session.id, pageSize: 2, pageToken: first.nextPageToken))
                #expect(second.turns.map(\.summary.turnID) == Array(ids[2..<4]))
                let third = try await client.listTurns(ListTurnsRequest(sessionID: session.id, pageSize: 2, pageToken: second.nextPageToken))
                #expect(third.turns.map(\.summary.turnID) == [ids[4]])
                #expect(third.nextPageToken.isEmpty)

                let all = try await client.turnHistory(sessionID: session.id, includeOutput: true, pageSize: 2).collect()
                #expect(all.map(\.summary.turnID) == ids)
                #expect(all.map(\.prompt) == prompts)
                #expect(all.map { String(decoding: $0.output, as: UTF8.self) } == prompts)
                #expect(all.allSatisfy { $0.summary.state == .finished && $0.summary.code == .ok && !$0.outputDropped })
                #expect(all.map(\.summary.chunks) == (1...5).map { UInt64($0 + 3) }, "\"turn\", \"N:\" and N+1 words")

                let unknown = await switchboardError {
                    _ = try await client.listTurns(ListTurnsRequest(sessionID: "no-such-session"))
                }
                #expect(unknown?.code == .notFound)
            }
        }
    }

    @Test("attach replays a finished turn from the start or after N, then its status")
    func attachFinished() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let prompt = words(30)
                let turnID = try await runTurn(client, session.id, prompt)

                let events = try await client.attach(sessionID: session.id, turnID: turnID).collect()
                #expect(events.first == .attached(TurnAttached(turnID: turnID, state: .finished, lastSequence: 30)))
                #expect(events.outputChunks.map(\.sequence) == Array(1...30))
                #expect(events.outputText == prompt)
                guard case .finished(let finished)? = events.last else {
                    Issue.record("no finished event: \(events.suffix(1))")
                    return
                }
                #expect(finished.turnID == turnID)
                #expect(finished.chunks == 30)

                // After chunk 20, and with the turn id left out (the most recent turn).
                let tail = try await client.attach(sessionID: session.id, afterSequence: 20).collect()
                #expect(tail.outputChunks.map(\.sequence) == Array(21...30))
                #expect(tail.outputText == prompt.split(separator: " ").suffix(10).joined(separator: " "))
            }
        }
    }

    @Test("attach follows a running turn live; the prompt's own stream is unaffected")
    func attachRunning() async throws {
        // 100 words, 10 ms each (stretched under TSan): the turn outlasts connecting
        // a second client and attaching by far.
        try await withTestServer(echoDelay: TestTimeScale.milliseconds(10)) { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let prompt = words(100)
                let (started, promptEvents) = startConsuming(client.prompt(sessionID: session.id, prompt))
                try await started.value
                let follower = try await server.client()
                let events = try await follower.attach(sessionID: session.id).collect()
                await follower.close()
                guard case .attached(let attached)? = events.first else {
                    Issue.record("first event is not attached: \(events.prefix(1))")
                    return
                }
                #expect(attached.state == .running)
                #expect(events.outputChunks.map(\.sequence) == Array(1...100))
                #expect(events.outputText == prompt)
                expectCompleteTurn(try await promptEvents.value, prompt: prompt)
            }
        }
    }

    @Test("attach to an unknown session or turn: NOT_FOUND")
    func attachUnknown() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let noTurn = await switchboardError {
                    _ = try await client.attach(sessionID: session.id, turnID: "t-000000000000").collect()
                }
                #expect(noTurn?.code == .notFound)
                let noSession = await switchboardError {
                    _ = try await client.attach(sessionID: "no-such-session").collect()
                }
                #expect(noSession?.code == .notFound)
                // The connection is still fine.
                try await client.ping()
            }
        }
    }

    @Test("a cut connection without re-attach fails UNAVAILABLE and the turn runs on; with cancelOnDisconnect it is cancelled")
    func disconnectPolicies() async throws {
        // 100 words, 10 ms each (stretched under TSan): with cancelOnDisconnect the
        // cut must reach the server before the turn ends on its own.
        try await withTestServer(echoDelay: TestTimeScale.milliseconds(10)) { server in
            try await server.withClient { direct in
                for cancelOnDisconnect in [false, true] {
                    let session = try await direct.createSession()
                    let prompt = words(100)
                    // Cut after the first output chunk (Welcome, accepted, started, output 1).
                    let proxy = try CuttingProxy(target: server.socketPath, cutFirstConnectionAt: CutPoint(frame: 4, offsetSelector: 0))
                    defer { proxy.stop() }
                    let client = try await SwitchboardClient.connect(socketPath: proxy.socketPath)
                    let failure = await switchboardError {
                        _ = try await client.prompt(sessionID: session.id, prompt, cancelOnDisconnect: cancelOnDisconnect).collect()
                    }
                    await client.close()
                    #expect(failure?.code == .unavailable, "\(String(describing: failure))")
                    #expect(proxy.connections == 1, "no re-attach unless asked for")
                    let ended = try await eventually {
                        try await direct.sessionStatus(id: session.id).turns.first?.state == .finished
                    }
                    #expect(ended)
                    let turn = try #require(try await direct.turnHistory(sessionID: session.id, includeOutput: true).collect().first)
                    if cancelOnDisconnect {
                        #expect(turn.summary.code == .cancelled, "\(turn.summary)")
                    } else {
                        #expect(turn.summary.code == .ok, "\(turn.summary)")
                        #expect(String(decoding: turn.output, as: UTF8.self) == prompt)
                    }
                }
            }
        }
    }
}
