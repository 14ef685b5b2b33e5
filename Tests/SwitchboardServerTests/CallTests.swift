import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

@Suite("Calls")
struct CallTests {
    @Test func unaryMethods() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            let created = try await client.createSession("alpha")
            #expect(created.id == "alpha")
            #expect(created.state == .idle)

            let get = try await client.unary(MethodName.getSession, .getSessionRequest(GetSessionRequest(sessionID: "alpha")))
            #expect(get.code == .ok)
            #expect(get.payload == .session(created))

            let missing = try await client.unary(MethodName.getSession, .getSessionRequest(GetSessionRequest(sessionID: "nope")))
            #expect(missing.code == .notFound)

            let list = try await client.unary(MethodName.listSessions, .listSessionsRequest(ListSessionsRequest()))
            guard case .listSessionsResponse(let page)? = list.payload else {
                Issue.record("list returned \(list)")
                return
            }
            #expect(page.sessions.map(\.id) == ["alpha"])

            let status = try await client.unary(
                MethodName.getServerStatus,
                .serverStatusRequest(ServerStatusRequest(includeSessions: true))
            )
            guard case .serverStatus(let serverStatus)? = status.payload else {
                Issue.record("status returned \(status)")
                return
            }
            #expect(serverStatus.serverVersion == SwitchboardVersion.string)
            #expect(serverStatus.protocolVersion == 1)
            #expect(serverStatus.connections == 1)
            #expect(serverStatus.sessionsTotal == 1)
            #expect(serverStatus.sessions.map(\.id) == ["alpha"])
            #expect(serverStatus.draining == false)
            #expect(serverStatus.pid != 0)

            let health = try await client.unary(MethodName.healthCheck, .healthCheckRequest(HealthCheckRequest()))
            #expect(health.payload == .healthCheckResponse(HealthCheckResponse(status: .serving)))

            let sessionStatus = try await client.sessionStatus("alpha")
            #expect(sessionStatus.session?.id == "alpha")

