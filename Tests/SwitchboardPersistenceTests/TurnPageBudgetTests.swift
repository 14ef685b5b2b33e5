import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

/// ListTurns pages are bounded in bytes as well as turns (a page is one response
/// frame): both stores must cut them at the same turns, page through everything
/// exactly once, and send a turn too large on its own without its output.
@Suite("Turn pages bounded by bytes")
struct TurnPageBudgetTests {
    /// The stores under test: in memory, SQLite with its batches written, and
    /// SQLite with everything still pending in the writer (never due, no flush).
    enum Kind: String, CaseIterable, Sendable {
        case memory, sqlite, sqlitePending
    }

    /// The sizes scale with this unit (the rule does not depend on them): 64 KiB
    /// rather than the real 4 MiB frame keeps the test light, under TSan too.
    private static let unit = 64 << 10

    /// Runs `body` against a fresh store of `kind` holding session "s".
    private func withStore(_ kind: Kind, _ body: (any SessionStore) async throws -> Void) async throws {
        switch kind {
        case .memory:
            let store = InMemorySessionStore()
            try await store.createSession(makeSession("s"))
            try await body(store)
        case .sqlite, .sqlitePending:
            let directory = try ScratchDirectory()
            defer { directory.remove() }
            let options = kind == .sqlite
                ? SQLiteSessionStore.Options(batchInterval: .milliseconds(5))
                : SQLiteSessionStore.Options(batchMaxChunks: 1_000_000, batchMaxBytes: 1 << 40, batchInterval: .seconds(3600))
            let store = try openStore(directory, options: options)
            try await store.createSession(makeSession("s"))
            do {
                try await body(store)
            } catch {
                try? await store.close()
                throw error
            }
            try await store.close()
        }
    }

