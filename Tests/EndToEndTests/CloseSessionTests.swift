import Foundation
import Glibc
import Testing

extension EndToEnd {
    @Suite("Closing a session")
    struct CloseSession {
        /// Closing a session whose exec turn ignores SIGTERM cancels the prompt
        /// at once (CANCELLED, CLI exit 11) and the command's whole process group
        /// is killed after the grace period and reaped.
        @Test("close cancels a SIGTERM-ignoring exec turn and kills its process group")
        func closeKillsTrappingCommand() async throws {
            // A unique sleep duration marks this test's processes in /proc.
            let sleepArgument = "60.\(Int.random(in: 100_000...999_999))"
            let command = "trap \"\" TERM; echo \"started $$\"; sleep \(sleepArgument)"
            try await withServer(["--exec-command", command, "--kill-grace", "1s"]) { server in
                let create = try await server.cli(["session", "create", "--id", "trap", "--backend", "exec"])
                try #require(create.status == 0, "\(create)")

                let prompt = try server.startCLI(["prompt", "--session", "trap", "go"])
                let streamed = await prompt.waitForStdout(timeout: .seconds(10)) { $0.contains("started ") && $0.hasSuffix("\n") }
                try #require(streamed, "no streamed output from the exec turn: \(prompt.stdout) \(prompt.stderr)")
                let shellPID = try #require(
                    prompt.stdout.split(separator: "\n").first.flatMap { Int32($0.dropFirst("started ".count)) },
                    "cannot read the command's pid from \(prompt.stdout)"
                )
                let sleeping = await eventually(timeout: .seconds(5)) {
                    allProcesses().contains { $0.commandLine == "sleep \(sleepArgument)" && $0.state != "Z" }
                }
                try #require(sleeping, "the command's sleep never showed up in /proc")

                let close = try await server.cli(["session", "close", "trap", "--reason", "e2e close"])
                #expect(close.status == 0, "\(close)")

                // Cancelled well before the 60 s sleep would end.
                let result = await prompt.finish(timeout: .seconds(10))
                #expect(!result.timedOut, "the prompt did not end after the close: \(result)")
                #expect(result.status == 11, "expected CANCELLED (exit 11): \(result)")

                // The shell is gone and reaped; nothing of its process group is alive.
                let cleanedUp = await eventually(timeout: .seconds(8), interval: .milliseconds(100)) {
                    !processExists(shellPID)
                        && !allProcesses().contains {
                            ($0.group == shellPID || $0.commandLine == "sleep \(sleepArgument)") && $0.state != "Z"
                        }
                }
                let leftovers = allProcesses().filter {
                    $0.pid == shellPID || $0.group == shellPID || $0.commandLine.contains(sleepArgument)
                }
                #expect(cleanedUp, "processes of the cancelled command remain: \(leftovers)")

                let get = try await server.cli(["session", "get", "trap"])
                #expect(get.status == 15, "a closed session should be gone (NOT_FOUND): \(get)")
            }
        }
    }
}
