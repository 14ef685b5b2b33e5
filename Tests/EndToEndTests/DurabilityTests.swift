import Foundation
import Glibc
import SwitchboardProtocol
import Testing

/// `w1 w2 … wn` with `prefix` (the echo backend streams one chunk per word).
private func numbered(_ n: Int, _ prefix: String) -> [String] {
    (1...n).map { "\(prefix)\($0)" }
}

/// The parsed JSON Lines of a `--json` stream.
private func eventLines(_ text: String) -> [[String: Any]] {
    text.split(separator: "\n").compactMap { try? jsonObject(String($0)) }
}

/// The `output` events of a `--json` stream: (sequence, text).
private func outputs(_ text: String) -> [(sequence: Int, text: String)] {
    eventLines(text).compactMap { line in
        guard let output = line["output"] as? [String: Any], let sequence = jsonInt(output["sequence"]) else { return nil }
        return (sequence, output["text"] as? String ?? "")
    }
}

/// The turns of `session history SESSION --all --output --json`.
private func history(_ server: ServerProcess, _ session: String) async throws -> [[String: Any]] {
    let result = try await server.cli(["session", "history", session, "--all", "--output", "--json"])
    try #require(result.status == 0, "\(result)")
    return try #require(try jsonObject(result.stdout)["turns"] as? [[String: Any]], "\(result)")
}

extension EndToEnd {
    @Suite("Durable sessions")
    struct Durability {
        /// The issue's acceptance test: `kill -9` of the server in the middle of a
        /// streamed turn, then a restart on the same state directory. Every session
        /// and every finished turn is there with its full output; the interrupted
        /// turn is reported as such, with the output the store had written.
        @Test("kill -9 mid-stream, restart on the same state directory: sessions, finished turns and the interrupted turn are there")
        func killNineAndRestart() async throws {
            let first = try await ServerProcess.start(["--echo-delay", "30ms"])
            let directory = first.directory
            var restarted: ServerProcess?
            defer {
                first.kill()
                restarted?.kill()
            }
            for id in ["kept", "cut"] {
                let created = try await first.cli(["session", "create", "--id", id, "--label", "test=durable"])
                try #require(created.status == 0, "\(created)")
            }
            let keptWords = numbered(12, "k")
            let kept = try await first.cli(["prompt", "--session", "kept"] + keptWords)
            try #require(kept.status == 0, "\(kept)")
            #expect(words(kept.stdout) == keptWords)

            // 300 tokens at 30 ms: about 9 s if nothing stops it.
            let cutWords = numbered(300, "c")
            let streaming = try first.startCLI(["prompt", "--session", "cut", "--json"] + cutWords)
            let started = await streaming.waitForStdout(timeout: .seconds(15)) { outputs($0).count >= 20 }
            try #require(started, "no streamed output before the kill: \(streaming.stderr)")
            // The store writes a batch at least every 20 ms; what the client had
            // seen a second before the kill is on disk by then.
            let seenBeforeWait = outputs(streaming.stdout).count
            try await Task.sleep(for: .seconds(1))
            let seenAtKill = outputs(streaming.stdout).count
            try #require(seenAtKill < cutWords.count, "the turn ended before the kill")
            first.kill()
            _ = await first.child.wait(timeout: .seconds(10))
            _ = await streaming.wait(timeout: .seconds(10))

            let server = try await ServerProcess.start(["--echo-delay", "30ms"], in: directory)
            restarted = server
            let list = try await server.cli(["session", "list", "--json"])
            try #require(list.status == 0, "\(list)")
            let sessions = try #require(try jsonObject(list.stdout)["sessions"] as? [[String: Any]], "\(list)")
            #expect(Set(sessions.compactMap { $0["id"] as? String }) == ["kept", "cut"], "\(list)")

            // The finished turn: all of it.
            let keptTurns = try await history(server, "kept")
            #expect(keptTurns.count == 1)
            let keptSummary = try #require(keptTurns.first?["summary"] as? [String: Any])
            #expect(jsonCode(keptSummary["code"]) == .ok, "\(keptTurns)")
            #expect(keptTurns.first?["output_text"] as? String == keptWords.joined(separator: " "), "\(keptTurns)")
            #expect(keptTurns.first?["prompt"] as? String == keptWords.joined(separator: " "), "\(keptTurns)")

            // The interrupted turn: finished, ABORTED, "interrupted", its output a
            // non-empty prefix of the answer with at least what was flushed.
            let cutTurns = try await history(server, "cut")
            #expect(cutTurns.count == 1)
            let cut = try #require(cutTurns.first)
            let summary = try #require(cut["summary"] as? [String: Any])
            #expect(jsonState(summary["state"], is: "finished"), "\(summary)")
            #expect(jsonCode(summary["code"]) == .aborted, "\(summary)")
            #expect(summary["stop_reason"] as? String == "interrupted", "\(summary)")
            #expect((summary["message"] as? String)?.contains("interrupted") == true, "\(summary)")
            let partial = try #require(cut["output_text"] as? String)
            let full = cutWords.joined(separator: " ")
            #expect(!partial.isEmpty)
            #expect(full.hasPrefix(partial), "not a prefix of the answer: \(partial.suffix(80))")
            let storedChunks = jsonInt(summary["chunks"]) ?? 0
            #expect(storedChunks >= seenBeforeWait, "stored \(storedChunks) chunks, the client had \(seenBeforeWait) a second before the kill")
            #expect(storedChunks < cutWords.count)
            #expect(words(partial).count == storedChunks)

            // Attach replays it and reports the interruption as the call's status.
            let attach = try await server.cli(["attach", "cut", "--json"])
            #expect(attach.status == 10 + Int32(StatusCode.aborted.rawValue), "\(attach)")
            #expect(outputs(attach.stdout).map(\.sequence) == Array(1...max(1, storedChunks)), "\(attach)")
            #expect(outputs(attach.stdout).map(\.text).joined() == partial)

            // Both sessions take prompts again.
            let again = try await server.cli(["prompt", "--session", "cut", "after", "restart"])
            #expect(again.status == 0 && words(again.stdout) == ["after", "restart"], "\(again)")
            let status = try await server.cli(["status", "--session", "kept", "--json"])
            let keptSession = try #require(try jsonObject(status.stdout)["session"] as? [String: Any], "\(status)")
            #expect(jsonInt(keptSession["turns_completed"]) == 1, "\(status)")
        }

