#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

/// An in-process server on a fresh short socket path under /tmp.
struct TestServer: Sendable {
    let server: SwitchboardServer
    let registry: SessionRegistry
    let path: String
    let runTask: Task<Void, any Error>

    func connect() throws -> RawClient {
        try RawClient(path: path)
    }

    /// A client past the handshake.
    func connectAndHandshake() async throws -> RawClient {
        let client = try connect()
        try await client.handshake()
        return client
    }
}

let quietLogger = Logger(label: "switchboard.tests") { _ in SwiftLogNoOpLogHandler() }

/// A unique directory for a socket: /tmp/sbt-XXXXXXXX (short: sun_path is 108 bytes).
func makeSocketDirectory() -> String {
    let dir = "/tmp/sbt-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))-\(getpid())"
    mkdir(dir, 0o755)
    return dir
}

func removeDirectory(_ dir: String) {
    if let entries = try? directoryEntries(dir) {
        for entry in entries { unlink(dir + "/" + entry) }
    }
    rmdir(dir)
}

private func directoryEntries(_ dir: String) throws -> [String] {
    guard let handle = opendir(dir) else { return [] }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name != ".", name != ".." { names.append(name) }
    }
    return names
}

func makeRegistry(
    tokenDelay: Duration = .milliseconds(1),
    core: CoreConfiguration = CoreConfiguration(),
    exec: ExecBackend? = nil
) -> SessionRegistry {
    SessionRegistry(
        configuration: core,
        backends: BackendRegistry(echo: EchoBackend(tokenDelay: tokenDelay), exec: exec),
        logger: quietLogger
    )
}

/// Starts a server, runs `body`, then drains the server and checks that `run()`
/// returned. Tests get a short grace period so a leftover stream cannot slow them.
func withTestServer(
    tokenDelay: Duration = .milliseconds(1),
    core: CoreConfiguration = CoreConfiguration(),
    exec: ExecBackend? = nil,
    logger: Logger = quietLogger,
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (TestServer) async throws -> Void
) async throws {
    let dir = makeSocketDirectory()
    defer { removeDirectory(dir) }
    var configuration = ServerConfiguration(socketPath: dir + "/s.sock")
    configuration.drainGracePeriod = .seconds(1)
    configure(&configuration)
    let registry = makeRegistry(tokenDelay: tokenDelay, core: core, exec: exec)
    let server = SwitchboardServer(configuration: configuration, registry: registry, logger: logger)
    let runTask = Task { try await server.run() }
    let testServer = TestServer(server: server, registry: registry, path: configuration.socketPath, runTask: runTask)
    do {
        try await server.waitUntilListening()
        try await body(testServer)
    } catch {
        server.beginDrain()
        _ = await runTask.result
        throw error
    }
    server.beginDrain()
    try await runTask.value
}

/// Polls `condition` every few milliseconds until it holds (or fails the test
/// after `timeout`): for effects that land asynchronously, never for timing.
func eventually(
    timeout: Duration = TestTimeScale.seconds(30),
    _ what: String,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    Issue.record("timed out waiting for: \(what)")
    throw RawClientError(description: "timed out waiting for: \(what)")
}

/// Resident set size of this process, from /proc/self/status (bytes).
func residentSetSize() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("VmRSS:") {
            let digits = text.filter(\.isNumber)
            return (Int(digits) ?? 0) * 1024
        }
    }
    return 0
}

/// A prompt of `words` words, each `width` characters plus a space.
func makePrompt(words: Int, width: Int = 5) -> String {
    (0..<words).map { index in
        let word = String(index)
        return String(repeating: "w", count: max(0, width - word.count)) + word
    }.joined(separator: " ")
}

extension StatusCode {
    static let anyProtocolError: [StatusCode] = [.invalidArgument, .resourceExhausted]
}
