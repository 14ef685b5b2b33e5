import Foundation
import GRDB
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

/// Output is stored as one row per turn per batch (a segment); reads split the
/// segments again. These check the splitting at every boundary.
@Suite("SQLiteSessionStore output segments")
struct OutputSegmentTests {
    /// Batches are written only when something waits for them (flush, create,
    /// delete), so each flush below makes exactly one segment per turn.
    private let manual = SQLiteSessionStore.Options(batchMaxChunks: 1_000_000, batchMaxBytes: 1 << 30, batchInterval: .seconds(600))

    /// Lengths 0…299: empty chunks and lengths whose varint takes two bytes.
    private func chunk(_ sequence: UInt64) -> OutputChunk {
        OutputChunk(sequence: sequence, data: (0..<Int(sequence * 37 % 300)).map { UInt8(truncatingIfNeeded: Int(sequence) &+ $0) })
    }

    private func start(_ store: SQLiteSessionStore, turn: String) {
        store.recordTurnAccepted(StoredTurn(sessionID: "s-1", turnID: turn, prompt: "p", state: .queued, acceptedAtMs: 1))
        store.recordTurnStarted(sessionID: "s-1", turnID: turn, atMs: 2)
    }

    /// Every (after, limit) read of `turn` returns exactly the expected chunks.
    private func expectEveryRead(_ store: SQLiteSessionStore, turn: String, last: UInt64, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for after in 0...(last + 1) {
            for limit in [1, 2, 7, 1000] {
                let read = try await store.output(sessionID: "s-1", turnID: turn, afterSequence: after, limit: limit)
                let expected = after >= last ? [] : ((after + 1)...min(last, after + UInt64(limit))).map(chunk)
                #expect(read == expected, "after \(after), limit \(limit)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test("a turn whose output spans many segments reads back exactly once, in order, from any sequence")
    func manySegments() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        do {
            let store = try openStore(directory, options: manual)
            try await store.createSession(makeSession("s-1"))
            start(store, turn: "t-1")
            for sequence in UInt64(1)...50 {
                store.recordOutput(sessionID: "s-1", turnID: "t-1", chunk: chunk(sequence))
                if sequence % 7 == 0 { try await store.flush() }
            }
            try await store.flush()
            // 7 full segments of 7 chunks and one of 1.
            #expect(try sqliteScalars(directory.database, ["SELECT count(*) FROM output", "SELECT sum(chunks) FROM output"]) == [8, 50])
            try await expectEveryRead(store, turn: "t-1", last: 50)
            try await store.close()
        }
        // The same from a reopened store (and `load` recounts the interrupted turn from the segments).
        let store = try openStore(directory, options: manual)
        let loaded = try await store.load(interruptedMessage: "restarted")
        let turn = try #require(loaded.first?.turns.first)
        #expect(turn.chunks == 50)
        #expect(turn.bytes == (UInt64(1)...50).reduce(0) { $0 + UInt64(chunk($1).data.count) })
        try await expectEveryRead(store, turn: "t-1", last: 50)
        let page = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 1, includeOutput: true))
        #expect(page.entries.first?.output == (UInt64(1)...50).flatMap { chunk($0).data })
        try await store.close()
    }

