import Foundation
import SwitchboardProtocol
import Testing

/// `n` words, `w1 w2 … wn` (the echo backend streams one chunk per word).
private func numberedWords(_ n: Int, prefix: String = "w") -> String {
    (1...n).map { "\(prefix)\($0)" }.joined(separator: " ")
}

/// The JSON Lines of a `--json` stream, parsed.
private func jsonLines(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { try jsonObject(String($0)) }
}

extension EndToEnd {
    @Suite("Session history and attach (CLI)")
    struct HistoryAttach {
        @Test("session history: turns oldest first, pages, --all, --output, --json; unknown session exits 15")
        func history() async throws {
            try await withServer { server in
                let created = try await server.cli(["session", "create", "--id", "hist", "--json"])
                #expect(created.status == 0, "\(created)")
                let prompts = ["first turn here", "second turn", numberedWords(12)]
                for prompt in prompts {
                    let result = try await server.cli(["prompt", "--session", "hist", prompt])
                    #expect(result.status == 0, "\(result)")
                }

                let all = try await server.cli(["session", "history", "hist", "--all", "--output", "--json"])
                #expect(all.status == 0, "\(all)")
                let document = try jsonObject(all.stdout)
                let turns = try #require(document["turns"] as? [[String: Any]], "\(all)")
                #expect(turns.count == 3, "\(all)")
                #expect(turns.map { $0["prompt"] as? String } == prompts, "\(all)")
                #expect(turns.map { $0["output_text"] as? String } == prompts, "\(all)")
                #expect(turns.allSatisfy { $0["output_dropped"] as? Bool == false }, "\(all)")
                let summaries = turns.compactMap { $0["summary"] as? [String: Any] }
                #expect(summaries.allSatisfy { jsonCode($0["code"]) == .ok && jsonState($0["state"], is: "finished") }, "\(all)")
                #expect(summaries.map { jsonInt($0["chunks"]) } == [3, 2, 12], "\(all)")
                let ids = summaries.compactMap { $0["turn_id"] as? String }
                #expect(ids.count == 3 && Set(ids).count == 3, "\(all)")
                #expect(document["next_page_token"] as? String == "", "\(all)")

                // The table: one row per turn, oldest first.
                let table = try await server.cli(["session", "history", "hist"])
                #expect(table.status == 0, "\(table)")
                let rows = table.stdout.split(separator: "\n").dropFirst()
                #expect(rows.compactMap { $0.split(separator: " ").first.map(String.init) } == ids, "\(table)")
                #expect(table.stdout.contains("first turn here"), "\(table)")

                // One page at a time: the next page's token is printed on stderr.
                let page1 = try await server.cli(["session", "history", "hist", "--page-size", "2", "--json"])
                #expect(page1.status == 0, "\(page1)")
                let first = try jsonObject(page1.stdout)
                let firstTurns = try #require(first["turns"] as? [[String: Any]], "\(page1)")
                #expect(firstTurns.compactMap { ($0["summary"] as? [String: Any])?["turn_id"] as? String } == Array(ids.prefix(2)))
                let token = try #require(first["next_page_token"] as? String, "\(page1)")
                #expect(!token.isEmpty, "\(page1)")
                let textPage = try await server.cli(["session", "history", "hist", "--page-size", "2"])
                #expect(textPage.stderr.contains("more turns: --page-token \(token)"), "\(textPage)")
                let page2 = try await server.cli(["session", "history", "hist", "--page-size", "2", "--page-token", token, "--json"])
                #expect(page2.status == 0, "\(page2)")
                let secondTurns = try #require(try jsonObject(page2.stdout)["turns"] as? [[String: Any]], "\(page2)")
                #expect(secondTurns.compactMap { ($0["summary"] as? [String: Any])?["turn_id"] as? String } == [ids[2]], "\(page2)")

                // --output as text: each turn's prompt and output.
                let detail = try await server.cli(["session", "history", "hist", "--all", "--output"])
                #expect(detail.status == 0, "\(detail)")
                #expect(detail.stdout.contains("--- output\n" + prompts[2] + "\n"), "\(detail)")

                let unknown = try await server.cli(["session", "history", "no-such-session"])
                #expect(unknown.status == 15, "\(unknown)")
                #expect(unknown.stderr.contains("NOT_FOUND"), "\(unknown)")
                let usage = try await server.cli(["session", "history", "hist", "--all", "--page-token", token])
                #expect(usage.status == 64, "\(usage)")
            }
        }

