import SwitchboardClient
import SwitchboardProtocol
import Testing

@Suite("Many calls on one client", .timeLimit(.minutes(TestTimeScale.hangGuardMinutes)))
struct ConcurrencyTests {
    @Test("50 unary calls and 5 prompts at once on one connection all complete correctly")
    func unaryAndStreamsAtOnce() async throws {
        try await withTestServer(echoDelay: .milliseconds(1)) { server in
            try await server.withClient { client in
                for index in 0..<5 {
                    _ = try await client.createSession(CreateSessionRequest(sessionID: "p\(index)", labels: [Label(key: "k", value: "v")]))
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<50 {
                        group.addTask {
                            switch index % 5 {
                            case 0:
                                #expect(try await client.health() == .serving)
                            case 1:
                                #expect(try await client.getSession(id: "p\(index % 5)").id == "p\(index % 5)")
                            case 2:
                                let list = try await client.listSessions(ListSessionsRequest(labelSelector: [Label(key: "k", value: "v")]))
                                #expect(list.sessions.count == 5)
                            case 3:
                                let status = try await client.serverStatus()
                                #expect(status.sessionsTotal == 5)
                            default:
                                try await client.ping()
                            }
                        }
                    }
                    for index in 0..<5 {
                        group.addTask {
                            let prompt = words(40, prefix: "p\(index)-")
                            let events = try await client.prompt(sessionID: "p\(index)", prompt).collect()
                            expectCompleteTurn(events, prompt: prompt)
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }
    }

    @Test("concurrent prompts to one session queue and each gets its own complete answer")
    func promptsToOneSession() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let answers = try await withThrowingTaskGroup(of: (String, [PromptEvent]).self) { group in
                    for index in 0..<8 {
                        group.addTask {
                            let prompt = words(25, prefix: "q\(index)-")
                            return (prompt, try await client.prompt(sessionID: session.id, prompt).collect())
                        }
                    }
                    var answers: [(String, [PromptEvent])] = []
                    for try await answer in group { answers.append(answer) }
                    return answers
                }
                #expect(answers.count == 8)
                for (prompt, events) in answers {
                    expectCompleteTurn(events, prompt: prompt)
                }
                #expect(try await client.getSession(id: session.id).turnsCompleted == 8)
            }
        }
    }

    @Test("several clients share one server independently")
    func severalClients() async throws {
        try await withTestServer { server in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<4 {
                    group.addTask {
                        try await server.withClient { client in
                            let session = try await client.createSession(CreateSessionRequest(sessionID: "c\(index)"))
                            let prompt = words(50, prefix: "c\(index)-")
                            expectCompleteTurn(try await client.prompt(sessionID: session.id, prompt).collect(), prompt: prompt)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}