        /// The default: a client that vanishes leaves its turn running; it ends
        /// OK and all of its output can be read afterwards.
        @Test("a client killed mid-stream: its turn runs to its end; history and attach give all of it")
        func detachedTurnCompletes() async throws {
            try await withServer(["--echo-delay", "20ms"]) { server in
                let created = try await server.cli(["session", "create", "--id", "detached"])
                try #require(created.status == 0, "\(created)")
                let prompt = numbered(60, "d")
                let client = try server.startCLI(["prompt", "--session", "detached"] + prompt)
                let streaming = await client.waitForStdout(timeout: .seconds(10)) { !$0.isEmpty }
                try #require(streaming, "no streamed output before the kill: \(client.stderr)")
                client.kill(signal: SIGKILL)
                _ = await client.wait(timeout: .seconds(5))

                var turns: [[String: Any]] = []
                let finished = try await eventually(timeout: .seconds(20), interval: .milliseconds(100)) {
                    turns = try await history(server, "detached")
                    return turns.count == 1 && jsonState((turns[0]["summary"] as? [String: Any])?["state"], is: "finished")
                }
                try #require(finished, "the detached turn never finished: \(turns)")
                let summary = try #require(turns[0]["summary"] as? [String: Any])
                #expect(jsonCode(summary["code"]) == .ok, "\(summary)")
                #expect(jsonInt(summary["chunks"]) == 60, "\(summary)")
                #expect(turns[0]["output_text"] as? String == prompt.joined(separator: " "))

                let attach = try await server.cli(["attach", "detached", "--json"])
                #expect(attach.status == 0, "\(attach)")
                #expect(outputs(attach.stdout).map(\.sequence) == Array(1...60))
                #expect(outputs(attach.stdout).map(\.text).joined() == prompt.joined(separator: " "))
            }
        }

        /// A second client attaches to a running turn after chunk N and gets
        /// exactly N+1… to the end, the same chunks the prompting client gets.
        @Test("attach from a second client after N chunks gets exactly N+1 to the end")
        func secondClientAttach() async throws {
            try await withServer(["--echo-delay", "30ms"]) { server in
                let created = try await server.cli(["session", "create", "--id", "watched"])
                try #require(created.status == 0, "\(created)")
                let prompt = numbered(80, "a")
                let owner = try server.startCLI(["prompt", "--session", "watched", "--json"] + prompt)
                let started = await owner.waitForStdout(timeout: .seconds(15)) { outputs($0).count >= 10 }
                try #require(started, "no output: \(owner.stderr)")
                let watcher = try await server.cli(["attach", "watched", "--after", "10", "--json"], timeout: .seconds(30))
                let mine = await owner.finish(timeout: .seconds(30))
                #expect(mine.status == 0, "\(mine)")
                #expect(watcher.status == 0, "\(watcher)")
                let lines = eventLines(watcher.stdout)
                let attached = try #require(lines.first?["attached"] as? [String: Any], "\(watcher)")
                #expect(jsonState(attached["state"], is: "running"), "\(watcher)")
                let followed = outputs(watcher.stdout)
                #expect(followed.map(\.sequence) == Array(11...80), "\(watcher)")
                let all = outputs(mine.stdout)
                #expect(all.map(\.sequence) == Array(1...80))
                #expect(followed.map(\.text) == all.dropFirst(10).map(\.text))
            }
        }

        /// With a state directory, exit on idle may leave idle sessions behind:
        /// the server exits 0 and the next start has them.
        @Test("exit on idle with a state directory leaves sessions on disk for the next start")
        func exitOnIdleKeepsSessions() async throws {
            // The idle window outlasts a CLI's start on a loaded machine, and a
            // connection held open until the session exists keeps the server from
            // leaving before the separately spawned CLI has connected.
            let first = try await ServerProcess.start(["--exit-idle-after", "\(TestTimeScale.ms(2000))ms"])
            defer { first.kill() }
            let socketPath = first.socketPath
            let holder = try await offPool {
                let connection = try RawConnection(path: socketPath)
                _ = try connection.handshake()
                return connection
            }
            let created = try await first.cli(["session", "create", "--id", "sleeper"])
            try #require(created.status == 0, "\(created)")
            // Now the last connection closes and the idle clock runs.
            shutdown(holder.fd, Int32(SHUT_RDWR))
            let exit = await first.child.wait(timeout: .seconds(20) + TestTimeScale.seconds(2))
            #expect(exit == Termination(status: 0, signaled: false), "\(exit?.description ?? "did not exit on idle")\n\(first.log)")
            let second = try await ServerProcess.start(["--state-dir", first.stateDirectory], in: first.directory)
            defer { second.kill() }
            let get = try await second.cli(["session", "get", "sleeper", "--json"])
            #expect(get.status == 0, "\(get)")
        }
    }
}