        @Test("attach follows a running turn to its end, replays a finished one after --after N; --json events")
        func attach() async throws {
            try await withServer(["--echo-delay", "20ms"]) { server in
                let created = try await server.cli(["session", "create", "--id", "live"])
                #expect(created.status == 0, "\(created)")
                let prompt = numberedWords(100)
                let prompting = try server.startCLI(["prompt", "--session", "live", prompt])
                // Attach while the turn runs (2 s): it replays what was produced and
                // follows the rest. (Were it over already, the replay alone must match.)
                let running = await prompting.waitForStdout(timeout: .seconds(10)) { !$0.isEmpty }
                #expect(running, "the turn never produced output")
                let follow = try await server.cli(["attach", "live"])
                #expect(follow.status == 0, "\(follow)")
                #expect(follow.stdout == prompt || follow.stdout == prompt + "\n", "\(follow)")
                _ = await prompting.wait(timeout: .seconds(15))
                #expect(prompting.stdout.hasPrefix(prompt), "the prompting client got everything too: \(prompting.stdout)")

                let history = try jsonObject(try await server.cli(["session", "history", "live", "--json"]).stdout)
                let turn = try #require(((history["turns"] as? [[String: Any]])?.first?["summary"] as? [String: Any])?["turn_id"] as? String)

                let replay = try await server.cli(["attach", "live", "--turn", turn, "--after", "90", "--json"])
                #expect(replay.status == 0, "\(replay)")
                let lines = try jsonLines(replay.stdout)
                let attached = try #require(lines.first?["attached"] as? [String: Any], "\(replay)")
                #expect(attached["turn_id"] as? String == turn)
                #expect(jsonState(attached["state"], is: "finished"), "\(replay)")
                #expect(jsonInt(attached["last_sequence"]) == 100, "\(replay)")
                let outputs = lines.compactMap { $0["output"] as? [String: Any] }
                #expect(outputs.compactMap { jsonInt($0["sequence"]) } == Array(91...100), "\(replay)")
                #expect(outputs.compactMap { $0["text"] as? String }.joined() == prompt.components(separatedBy: " ").suffix(10).joined(separator: " "))
                #expect(lines.dropLast().last?["finished"] != nil, "\(replay)")
                #expect(jsonCode((lines.last?["end"] as? [String: Any])?["code"]) == .ok, "\(replay)")

                let unknownTurn = try await server.cli(["attach", "live", "--turn", "t-000000000000"])
                #expect(unknownTurn.status == 15, "\(unknownTurn)")
                let unknownSession = try await server.cli(["attach", "no-such-session", "--json"])
                #expect(unknownSession.status == 15, "\(unknownSession)")
                #expect(jsonCode(((try jsonLines(unknownSession.stdout)).last?["end"] as? [String: Any])?["code"]) == .notFound, "\(unknownSession)")
            }
        }

        @Test("prompt --reattach across a server crash and restart: output once, in order, then ABORTED as the server says")
        func reattachAcrossRestart() async throws {
            try await withServer(["--echo-delay", "40ms"]) { server in
                let created = try await server.cli(["session", "create", "--id", "crash"])
                #expect(created.status == 0, "\(created)")
                let prompt = numberedWords(300)
                let prompting = try server.startCLI(["prompt", "--session", "crash", "--reattach", "--json", prompt])
                let someOutput = await prompting.waitForStdout(timeout: .seconds(15)) {
                    $0.components(separatedBy: "\"output\"").count > 6
                }
                #expect(someOutput, "no output before the crash: \(prompting.stdout)")
                server.kill()
                _ = await server.child.wait(timeout: .seconds(10))
                let restarted = try await ServerProcess.start(["--echo-delay", "40ms"], in: server.directory)
                defer { restarted.kill() }

                let ended = await prompting.wait(timeout: .seconds(20))
                #expect(ended?.status == 20, "ABORTED (10 + 10): \(ended.map { "\($0)" } ?? "still running"), stderr: \(prompting.stderr)")
                let lines = try jsonLines(prompting.stdout)
                #expect(lines.first?["accepted"] != nil, "\(prompting.stdout)")
                #expect(lines.contains { $0["attached"] != nil }, "the re-attach shows as an attached line: \(prompting.stdout)")
                #expect(lines.filter { $0["started"] != nil }.count == 1, "\(prompting.stdout)")
                let outputs = lines.compactMap { $0["output"] as? [String: Any] }
                let sequences = outputs.compactMap { jsonInt($0["sequence"]) }
                #expect(!sequences.isEmpty && sequences == Array(1...sequences.count), "every chunk once, in order: \(sequences)")
                let text = outputs.compactMap { $0["text"] as? String }.joined()
                #expect(prompt.hasPrefix(text), "the output is the turn's, up to the crash")
                let end = try #require(lines.last?["end"] as? [String: Any], "\(prompting.stdout)")
                #expect(jsonCode(end["code"]) == .aborted, "\(end)")

                // The restarted server kept the output up to the crash, except what its
                // batched store had not written yet (the last ~20 ms, PROTOCOL.md): the
                // client has all of that, and at most a few chunks more.
                let history = try await restarted.cli(["session", "history", "crash", "--output", "--json"])
                #expect(history.status == 0, "\(history)")
                let turn = try #require((try jsonObject(history.stdout)["turns"] as? [[String: Any]])?.first, "\(history)")
                let kept = try #require(turn["output_text"] as? String, "\(history)")
                #expect(!kept.isEmpty && text.hasPrefix(kept), "client: \(text.count) bytes, server kept: \(kept.count)")
                #expect(jsonCode((turn["summary"] as? [String: Any])?["code"]) == .aborted, "\(history)")
            }
        }
    }
}
