import Foundation
import Glibc
import Testing

extension EndToEnd {
    @Suite("Ctrl-C (CLI)")
    struct Interrupts {
        @Test("Ctrl-C on attach ends only the attach (exit 11); stderr says the turn keeps running and how to follow it")
        func attachInterrupted() async throws {
            try await withServer(["--echo-delay", "100ms"]) { server in
                let create = try await server.cli(["session", "create", "--id", "follow"])
                try #require(create.status == 0, "\(create)")
                // 40 tokens at 100 ms: about 4 s.
                let prompting = try server.startCLI(["prompt", "--session", "follow"] + (1...40).map { "f\($0)" })
                // Attach once the turn runs (before it, "follow" has no turn to attach to).
                let streaming = await prompting.waitForStdout(timeout: .seconds(10)) { !$0.isEmpty }
                try #require(streaming, "no output on the prompt: \(prompting.stderr)")
                let attach = try server.startCLI(["attach", "follow", "--json"])
                let following = await attach.waitForStdout(timeout: .seconds(10)) { $0.contains("\"output\"") }
                try #require(following, "no output on the attach: \(attach.stdout) \(attach.stderr)")
                let attached = try #require(
                    try jsonObject(String(attach.stdout.split(separator: "\n")[0]))["attached"] as? [String: Any],
                    "\(attach.stdout)"
                )
                let turn = try #require(attached["turn_id"] as? String)
                attach.kill(signal: SIGINT)
                let ended = await attach.wait(timeout: .seconds(10))
                #expect(ended == .exited(11), "CANCELLED: \(ended.map { "\($0)" } ?? "still running"), stderr: \(attach.stderr)")
                #expect(
                    attach.stderr.contains("turn \(turn) keeps running; `switchboard attach follow --turn \(turn)` to follow it"),
                    "\(attach.stderr)"
                )
                // It does: the prompt gets its whole answer.
                let done = await prompting.wait(timeout: .seconds(20))
                #expect(done == .exited(0), "\(prompting.stderr)")
                #expect(prompting.stdout.hasSuffix("f40"), "\(prompting.stdout.suffix(40))")
            }
        }

        @Test("Ctrl-C on a prompt cancels its turn (exit 11) and says nothing about following it")
        func promptInterrupted() async throws {
            try await withServer(["--echo-delay", "100ms"]) { server in
                let create = try await server.cli(["session", "create", "--id", "stop"])
                try #require(create.status == 0, "\(create)")
                let prompting = try server.startCLI(["prompt", "--session", "stop"] + (1...40).map { "s\($0)" })
                let streaming = await prompting.waitForStdout(timeout: .seconds(10)) { !$0.isEmpty }
                try #require(streaming, "no output: \(prompting.stderr)")
                prompting.kill(signal: SIGINT)
                let ended = await prompting.wait(timeout: .seconds(10))
                #expect(ended == .exited(11), "\(ended.map { "\($0)" } ?? "still running"), stderr: \(prompting.stderr)")
                #expect(!prompting.stderr.contains("keeps running"), "\(prompting.stderr)")
                let status = try await server.cli(["status", "--session", "stop", "--json"])
                let turns = try #require(try jsonObject(status.stdout)["turns"] as? [[String: Any]], "\(status)")
                #expect(turns.count == 1 && jsonState(turns[0]["state"], is: "finished"), "cancelled, not running: \(status)")
            }
        }
    }
}
