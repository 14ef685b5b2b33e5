#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import ServiceLifecycle
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

/// Drain grace periods are stretched by `TestTimeScale`, so under Thread Sanitizer
/// (scripts/test.sh), where the server runs many times slower, a prompt that must
/// finish inside the grace still does, and one that must outlast it (50 s of
/// output against a grace of 300 ms × the scale) still does too.
@Suite("Drain")
struct DrainTests {
    /// Starts a server by hand (the drain is the test, not the teardown).
    static func startServer(
        tokenDelay: Duration,
        grace: Duration
    ) async throws -> (TestServer, String) {
        let dir = makeSocketDirectory()
        var configuration = ServerConfiguration(socketPath: dir + "/s.sock")
        configuration.drainGracePeriod = grace
        let registry = makeRegistry(tokenDelay: tokenDelay)
        let server = SwitchboardServer(configuration: configuration, registry: registry, logger: quietLogger)
        let runTask = Task { try await server.run() }
        try await server.waitUntilListening()
        return (TestServer(server: server, registry: registry, path: configuration.socketPath, runTask: runTask), dir)
    }

    /// Regression: the drain's wait for detached turns armed a timer for the end
    /// of the grace; when the turns ended first, the timer later found a stale
    /// entry and trapped on an index out of range, killing the process after the
    /// drain had finished.
    @Test func aDrainWhoseDetachedTurnsEndEarlyLeavesNoTimerThatTraps() async throws {
        let grace = TestTimeScale.seconds(1)
        let (server, dir) = try await Self.startServer(tokenDelay: .milliseconds(5), grace: grace)
        defer { removeDirectory(dir) }
        let observer = try await server.connectAndHandshake()
        try await observer.createSession("early")
        do {
            // A turn of about 300 ms whose client goes away: it runs on, detached.
            let client = try await server.connectAndHandshake()
            let promptID = try await client.startPrompt(session: "early", prompt: makePrompt(words: 60))
            guard case .event(.accepted) = try await client.nextPromptItem(promptID) else {
                Issue.record("the prompt was not accepted")
                return
            }
            client.close()
        }
        observer.close()
        server.server.beginDrain()
        try await server.runTask.value
        let turns = server.registry.sessionSnapshots()
        #expect(turns.first?.turnsCompleted == 1, "the detached turn ended inside the grace")
        // Outlive the grace: the wait's timer fires now, on the shared event loop.
        try await Task.sleep(for: grace * 2)
        #expect(access(server.path, F_OK) != 0)
    }

    @Test func drainLetsARunningPromptFinish() async throws {
        let (server, dir) = try await Self.startServer(tokenDelay: .milliseconds(5), grace: TestTimeScale.seconds(20))
        defer { removeDirectory(dir) }
        let client = try await server.connectAndHandshake()
        try await client.createSession("d")  // call 1
        let prompt = makePrompt(words: 100)
        let promptID = try await client.startPrompt(session: "d", prompt: prompt)  // call 2
        // A health call left open across the drain: started, its request not
        // sent yet (a unary call is answered as soon as its request arrives).
        let healthID = client.newCallID()  // call 3
        try await client.send(Frame(callID: healthID, kind: .start(CallStart(method: MethodName.healthCheck))))
        let idle = try await server.connectAndHandshake()

        var events: [PromptEvent] = []
        while events.count < 3 {
            if case .event(let event) = try await client.nextPromptItem(promptID) { events.append(event) }
        }
        server.server.beginDrain()

        // The idle connection gets GoAway(OK) and is closed.
        let idleFrames = try await idle.readUntilClosed()
        #expect(idleFrames == [Frame(kind: .goAway(GoAway(lastCallID: 0, code: .ok, message: "server is shutting down")))])

        // The busy one gets GoAway(OK) naming its last call...
        let goAway = try await client.expectFrame(forCall: 0)
        #expect(goAway == Frame(kind: .goAway(GoAway(lastCallID: 3, code: .ok, message: "server is shutting down"))))
        // ...a new call is refused as not processed...
        let refused = try await client.unary(MethodName.getServerStatus, .serverStatusRequest(ServerStatusRequest()))
        #expect(refused.code == .unavailable)
        // ...the open health call completes and says NOT_SERVING...
        try await client.send(Frame(callID: healthID, kind: .message(CallMessage(payload: .healthCheckRequest(HealthCheckRequest())))))
        let health = try await client.expectEnd(of: healthID)
        #expect(health.payload == .healthCheckResponse(HealthCheckResponse(status: .notServing, reason: "draining")))
        // ...and the prompt runs to its end with its full output.
        var result = try await client.collectPrompt(promptID)
        result.events.insert(contentsOf: events, at: 0)
        #expect(result.end?.code == .ok)
        #expect(result.isWellFormed)
        #expect(result.text == prompt)

        // Then the connection is closed, run() returns and the socket is gone.
        #expect(try await client.readUntilClosed().isEmpty)
        try await server.runTask.value
        #expect(access(server.path, F_OK) != 0)
        #expect(throws: (any Error).self) { try RawClient(path: server.path) }
    }

