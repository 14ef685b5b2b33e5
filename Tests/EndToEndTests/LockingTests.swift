import Foundation
import SwitchboardClient
import SwitchboardProtocol
import Testing

extension EndToEnd {
    @Suite("Per-session locking")
    struct Locking {
        /// While one session runs a multi-second turn, status, session
        /// create/get/list and a whole prompt on another session all finish
        /// before it: nothing waits on another session's turn.
        @Test("status, sessions and other prompts complete while a long turn runs")
        func othersCompleteDuringALongTurn() async throws {
            try await withServer(["--echo-delay", "\(TestTimeScale.ms(100))ms"]) { server in
                let create = try await server.cli(["session", "create", "--id", "alpha"])
                try #require(create.status == 0, "\(create)")

                // 50 tokens at 100 ms: the turn takes about 5 s (times the time scale).
                let longWords = (1...50).map { "a\($0)" }
                let long = try server.startCLI(["prompt", "--session", "alpha"] + longWords)
                let running = try await eventually(timeout: TestTimeScale.seconds(10)) {
                    let get = try await server.cli(["session", "get", "alpha", "--json"])
                    return try get.status == 0 && jsonState(try jsonObject(get.stdout)["state"], is: "busy")
                }
                try #require(running, "session alpha never became busy")
                try #require(long.isRunning, "the long prompt ended early: \(long.stdout) \(long.stderr)")

                // The read-only calls and the create run at once, then a whole prompt on beta.
                let commands: [[String]] = [
                    ["status"],
                    ["status", "--json"],
                    ["status", "--session", "alpha", "--json"],
                    ["session", "create", "--id", "beta"],
                    ["session", "get", "alpha", "--json"],
                    ["session", "list", "--json"],
                    ["health"],
                ]
                var others = try await withThrowingTaskGroup(of: CLIResult.self) { group in
                    for command in commands {
                        group.addTask { try await server.cli(command) }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let promptB = try await server.cli(["prompt", "--session", "beta", "b1", "b2", "b3"])
                others.append(promptB)
                let getAlpha = try #require(others.first { $0.arguments == ["session", "get", "alpha", "--json"] })
                let list = try #require(others.first { $0.arguments == ["session", "list", "--json"] })

                let longResult = await long.finish(timeout: TestTimeScale.seconds(30))
                #expect(longResult.status == 0, "\(longResult)")
                #expect(words(longResult.stdout) == longWords, "\(longResult)")

                for other in others {
                    #expect(other.status == 0, "\(other)")
                    #expect(
                        other.ended < longResult.ended,
                        "`\(other.arguments.joined(separator: " "))` finished after session alpha's turn: it waited on it"
                    )
                }
                #expect(jsonState(try jsonObject(getAlpha.stdout)["state"], is: "busy"), "\(getAlpha)")
                let listed = (try jsonObject(list.stdout)["sessions"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                #expect(listed.contains("alpha"), "\(list)")
                #expect(words(promptB.stdout) == ["b1", "b2", "b3"], "\(promptB)")
            }
        }

        /// Ten clients on ten connections prompt one exec session at once: the
        /// command never runs twice at a time and the turns run in the order of
        /// the queue positions the server handed out.
        @Test("one session runs concurrent prompts one at a time, in FIFO order")
        func concurrentPromptsAreSerializedInOrder() async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let log = directory.path + "/turns.log"
            let command = "p=$(cat); echo \"start $p\" >> \(log); sleep 0.2; echo \"end $p\" >> \(log); echo \"done $p\""
            try await withServer(["--exec-command", command, "--max-queued-prompts", "16"]) { server in
                let socket = server.socketPath
                let session = try await withTimeout(.seconds(10), "create exec session", onTimeout: server.kill) {
                    try await withSwitchboardClient(socketPath: socket) { client in
                        try await client.createSession(
                            CreateSessionRequest(sessionID: "serial", settings: SessionSettings(backend: "exec"))
                        )
                    }
                }
                #expect(session.id == "serial")

                struct Outcome: Sendable {
                    var prompt: String
                    var position: UInt32?
                    var output: String
                    var sequences: [UInt64]
                    var finished: Bool
                }
                let count = 10
                let barrier = Barrier(count: count)
                let outcomes = try await withTimeout(.seconds(30), "ten concurrent prompts", onTimeout: server.kill) {
                    try await withThrowingTaskGroup(of: Outcome.self) { group in
                        for index in 0..<count {
                            group.addTask {
                                try await withSwitchboardClient(socketPath: socket) { client in
                                    _ = try await client.health()  // the connection is up
                                    await barrier.wait()
                                    var outcome = Outcome(prompt: "p\(index)", position: nil, output: "", sequences: [], finished: false)
                                    for try await event in client.prompt(sessionID: "serial", "p\(index)") {
                                        switch event {
                                        case .accepted(let accepted): outcome.position = accepted.queuePosition
                                        case .started, .attached: break
                                        case .output(let chunk):
                                            outcome.sequences.append(chunk.sequence)
                                            outcome.output += String(decoding: chunk.data, as: UTF8.self)
                                        case .finished: outcome.finished = true
                                        }
                                    }
                                    return outcome
                                }
                            }
                        }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                }

                #expect(outcomes.count == count)
                for outcome in outcomes {
                    #expect(outcome.finished, "\(outcome.prompt): no finished event")
                    #expect(outcome.output == "done \(outcome.prompt)\n", "\(outcome.prompt): \(outcome.output)")
                    #expect(
                        !outcome.sequences.isEmpty && outcome.sequences == (1...UInt64(outcome.sequences.count)).map { $0 },
                        "\(outcome.prompt): chunk sequences \(outcome.sequences)"
                    )
                }
                let positions = outcomes.compactMap(\.position).sorted()
                #expect(positions == (0..<UInt32(count)).map { $0 }, "queue positions: \(positions)")

                let lines = (try String(contentsOfFile: log, encoding: .utf8)).split(separator: "\n").map(String.init)
                #expect(lines.count == 2 * count, "\(lines)")
                var starts: [String] = []
                for pair in stride(from: 0, to: lines.count - 1, by: 2) {
                    let start = lines[pair], end = lines[pair + 1]
                    #expect(start.hasPrefix("start "), "two turns overlapped: \(lines)")
                    #expect(end == "end " + start.dropFirst("start ".count), "two turns overlapped: \(lines)")
                    starts.append(String(start.dropFirst("start ".count)))
                }
                let byPosition = outcomes.sorted { ($0.position ?? .max) < ($1.position ?? .max) }.map(\.prompt)
                #expect(starts == byPosition, "run order \(starts) differs from queue positions \(byPosition)")
            }
        }
    }
}