    @Test("reads merge a committed segment with the chunks still pending, from the middle of either")
    func partlyPending() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory, options: manual)
        try await store.createSession(makeSession("s-1"))
        start(store, turn: "t-1")
        for sequence in UInt64(1)...10 { store.recordOutput(sessionID: "s-1", turnID: "t-1", chunk: chunk(sequence)) }
        try await store.flush()
        for sequence in UInt64(11)...15 { store.recordOutput(sessionID: "s-1", turnID: "t-1", chunk: chunk(sequence)) }
        // 1…10 are one committed segment, 11…15 are only in the batch.
        #expect(try sqliteScalars(directory.database, ["SELECT count(*) FROM output", "SELECT sum(chunks) FROM output"]) == [1, 10])
        try await expectEveryRead(store, turn: "t-1", last: 15)
        let running = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 1, includeOutput: true))
        #expect(running.entries.first?.output == (UInt64(1)...15).flatMap { chunk($0).data })
        #expect(running.entries.first?.turn.chunks == 15)
        store.recordTurnFinished(sessionID: "s-1", turnID: "t-1", ending: StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: 3))
        try await store.flush()
        #expect(try sqliteScalars(directory.database, ["SELECT count(*) FROM output", "SELECT sum(chunks) FROM output"]) == [2, 15])
        try await expectEveryRead(store, turn: "t-1", last: 15)
        try await store.close()
    }

    @Test("a long batch is cut into bounded segments; reads cross their boundaries")
    func boundedSegments() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory, options: manual)
        try await store.createSession(makeSession("s-1"))
        start(store, turn: "t-big")
        let payload = [UInt8](repeating: 0x61, count: 1000)
        for sequence in UInt64(1)...600 {
            store.recordOutput(sessionID: "s-1", turnID: "t-big", chunk: OutputChunk(sequence: sequence, data: payload + [UInt8(sequence % 256)]))
        }
        try await store.flush()
        // 600 kB in one batch: more than one segment (each at most 256 KiB plus one chunk).
        let counts = try sqliteScalars(directory.database, [
            "SELECT count(*) FROM output", "SELECT sum(chunks) FROM output", "SELECT max(length(data)) FROM output",
        ])
        #expect(counts[0] >= 3 && counts[1] == 600 && counts[2] <= (256 << 10) + 1001, "\(counts)")
        let firstEnd = try sqliteScalars(directory.database, ["SELECT min(last_sequence) FROM output"])[0]
        let across = try await store.output(sessionID: "s-1", turnID: "t-big", afterSequence: UInt64(firstEnd - 1), limit: 3)
        #expect(across.map(\.sequence) == [UInt64(firstEnd), UInt64(firstEnd + 1), UInt64(firstEnd + 2)])
        #expect(across.map(\.data) == (firstEnd...(firstEnd + 2)).map { payload + [UInt8($0 % 256)] })
        let all = try await store.output(sessionID: "s-1", turnID: "t-big", afterSequence: 0, limit: 10_000)
        #expect(all.map(\.sequence) == Array(1...600))
        try await store.close()
    }

    @Test("a chunk that does not come after the turn's last one is ignored, not stored twice")
    func nonIncreasingIgnored() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let store = try openStore(directory, options: manual)
        try await store.createSession(makeSession("s-1"))
        start(store, turn: "t-1")
        for sequence: UInt64 in [1, 2, 2, 1, 3] { store.recordOutput(sessionID: "s-1", turnID: "t-1", chunk: chunk(sequence)) }
        try await store.flush()
        store.recordOutput(sessionID: "s-1", turnID: "t-1", chunk: chunk(3))
        store.recordOutput(sessionID: "s-1", turnID: "t-1", chunk: chunk(4))
        #expect(try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 0, limit: 10) == [1, 2, 3, 4].map(chunk))
        try await store.flush()
        #expect(try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 0, limit: 10) == [1, 2, 3, 4].map(chunk))
        #expect(try sqliteScalars(directory.database, ["SELECT sum(chunks) FROM output"]) == [4])
        try await store.close()
    }

    @Test("a damaged segment is DATA_LOSS, never wrong chunks")
    func damagedSegment() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        do {
            let store = try openStore(directory, options: manual)
            try await store.createSession(makeSession("s-1"))
            store.recordTurn(session: "s-1", turn: "t-1", chunks: ["abc", "def"])
            try await store.close()
        }
        let queue = try DatabaseQueue(path: directory.database)
        try await queue.write { db in try db.execute(sql: "UPDATE output SET data = x'616263'") }
        try queue.close()
        let store = try openStore(directory, options: manual)
        do {
            _ = try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: 0, limit: 10)
            Issue.record("a damaged segment was read")
        } catch let error as SwitchboardError {
            #expect(error.code == .dataLoss)
        }
        try await store.close()
    }
}
