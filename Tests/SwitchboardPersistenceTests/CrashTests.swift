import Foundation
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

@Suite("SQLiteSessionStore after a crash")
struct CrashTests {
    /// A real child process records into the store and dies (SIGKILL, or
    /// `_exit` without closing): what it flushed is there, the unflushed batch
    /// is lost, and the turn it was running comes back ABORTED with its output.
    @Test("a killed process loses at most the last batch; its running turn is ABORTED", arguments: ["kill", "exit"])
    func crashLosesAtMostTheLastBatch(mode: String) async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try crashHelperPath())
        process.arguments = [directory.state, mode]
        let output = closeOnExecPipe()
        process.standardOutput = output
        try process.run()
        // Read and reap on a thread of its own: blocking a cooperative thread would
        // stall every other test of this parallel run (there are only two here).
        let printed: String = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
        if mode == "kill" {
            #expect(process.terminationReason == .uncaughtSignal)
            #expect(process.terminationStatus == SIGKILL)
        } else {
            #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        }
        // Before dying, the child saw its unflushed chunks through `output`.
        #expect(printed.contains("seen 6"))

        // The directory lock died with the process: the next open succeeds.
        let store = try openStore(directory)
        let loaded = try await store.load(interruptedMessage: "the server restarted")
        let session = try #require(loaded.first)
        #expect(loaded.count == 1)
        #expect(session.id == "s-crash" && session.labels == [Label(key: "k", value: "v")] && session.ownerUID == 1000)
        // t-3 was only in the lost batch.
        #expect(session.turns.map(\.turnID) == ["t-1", "t-2"])
        // t-1 ended after starting; t-2 was running, so its interruption ends it too.
        #expect(session.turnsCompleted == 2)
        let finished = session.turns[0]
        #expect(finished.ending == StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: 1_003))
        #expect(finished.chunks == 3 && finished.bytes == 3)
        let interrupted = session.turns[1]
        #expect(interrupted.state == .finished)
        #expect(interrupted.ending?.code == .aborted)
        #expect(interrupted.ending?.message == "the server restarted")
        #expect(interrupted.ending?.stopReason == "interrupted")
        #expect((interrupted.ending?.endedAtMs ?? 0) > 1_700_000_000_000)
        // Counts match the output actually stored (chunks 5 and 6 were lost).
        #expect(interrupted.chunks == 4 && interrupted.bytes == 12)
        let chunks = try await store.output(sessionID: "s-crash", turnID: "t-2", afterSequence: 0, limit: 1000)
        #expect(chunks == (1...4).map { OutputChunk(sequence: UInt64($0), data: Array("<\($0)>".utf8)) })
        try await store.close()

        // Loading again changes nothing more (the turn is finished now).
        let again = try openStore(directory)
        let reloaded = try await again.load(interruptedMessage: "another message")
        #expect(reloaded == loaded)
        try await again.close()
    }
}
