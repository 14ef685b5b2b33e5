// The session store's benchmark (issue #8): reload time and output throughput.
//
//   store-bench [--sessions N] [--turns N] [--chunks N] [--chunk-bytes N]
//               [--throughput-chunks N] [--dir PATH] [--keep] [--skip-throughput]
//
// 1. Fills a fresh state directory with N sessions × T turns × C chunks (through
//    the store itself), closes it, then measures `open` and `load` of it in the
//    same process (file pages are in the OS cache, as after a restart).
// 2. Records `--throughput-chunks` output chunks through `recordOutput` + `flush`
//    into the SQLite store and into a do-nothing store, in the same process, and
//    prints chunks/s of each and their ratio.
//
// Sessions and turns are stored as a server would store them (effective retention
// settings, timestamps of now), so that `switchboard serve --state-dir PATH/reload`
// can reload the directory left by `--keep` (run.sh --persistence does that).
// Each reload run also prints one JSON line ({"bench":"store_reload",...}).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol

var sessions = 10_000, turns = 10, chunks = 4, chunkBytes = 64, throughputChunks = 500_000
var directory = ""
var keep = false, skipThroughput = false
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--keep": keep = true; continue
    case "--skip-throughput": skipThroughput = true; continue
    default: break
    }
    guard let value = arguments.next() else { fatalError("\(argument) needs a value") }
    switch argument {
    case "--sessions": sessions = Int(value)!
    case "--turns": turns = Int(value)!
    case "--chunks": chunks = Int(value)!
    case "--chunk-bytes": chunkBytes = Int(value)!
    case "--throughput-chunks": throughputChunks = Int(value)!
    case "--dir": directory = value
    default: fatalError("unknown option \(argument)")
    }
}
if directory.isEmpty {
    var template = Array("/tmp/sbstorebench-XXXXXX".utf8CString)
    directory = String(cString: mkdtemp(&template)!)
}
var logger = Logger(label: "store-bench")
logger.logLevel = .warning
let clock = ContinuousClock()
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// A store that keeps nothing: the baseline for the record path's own cost.
final class NullStore: SessionStore {
    var location: String { "" }
    func load(interruptedMessage: String) async throws -> [StoredSession] { [] }
    func createSession(_ session: StoredSession) async throws {}
    func deleteSession(id: String) async throws {}
    func recordActivity(sessionID: String, atMs: UInt64) {}
    func recordTurnAccepted(_ turn: StoredTurn) {}
    func recordTurnStarted(sessionID: String, turnID: String, atMs: UInt64) {}
    func recordOutput(sessionID: String, turnID: String, chunk: OutputChunk) {}
    func recordTurnFinished(sessionID: String, turnID: String, ending: StoredTurnEnding) {}
    func output(sessionID: String, turnID: String, afterSequence: UInt64, limit: Int) async throws -> [OutputChunk] { [] }
    func turns(sessionID: String, page: TurnPage) async throws -> StoredTurnPage { StoredTurnPage(entries: [], hasMore: false) }
    func flush() async throws {}
    func close() async throws {}
}

let payload = [UInt8](repeating: UInt8(ascii: "x"), count: chunkBytes)
let nowMs = UInt64(Date().timeIntervalSince1970 * 1000)
/// What the registry stores for a session created with no settings of its own
/// (its effective values: CoreConfiguration's defaults), so reload applies retention.
let defaults = CoreConfiguration()
var storedSettings = SessionSettings(backend: "echo")
storedSettings.retainTurns = defaults.retainTurns
storedSettings.retainOutputBytes = defaults.retainOutputBytes
storedSettings.retainAgeMs = UInt64(defaults.retainAge.components.seconds) * 1000
let fillDirectory = directory + "/reload"
print("store-bench: \(sessions) sessions × \(turns) turns × \(chunks) chunks of \(chunkBytes) B in \(fillDirectory)")

