import Foundation
import Testing

extension EndToEnd {
    /// `serve` checks every flag before it touches the disk or the socket, and a
    /// refused start leaves nothing behind (issue: bad `serve` flags accepted).
    @Suite("serve flags")
    struct ServeFlags {
        /// Each bad flag is a usage error (exit 64) naming the flag, and the state
        /// directory the start would have used is never created.
        @Test(
            "bad serve flags are refused before anything is created",
            arguments: [
                (["--backend", "worker:"], "invalid task queue name"),
                (["--backend", "worker:a b/c"], "invalid task queue name"),
                (["--backend", "nonsense"], "unknown backend"),
                (["--socket", ""], "--socket must not be empty"),
                (["--listen-fd-name", ""], "--listen-fd-name must not be empty"),
                (["--max-frame-size", "12"], "--max-frame-size"),
            ]
        )
        func badFlagIsRefused(flags: [String], expected: String) async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let state = directory.path + "/state"
            // A socket before the flags, so `--socket ''` overrides it (the last one wins).
            let result = try await runCLI(
                ["serve", "--socket", directory.path + "/sock", "--state-dir", state] + flags,
                socket: nil,
                directory: directory
            )
            #expect(result.status == 64, "\(result)")
            #expect(result.stderr.contains(expected), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: state), "a refused start created \(state)")
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/sock"), "a refused start created the socket")
        }

        /// An empty `--socket` is refused by every subcommand, not taken as the default path.
        @Test("an empty --socket is a usage error for clients too")
        func emptySocketForClients() async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let result = try await runCLI(["status", "--socket", ""], socket: nil, directory: directory)
            #expect(result.status == 64, "\(result)")
            #expect(result.stderr.contains("--socket must not be empty"), "\(result)")
        }

        /// A second server refused because the socket is live creates no state
        /// directory (it used to create a new one before binding failed).
        @Test("a start refused by a live server on the socket creates no state directory")
        func liveSocketRefusalLeavesNothing() async throws {
            try await withServer { server in
                let state = server.directory.path + "/second-state/nested"
                let result = try await runCLI(
                    ["serve", "--socket", server.socketPath, "--state-dir", state],
                    socket: nil,
                    directory: server.directory
                )
                #expect(result.status != 0, "\(result)")
                #expect(result.stderr.contains("another server is already listening"), "\(result)")
                #expect(
                    !FileManager.default.fileExists(atPath: server.directory.path + "/second-state"),
                    "the refused start created a state directory"
                )
                #expect(server.isRunning)
            }
        }

        /// When binding fails after the store was opened (here: the socket's
        /// directory cannot be made), the state directory this start created is
        /// removed again, and one that existed before is kept.
        @Test("a start that fails to bind removes only the state directory it created")
        func bindFailureRemovesCreatedDirectory() async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let created = directory.path + "/made/by/start"
            let unbindable = "/proc/switchboard-no-such-dir/sock"
            let first = try await runCLI(
                ["serve", "--socket", unbindable, "--state-dir", created],
                socket: nil,
                directory: directory
            )
            #expect(first.status != 0, "\(first)")
            #expect(first.stderr.contains("cannot create directory"), "\(first)")
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/made"), "the created state directory was left behind")

            let existing = directory.path + "/existing"
            try FileManager.default.createDirectory(atPath: existing, withIntermediateDirectories: false)
            let second = try await runCLI(
                ["serve", "--socket", unbindable, "--state-dir", existing],
                socket: nil,
                directory: directory
            )
            #expect(second.status != 0, "\(second)")
            #expect(FileManager.default.fileExists(atPath: existing), "a state directory that existed before was removed")
        }

        /// Repeated `--label` flags arrive in order with their exact values, in
        /// both spellings; a value is everything after the first `=` (here one the
        /// label rules refuse, so the server's error shows what was sent); a label
        /// without a key is a usage error. (They are parsed outside ArgumentParser,
        /// whose repeated options cost O(N²): 2,000 labels went from 15.6 s to
        /// 0.1 s, measured by hand.)
        @Test("session create --label keeps order and values; a bad label is a usage error")
        func labelFlags() async throws {
            try await withServer { server in
                let created = try await server.cli([
                    "session", "create", "--id", "labelled", "--label", "a=1", "--label=b=x.y", "--label", "c=", "--json",
                ])
                #expect(created.status == 0, "\(created)")
                let session = try jsonObject(created.stdout)
                let labels = try #require(session["labels"] as? [[String: Any]], "\(created)")
                #expect(labels.map { "\($0["key"] as? String ?? "?")=\($0["value"] as? String ?? "?")" } == ["a=1", "b=x.y", "c="])

                let listed = try await server.cli(["session", "list", "--label", "b=x.y", "--json"])
                #expect(listed.status == 0, "\(listed)")
                let sessions = try #require(try jsonObject(listed.stdout)["sessions"] as? [[String: Any]], "\(listed)")
                #expect(sessions.map { $0["id"] as? String } == ["labelled"], "\(listed)")

                let equalsInValue = try await server.cli(["session", "create", "--label=k=2=3"])
                #expect(equalsInValue.status == 13, "\(equalsInValue)")
                #expect(equalsInValue.stderr.contains("invalid value \"2=3\" of label \"k\""), "\(equalsInValue)")

                let bad = try await server.cli(["session", "create", "--label", "=x"])
                #expect(bad.status == 64, "\(bad)")
                #expect(bad.stderr.contains("invalid label \"=x\""), "\(bad)")
                let missing = try await server.cli(["session", "create", "--label"])
                #expect(missing.status == 64, "\(missing)")
            }
        }
    }
}
