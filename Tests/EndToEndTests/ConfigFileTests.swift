import Foundation
import Testing

extension EndToEnd {
    /// `serve --config FILE`: every `serve` option can come from a JSON or YAML
    /// file, flags override it, and a bad file is a usage error before anything
    /// is created (issue 13, item 1).
    @Suite("serve --config")
    struct ConfigFile {
        /// Starts `switchboard serve` with exactly `arguments` (no socket or state
        /// directory added: the file may choose them) and waits for `socketPath`.
        static func startServe(_ arguments: [String], socketPath: String, in directory: TempDirectory) async throws -> ChildProcess {
            let child = try ChildProcess(arguments: ["serve"] + arguments, directory: directory)
            let deadline = ContinuousClock.now + .seconds(20)
            while !RawConnection.canConnect(socketPath) {
                if !child.isRunning || ContinuousClock.now >= deadline {
                    child.kill(signal: SIGKILL)
                    throw E2EError("serve \(arguments) did not accept on \(socketPath)\n\(child.stderr)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            return child
        }

        /// Stops the server and checks it exited cleanly (SIGTERM drains, exit 0).
        static func stop(_ child: ChildProcess) async {
            child.kill(signal: SIGTERM)
            let done = await child.wait(timeout: .seconds(15))
            #expect(done == .exited(0), "\(child.stderr)")
        }

        static func write(_ text: String, to path: String) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }

        /// Creates sessions until the server refuses; the refusal must be the
        /// `max-sessions` limit, after exactly `limit` sessions.
        static func expectSessionLimit(_ limit: Int, socket: String, directory: TempDirectory) async throws {
            for index in 0..<limit {
                let created = try await runCLI(["session", "create", "--id", "s\(index)"], socket: socket, directory: directory)
                #expect(created.status == 0, "\(created)")
            }
            let refused = try await runCLI(["session", "create", "--id", "one-too-many"], socket: socket, directory: directory)
            #expect(refused.status != 0, "\(refused)")
            #expect(refused.stderr.contains("too many sessions (limit \(limit))"), "\(refused)")
        }

        @Test("a JSON file sets the socket, the state directory, limits and the log level")
        func jsonFileSetsOptions() async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let socket = directory.path + "/from-json.sock"
            let state = directory.path + "/json-state"
            let file = directory.path + "/serve.json"
            try Self.write("""
                {
                  "socket": "\(socket)",
                  "state-dir": "\(state)",
                  "max-sessions": 2,
                  "idle-timeout": "2h",
                  "drain-grace": 1,
                  "allow-uid": [\(getuid())],
                  "log-level": "debug"
                }
                """, to: file)
            let server = try await Self.startServe(["--config", file], socketPath: socket, in: directory)
            #expect(FileManager.default.fileExists(atPath: state + "/switchboard.sqlite"), "state-dir from the file was not used")
            try await Self.expectSessionLimit(2, socket: socket, directory: directory)
            #expect(server.stderr.contains("connection accepted"), "log-level debug from the file: \(server.stderr)")
            await Self.stop(server)
        }

        @Test("a YAML file sets the same options, agents included")
        func yamlFileSetsOptions() async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let socket = directory.path + "/from-yaml.sock"
            let state = directory.path + "/yaml-state"
            let file = directory.path + "/serve.yml"
            try Self.write("""
                # Comments are fine in YAML.
                socket: \(socket)
                state-dir: \(state)
                max-sessions: 3
                socket-mode: 0600
                turn-deadline: 90s
                max-live-agents: 4
                agents:
                  coder:
                    command: [python3, -m, my_agent, --acp]
                    cwd: /tmp
                    environment:
                      allow: [PATH, HOME]
                      set:
                        AGENT_MODE: fast
                    permission: allow
                    handshake-timeout: 10s
                    idle-timeout: 5m
                    cancel-grace: 2s
                    max-line-bytes: 1048576
                """, to: file)
            let server = try await Self.startServe(["--config", file], socketPath: socket, in: directory)
            #expect(FileManager.default.fileExists(atPath: state + "/switchboard.sqlite"), "state-dir from the file was not used")
            var info = stat()
            #expect(stat(socket, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600, "socket-mode from the file")
            try await Self.expectSessionLimit(3, socket: socket, directory: directory)
            // The agents are parsed and checked, and the log says the backend is not here yet.
            #expect(server.stderr.contains("no agent backend yet"), "\(server.stderr)")
            #expect(server.stderr.contains("coder"), "\(server.stderr)")
            // ... so a session cannot use one (as before: an unknown backend).
            let create = try await runCLI(["session", "create", "--backend", "agent:coder"], socket: socket, directory: directory)
            #expect(create.status != 0, "\(create)")
            #expect(create.stderr.contains("unknown backend"), "\(create)")
            await Self.stop(server)
        }

        @Test("flags override the file")
        func flagsOverrideTheFile() async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let fileSocket = directory.path + "/file.sock"
            let flagSocket = directory.path + "/flag.sock"
            let fileState = directory.path + "/file-state"
            let flagState = directory.path + "/flag-state"
            let file = directory.path + "/serve.yaml"
            try Self.write("""
                socket: \(fileSocket)
                state-dir: \(fileState)
                max-sessions: 1
                backend: nonsense-is-refused-even-when-overridden
                """, to: file)
            // A bad value in the file is refused even when a flag overrides it ...
            let refused = try await runCLI(
                ["serve", "--config", file, "--socket", flagSocket, "--state-dir", flagState, "--backend", "echo"],
                socket: nil,
                directory: directory
            )
            #expect(refused.status == 64, "\(refused)")
            #expect(refused.stderr.contains("backend: unknown backend"), "\(refused)")
            // ... and once the file is good, the flags win.
            try Self.write("""
                socket: \(fileSocket)
                state-dir: \(fileState)
                max-sessions: 1
                """, to: file)
            let server = try await Self.startServe(
                ["--config", file, "--socket", flagSocket, "--state-dir", flagState, "--max-sessions", "2"],
                socketPath: flagSocket,
                in: directory
            )
            #expect(!FileManager.default.fileExists(atPath: fileSocket))
            #expect(!FileManager.default.fileExists(atPath: fileState), "the file's state-dir was used despite --state-dir")
            #expect(FileManager.default.fileExists(atPath: flagState + "/switchboard.sqlite"))
            try await Self.expectSessionLimit(2, socket: flagSocket, directory: directory)
            await Self.stop(server)
        }