    /// Records a finished turn whose output is `output`, in chunks of 16 KiB.
    private func record(_ store: any SessionStore, _ turnID: String, prompt: String = "p", output: [UInt8], at ms: UInt64) {
        store.recordTurnAccepted(StoredTurn(sessionID: "s", turnID: turnID, prompt: prompt, state: .queued, acceptedAtMs: ms))
        store.recordTurnStarted(sessionID: "s", turnID: turnID, atMs: ms + 1)
        var sequence: UInt64 = 0
        var offset = 0
        while offset < output.count {
            let end = min(output.count, offset + 16 * 1024)
            sequence += 1
            store.recordOutput(sessionID: "s", turnID: turnID, chunk: OutputChunk(sequence: sequence, data: Array(output[offset..<end])))
            offset = end
        }
        store.recordTurnFinished(
            sessionID: "s", turnID: turnID,
            ending: StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: ms + 2)
        )
    }

    /// `count` bytes that differ from turn to turn and along the turn.
    private func bytes(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 / 1000) &* 31 &+ seed &* 7 &+ $0) }
    }

    /// Every page from the start, following the positions as page tokens do.
    private func allPages(_ store: any SessionStore, limit: Int, maxBytes: Int) async throws -> [StoredTurnPage] {
        var pages: [StoredTurnPage] = []
        var after: UInt64 = 0
        while true {
            let page = try await store.turns(
                sessionID: "s", page: TurnPage(afterPosition: after, limit: limit, includeOutput: true, maxBytes: maxBytes)
            )
            pages.append(page)
            guard page.hasMore else { return pages }
            let last = try #require(page.entries.last, "a page with more to follow is never empty")
            #expect(last.position > after)
            after = last.position
            if pages.count > 100 { throw TestFailure("paging does not end") }
        }
    }

    /// What `TurnPageBudget` charges for a whole entry of these tests.
    private func cost(_ entry: StoredTurnPage.Entry) -> Int {
        TurnPageBudget.summaryOverhead + entry.turn.turnID.utf8.count + "end_turn".utf8.count
            + entry.turn.prompt.utf8.count + entry.output.count
    }

    @Test("turns of 1.5 units page through a 4-unit budget two at a time, each exactly once, in order, every byte", arguments: Kind.allCases)
    func pagesWithinTheBudget(kind: Kind) async throws {
        try await withStore(kind) { store in
            let outputs = (1...5).map { bytes(3 * Self.unit / 2, seed: $0) }
            for (index, output) in outputs.enumerated() {
                record(store, "t\(index + 1)", output: output, at: 1_000 + UInt64(index) * 10)
            }
            let pages = try await allPages(store, limit: 100, maxBytes: 4 * Self.unit)
            #expect(pages.map(\.entries.count) == [2, 2, 1], "two turns of 1.5 units fit in 4, three do not")
            for page in pages {
                #expect(page.entries.map(cost).reduce(0, +) <= 4 * Self.unit)
                #expect(page.entries.allSatisfy { !$0.outputOmitted && !$0.promptOmitted })
            }
            let entries = pages.flatMap(\.entries)
            #expect(entries.map(\.turn.turnID) == ["t1", "t2", "t3", "t4", "t5"])
            #expect(entries.map(\.position) == entries.map(\.position).sorted())
            #expect(entries.map(\.output) == outputs, "every byte, once, in order")

            // The count bound still holds, and an unbounded page is the old answer.
            let counted = try await store.turns(sessionID: "s", page: TurnPage(limit: 1, includeOutput: true, maxBytes: 4 * Self.unit))
            #expect(counted.entries.map(\.turn.turnID) == ["t1"] && counted.hasMore)
            let unbounded = try await store.turns(sessionID: "s", page: TurnPage(limit: 100, includeOutput: true))
            #expect(unbounded.entries.map(\.output) == outputs && !unbounded.hasMore)
            // Without output the summaries are all that count: one page.
            let summaries = try await store.turns(sessionID: "s", page: TurnPage(limit: 100, includeOutput: false, maxBytes: 4 * Self.unit))
            #expect(summaries.entries.count == 5 && !summaries.hasMore)
            #expect(summaries.entries.allSatisfy { $0.output.isEmpty })
        }
    }

    @Test("a turn too large for a page on its own comes first on its page, without its output, marked; paging goes on after it", arguments: Kind.allCases)
    func oversizedTurn(kind: Kind) async throws {
        try await withStore(kind) { store in
            let big = bytes(5 * Self.unit, seed: 9)
            record(store, "small-1", output: Array("one".utf8), at: 1_000)
            record(store, "big", prompt: "the big one", output: big, at: 1_010)
            record(store, "small-2", output: Array("two".utf8), at: 1_020)
            let pages = try await allPages(store, limit: 100, maxBytes: 4 * Self.unit)
            // The page ends before the big turn; the next one starts with it (what is
            // left of its budget after the summary and prompt takes the small turn).
            #expect(pages.map { $0.entries.map(\.turn.turnID) } == [["small-1"], ["big", "small-2"]])
            try #require(pages.count == 2 && pages[1].entries.count == 2)
            let entry = pages[1].entries[0]
            #expect(entry.outputOmitted && !entry.promptOmitted)
            #expect(entry.output.isEmpty)
            #expect(entry.turn.prompt == "the big one", "the prompt fits: it is sent")
            #expect(entry.turn.bytes == UInt64(big.count) && !entry.turn.outputDropped, "the summary still counts the kept output")
            #expect(pages[0].entries[0].output == Array("one".utf8) && pages[1].entries[1].output == Array("two".utf8))
            #expect(pages.flatMap(\.entries).filter { $0.turn.turnID != "big" }.allSatisfy { !$0.outputOmitted })
            // Attach's read path still has every byte of it.
            let chunks = try await store.output(sessionID: "s", turnID: "big", afterSequence: 0, limit: 1_000)
            #expect(chunks.flatMap(\.data) == big)
        }
    }

    @Test("a prompt too large for a page on its own is left out too; its prefix still makes the preview", arguments: Kind.allCases)
    func oversizedPrompt(kind: Kind) async throws {
        try await withStore(kind) { store in
            // Two-byte characters: a prefix is cut at a character, never inside one.
            let prompt = String(repeating: "é", count: 40_000)
            record(store, "huge-prompt", prompt: prompt, output: Array("out".utf8), at: 1_000)
            let page = try await store.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: true, maxBytes: Self.unit))
            let entry = try #require(page.entries.first)
            #expect(page.entries.count == 1 && !page.hasMore)
            #expect(entry.outputOmitted && entry.promptOmitted && entry.output.isEmpty)
            #expect(entry.turn.prompt.utf8.count >= 200 && prompt.hasPrefix(entry.turn.prompt))
        }
    }

    @Test("without output, SQLite reads only a prefix of each prompt (enough for the preview)")
    func promptPrefixWithoutOutput() async throws {
        try await withStore(.sqlite) { store in
            let prompt = "α" + String(repeating: "prompt words ", count: 50_000)
            record(store, "t", prompt: prompt, output: Array("o".utf8), at: 1_000)
            try await store.flush()
            let summary = try #require(try await store.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: false)).entries.first)
            #expect(summary.turn.prompt.unicodeScalars.count == StoredTurnPage.promptPrefixScalars)
            #expect(prompt.hasPrefix(summary.turn.prompt))
            let whole = try #require(try await store.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: true)).entries.first)
            #expect(whole.turn.prompt == prompt)
        }
    }
}
