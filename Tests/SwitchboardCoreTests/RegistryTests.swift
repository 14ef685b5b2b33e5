import SwitchboardCore
import SwitchboardProtocol
import Testing

@Suite("Session registry")
struct RegistryTests {
    @Test("server-chosen ids are s- plus 12 lowercase hex digits")
    func serverChosenIDs() async throws {
        let harness = Harness()
        var ids: [String] = []
        for _ in 0..<20 { ids.append(try await harness.createSession().id) }
        #expect(Set(ids).count == 20)
        for id in ids {
            #expect(id.hasPrefix("s-"))
            #expect(id.count == 14)
            #expect(id.dropFirst(2).allSatisfy { "0123456789abcdef".contains($0) })
        }
    }

    @Test("client-chosen ids are validated", arguments: ["", "a", "A-z_0.9", String(repeating: "x", count: 128)])
    func validClientIDs(id: String) async throws {
        let session = try await Harness().createSession(id)
        if !id.isEmpty { #expect(session.id == id) }
    }

    @Test("invalid client ids are INVALID_ARGUMENT", arguments: ["a b", "ü", "a/b", String(repeating: "x", count: 129), "x\n"])
    func invalidClientIDs(id: String) async {
        await expectError(.invalidArgument) { () async throws(SwitchboardError) in try await Harness().createSession(id) }
    }

    @Test("a duplicate id is ALREADY_EXISTS")
    func duplicateID() async throws {
        let harness = Harness()
        try await harness.createSession("dup")
        await expectError(.alreadyExists) { () async throws(SwitchboardError) in try await harness.createSession("dup") }
    }

    @Test("maxSessions is RESOURCE_EXHAUSTED")
    func maxSessions() async throws {
        let harness = Harness(configuration: CoreConfiguration(maxSessions: 2))
        try await harness.createSession()
        try await harness.createSession()
        await expectError(.resourceExhausted) { () async throws(SwitchboardError) in try await harness.createSession() }
        _ = try await harness.registry.closeSession(id: harness.registry.sessionSnapshots()[0].id, reason: "", caller: .server)
        try await harness.createSession()
    }

    @Test("an unknown backend is INVALID_ARGUMENT naming the known ones")
    func unknownBackend() async {
        let harness = Harness()
        let error = await expectError(.invalidArgument) { () async throws(SwitchboardError) in try await harness.createSession(backend: "nope") }
        #expect(error?.message.contains("echo, gate") == true)
        // worker:QUEUE is always known (a queue may get its workers later); the
        // queue name must be well-formed.
        await #expect(throws: Never.self) { try await harness.createSession(backend: "worker:gpu") }
        let worker = await expectError(.invalidArgument) { () async throws(SwitchboardError) in
            try await harness.createSession(backend: "worker:")
        }
        #expect(worker?.message.contains("task queue") == true)
        // exec is only known when configured.
        await expectError(.invalidArgument) { () async throws(SwitchboardError) in try await harness.createSession(backend: "exec") }
        let withExec = Harness(exec: ExecBackend(command: ["/bin/cat"]))
        await #expect(throws: Never.self) { try await withExec.createSession(backend: "exec") }
    }

    @Test("effective settings fill in the server defaults")
    func effectiveSettings() async throws {
        let configuration = CoreConfiguration(
            idleTimeout: .seconds(10),
            turnDeadline: .seconds(20),
            stallTimeout: .seconds(30),
            maxQueuedPrompts: 4
        )
        let harness = Harness(configuration: configuration)
        let session = try await harness.registry.createSession(
            CreateSessionRequest(labels: [Label(key: "team", value: "a")]),
            ownerUID: 42
        )
        #expect(session.settings == SessionSettings(
            backend: "echo", idleTimeoutMs: 10_000, turnDeadlineMs: 20_000, stallTimeoutMs: 30_000, maxQueuedPrompts: 4,
            retainTurns: 100, retainOutputBytes: 16 << 20, retainAgeMs: 7 * 24 * 3_600_000
        ))
        #expect(session.ownerUID == 42)
        #expect(session.state == .idle)
        #expect(session.labels == [Label(key: "team", value: "a")])
        #expect(session.createdAtMs > 1_600_000_000_000)
        #expect(session.lastActivityMs >= session.createdAtMs)
    }

    @Test("list: sorted by id, label selector, pages")
    func listSessions() async throws {
        let harness = Harness()
        for index in (0..<25).reversed() {
            let labels = [Label(key: "parity", value: index % 2 == 0 ? "even" : "odd"), Label(key: "all", value: "yes")]
            try await harness.createSession(paddedID(index), labels: labels)
        }
        let all = try harness.registry.listSessions(ListSessionsRequest(), caller: .server)
        #expect(all.sessions.map(\.id) == (0..<25).map { paddedID($0) })
        #expect(all.nextPageToken.isEmpty)

        var pages: [[String]] = []
        var token = ""
        repeat {
            let page = try harness.registry.listSessions(ListSessionsRequest(
                labelSelector: [Label(key: "parity", value: "even"), Label(key: "all", value: "yes")],
                pageSize: 5,
                pageToken: token
            ), caller: .server)
            pages.append(page.sessions.map(\.id))
            token = page.nextPageToken
        } while !token.isEmpty
        #expect(pages.map(\.count) == [5, 5, 3])
        #expect(pages.flatMap { $0 } == stride(from: 0, to: 25, by: 2).map { paddedID($0) })

        let none = try harness.registry.listSessions(ListSessionsRequest(
            labelSelector: [Label(key: "parity", value: "even"), Label(key: "parity", value: "odd")]
        ), caller: .server)
        #expect(none.sessions.isEmpty)
    }

    @Test("list page size defaults to 100 and is capped at 1000")
    func listPageSize() async throws {
        let harness = Harness()
        for index in 0..<1_005 { try await harness.createSession("s\(100_000 + index)") }
        let first = try harness.registry.listSessions(ListSessionsRequest(), caller: .server)
        #expect(first.sessions.count == 100)
        #expect(first.nextPageToken == "s100099")
        let capped = try harness.registry.listSessions(ListSessionsRequest(pageSize: 5_000), caller: .server)
        #expect(capped.sessions.count == 1_000)
        let rest = try harness.registry.listSessions(ListSessionsRequest(pageSize: 5_000, pageToken: capped.nextPageToken), caller: .server)
        #expect(rest.sessions.count == 5)
        #expect(rest.nextPageToken.isEmpty)
    }

    @Test("turn ids are unique across sessions")
    func uniqueTurnIDs() async throws {
        let harness = Harness()
        var ids: Set<String> = []
        for index in 0..<10 {
            try await harness.createSession("s\(index)", backend: "echo")
            let turn = try harness.submit("s\(index)", "x")
            #expect(turn.turnID.hasPrefix("t-") && turn.turnID.count == 14)
            #expect(turn.sessionID == "s\(index)")
            ids.insert(turn.turnID)
        }
        #expect(ids.count == 10)
    }

    @Test("cancelAllTurns cancels running and queued turns and keeps sessions open")
    func cancelAllTurns() async throws {
        let harness = Harness()
        try await harness.createSession("a")
        try await harness.createSession("b")
        let a = harness.start(try harness.submit("a", "hold-a"))
        let b = harness.start(try harness.submit("b", "hold-b"))
        let queued = harness.start(try harness.submit("a", "queued"))
        await harness.gate.waitForStarts(2)
        harness.registry.cancelAllTurns(reason: "server shutting down")
        for task in [a, b, queued] {
            let outcome = await value(of: task)
            #expect(outcome.code == .cancelled)
            #expect(outcome.message == "server shutting down")
        }
        #expect(harness.registry.statistics().sessionsIdle == 2)
    }
}

private func paddedID(_ index: Int) -> String {
    index < 10 ? "s0\(index)" : "s\(index)"
}