    @Test func promptLongerThanTheGracePeriodIsEnded() async throws {
        let (server, dir) = try await Self.startServer(tokenDelay: .milliseconds(50), grace: TestTimeScale.milliseconds(300))
        defer { removeDirectory(dir) }
        let client = try await server.connectAndHandshake()
        try await client.createSession("long")
        let promptID = try await client.startPrompt(session: "long", prompt: makePrompt(words: 1000))
        while true {
            if case .event(.output) = try await client.nextPromptItem(promptID) { break }
        }
        server.server.beginDrain()
        let goAway = try await client.expectFrame(forCall: 0)
        guard case .goAway(let away) = goAway.kind else {
            Issue.record("expected GoAway, got \(goAway)")
            return
        }
        #expect(away.code == .ok)
        let result = try await client.collectPrompt(promptID)
        #expect(result.end?.code == .unavailable)
        #expect(result.end?.message == "server shutting down")
        #expect(result.finished != nil)
        #expect(try await client.readUntilClosed().isEmpty)
        try await server.runTask.value
        let status = try server.registry.sessionStatus(id: "long", caller: .server)
        #expect(status.turns.first?.code == .cancelled)
    }

    @Test func gracefulShutdownOfAServiceGroupDrains() async throws {
        let dir = makeSocketDirectory()
        defer { removeDirectory(dir) }
        var configuration = ServerConfiguration(socketPath: dir + "/s.sock")
        configuration.drainGracePeriod = TestTimeScale.seconds(5)
        let server = SwitchboardServer(configuration: configuration, registry: makeRegistry(), logger: quietLogger)
        let group = ServiceGroup(services: [server], logger: quietLogger)
        let run = Task { try await group.run() }
        try await server.waitUntilListening()
        let client = try RawClient(path: configuration.socketPath)
        try await client.handshake()
        await group.triggerGracefulShutdown()
        let frames = try await client.readUntilClosed()
        #expect(frames == [Frame(kind: .goAway(GoAway(lastCallID: 0, code: .ok, message: "server is shutting down")))])
        try await run.value
        #expect(access(configuration.socketPath, F_OK) != 0)
    }

    @Test func cancellingRunDrains() async throws {
        let (server, dir) = try await Self.startServer(tokenDelay: .zero, grace: TestTimeScale.seconds(5))
        defer { removeDirectory(dir) }
        let client = try await server.connectAndHandshake()
        server.runTask.cancel()
        let frames = try await client.readUntilClosed()
        #expect(frames == [Frame(kind: .goAway(GoAway(lastCallID: 0, code: .ok, message: "server is shutting down")))])
        try await server.runTask.value
    }

    @Test func drainBeforeRunStopsIt() async throws {
        let dir = makeSocketDirectory()
        defer { removeDirectory(dir) }
        let server = SwitchboardServer(
            configuration: ServerConfiguration(socketPath: dir + "/s.sock"),
            registry: makeRegistry(),
            logger: quietLogger
        )
        server.beginDrain()
        await #expect(throws: SwitchboardError.self) { try await server.waitUntilListening() }
        let error = await #expect(throws: SwitchboardError.self) { try await server.run() }
        #expect(error?.message == "the server was stopped before it started")
        #expect(access(dir + "/s.sock", F_OK) != 0)
    }
}
