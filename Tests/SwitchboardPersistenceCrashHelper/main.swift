// The crash test's child: records into a store, then dies without closing it.
//
//   switchboard-store-crash-helper DIRECTORY kill|exit|hold|fork
//
// hold: opens the store, prints "holding", and keeps the directory until its
// standard input ends; then closes the store and exits 0 (the lock tests).
//
// fork: opens the store, forks a child that only pauses, closes the store and
// opens it again while the child lives; prints "reopened" and exits 0, or prints
// the error and exits 1 (a lock the child inherited, as `flock`'s was, would
// keep the directory claimed). The child is killed and reaped either way. Here
// and not in the test process, whose fork would copy every descriptor that
// concurrent tests have open into the child.
//
// Session "s-crash": turn "t-1" finished with "abc" (flushed); turn "t-2" running
// with chunks 1...4 flushed and 5...6 recorded but not flushed; turn "t-3" accepted
// but not flushed. Then SIGKILL (kill) or _exit(0) (exit), so nothing more is
// written: the store's batch interval is an hour.
#if canImport(Glibc)
import Glibc
#endif
import Logging
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol

let arguments = CommandLine.arguments
guard arguments.count == 3, ["kill", "exit", "hold", "fork"].contains(arguments[2]) else {
    print("usage: switchboard-store-crash-helper DIRECTORY kill|exit|hold|fork")
    exit(64)
}

func say(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

let options = SQLiteSessionStore.Options(batchMaxChunks: 1_000_000, batchMaxBytes: 1 << 30, batchInterval: .seconds(3600))
let store: SQLiteSessionStore
do {
    store = try SQLiteSessionStore.open(directory: arguments[1], logger: Logger(label: "crash-helper"), options: options)
} catch {
    say("cannot open: \(error)")
    exit(1)
}
if arguments[2] == "hold" {
    say("holding")
    var byte: UInt8 = 0
    while read(0, &byte, 1) > 0 {}
    try await store.close()
    exit(0)
}
if arguments[2] == "fork" {
    let child = fork()
    if child == 0 {
        // Only async-signal-safe calls here; the alarm ends a forgotten child.
        alarm(60)
        pause()
        _exit(0)
    }
    guard child > 0 else {
        say("fork failed: errno \(errno)")
        exit(1)
    }
    var status: Int32 = 1
    do {
        try await store.close()
        let reopened = try SQLiteSessionStore.open(directory: arguments[1], logger: Logger(label: "crash-helper"), options: options)
        try await reopened.close()
        say("reopened")
        status = 0
    } catch {
        say("cannot reopen: \(error)")
    }
    kill(child, SIGKILL)
    var childStatus: Int32 = 0
    waitpid(child, &childStatus, 0)
    exit(status)
}
try await store.createSession(StoredSession(
    id: "s-crash", labels: [Label(key: "k", value: "v")], settings: SessionSettings(backend: "echo"),
    ownerUID: 1000, createdAtMs: 1_000, lastActivityMs: 1_000
))
store.recordTurnAccepted(StoredTurn(sessionID: "s-crash", turnID: "t-1", prompt: "one", state: .queued, acceptedAtMs: 1_001))
store.recordTurnStarted(sessionID: "s-crash", turnID: "t-1", atMs: 1_002)
for (sequence, text) in ["a", "b", "c"].enumerated() {
    store.recordOutput(sessionID: "s-crash", turnID: "t-1", chunk: OutputChunk(sequence: UInt64(sequence + 1), data: Array(text.utf8)))
}
store.recordTurnFinished(
    sessionID: "s-crash", turnID: "t-1",
    ending: StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: 1_003)
)
store.recordTurnAccepted(StoredTurn(sessionID: "s-crash", turnID: "t-2", prompt: "two", state: .queued, acceptedAtMs: 1_004))
store.recordTurnStarted(sessionID: "s-crash", turnID: "t-2", atMs: 1_005)
for sequence in 1...4 {
    store.recordOutput(sessionID: "s-crash", turnID: "t-2", chunk: OutputChunk(sequence: UInt64(sequence), data: Array("<\(sequence)>".utf8)))
}
try await store.flush()
for sequence in 5...6 {
    store.recordOutput(sessionID: "s-crash", turnID: "t-2", chunk: OutputChunk(sequence: UInt64(sequence), data: Array("<\(sequence)>".utf8)))
}
store.recordTurnAccepted(StoredTurn(sessionID: "s-crash", turnID: "t-3", prompt: "three", state: .queued, acceptedAtMs: 1_006))
// The unflushed chunks are visible to reads before the crash.
let seen = try await store.output(sessionID: "s-crash", turnID: "t-2", afterSequence: 0, limit: 1000)
say("seen \(seen.count)")
if arguments[2] == "kill" {
    kill(getpid(), SIGKILL)
}
_exit(0)
