#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

/// What docs/PROTOCOL.md promises a client, checked over a raw socket with
/// hand-made frames, as a client written from the document alone would see it.
/// The rows of "Behaviour a client can observe" name these tests.
@Suite("Protocol contract")
struct ProtocolContractTests {
    // MARK: Handshake and drain

    /// A connection refused before its Welcome reports the GoAway's code as the
    /// connect error: a drain refuses with UNAVAILABLE, never OK.
    @Test func aConnectionWithoutHelloIsRefusedUnavailableByADrain() async throws {
        let (server, dir) = try await DrainTests.startServer(tokenDelay: .zero, grace: TestTimeScale.seconds(5))
        defer { removeDirectory(dir) }
        let silent = try server.connect()
        // Admitted and active: a connection admitted a moment ago may not be
        // registered yet, and one the drain closes then gets no frame (below).
        try await eventually("the silent connection is active") { server.server.activeConnectionCount == 1 }
        server.server.beginDrain()
        let frames = try await silent.readUntilClosed()
        #expect(frames == [Frame(kind: .goAway(GoAway(lastCallID: 0, code: .unavailable, message: "server is shutting down")))])
        try await server.runTask.value
    }

    /// The socket file goes as soon as the drain begins, while calls still run:
    /// a new client fails at connect(), and only connections opened before the
    /// drain see it (GoAway OK).
    @Test func theSocketFileIsGoneAsSoonAsTheDrainBegins() async throws {
        let (server, dir) = try await DrainTests.startServer(tokenDelay: .milliseconds(50), grace: TestTimeScale.seconds(60))
        defer { removeDirectory(dir) }
        let client = try await server.connectAndHandshake()
        try await client.createSession("long")
        let promptID = try await client.startPrompt(session: "long", prompt: makePrompt(words: 2000))
        while true {
            if case .event(.output) = try await client.nextPromptItem(promptID) { break }
        }
        server.server.beginDrain()
        let goAway = try await client.expectFrame(forCall: 0)
        #expect(goAway == Frame(kind: .goAway(GoAway(lastCallID: promptID, code: .ok, message: "server is shutting down"))))
        try await eventually("the socket file is removed") { access(server.path, F_OK) != 0 }
        #expect(throws: (any Error).self) { try RawClient(path: server.path) }
        // The prompt is still running: its next event arrives after the file is gone.
        guard case .event(.output) = try await client.nextPromptItem(promptID) else {
            Issue.record("the prompt did not keep streaming during the drain")
            return
        }
        try await client.send(Frame(callID: promptID, kind: .cancel(reason: "done")))
        let rest = try await client.collectPrompt(promptID)
        #expect(rest.end?.code == .cancelled)
        #expect(try await client.readUntilClosed().isEmpty)
        try await server.runTask.value
    }

