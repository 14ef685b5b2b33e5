import Foundation
import Logging
import SwitchboardClient
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

/// `SwitchboardClient.call` retries what the server never processed, and only
/// calls that are safe to repeat; `--exit-idle-after` in process.
@Suite("Retry and exit on idle")
struct RetryTests {
    static func makeServer(socketPath: String, configure: (inout ServerConfiguration) -> Void = { _ in }) -> (SwitchboardServer, SessionRegistry) {
        let logger = Logger(label: "retry-tests") { _ in SwiftLogNoOpLogHandler() }
        let registry = SessionRegistry(configuration: CoreConfiguration(), backends: BackendRegistry(echo: EchoBackend()), logger: logger)
        var configuration = ServerConfiguration(socketPath: socketPath)
        configuration.drainGracePeriod = .seconds(2)
        configure(&configuration)
        return (SwitchboardServer(configuration: configuration, registry: registry, logger: logger), registry)
    }

    static func configuration(budget: Duration) -> ClientConfiguration {
        var configuration = ClientConfiguration()
        configuration.retry.totalBudget = budget
        configuration.retry.maxAttempts = 1000
        return configuration
    }

    @Test func refusedBeforeProcessingIsRecognised() {
        let retried = [
            "no server at /x", "cannot connect to /x: Connection refused", "server is going away: draining",
            "server is shutting down", "connection closed", "connection closed: reset",
        ]
        for message in retried {
            #expect(RetryPolicy.isRefusedBeforeProcessing(SwitchboardError(code: .unavailable, message: message)), "\(message)")
        }
        #expect(!RetryPolicy.isRefusedBeforeProcessing(SwitchboardError(code: .unavailable, message: "backend unavailable")))
        #expect(!RetryPolicy.isRefusedBeforeProcessing(SwitchboardError(code: .unavailable, message: "cannot connect to /x: socket path too long")))
        #expect(!RetryPolicy.isRefusedBeforeProcessing(SwitchboardError(code: .notFound, message: "no server at /x")))
    }

    /// A server that appears while the client retries serves the call.
    @Test func healthWaitsForTheServerToAccept() async throws {
        let socketPath = try makeSocketPath()
        defer { removeSocketDirectory(socketPath) }
        let (server, _) = Self.makeServer(socketPath: socketPath)
        let call = Task { try await SwitchboardClient.call(.health, socketPath: socketPath, configuration: Self.configuration(budget: .seconds(30))) }
        try await Task.sleep(for: .milliseconds(300))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            #expect(try await call.value == .serving)
            server.beginDrain()
            try await group.waitForAll()
        }
    }

    /// Not safe to repeat (a create with a server-chosen id): one attempt only.
    @Test func createWithoutIDIsNotRetried() async throws {
        let socketPath = try makeSocketPath()
        defer { removeSocketDirectory(socketPath) }
        let started = ContinuousClock.now
        let error = await switchboardError {
            _ = try await SwitchboardClient.call(.createSession(CreateSessionRequest()), socketPath: socketPath, configuration: Self.configuration(budget: TestTimeScale.seconds(60)))
        }
        #expect(error?.code == .unavailable)
        // A retried call would keep trying for the whole 60 s budget; one attempt
        // fails at once (the bound only has to tell the two apart, under load too).
        #expect(ContinuousClock.now - started < TestTimeScale.seconds(20))
    }

    @Test func retriesStopAtTheBudget() async throws {
        let socketPath = try makeSocketPath()
        defer { removeSocketDirectory(socketPath) }
        let error = await switchboardError {
            _ = try await SwitchboardClient.call(.health, socketPath: socketPath, configuration: Self.configuration(budget: .milliseconds(300)))
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.hasPrefix("no server at") == true, "\(String(describing: error))")
    }

    /// With no connection and no session for the idle period, run() returns and
    /// the socket file is removed; a session keeps the server running.
    @Test func exitsOnIdleButNotWithASession() async throws {
        let socketPath = try makeSocketPath()
        defer { removeSocketDirectory(socketPath) }
        // 1 s, not less: the gap between listening and the first connect must stay
        // under it on a loaded machine, or the server has rightly exited already.
        let idle = TestTimeScale.seconds(1)
        let (server, registry) = Self.makeServer(socketPath: socketPath) { $0.exitIdleAfter = idle }
        let running = Task { try await server.run() }
        defer { server.beginDrain() }
        try await server.waitUntilListening()
        let session = try await SwitchboardClient.call(.createSession(CreateSessionRequest(sessionID: "keep")), socketPath: socketPath)
        #expect(session.id == "keep")
        // Two idle periods later the session still holds the server.
        try await Task.sleep(for: idle * 2)
        #expect(try await SwitchboardClient.call(.health, socketPath: socketPath) == .serving)
        _ = try await registry.closeSession(id: "keep", reason: "test", caller: .server)
        try await withTimeout(.seconds(20), "exit on idle") { try await running.value }
        #expect(!FileManager.default.fileExists(atPath: socketPath))
    }
}
