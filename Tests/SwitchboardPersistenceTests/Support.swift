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

/// Runs read-only queries with GRDB directly (no store), one integer each.
func sqliteScalars(_ path: String, _ queries: [String]) throws -> [Int] {
    var configuration = Configuration()
    configuration.readonly = true
    let queue = try DatabaseQueue(path: path, configuration: configuration)
    defer { try? queue.close() }
    return try queue.read { db in try queries.map { try Int.fetchOne(db, sql: $0) ?? -1 } }
}
