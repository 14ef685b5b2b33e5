import Foundation
import SwitchboardClient
import SwitchboardProtocol
import Testing

extension EndToEnd {
    /// Hostile strings from the command line: a NUL or invalid UTF-8 on stdin or in
    /// an argument is refused with INVALID_ARGUMENT (exit 13) naming what was wrong,
    /// and nothing is sent, instead of a prompt cut at the NUL or repaired with U+FFFD.
    @Suite("Hostile strings from the CLI")
    struct StringInput {
        /// Runs `/bin/sh -c script` with `$SB` set to the switchboard binary and the
        /// server's socket in `SWITCHBOARD_SOCKET`.
        static func shell(_ script: String, server: ServerProcess) async throws -> (status: Int32, stdout: String, stderr: String) {
            let shell = Shell()
            let process = shell.process
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script]
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SWITCHBOARD_") }
            environment["SB"] = try SwitchboardBinary.path()
            environment["SWITCHBOARD_SOCKET"] = server.socketPath
            process.environment = environment
            let out = server.directory.file("shell", suffix: ".out")
            let err = server.directory.file("shell", suffix: ".err")
            _ = FileManager.default.createFile(atPath: out, contents: nil)
            _ = FileManager.default.createFile(atPath: err, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
            process.standardInput = FileHandle.nullDevice
            let status: Int32 = try await withTimeout(.seconds(30), "sh -c \(script)", onTimeout: { shell.process.terminate() }) {
                await withCheckedContinuation { continuation in
                    shell.process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
                    do { try shell.process.run() } catch { continuation.resume(returning: -1) }
                }
            }
            let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
            return (status, read(out), read(err))
        }

        /// `Process` is not Sendable; it is only configured before it runs, then
        /// touched by its termination handler and the timeout's terminate.
        final class Shell: @unchecked Sendable {
            let process = Process()
        }

        @Test("printf 'first part\\0second part' | switchboard prompt --session S -: exit 13, nothing sent or stored")
        func nulOnStdin() async throws {
            try await withServer { server in
                let create = try await server.cli(["session", "create", "--id", "S"])
                try #require(create.status == 0, "\(create)")

                let nul = try await Self.shell(#"printf 'first part\0second part' | "$SB" prompt --session S -"#, server: server)
                #expect(nul.status == 13, "\(nul)")
                #expect(nul.stderr == "switchboard: INVALID_ARGUMENT: prompt contains a NUL byte\n")
                #expect(nul.stdout.isEmpty, "nothing may be printed: \(nul.stdout)")

                let invalid = try await Self.shell(#"printf 'caf\303 \377' | "$SB" prompt --session S -"#, server: server)
                #expect(invalid.status == 13, "\(invalid)")
                #expect(invalid.stderr == "switchboard: INVALID_ARGUMENT: prompt is not valid UTF-8\n")

                let argument = try await Self.shell(#""$SB" session create --id T --label "team=$(printf 'caf\351')""#, server: server)
                #expect(argument.status == 13, "\(argument)")
                #expect(argument.stderr.contains("INVALID_ARGUMENT: command-line argument 6 is not valid UTF-8"), "\(argument.stderr)")

                // Nothing reached the server: no turn, no session T.
                try await withSwitchboardClient(socketPath: server.socketPath) { client in
                    let status = try await client.sessionStatus(id: "S")
                    #expect(status.turns.isEmpty, "a turn was stored: \(status.turns)")
                    #expect(try await client.listSessions().sessions.map(\.id) == ["S"])
                }
                // A clean prompt through the same pipe works.
                let clean = try await Self.shell(#"printf 'first part second part' | "$SB" prompt --session S -"#, server: server)
                #expect(clean.status == 0, "\(clean)")
                #expect(clean.stdout.contains("first part second part"))
            }
        }
    }
}
