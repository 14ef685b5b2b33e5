import Foundation
import SwitchboardClient
import SwitchboardProtocol
import Testing

/// ListTurns with output through a real socket: a page is one response frame, so
/// the server bounds pages by the client's `Hello.max_frame_size`, not only by
/// turn count (a session keeps up to 16 MiB of output by default).
@Suite("Turn history pages bounded by the client's frame size", .timeLimit(.minutes(TestTimeScale.hangGuardMinutes)))
struct HistoryPagingTests {
    private static let mib = 1 << 20

    /// About `bytes` of prompt in words of 16 KiB (the echo backend streams one
    /// chunk per word, so its output is the prompt in 16 KiB chunks).
    private func bigPrompt(bytes: Int, tag: String) -> String {
        let word = tag + String(repeating: "x", count: 16 * 1024 - tag.utf8.count - 1) + " "
        return String(repeating: word, count: max(1, bytes / word.utf8.count))
    }

    private func runTurn(_ client: SwitchboardClient, _ sessionID: String, _ prompt: String) async throws -> String {
        let events = try await client.prompt(sessionID: sessionID, prompt).collect()
        guard case .accepted(let accepted)? = events.first, case .finished? = events.last else {
            throw TimedOut(what: "the turn did not run to its end: \(events.prefix(1)) … \(events.suffix(1))")
        }
        #expect(events.outputText == prompt)
        return accepted.turnID
    }

    @Test("more than 4 MiB of kept output is listed with include_output across pages, every byte once, in order")
    func everyByteAcrossPages() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let prompts = (1...5).map { bigPrompt(bytes: 900 * 1024, tag: "turn\($0)-") }
                #expect(prompts.map(\.utf8.count).reduce(0, +) > 4 * Self.mib, "more kept output than one 4 MiB frame")
                var ids: [String] = []
                for prompt in prompts { ids.append(try await runTurn(client, session.id, prompt)) }

                // Page by page (the default page size, 20, would hold every turn).
                var pages: [ListTurnsResponse] = []
                var token = ""
                repeat {
                    let page = try await client.listTurns(ListTurnsRequest(sessionID: session.id, pageToken: token, includeOutput: true))
                    #expect(!page.turns.isEmpty)
                    pages.append(page)
                    token = page.nextPageToken
                } while !token.isEmpty && pages.count < 20
                #expect(pages.count > 1, "one page would exceed the client's frame size")
                #expect(pages.map(\.turns.count) == [2, 2, 1], "two turns of 1.8 MiB (prompt + output) per 4 MiB page")
                let turns = pages.flatMap(\.turns)
                #expect(turns.map(\.summary.turnID) == ids, "each turn once, oldest first")
                #expect(turns.map(\.prompt) == prompts)
                #expect(turns.map { String(decoding: $0.output, as: UTF8.self) } == prompts, "every byte of output")
                #expect(turns.allSatisfy { !$0.outputOmitted && !$0.outputDropped })

                // The client's history walker gets the same.
                let walked = try await client.turnHistory(sessionID: session.id, includeOutput: true).collect()
                #expect(walked == turns)

                // A client with smaller frames gets smaller pages: each of these turns
                // is now too large on its own and comes alone, without its output.
                let small = try await server.client { $0.maxFrameSize = UInt32(Self.mib) }
                let smallPage = try await small.listTurns(ListTurnsRequest(sessionID: session.id, includeOutput: true))
                await small.close()
                #expect(smallPage.turns.map(\.summary.turnID) == [ids[0]])
                #expect(smallPage.turns.first?.outputOmitted == true && smallPage.turns.first?.output.isEmpty == true)
                #expect(smallPage.turns.first?.prompt == prompts[0], "the prompt alone fits")
                #expect(!smallPage.nextPageToken.isEmpty)
            }
        }
    }

    @Test("a turn too large for one page comes first on its page without its output, marked output_omitted; Attach streams it")
    func oversizedTurn() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let before = try await runTurn(client, session.id, "small before")
                let bigPrompt = bigPrompt(bytes: 2 * Self.mib + 200 * 1024, tag: "big-")
                let big = try await runTurn(client, session.id, bigPrompt)
                let after = try await runTurn(client, session.id, "small after")

                let turns = try await client.turnHistory(sessionID: session.id, includeOutput: true).collect()
                #expect(turns.map(\.summary.turnID) == [before, big, after])
                let first = try await client.listTurns(ListTurnsRequest(sessionID: session.id, includeOutput: true))
                #expect(first.turns.map(\.summary.turnID) == [before], "the page ends before the turn that does not fit")
                let second = try await client.listTurns(
                    ListTurnsRequest(sessionID: session.id, pageToken: first.nextPageToken, includeOutput: true)
                )
                let record = try #require(second.turns.first)
                #expect(second.turns.map(\.summary.turnID) == [big, after], "the rest of the budget takes the next turn")
                #expect(record.outputOmitted && record.output.isEmpty && !record.outputDropped)
                #expect(record.prompt == bigPrompt)
                #expect(record.summary.bytes == UInt64(bigPrompt.utf8.count), "the summary still counts its output")
                #expect(turns.filter { $0.summary.turnID != big }.map { String(decoding: $0.output, as: UTF8.self) } == ["small before", "small after"])

                let attached = try await client.attach(sessionID: session.id, turnID: big).collect()
                #expect(attached.outputText == bigPrompt, "Attach streams the omitted output in chunks")
            }
        }
    }
}
