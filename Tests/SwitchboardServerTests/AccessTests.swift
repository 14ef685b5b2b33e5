#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

/// The access policy and the limits that hold under abuse, over real sockets.
/// These tests run as one uid; with `adminUIDs` emptied that uid is an ordinary
/// user (even root). Refusals between two different uids are in the end-to-end
/// `AccessTests`, which run clients as another user.
@Suite("Access policy and connection limits")
struct AccessTests {
    /// The policy as if this process were an ordinary user.
    static func ordinaryUser(_ configure: (inout AccessPolicy) -> Void = { _ in }) -> AccessPolicy {
        var policy = AccessPolicy()
        policy.adminUIDs = []
        configure(&policy)
        return policy
    }

    @Test func welcomeCarriesTheLimitsAndThePeersGrant() async throws {
        try await withTestServer(core: CoreConfiguration(maxSessionsPerUID: 5), configure: { configuration in
            configuration.maxConnections = 99
            configuration.maxConnectionsPerUID = 3
            configuration.handshakeTimeout = .seconds(2)
            configuration.idleConnectionTimeout = .seconds(7)
            configuration.maxBufferedOutputBytesPerCall = 12_345
        }) { server in
            let welcome = try await server.connect().handshake()
            #expect(welcome.limits == ConnectionLimits(
                maxConnections: 99,
                maxConnectionsPerUID: 3,
                maxSessionsPerUID: 5,
                handshakeTimeoutMs: 2_000,
                idleConnectionTimeoutMs: 7_000,
                maxBufferedOutputBytes: 12_345
            ))
            // This process's uid is the server's own: an administrator.
            #expect(welcome.peer == PeerGrant(uid: getuid(), isAdmin: true, mayRegisterWorkers: true))
        }
        try await withTestServer(configure: { $0.accessPolicy = Self.ordinaryUser() }) { server in
            let welcome = try await server.connect().handshake()
            #expect(welcome.peer == PeerGrant(uid: getuid(), isAdmin: false, mayRegisterWorkers: false))
            // The defaults are announced too.
            #expect(welcome.limits.maxConnectionsPerUID == 256)
            #expect(welcome.limits.maxSessionsPerUID == 10_000)
            #expect(welcome.limits.idleConnectionTimeoutMs == 300_000)
        }
    }

    @Test func perUIDConnectionLimit() async throws {
        try await withTestServer(configure: { configuration in
            configuration.maxConnectionsPerUID = 3
            configuration.accessPolicy = Self.ordinaryUser()
        }) { server in
            let admitted = [
                try await server.connectAndHandshake(),
                try await server.connectAndHandshake(),
                try await server.connectAndHandshake(),
            ]
            let fourth = try server.connect()
            BadInputTests.expectGoAway(
                try await fourth.readUntilClosed(),
                .resourceExhausted,
                "too many connections for uid \(getuid()) (limit 3)"
            )
            // The admitted ones are unaffected.
            for client in admitted { _ = try await client.serverStatus() }
            // A slot frees up when one leaves.
            admitted[0].close()
            let listener = server.server
            try await eventually("the closed connection is released") { listener.connectionCount == 2 }
            _ = try await server.connectAndHandshake().serverStatus()
        }
    }

    @Test func administratorsAreBoundOnlyByTheTotal() async throws {
        try await withTestServer(configure: { configuration in
            configuration.maxConnectionsPerUID = 2
            configuration.maxConnections = 4
        }) { server in
            var clients: [RawClient] = []
            for _ in 0..<4 { clients.append(try await server.connectAndHandshake()) }
            BadInputTests.expectGoAway(
                try await server.connect().readUntilClosed(),
                .resourceExhausted,
                "too many connections (limit 4)"
            )
            _ = try await clients[3].serverStatus()
        }
    }

    @Test func sessionsPerUIDLimitOverTheWire() async throws {
        try await withTestServer(core: CoreConfiguration(maxSessionsPerUID: 2), configure: {
            $0.accessPolicy = Self.ordinaryUser()
        }) { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("one")
            try await client.createSession("two")
            let refused = try await client.unary(MethodName.createSession, .createSessionRequest(CreateSessionRequest(sessionID: "three")))
            #expect(refused.code == .resourceExhausted)
            #expect(refused.message == "too many sessions for uid \(getuid()) (limit 2)")
            _ = try await client.serverStatus()
        }
    }

    @Test func aPeerTheConnectPolicyDoesNotNameIsRefused() async throws {
        let stranger = getuid() == 4_242 ? 4_243 : UInt32(4_242)
        try await withTestServer(configure: {
            $0.accessPolicy = Self.ordinaryUser { $0.connectUIDs = [stranger] }
        }) { server in
            let client = try server.connect()
            try await client.send(Frame(kind: .hello(Hello(clientName: "refused"))))
            BadInputTests.expectGoAway(
                try await client.readUntilClosed(),
                .permissionDenied,
                "uid \(getuid()) (gid \(getgid())) may not connect to this server (see its access policy)"
            )
        }
        // Named by gid, it may.
        try await withTestServer(configure: {
            $0.accessPolicy = Self.ordinaryUser { $0.connectUIDs = [stranger]; $0.connectGIDs = [getgid()] }
        }) { server in
            _ = try await server.connectAndHandshake().serverStatus()
        }
    }

    @Test func workerRegistrationNeedsPermission() async throws {
        try await withTestServer(configure: { $0.accessPolicy = Self.ordinaryUser() }) { server in
            let client = try await server.connectAndHandshake()
            let end = try await client.unary(
                MethodName.workerConnect,
                .workerMessage(.register(WorkerRegister(taskQueue: "q", capacity: 1)))
            )
            #expect(end.code == .permissionDenied)
            #expect(end.message == "uid \(getuid()) may not register workers on this server (see its access policy)")
            // The connection stays usable and no worker joined.
            #expect(try await client.serverStatus().workers.isEmpty)
            #expect(server.registry.workers.snapshot().workers.isEmpty)
        }
        // A worker uid may: the call is accepted and answered with Registered.
        try await withTestServer(configure: {
            $0.accessPolicy = Self.ordinaryUser { $0.workerUIDs = [getuid()] }
        }) { server in
            let client = try await server.connectAndHandshake()
            let id = client.newCallID()
            try await client.send(Frame(callID: id, kind: .start(CallStart(
                method: MethodName.workerConnect,
                payload: .workerMessage(.register(WorkerRegister(taskQueue: "q", capacity: 1)))
            ))))
            let frame = try await client.expectFrame(forCall: id)
            guard case .message(let message) = frame.kind, case .workerCommand(.registered)? = message.payload else {
                Issue.record("expected Registered, got \(frame)")
                return
            }
        }
    }

    @Test func statusHidesOtherUsersSessionsAndWorkerDetails() async throws {
        try await withTestServer(configure: { $0.accessPolicy = Self.ordinaryUser() }) { server in
            // A session of another uid, made directly in the registry.
            _ = try await server.registry.createSession(CreateSessionRequest(sessionID: "theirs"), ownerUID: 4_242)
            let client = try await server.connectAndHandshake()
            try await client.createSession("mine")
            let end = try await client.unary(MethodName.getServerStatus, .serverStatusRequest(ServerStatusRequest(includeSessions: true)))
            guard case .serverStatus(let status)? = end.payload else {
                Issue.record("expected status, got \(end)")
                return
            }
            #expect(status.sessionsTotal == 2)  // counts are for everyone
            #expect(status.sessions.map(\.id) == ["mine"])
            #expect(status.stateDirectory.isEmpty)
            let denied = try await client.unary(MethodName.getSession, .getSessionRequest(GetSessionRequest(sessionID: "theirs")))
            #expect(denied.code == .permissionDenied)
            #expect(denied.message == "session \"theirs\" belongs to uid 4242; uid \(getuid()) may not read it")
        }
    }

    // MARK: Idle and slow connections

    @Test func anIdleConnectionIsClosedWithAGoAway() async throws {
        let timeout = TestTimeScale.ms(200)
        try await withTestServer(configure: { $0.idleConnectionTimeout = .milliseconds(timeout) }) { server in
            let client = try await server.connectAndHandshake()
            BadInputTests.expectGoAway(
                try await client.readUntilClosed(),
                .ok,
                "idle connection closed: no call and no frame for \(timeout) ms"
            )
        }
    }

    @Test func aConnectionWithAnOpenCallIsNeverIdle() async throws {
        // 20 tokens 150 ms apart: the prompt runs about 3 s, three idle timeouts,
        // during which the client sends nothing at all. The timeout is 1 s, not
        // less, because the gaps before the calls (handshake to create to prompt)
        // must stay under it on a loaded machine. Both stretch together under TSan.
        try await withTestServer(tokenDelay: TestTimeScale.milliseconds(150), configure: {
            $0.idleConnectionTimeout = TestTimeScale.seconds(1)
        }) { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("long")
            let call = try await client.startPrompt(session: "long", prompt: makePrompt(words: 20))
            let result = try await client.collectPrompt(call)
            #expect(result.end?.code == .ok)
            // Once the call is over, the connection does go idle.
            BadInputTests.expectGoAway(try await client.readUntilClosed(), .ok)
        }
    }

    @Test func framesKeepAConnectionAlive() async throws {
        // Pings every 100 ms for longer than the timeout: the generous ratio keeps
        // a loaded machine's late wake-ups from looking like idleness.
        let timeout = TestTimeScale.seconds(2)
        try await withTestServer(configure: { $0.idleConnectionTimeout = timeout }) { server in
            let client = try await server.connectAndHandshake()
            let started = ContinuousClock.now
            var nonce: UInt64 = 0
            while ContinuousClock.now - started < timeout * 1.5 {
                try await Task.sleep(for: .milliseconds(100))
                try await client.send(Frame(kind: .ping(nonce: nonce)))
                #expect(try await client.expectFrame() == Frame(kind: .pong(nonce: nonce)))
                nonce += 1
            }
        }
    }

    @Test func theIdleClockStartsAgainWhenTheLastCallEnds() async throws {
        // Idle timeout T; a prompt of about 1.55 T during which the client sends
        // nothing; 0.55 T after it ends, a second call. Counted from the prompt's
        // frame the connection is idle at the check at 2 T and closed before that
        // call (a check delayed by load can only make the test pass wrongly, never
        // fail); counted from the end of the call, the call has 0.45 T to spare.
        let timeout = TestTimeScale.seconds(2)
        try await withTestServer(tokenDelay: TestTimeScale.milliseconds(100), configure: {
            $0.idleConnectionTimeout = timeout
        }) { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("long")
            let call = try await client.startPrompt(session: "long", prompt: makePrompt(words: 31))
            let result = try await client.collectPrompt(call)
            #expect(result.end?.code == .ok)
            try await Task.sleep(for: timeout * 0.55)
            let second = try await client.unary(MethodName.healthCheck, .healthCheckRequest(HealthCheckRequest()))
            #expect(second.code == .ok)
        }
    }

    @Test func refusalsByALimitAreLoggedAtNoticeWithThePeer() async throws {
        let capture = LogCapture()
        try await withTestServer(
            core: CoreConfiguration(maxSessions: 1),
            logger: capture.logger,
            configure: { $0.maxConcurrentCallsPerConnection = 1 }
        ) { server in
            let client = try await server.connectAndHandshake()
            // Refused on the event loop: one call is open (its request not sent
            // yet), the limit is one.
            let open = client.newCallID()
            try await client.send(Frame(callID: open, kind: .start(CallStart(method: MethodName.healthCheck))))
            let tooMany = client.newCallID()
            let refused = try await client.unary(MethodName.healthCheck, .healthCheckRequest(HealthCheckRequest()), callID: tooMany)
            #expect(refused.code == .resourceExhausted)
            try await client.send(Frame(callID: open, kind: .message(CallMessage(payload: .healthCheckRequest(HealthCheckRequest())))))
            #expect(try await client.expectEnd(of: open).code == .ok)
            // Refused from a task (create waits for the store): the session limit.
            try await client.createSession("only")
            let more = client.newCallID()
            let full = try await client.unary(
                MethodName.createSession,
                .createSessionRequest(CreateSessionRequest(sessionID: "more")),
                callID: more
            )
            #expect(full.code == .resourceExhausted)

            let refusals = capture.all.filter { $0.message == "call refused: resource exhausted" }
            #expect(refusals.map(\.metadata["call"]) == ["\(tooMany)", "\(more)"])
            for refusal in refusals {
                #expect(refusal.level == .notice)
                #expect(refusal.metadata["peer_uid"] == "\(getuid())")
                #expect(refusal.metadata["peer_pid"] == "\(getpid())")
                #expect(refusal.metadata["error"]?.isEmpty == false)
            }
        }
    }

    @Test func aPartialHelloIsClosedByTheHandshakeTimeout() async throws {
        try await withTestServer(configure: { $0.handshakeTimeout = .milliseconds(200) }) { server in
            let client = try server.connect()
            let hello = Frame(kind: .hello(Hello(clientName: "slowloris"))).prefixedBytes()
            // All but the last byte, then nothing.
            try await client.sendRaw(Array(hello.dropLast()))
            BadInputTests.expectGoAway(try await client.readUntilClosed(), .deadlineExceeded, "no Hello within 200 ms")
        }
    }

    @Test func aHugeFirstFrameIsRefusedBeforeItIsBuffered() async throws {
        try await withTestServer { server in
            let client = try server.connect()
            // 1 MiB announced (well under the 4 MiB frame limit), before any Hello.
            try await client.sendRaw([0x00, 0x10, 0x00, 0x00] + [UInt8](repeating: 0x41, count: 1024))
            BadInputTests.expectGoAway(
                try await client.readUntilClosed(),
                .resourceExhausted,
                "first frame of 1048576 bytes exceeds the maximum of 65536 bytes before the handshake"
            )
        }
    }
}