    /// Bytes that are not a Frame, and an empty Frame, are the decode row of the
    /// error table (INVALID_ARGUMENT), before the Hello as after it.
    @Test(arguments: [[UInt8](), [0xFF, 0xFF, 0xFF]])
    func undecodableOrEmptyFirstFrameIsInvalidArgument(_ body: [UInt8]) async throws {
        try await withTestServer { server in
            let client = try server.connect()
            let length = UInt32(body.count)
            let prefix = [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
            try await client.sendRaw(prefix + body)
            let frames = try await client.readUntilClosed()
            guard frames.count == 1, case .goAway(let goAway) = frames[0].kind else {
                Issue.record("expected exactly one GoAway, got \(frames)")
                return
            }
            #expect(goAway.code == .invalidArgument, "\(goAway.message)")
        }
    }

    /// A Ping on any call id is answered with a Pong on call id 0; it opens no
    /// call and claims no call id.
    @Test func aPingOnANonZeroCallIDIsAnsweredOnCallZero() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            try await client.send(Frame(callID: 7, kind: .ping(nonce: 42)))
            #expect(try await client.expectFrame() == Frame(kind: .pong(nonce: 42)))
            let end = try await client.unary(MethodName.healthCheck, .healthCheckRequest(HealthCheckRequest()), callID: 1)
            #expect(end.code == .ok)
        }
    }

    // MARK: Unary calls

    /// A unary request that arrives without half-close is answered at once; the
    /// half-close is not waited for.
    @Test func aUnaryRequestWithoutHalfCloseIsAnsweredAtOnce() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("s")
            let id = client.newCallID()
            try await client.send(Frame(callID: id, kind: .start(CallStart(
                method: MethodName.getSession,
                timeoutMs: 300,
                payload: .getSessionRequest(GetSessionRequest(sessionID: "s")),
                halfClose: false
            ))))
            let end = try await client.expectEnd(of: id)
            #expect(end.code == .ok)
            guard case .session(let session)? = end.payload else {
                Issue.record("expected a session, got \(end)")
                return
            }
            #expect(session.id == "s")
            // The request in a later message, still without half-close: the same.
            let later = client.newCallID()
            try await client.send(Frame(callID: later, kind: .start(CallStart(method: MethodName.getSession))))
            try await client.send(Frame(callID: later, kind: .message(CallMessage(
                payload: .getSessionRequest(GetSessionRequest(sessionID: "s"))
            ))))
            #expect(try await client.expectEnd(of: later).code == .ok)
            // A late half-close is a frame of an ended call: ignored.
            try await client.send(Frame(callID: id, kind: .halfClose))
            _ = try await client.serverStatus()
        }
    }

    /// `timeout_ms` holds for a call still waiting for its request: unary,
    /// prompt and attach alike end DEADLINE_EXCEEDED, and the connection goes on.
    @Test(arguments: [MethodName.getSession, MethodName.prompt, MethodName.attach])
    func aCallWaitingForItsRequestEndsAtItsDeadline(_ method: String) async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            let id = client.newCallID()
            try await client.send(Frame(callID: id, kind: .start(CallStart(method: method, timeoutMs: 200))))
            let end = try await client.expectEnd(of: id)
            #expect(end.code == .deadlineExceeded)
            #expect(end.message == "deadline of 200 ms exceeded before the request arrived")
            // The request arriving afterwards belongs to an ended call: ignored.
            try await client.send(Frame(callID: id, kind: .halfClose))
            _ = try await client.serverStatus()
        }
    }

    // MARK: Paging

    /// ListSessions refuses a page token it cannot have issued, like ListTurns; a
    /// well-formed one is a cursor.
    @Test func listSessionsRefusesAPageTokenItCannotHaveIssued() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            for id in ["a", "b", "c"] { try await client.createSession(id) }
            let bad = try await client.unary(
                MethodName.listSessions,
                .listSessionsRequest(ListSessionsRequest(pageToken: "not a token!"))
            )
            #expect(bad.code == .invalidArgument)
            #expect(bad.message == "invalid page token \"not a token!\"")
            let first = try await client.unary(MethodName.listSessions, .listSessionsRequest(ListSessionsRequest(pageSize: 1)))
            guard case .listSessionsResponse(let page)? = first.payload else {
                Issue.record("no page: \(first)")
                return
            }
            #expect(page.sessions.map(\.id) == ["a"])
            #expect(page.nextPageToken == "a")
            let cursor = try await client.unary(MethodName.listSessions, .listSessionsRequest(ListSessionsRequest(pageToken: "b")))
            guard case .listSessionsResponse(let rest)? = cursor.payload else {
                Issue.record("no page: \(cursor)")
                return
            }
            #expect(rest.sessions.map(\.id) == ["c"])
        }
    }

    /// With the smallest frame size (1 KiB) a ListTurns page has no room left
    /// after the 1 KiB reserve: every page holds one turn, without its output.
    @Test func listTurnsWithTheSmallestFrameSizeOmitsEveryTurnsOutput() async throws {
        try await withTestServer(tokenDelay: .zero) { server in
            let client = try await Self.tinyClient(server)
            try await client.createSession("h")
            for _ in 0..<2 {
                let result = try await client.collectPrompt(try await client.startPrompt(session: "h", prompt: "hi"))
                #expect(result.end?.code == .ok)
            }
            let first = try await client.listTurns(ListTurnsRequest(sessionID: "h", includeOutput: true))
            #expect(first.turns.count == 1)
            #expect(first.turns.allSatisfy { $0.outputOmitted && $0.output.isEmpty })
            #expect(!first.nextPageToken.isEmpty)
            let second = try await client.listTurns(ListTurnsRequest(sessionID: "h", pageToken: first.nextPageToken, includeOutput: true))
            #expect(second.turns.count == 1)
            #expect(second.turns.allSatisfy { $0.outputOmitted && $0.output.isEmpty })
            #expect(second.nextPageToken.isEmpty)
        }
    }

    // MARK: Prompt events

    /// The echo backend's turns finish with stop reason `end_turn`.
    @Test func echoTurnsFinishWithStopReasonEndTurn() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("e")
            let result = try await client.collectPrompt(try await client.startPrompt(session: "e", prompt: "hello world"))
            #expect(result.end?.code == .ok)
            #expect(result.isWellFormed)
            #expect(result.finished?.stopReason == "end_turn")
        }
    }

    /// A prompt that ends with a non-OK code still gets `finished` first: a
    /// cancel (stop reason `cancelled`) and a deadline (`deadline`).
    @Test func aNonOKPromptEndIsPrecededByFinished() async throws {
        try await withTestServer(tokenDelay: .milliseconds(50)) { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("c")
            let cancelled = try await client.startPrompt(session: "c", prompt: makePrompt(words: 2000))
            while true {
                if case .event(.output) = try await client.nextPromptItem(cancelled) { break }
            }
            try await client.send(Frame(callID: cancelled, kind: .cancel(reason: "enough")))
            let first = try await client.collectPrompt(cancelled)
            #expect(first.end?.code == .cancelled)
            guard case .finished(let finished)? = first.events.last else {
                Issue.record("the event before the CANCELLED end is not finished: \(first.events.last.map { "\($0)" } ?? "none")")
                return
            }
            #expect(finished.stopReason == "cancelled")

            let late = try await client.startPrompt(session: "c", prompt: makePrompt(words: 2000), timeoutMs: 200)
            let second = try await client.collectPrompt(late)
            #expect(second.end?.code == .deadlineExceeded)
            guard case .finished(let expired)? = second.events.last else {
                Issue.record("the event before the DEADLINE_EXCEEDED end is not finished")
                return
            }
            #expect(expired.stopReason == "deadline")
        }
    }

    /// An output chunk too large for the client's frame: the turn is cancelled and
    /// recorded RESOURCE_EXHAUSTED, `finished` (stop reason `cancelled`) is still
    /// sent, then the end RESOURCE_EXHAUSTED; the connection goes on.
    @Test func anOutputFrameTooLargeForTheClientEndsTheTurnResourceExhausted() async throws {
        try await withTestServer(tokenDelay: .zero) { server in
            let client = try await Self.tinyClient(server)
            try await client.createSession("big")
            let id = try await client.startPrompt(session: "big", prompt: "small " + String(repeating: "x", count: 4096))
            let result = try await client.collectPrompt(id)
            #expect(result.end?.code == .resourceExhausted, "\(result.end?.message ?? "")")
            guard case .finished(let finished)? = result.events.last else {
                Issue.record("the event before the end is not finished: \(result.events)")
                return
            }
            #expect(finished.stopReason == "cancelled")
            let turn = try await client.sessionStatus("big").turns.first
            #expect(turn?.code == .resourceExhausted)
            #expect(turn?.stopReason == "cancelled")
        }
    }

    /// Attach to a turn whose output retention dropped: `attached` comes first,
    /// then the end OUT_OF_RANGE (not an immediate error).
    @Test func attachOutOfRangeComesAfterTheAttachedEvent() async throws {
        try await withTestServer(tokenDelay: .zero) { server in
            let client = try await server.connectAndHandshake()
            let settings = SessionSettings(retainOutputBytes: 16)
            let created = try await client.unary(
                MethodName.createSession,
                .createSessionRequest(CreateSessionRequest(sessionID: "r", settings: settings))
            )
            #expect(created.code == .ok)
            let first = try await client.collectPrompt(try await client.startPrompt(session: "r", prompt: makePrompt(words: 10)))
            guard case .accepted(let accepted)? = first.events.first else {
                Issue.record("no accepted event: \(first.events)")
                return
            }
            let second = try await client.collectPrompt(try await client.startPrompt(session: "r", prompt: makePrompt(words: 10)))
            #expect(second.end?.code == .ok)
            let attach = try await client.collectPrompt(try await client.startAttach(session: "r", turn: accepted.turnID))
            #expect(attach.end?.code == .outOfRange, "\(attach.end?.message ?? "")")
            guard case .attached(let attached)? = attach.events.first else {
                Issue.record("OUT_OF_RANGE came without an attached event first: \(attach.events)")
                return
            }
            #expect(attached.turnID == accepted.turnID)
            #expect(attached.state == .finished)
        }
    }

    // MARK: Helpers

    /// A client past the handshake that announced the smallest frame size.
    static func tinyClient(_ server: TestServer) async throws -> RawClient {
        let client = try server.connect()
        try await client.send(Frame(kind: .hello(Hello(clientName: "tiny", maxFrameSize: 1024))))
        let frame = try await client.expectFrame()
        guard case .welcome = frame.kind else {
            throw RawClientError(description: "expected Welcome, got \(frame)")
        }
        return client
    }
}
