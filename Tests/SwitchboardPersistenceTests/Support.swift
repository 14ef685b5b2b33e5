import Foundation
import GRDB
import Logging
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol

/// A scratch directory under /tmp, removed by `remove()`.
struct ScratchDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/sbstore-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed: errno \(errno)") }
        path = String(cString: made)
    }

    /// The state directory the tests hand to the store (created by the store).
    var state: String { path + "/state" }
    var database: String { state + "/" + SQLiteSessionStore.databaseFileName }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

let testLogger = Logger(label: "persistence-tests")

/// Opens a store on `directory` (fast batches by default, so tests also exercise
/// the timer path).
func openStore(
    _ directory: ScratchDirectory,
    options: SQLiteSessionStore.Options = SQLiteSessionStore.Options(batchInterval: .milliseconds(5))
) throws -> SQLiteSessionStore {
    try SQLiteSessionStore.open(directory: directory.state, logger: testLogger, options: options)
}

func makeSession(
    _ id: String,
    labels: [Label] = [],
    settings: SessionSettings = SessionSettings(backend: "echo"),
    owner: UInt32 = 1000,
    createdAtMs: UInt64 = 1_700_000_000_000
) -> StoredSession {
    StoredSession(id: id, labels: labels, settings: settings, ownerUID: owner, createdAtMs: createdAtMs, lastActivityMs: createdAtMs)
}

extension SessionStore {
    /// Records a whole turn: accepted, started, `chunks` output, finished.
    func recordTurn(
        session: String, turn: String, prompt: String = "p", chunks: [String],
        code: StatusCode = .ok, endedAtMs: UInt64 = 1_700_000_000_500
    ) {
        recordTurnAccepted(StoredTurn(sessionID: session, turnID: turn, prompt: prompt, state: .queued, acceptedAtMs: endedAtMs - 10))
        recordTurnStarted(sessionID: session, turnID: turn, atMs: endedAtMs - 5)
        for (index, text) in chunks.enumerated() {
            recordOutput(sessionID: session, turnID: turn, chunk: OutputChunk(sequence: UInt64(index + 1), data: Array(text.utf8)))
        }
        recordTurnFinished(
            sessionID: session, turnID: turn,
            ending: StoredTurnEnding(code: code, message: code == .ok ? "" : "failed", stopReason: "end_turn", endedAtMs: endedAtMs)
        )
    }
}

/// A `Pipe` whose two descriptors are close-on-exec. Foundation's `Pipe()`
/// makes them with plain `pipe()`, so every child that another test of this
/// process spawns meanwhile would inherit them, and a reader waiting for the
/// end of the output would wait for that unrelated child too. (`Process`
/// still hands its child the ends it names: `dup2` clears the flag.)
func closeOnExecPipe() -> Pipe {
    let pipe = Pipe()
    for fd in [pipe.fileHandleForReading.fileDescriptor, pipe.fileHandleForWriting.fileDescriptor] {
        _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
    }
    return pipe
}

/// The mode bits (permissions) of a file.
func fileMode(_ path: String) throws -> mode_t {
    var info = stat()
    guard stat(path, &info) == 0 else { throw TestFailure("stat \(path): errno \(errno)") }
    return info.st_mode & 0o7777
}

/// The bytes of a file, to check a refused file was left untouched.
func fileBytes(_ path: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: path))
}

/// Where the crash helper executable lives: next to the test bundle.
func crashHelperPath() throws -> String {
    var directories: [URL] = []
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        directories.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
    }
    directories.append(Bundle.main.bundleURL)
    directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
    for directory in directories {
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("switchboard-store-crash-helper").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
    }
    throw TestFailure("switchboard-store-crash-helper not found next to the test bundle (build with --build-tests)")
}

/// Polls `condition` every few milliseconds until it holds; fails after
/// `timeout` (a bound for a broken build, not a speed requirement).
func eventually(
    _ what: String,
    timeout: Duration = .seconds(20),
    _ condition: () throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        if ContinuousClock.now >= deadline { throw TestFailure("timed out waiting for: \(what)") }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// Runs read-only queries with GRDB directly (no store), one integer each.
func sqliteScalars(_ path: String, _ queries: [String]) throws -> [Int] {
    var configuration = Configuration()
    configuration.readonly = true
    let queue = try DatabaseQueue(path: path, configuration: configuration)
    defer { try? queue.close() }
    return try queue.read { db in try queries.map { try Int.fetchOne(db, sql: $0) ?? -1 } }
}
