import SwitchboardClient
import SwitchboardProtocol
import Testing

@Suite("Session calls over a real socket", .timeLimit(.minutes(TestTimeScale.hangGuardMinutes)))
struct SessionCallTests {
    @Test("the handshake exposes the server's Welcome; ping round-trips")
    func handshakeAndPing() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                #expect(client.welcome.version == ProtocolVersion.current)
                #expect(client.welcome.serverName == "switchboard")
                #expect(client.welcome.maxFrameSize > 0)
                #expect(client.welcome.maxConcurrentCalls > 0)
                for _ in 0..<3 {
                    try await client.ping()
                }
            }
        }
    }

    @Test("create, get and close a session with a chosen id, labels and settings")
    func createGetClose() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let labels = [Label(key: "team", value: "core"), Label(key: "env", value: "test")]
                let created = try await client.createSession(
                    CreateSessionRequest(
                        sessionID: "alpha",
                        labels: labels,
                        settings: SessionSettings(backend: "echo", idleTimeoutMs: 60_000, maxQueuedPrompts: 4)
                    )
                )
                #expect(created.id == "alpha")
                #expect(Set(created.labels.map { "\($0.key)=\($0.value)" }) == ["team=core", "env=test"])
                #expect(created.settings.backend == "echo")
                #expect(created.settings.idleTimeoutMs == 60_000)
                #expect(created.settings.maxQueuedPrompts == 4)
                #expect(created.state == .idle)

                let fetched = try await client.getSession(id: "alpha")
                #expect(fetched.id == "alpha")
                #expect(fetched.labels == created.labels)

                let serverChosen = try await client.createSession()
                #expect(!serverChosen.id.isEmpty)
                #expect(serverChosen.id != "alpha")

                let closed = try await client.closeSession(id: "alpha", reason: "done")
                #expect(closed.session?.id == "alpha")
                #expect(closed.cancelledTurns == 0)
                #expect(closed.rejectedPrompts == 0)

                let gone = await switchboardError { _ = try await client.getSession(id: "alpha") }
                #expect(gone?.code == .notFound)
            }
        }
    }

    @Test("errors carry the server's codes")
    func errorCodes() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let missing = await switchboardError { _ = try await client.getSession(id: "nope") }
                #expect(missing?.code == .notFound)
                #expect(missing?.message.isEmpty == false)

                let closeMissing = await switchboardError { _ = try await client.closeSession(id: "nope") }
                #expect(closeMissing?.code == .notFound)

                let statusMissing = await switchboardError { _ = try await client.sessionStatus(id: "nope") }
                #expect(statusMissing?.code == .notFound)

                _ = try await client.createSession(CreateSessionRequest(sessionID: "dup"))
                let duplicate = await switchboardError {
                    _ = try await client.createSession(CreateSessionRequest(sessionID: "dup"))
                }
                #expect(duplicate?.code == .alreadyExists)

                let badID = await switchboardError {
                    _ = try await client.createSession(CreateSessionRequest(sessionID: "not a valid id!"))
                }
                #expect(badID?.code == .invalidArgument)

                let badBackend = await switchboardError {
                    _ = try await client.createSession(CreateSessionRequest(settings: SessionSettings(backend: "no-such-backend")))
                }
                #expect(badBackend?.code == .invalidArgument)

                // The connection survives every failed call.
                #expect(try await client.health() == .serving)
            }
        }
    }

    @Test("list pages through every session; a label selector filters")
    func listPaginationAndSelector() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                var expectedAll: Set<String> = []
                var expectedEven: Set<String> = []
                for index in 0..<25 {
                    let parity = index % 2 == 0 ? "even" : "odd"
                    let id = "s\(index)"
                    _ = try await client.createSession(
                        CreateSessionRequest(sessionID: id, labels: [Label(key: "parity", value: parity), Label(key: "suite", value: "list")])
                    )
                    expectedAll.insert(id)
                    if parity == "even" { expectedEven.insert(id) }
                }

                var seen: [String] = []
                var pages: [Int] = []
                var token = ""
                repeat {
                    let page = try await client.listSessions(ListSessionsRequest(pageSize: 10, pageToken: token))
                    pages.append(page.sessions.count)
                    seen += page.sessions.map(\.id)
                    token = page.nextPageToken
                    try #require(pages.count <= 10, "pagination does not end")
                } while !token.isEmpty
                #expect(pages == [10, 10, 5])
                #expect(seen.count == Set(seen).count, "a session appeared on two pages")
                #expect(Set(seen) == expectedAll)

                let even = try await client.listSessions(
                    ListSessionsRequest(labelSelector: [Label(key: "parity", value: "even")], pageSize: 100)
                )
                #expect(Set(even.sessions.map(\.id)) == expectedEven)
                #expect(even.nextPageToken.isEmpty)
                #expect(even.sessions.allSatisfy { $0.labels.contains(Label(key: "parity", value: "even")) })

                let both = try await client.listSessions(
                    ListSessionsRequest(labelSelector: [Label(key: "parity", value: "odd"), Label(key: "suite", value: "list")])
                )
                #expect(Set(both.sessions.map(\.id)) == expectedAll.subtracting(expectedEven))

                let none = try await client.listSessions(ListSessionsRequest(labelSelector: [Label(key: "parity", value: "none")]))
                #expect(none.sessions.isEmpty)
            }
        }
    }

    @Test("server status, session status and health")
    func statusAndHealth() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                #expect(try await client.health() == .serving)
                _ = try await client.createSession(CreateSessionRequest(sessionID: "st"))
                let events = try await client.prompt(sessionID: "st", "one two three").collect()
                #expect(events.outputText == "one two three")

                let status = try await client.serverStatus(includeSessions: true)
                #expect(status.serverVersion == SwitchboardVersion.string)
                #expect(status.protocolVersion == ProtocolVersion.current)
                #expect(status.connections >= 1)
                #expect(status.sessionsTotal == 1)
                #expect(status.turnsCompleted >= 1)
                #expect(!status.draining)
                #expect(status.sessions.map(\.id) == ["st"])

                let withoutSessions = try await client.serverStatus()
                #expect(withoutSessions.sessions.isEmpty)
                #expect(withoutSessions.sessionsTotal == 1)

                let session = try await client.sessionStatus(id: "st")
                #expect(session.session?.id == "st")
                let turn = try #require(session.turns.first)
                #expect(turn.state == .finished)
                #expect(turn.code == .ok)
                #expect(turn.bytes == UInt64("one two three".utf8.count))
                #expect(turn.promptPreview == "one two three")
            }
        }
    }

    @Test("a closed client fails new calls instead of hanging")
    func callsAfterClose() async throws {
        try await withTestServer { server in
            let client = try await server.client()
            #expect(try await client.health() == .serving)
            await client.close()
            await client.close()  // idempotent
            let error = await switchboardError { _ = try await client.health() }
            #expect(error != nil)
            let streamError = await switchboardError { _ = try await client.prompt(sessionID: "x", "y").collect() }
            #expect(streamError != nil)
        }
    }
}