            let closed = try await client.unary(
                MethodName.closeSession,
                .closeSessionRequest(CloseSessionRequest(sessionID: "alpha"))
            )
            #expect(closed.code == .ok)
            guard case .closeSessionResponse(let response)? = closed.payload else {
                Issue.record("close returned \(closed)")
                return
            }
            #expect(response.session?.id == "alpha")
        }
    }

    @Test func idleSessionsAreSweptPeriodically() async throws {
        var core = CoreConfiguration()
        core.idleTimeout = .milliseconds(100)
        try await withTestServer(core: core, configure: { $0.idleSweepInterval = .milliseconds(50) }) { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("sleepy")
            try await eventually("the idle session is removed") {
                let end = try await client.unary(
                    MethodName.getSession,
                    .getSessionRequest(GetSessionRequest(sessionID: "sleepy"))
                )
                return end.code == .notFound
            }
        }
    }

    @Test func unaryRequestInALaterMessage() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            // Start without a payload; the request follows with the half-close.
            try await client.send(Frame(callID: 1, kind: .start(CallStart(method: MethodName.healthCheck))))
            try await client.send(Frame(callID: 1, kind: .message(CallMessage(
                payload: .healthCheckRequest(HealthCheckRequest()),
                halfClose: true
            ))))
            #expect(try await client.expectEnd(of: 1).code == .ok)

            // Request in a message, then a separate HalfClose frame.
            try await client.send(Frame(callID: 2, kind: .start(CallStart(method: MethodName.healthCheck))))
            try await client.send(Frame(callID: 2, kind: .message(CallMessage(payload: .healthCheckRequest(HealthCheckRequest())))))
            try await client.send(Frame(callID: 2, kind: .halfClose))
            #expect(try await client.expectEnd(of: 2).code == .ok)

            // A unary call is answered as soon as its request has arrived, without
            // waiting for the half-close; a second request message then belongs to
            // a call that has ended, and is ignored like any such frame.
            try await client.send(Frame(callID: 3, kind: .start(CallStart(
                method: MethodName.healthCheck,
                payload: .healthCheckRequest(HealthCheckRequest())
            ))))
            #expect(try await client.expectEnd(of: 3).code == .ok)
            try await client.send(Frame(callID: 3, kind: .message(CallMessage(payload: .healthCheckRequest(HealthCheckRequest())))))

            // Frames for a call that already ended are ignored (a benign race).
            try await client.send(Frame(callID: 3, kind: .cancel(reason: "late")))
            try await client.send(Frame(callID: 1, kind: .halfClose))
            _ = try await client.serverStatus()
        }
    }

    @Test func responsesLargerThanTheClientAcceptsAreRefused() async throws {
        try await withTestServer(tokenDelay: .zero) { server in
            let client = try server.connect()
            try await client.send(Frame(kind: .hello(Hello(clientName: "tiny", maxFrameSize: 1024))))
            guard case .welcome = try await client.expectFrame().kind else {
                Issue.record("no Welcome")
                return
            }
            for index in 0..<40 { try await client.createSession("session-\(index)") }
            // The session a create returns, with 20 labels (within the rules), is
            // larger than 1 KiB: the answer is refused, the session was created.
            let labels = (0..<20).map { Label(key: "label-\($0)", value: String(repeating: "v", count: 63)) }
            let created = try await client.unary(
                MethodName.createSession,
                .createSessionRequest(CreateSessionRequest(sessionID: "labelled", labels: labels))
            )
            #expect(created.code == .resourceExhausted)
            #expect(created.message.hasPrefix("response of "))
            #expect(try server.registry.getSession(id: "labelled", caller: .server).labels == labels)
            // A status with 41 sessions would not fit either: it is trimmed instead
            // (sessions_omitted), so that nobody's sessions make it fail.
            let status = try await client.unary(
                MethodName.getServerStatus,
                .serverStatusRequest(ServerStatusRequest(includeSessions: true))
            )
            #expect(status.code == .ok)
            if case .serverStatus(let trimmed)? = status.payload {
                #expect(trimmed.sessionsOmitted > 0)
                #expect(trimmed.sessions.count + Int(trimmed.sessionsOmitted) == 41)
            } else {
                Issue.record("no status: \(status)")
            }
            // A chunk bigger than the client accepts ends the turn, not the connection.
            let id = try await client.startPrompt(session: "session-0", prompt: "short " + String(repeating: "y", count: 1500))
            let result = try await client.collectPrompt(id)
            #expect(result.end?.code == .resourceExhausted)
            #expect(result.chunks.count == 1)
            _ = try await client.serverStatus()
        }
    }

    @Test func aTinyClientFrameLimitIsRaisedToTheProtocolMinimum() async throws {
        try await withTestServer(tokenDelay: .zero) { server in
            let client = try server.connect()
            try await client.send(Frame(kind: .hello(Hello(clientName: "tiny", maxFrameSize: 16))))
            guard case .welcome = try await client.expectFrame().kind else {
                Issue.record("no Welcome")
                return
            }
            // Far above 16 bytes, below the 1 KiB floor: delivered, not refused.
            let session = try await client.createSession("floored")
            #expect(session.id == "floored")
            let id = try await client.startPrompt(session: "floored", prompt: String(repeating: "z", count: 900))
            let result = try await client.collectPrompt(id)
            #expect(result.end?.code == .ok)
            #expect(result.chunks.count == 1)
        }
    }

    @Test func perConnectionCallLimit() async throws {
        try await withTestServer(configure: { $0.maxConcurrentCallsPerConnection = 2 }) { server in
            let client = try await server.connectAndHandshake()
            // Two calls left open (their requests not sent yet).
            for id: UInt64 in 1...2 {
                try await client.send(Frame(callID: id, kind: .start(CallStart(method: MethodName.healthCheck))))
            }
            let refused = try await client.unary(MethodName.healthCheck, .healthCheckRequest(HealthCheckRequest()), callID: 3)
            #expect(refused.code == .resourceExhausted)
            #expect(refused.message == "too many concurrent calls on this connection (limit 2)")
            // Finishing one frees a slot.
            try await client.send(Frame(callID: 1, kind: .message(CallMessage(payload: .healthCheckRequest(HealthCheckRequest())))))
            #expect(try await client.expectEnd(of: 1).code == .ok)
            let accepted = try await client.unary(MethodName.healthCheck, .healthCheckRequest(HealthCheckRequest()), callID: 4)
            #expect(accepted.code == .ok)
            // Cancelling an open unary call ends it CANCELLED.
            try await client.send(Frame(callID: 2, kind: .cancel(reason: "never mind")))
            let cancelled = try await client.expectEnd(of: 2)
            #expect(cancelled.code == .cancelled)
        }
    }

    @Test func promptStreamsEveryChunkInOrder() async throws {
        try await withTestServer(tokenDelay: .zero) { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("s")
            let prompt = makePrompt(words: 2000)
            let id = try await client.startPrompt(session: "s", prompt: prompt)
            let result = try await client.collectPrompt(id)
            #expect(result.end?.code == .ok)
            #expect(result.isWellFormed)
            #expect(result.text == prompt)
            guard case .accepted(let accepted)? = result.events.first else { return }
            #expect(accepted.queuePosition == 0)
            #expect(result.finished?.turnID == accepted.turnID)
            #expect(result.finished?.chunks == 2000)

            // Prompt errors end the call at once.
            let unknown = try await client.startPrompt(session: "nope", prompt: "hi")
            let end = try await client.expectEnd(of: unknown)
            #expect(end.code == .notFound)
        }
    }

    @Test func cancelFrameEndsThePrompt() async throws {
        try await withTestServer(tokenDelay: .milliseconds(20)) { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("c")
            let id = try await client.startPrompt(session: "c", prompt: makePrompt(words: 500))
            // Wait for the first output chunk, then cancel.
            while case .event(let event) = try await client.nextPromptItem(id) {
                if case .output = event { break }
            }
            try await client.send(Frame(callID: id, kind: .cancel(reason: "enough")))
            var end: CallEnd?
            while end == nil {
                if case .end(let callEnd) = try await client.nextPromptItem(id) { end = callEnd }
            }
            #expect(end?.code == .cancelled)
            let status = try await client.sessionStatus("c")
            #expect(status.turns.first?.code == .cancelled)
            #expect(status.turns.first?.message == "cancelled by client")
        }
    }

    @Test func callDeadline() async throws {
        try await withTestServer(tokenDelay: .milliseconds(50)) { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("d")
            let id = try await client.startPrompt(session: "d", prompt: makePrompt(words: 200), timeoutMs: 150)
            let result = try await client.collectPrompt(id)
            #expect(result.end?.code == .deadlineExceeded)
            #expect(result.finished != nil)
        }
    }

    /// With `cancel_on_disconnect` a vanished client's turn is cancelled.
    @Test func vanishingClientCancelsItsTurn() async throws {
        try await withTestServer(tokenDelay: .milliseconds(10)) { server in
            let observer = try await server.connectAndHandshake()
            try await observer.createSession("v")
            do {
                let client = try await server.connectAndHandshake()
                let id = try await client.startPrompt(session: "v", prompt: makePrompt(words: 1000), cancelOnDisconnect: true)
                var outputs = 0
                while outputs < 3 {
                    if case .event(.output) = try await client.nextPromptItem(id) { outputs += 1 }
                }
                client.close()
            }
            var finished: TurnSummary?
            try await eventually("the abandoned turn ends") {
                finished = try await observer.sessionStatus("v").turns.first { $0.state == .finished }
                return finished != nil
            }
            #expect(finished?.code == .cancelled)
            #expect(finished?.message == "client disconnected")
            // The session takes the next prompt.
            let id = try await observer.startPrompt(session: "v", prompt: "still here")
            let result = try await observer.collectPrompt(id)
            #expect(result.end?.code == .ok)
            #expect(result.text == "still here")
        }
    }

    /// A client that starts a big prompt and never reads: the call's buffered
    /// output stays bounded (the turn is slowed down instead), and other clients
    /// keep being served.
    @Test func slowReaderIsBounded() async throws {
        let limit = 16 * 1024
        try await withTestServer(tokenDelay: .zero, configure: { $0.maxBufferedOutputBytesPerCall = limit }) { server in
            let observer = try await server.connectAndHandshake()
            try await observer.createSession("slow")
            try await observer.createSession("fast")

            // 3 MB of output in 1 KB chunks, far more than every buffer on the way.
            let word = String(repeating: "x", count: 1023)
            let bigPrompt = Array(repeating: word, count: 3000).joined(separator: " ")
            let reader = try await server.connectAndHandshake()
            _ = try await reader.startPrompt(session: "slow", prompt: bigPrompt)

            let listener = server.server
            try await eventually("the slow reader's writer filled up") {
                listener.maxPendingOutboundBytes >= 1024
            }
            try await Task.sleep(for: .milliseconds(300))
            // The turn is still running: it is held back, not buffered.
            let slowStatus = try await observer.sessionStatus("slow")
            #expect(slowStatus.session?.state == .busy)

            // Others are unaffected: unary calls and a full stream.
            _ = try await observer.serverStatus()
            let fastPrompt = makePrompt(words: 500)
            let id = try await observer.startPrompt(session: "fast", prompt: fastPrompt)
            let result = try await observer.collectPrompt(id)
            #expect(result.end?.code == .ok)
            #expect(result.text == fastPrompt)

            let frameOverhead = 64
            #expect(listener.maxPendingOutboundBytes <= limit + 1024 + frameOverhead)
            reader.close()
            try await eventually("the slow turn is cancelled") {
                try await observer.sessionStatus("slow").session?.state == .idle
            }
        }
    }
}