// ---------------------------------------------------------------- fill
do {
    let started = clock.now
    let store = try SQLiteSessionStore.open(directory: fillDirectory, logger: logger)
    // Sessions are durable one by one (an fsync each): create them concurrently in
    // groups so the writer commits many per transaction, as a busy server would.
    for group in stride(from: 0, to: sessions, by: 500) {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for index in group..<min(group + 500, sessions) {
                tasks.addTask {
                    try await store.createSession(StoredSession(
                        id: "s-\(index)", labels: [Label(key: "bench", value: "\(index % 7)")],
                        settings: storedSettings, ownerUID: getuid(),
                        createdAtMs: nowMs + UInt64(index), lastActivityMs: nowMs
                    ))
                }
            }
            try await tasks.waitForAll()
        }
    }
    for index in 0..<sessions {
        for turn in 0..<turns {
            let sessionID = "s-\(index)", turnID = "t-\(index)-\(turn)"
            store.recordTurnAccepted(StoredTurn(sessionID: sessionID, turnID: turnID, prompt: "prompt \(turn)", state: .queued, acceptedAtMs: nowMs))
            store.recordTurnStarted(sessionID: sessionID, turnID: turnID, atMs: nowMs)
            for sequence in 1...max(1, chunks) where chunks > 0 {
                store.recordOutput(sessionID: sessionID, turnID: turnID, chunk: OutputChunk(sequence: UInt64(sequence), data: payload))
            }
            store.recordTurnFinished(sessionID: sessionID, turnID: turnID, ending: StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: nowMs))
        }
    }
    try await store.close()
    let size = (try? FileManager.default.attributesOfItem(atPath: store.location)[.size] as? Int) ?? 0
    print(String(format: "fill: %.2f s, database %.1f MiB", seconds(clock.now - started), Double(size) / 1_048_576))
}

// ---------------------------------------------------------------- reload
for run in 1...3 {
    let opened = clock.now
    let store = try SQLiteSessionStore.open(directory: fillDirectory, logger: logger)
    let openTime = clock.now - opened
    let loading = clock.now
    let loaded = try await store.load(interruptedMessage: "restarted")
    let loadTime = clock.now - loading
    let turnCount = loaded.reduce(0) { $0 + $1.turns.count }
    try await store.close()
    print(String(format: "reload run %d: open %.3f s (quick_check included), load %.3f s, total %.3f s (%d sessions, %d turns)",
                 run, seconds(openTime), seconds(loadTime), seconds(openTime + loadTime), loaded.count, turnCount))
    print(String(format: #"{"bench":"store_reload","open_s":%.4f,"load_s":%.4f,"total_s":%.4f,"sessions":%d,"turns":%d}"#,
                 seconds(openTime), seconds(loadTime), seconds(openTime + loadTime), loaded.count, turnCount))
}
do {
    var options = SQLiteSessionStore.Options()
    options.verifyOnOpen = false
    let opened = clock.now
    let store = try SQLiteSessionStore.open(directory: fillDirectory, logger: logger, options: options)
    let openTime = clock.now - opened
    let loading = clock.now
    _ = try await store.load(interruptedMessage: "restarted")
    let loadTime = clock.now - loading
    try await store.close()
    print(String(format: "reload without quick_check: open %.3f s, load %.3f s", seconds(openTime), seconds(loadTime)))
}

// ---------------------------------------------------------------- throughput
if skipThroughput {
    if !keep { try? FileManager.default.removeItem(atPath: directory) }
    exit(0)
}
func throughput(_ store: any SessionStore, label: String, chunkCount: Int, payload: [UInt8]) async throws -> Double {
    try await store.createSession(StoredSession(
        id: "s-throughput", labels: [], settings: SessionSettings(), ownerUID: 0, createdAtMs: 1, lastActivityMs: 1
    ))
    let turnLength = 10_000
    let started = clock.now
    var recorded = 0
    var turn = 0
    while recorded < chunkCount {
        let turnID = "t-throughput-\(turn)"
        store.recordTurnAccepted(StoredTurn(sessionID: "s-throughput", turnID: turnID, prompt: "p", state: .queued, acceptedAtMs: 1))
        store.recordTurnStarted(sessionID: "s-throughput", turnID: turnID, atMs: 1)
        for sequence in 1...turnLength {
            store.recordOutput(sessionID: "s-throughput", turnID: turnID, chunk: OutputChunk(sequence: UInt64(sequence), data: payload))
        }
        store.recordTurnFinished(sessionID: "s-throughput", turnID: turnID, ending: StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: 2))
        recorded += turnLength
        turn += 1
    }
    let recordTime = clock.now - started
    try await store.flush()
    let total = clock.now - started
    let rate = Double(recorded) / seconds(total)
    print(String(format: "%@: %d chunks of %d B: record %.3f s, record+flush %.3f s, %.0f chunks/s",
                 label, recorded, payload.count, seconds(recordTime), seconds(total), rate))
    return rate
}
let sqlite = try SQLiteSessionStore.open(directory: directory + "/throughput", logger: logger)
let sqliteRate = try await throughput(sqlite, label: "sqlite store", chunkCount: throughputChunks, payload: payload)
try await sqlite.close()
let nullRate = try await throughput(NullStore(), label: "do-nothing store", chunkCount: throughputChunks, payload: payload)
print(String(format: "ratio sqlite/do-nothing: %.4f", sqliteRate / nullRate))
if keep {
    try? FileManager.default.removeItem(atPath: directory + "/throughput")
} else {
    try? FileManager.default.removeItem(atPath: directory)
}
