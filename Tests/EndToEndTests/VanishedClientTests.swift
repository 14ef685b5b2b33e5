import Foundation
import Glibc
import SwitchboardProtocol
import Testing

extension EndToEnd {
    @Suite("Vanished client")
    struct VanishedClient {
        /// A `prompt --cancel-on-disconnect` process SIGKILLed mid-stream: the
        /// server notices, records the turn as CANCELLED, and the session is idle
        /// and usable again. (Without the flag the turn runs on: see
        /// DurabilityTests.)
        @Test("a --cancel-on-disconnect client killed mid-stream gets its turn cancelled; the session stays usable")
        func killedClientCancelsTurn() async throws {
            try await withServer(["--echo-delay", "100ms"]) { server in
                let create = try await server.cli(["session", "create", "--id", "victim"])
                try #require(create.status == 0, "\(create)")

                // 40 tokens at 100 ms: about 4 s if nobody cancels it.
                let prompt = try server.startCLI(["prompt", "--session", "victim", "--cancel-on-disconnect"] + (1...40).map { "v\($0)" })
                let streaming = await prompt.waitForStdout(timeout: .seconds(10)) { !$0.isEmpty }
                try #require(streaming, "no streamed output before the kill: \(prompt.stderr)")
                prompt.kill(signal: SIGKILL)
                let killed = await prompt.wait(timeout: .seconds(5))
                #expect(killed == Termination(status: SIGKILL, signaled: true))

                var lastStatus = ""
                let finished = try await eventually(timeout: .seconds(10), interval: .milliseconds(100)) {
                    let status = try await server.cli(["status", "--session", "victim", "--json"])
                    lastStatus = "\(status)"
                    guard status.status == 0, let turns = try jsonObject(status.stdout)["turns"] as? [[String: Any]],
                        let turn = turns.first
                    else { return false }
                    return jsonState(turn["state"], is: "finished")
                }
                try #require(finished, "the vanished client's turn never finished: \(lastStatus)")

                let status = try await server.cli(["status", "--session", "victim", "--json"])
                let object = try jsonObject(status.stdout)
                let turns = try #require(object["turns"] as? [[String: Any]], "\(status)")
                #expect(turns.count == 1, "\(status)")
                let turn = try #require(turns.first)
                #expect(jsonCode(turn["code"]) == .cancelled, "\(status)")
                #expect((jsonInt(turn["chunks"]) ?? 0) < 40, "the turn ran to its end: \(status)")
                let session = try #require(object["session"] as? [String: Any], "\(status)")
                #expect(jsonState(session["state"], is: "idle"), "\(status)")

                let again = try await server.cli(["prompt", "--session", "victim", "still", "here"])
                #expect(again.status == 0, "\(again)")
                #expect(words(again.stdout) == ["still", "here"], "\(again)")
            }
        }
    }
}
