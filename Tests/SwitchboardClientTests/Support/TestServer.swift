import Foundation
import Logging
import SwitchboardClient
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

/// An in-process `SwitchboardServer` (echo backend) on a fresh socket under /tmp.
struct TestServer: Sendable {
    let socketPath: String
    let server: SwitchboardServer
    let registry: SessionRegistry

    func client(_ configure: (inout ClientConfiguration) -> Void = { _ in }) async throws -> SwitchboardClient {
        var configuration = ClientConfiguration()
        configuration.clientName = "client-tests"
        configure(&configuration)
        return try await SwitchboardClient.connect(socketPath: socketPath, configuration: configuration)
    }

    func withClient<R: Sendable>(_ body: (SwitchboardClient) async throws -> R) async throws -> R {
        var configuration = ClientConfiguration()
        configuration.clientName = "client-tests"
        return try await withSwitchboardClient(socketPath: socketPath, configuration: configuration, body)
    }
}

/// A socket path in a new private directory under /tmp (short: sun_path is 108 bytes).
func makeSocketPath() throws -> String {
    let directory = "/tmp/sbc-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    return directory + "/s.sock"
}

func removeSocketDirectory(_ socketPath: String) {
    try? FileManager.default.removeItem(atPath: (socketPath as NSString).deletingLastPathComponent)
}

/// Runs `body` against a fresh server, then drains it and waits for it to stop.
func withTestServer<R: Sendable>(
    echoDelay: Duration = .zero,
    configureCore: (inout CoreConfiguration) -> Void = { _ in },
    configureServer: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (TestServer) async throws -> R
) async throws -> R {
    let socketPath = try makeSocketPath()
    defer { removeSocketDirectory(socketPath) }
    var core = CoreConfiguration()
    configureCore(&core)
    let logger = Logger(label: "client-tests") { _ in SwiftLogNoOpLogHandler() }
    let registry = SessionRegistry(
        configuration: core,
        backends: BackendRegistry(echo: EchoBackend(tokenDelay: echoDelay)),
        logger: logger
    )
    var configuration = ServerConfiguration(socketPath: socketPath)
    configuration.drainGracePeriod = .seconds(2)
    configureServer(&configuration)
    let server = SwitchboardServer(configuration: configuration, registry: registry, logger: logger)
    let testServer = TestServer(socketPath: socketPath, server: server, registry: registry)

    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            try await server.waitUntilListening()
            let result = try await body(testServer)
            server.beginDrain()
            try await group.waitForAll()
            return result
        } catch {
            server.beginDrain()
            try? await group.waitForAll()
            throw error
        }
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

/// Runs `body`, failing (and cancelling it) after `limit`: a guard against hangs,
/// not a performance assertion.
func withTimeout<R: Sendable>(
    _ limit: Duration = .seconds(20),
    _ what: String = "test body",
    _ body: @escaping @Sendable () async throws -> R
) async throws -> R {
    try await withThrowingTaskGroup(of: R?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else {
            throw TimedOut(what: what)
        }
        return result
    }
}

/// Polls `condition` until it holds or `limit` passes.
func eventually(
    _ limit: Duration = TestTimeScale.seconds(30),
    _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// The error a throwing expression threw, as a `SwitchboardError` (nil when it did not throw).
func switchboardError(_ body: () async throws -> Void) async -> SwitchboardError? {
    do {
        try await body()
        return nil
    } catch let error as SwitchboardError {
        return error
    } catch {
        Issue.record("expected a SwitchboardError, got \(type(of: error)): \(error)")
        return nil
    }
}

extension PromptStream {
    /// Every event of the stream, in order.
    func collect() async throws -> [PromptEvent] {
        var events: [PromptEvent] = []
        for try await event in self {
            events.append(event)
        }
        return events
    }
}

extension Array where Element == PromptEvent {
    var outputChunks: [OutputChunk] {
        compactMap { event in
            if case .output(let chunk) = event { return chunk }
            return nil
        }
    }

    var outputText: String {
        String(decoding: outputChunks.flatMap(\.data), as: UTF8.self)
    }
}