        /// Each kind of bad file: exit 64, the message names the file and the key,
        /// and neither the state directory nor the socket is created.
        @Test(
            "a bad configuration file is refused before anything is created",
            arguments: [
                ("missing.json", nil, "cannot read the file: No such file or directory"),
                ("serve.toml", "socket = 1", "unknown file format"),
                ("serve.json", "{ \"max-sessions\": ", "not a valid JSON configuration"),
                ("serve.json", "[1, 2]", "not a valid JSON configuration"),
                ("serve.yaml", "max-sessions: [1\n", "not a valid YAML configuration"),
                ("serve.json", #"{"max-sesions": 3}"#, #"unknown key "max-sesions""#),
                ("serve.yaml", "retain:\n  turns: 3\n", #"unknown key "retain.turns""#),
                ("serve.json", #"{"max-sessions": "many"}"#, "max-sessions: expected an integer"),
                ("serve.yaml", "max-sessions: [1, 2]\n", "max-sessions: expected an integer"),
                ("serve.json", #"{"max-sessions": true}"#, "max-sessions: expected an integer, not true or false"),
                ("serve.json", #"{"idle-timeout": true}"#, "idle-timeout: expected a duration, not true or false"),
                ("serve.json", #"{"allow-uid": [true]}"#, "allow-uid: expected a list of strings, not true or false"),
                ("serve.json", #"{"agents": {"c": {"command": ["x"], "environment": 3}}}"#, "agents.c.environment: expected a mapping"),
                ("serve.json", #"{"agents": {"c": {"command": ["x"], "environment": {"set": {"A": 1}}}}}"#,
                 "agents.c.environment.set.A: expected a string"),
                ("serve.json", #"{"state-dir": {"path": "/x"}}"#, "state-dir: expected a string, not a mapping"),
                ("serve.json", #"{"max-frame-size": 12}"#, "max-frame-size: must be between 1024"),
                ("serve.json", #"{"max-connections": 0}"#, "max-connections: must be positive"),
                ("serve.yaml", "idle-timeout: soon\n", "idle-timeout: invalid duration \"soon\""),
                ("serve.yaml", "socket-mode: 1777\n", "socket-mode: must be at most 0777"),
                ("serve.yaml", "log-level: loud\n", "log-level: invalid log level"),
                ("serve.json", #"{"backend": "worker:a b"}"#, "backend: invalid task queue name"),
                ("serve.json", #"{"allow-uid": ["no-such-user-xyz"]}"#, "no-such-user-xyz"),
                ("serve.json", #"{"backend": "agent:c", "agents": {"c": {"command": ["x"]}}}"#, "backend: unknown backend \"agent:c\""),
                ("serve.json", #"{"agents": {"coder": {"command": []}}}"#, "agents.coder.command: must not be empty"),
                ("serve.json", #"{"agents": {"coder": {"cwd": "/"}}}"#, "agents.coder.command: missing"),
                ("serve.json", #"{"agents": {"a b": {"command": ["x"]}}}"#, "agents.a b: invalid agent name"),
                ("serve.json", #"{"agents": {"c": {"command": ["x"], "comand": ["y"]}}}"#, #"unknown key "agents.c.comand""#),
                ("serve.yaml", "agents:\n  c:\n    command: [x]\n    permission: ask\n", "agents.c.permission: expected allow or deny"),
                ("serve.yaml", "agents:\n  c:\n    command: [x]\n    cwd: relative/dir\n", "agents.c.cwd: must be an absolute path"),
                ("serve.yaml", "agents:\n  c:\n    command: [x]\n    environment:\n      set:\n        1BAD: x\n",
                 "agents.c.environment.set: invalid variable name"),
                ("serve.yaml", "agents:\n  c:\n    command: [x]\n    max-line-bytes: 10\n", "agents.c.max-line-bytes: must be between"),
                ("serve.yaml", "agents:\n  c:\n    command: [x]\n    cancel-grace: 0s\n", "agents.c.cancel-grace: must be positive"),
                ("serve.yaml", "max-live-agents: 0\n", "max-live-agents: must be positive"),
            ] as [(String, String?, String)]
        )
        func badFileIsRefused(name: String, contents: String?, expected: String) async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let file = directory.path + "/" + name
            if let contents { try Self.write(contents, to: file) }
            let state = directory.path + "/state"
            let socket = directory.path + "/sock"
            let result = try await runCLI(
                ["serve", "--socket", socket, "--state-dir", state, "--config", file],
                socket: nil,
                directory: directory
            )
            #expect(result.status == 64, "\(result)")
            #expect(result.stderr.contains("--config \(file): "), "the message names the file: \(result)")
            #expect(result.stderr.contains(expected), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: state), "a refused start created \(state)")
            #expect(!FileManager.default.fileExists(atPath: socket), "a refused start created the socket")
        }
    }
}
