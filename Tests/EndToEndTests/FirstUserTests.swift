import Foundation
import SwitchboardProtocol
import Testing

extension EndToEnd {
    @Suite("First user")
    struct FirstUser {
        @Test("prompt on a fresh server echoes; status lists the session and its finished turn")
        func firstUserStory() async throws {
            try await withServer { server in
                // The documented `--socket` option (the other tests use $SWITCHBOARD_SOCKET).
                let prompt = try await runCLI(
                    ["prompt", "--socket", server.socketPath, "hello from a new user"],
                    socket: nil,
                    directory: server.directory
                )
                #expect(prompt.status == 0, "\(prompt)")
                #expect(
                    prompt.stdout == "hello from a new user" || prompt.stdout == "hello from a new user\n",
                    "\(prompt)"
                )
                let id = try #require(sessionID(fromStderr: prompt.stderr), "no `session: ID` line on stderr: \(prompt)")

                let status = try await server.cli(["status", "--json"])
                #expect(status.status == 0, "\(status)")
                let overview = try jsonObject(status.stdout)
                let sessions = try #require(overview["sessions"] as? [[String: Any]], "no sessions array: \(status)")
                #expect(sessions.contains { $0["id"] as? String == id }, "session \(id) missing: \(status)")

                let detail = try await server.cli(["status", "--session", id, "--json"])
                #expect(detail.status == 0, "\(detail)")
                let object = try jsonObject(detail.stdout)
                let session = try #require(object["session"] as? [String: Any], "\(detail)")
                #expect(session["id"] as? String == id)
                let turns = try #require(object["turns"] as? [[String: Any]], "\(detail)")
                #expect(turns.count == 1, "\(detail)")
                let turn = try #require(turns.first)
                #expect(jsonState(turn["state"], is: "finished"), "\(detail)")
                #expect(jsonCode(turn["code"]) == .ok, "\(detail)")
                #expect((jsonInt(turn["chunks"]) ?? 0) > 0, "\(detail)")
                #expect((jsonInt(turn["bytes"]) ?? 0) >= "hello from a new user".utf8.count, "\(detail)")
            }
        }
    }
}
