import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

@Suite("SQLiteSessionStore reads while the writer commits")
struct ConcurrencyTests {
    /// Small batches committed every millisecond while a reader follows the
    /// turn: every chunk must arrive exactly once, in order, whether it was
    /// read from the database, the batch in flight or the one being collected.
    @Test("a reader following a turn sees every chunk exactly once, in order")
    func followWhileWriting() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let options = SQLiteSessionStore.Options(batchMaxChunks: 16, batchMaxBytes: 1 << 20, batchInterval: .milliseconds(1))
        let store = try openStore(directory, options: options)
        try await store.createSession(makeSession("s-1"))
        store.recordTurnAccepted(StoredTurn(sessionID: "s-1", turnID: "t-1", prompt: "p", state: .queued, acceptedAtMs: 1))
        store.recordTurnStarted(sessionID: "s-1", turnID: "t-1", atMs: 2)
        let total: UInt64 = 5_000
        async let writing: Void = {
            for sequence in 1...total {
                store.recordOutput(sessionID: "s-1", turnID: "t-1", chunk: OutputChunk(sequence: sequence, data: Array("\(sequence);".utf8)))
                if sequence % 64 == 0 { await Task.yield() }
            }
        }()
        var seen: [OutputChunk] = []
        var last: UInt64 = 0
        var reads = 0
        while last < total {
            reads += 1
            if reads > 1_000_000 {
                Issue.record("the reader stopped making progress at sequence \(last)")
                break
            }
            let chunks = try await store.output(sessionID: "s-1", turnID: "t-1", afterSequence: last, limit: 100)
            for chunk in chunks {
                #expect(chunk.sequence == last + 1, "expected \(last + 1), got \(chunk.sequence)")
                last = chunk.sequence
            }
            seen += chunks
            if chunks.isEmpty { await Task.yield() }
        }
        await writing
        #expect(seen.map(\.sequence) == Array(1...total))
        #expect(seen.allSatisfy { $0.data == Array("\($0.sequence);".utf8) })
        let page = try await store.turns(sessionID: "s-1", page: TurnPage(limit: 1, includeOutput: true))
        #expect(page.entries.first?.turn.chunks == total)
        #expect(page.entries.first?.output == seen.flatMap(\.data))
        try await store.close()
    }
}
