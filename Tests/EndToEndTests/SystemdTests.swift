import Foundation
import Glibc
import Synchronization
import SwitchboardClient
import SwitchboardProtocol
import Testing

extension EndToEnd {
    /// Issue 4: a real systemd service. These tests use the real
    /// `systemd-socket-activate` (Debian's systemd package) where it can show what
    /// is asked, and a small supervisor of our own where it cannot (see
    /// ``exitOnIdleCyclesLoseNoConnection()``).
    @Suite("systemd: socket activation, readiness, drain, exit on idle")
    struct Systemd {
        static let socketActivate = "/usr/bin/systemd-socket-activate"
        static let systemUnits = ["systemd/switchboard.socket", "systemd/switchboard.service"]
        static let userUnits = ["systemd/user/switchboard.socket", "systemd/user/switchboard.service"]

        /// A client that does not retry: every refused or dropped connection shows.
        static func healthOnce(_ socketPath: String) async throws -> ServingStatus {
            var configuration = ClientConfiguration()
            configuration.connectTimeout = .seconds(20)
            configuration.retry = .disabled
            return try await SwitchboardClient.call(.health, socketPath: socketPath, configuration: configuration)
        }

        static func mainPID(_ notify: NotifySocket) -> [Int32] {
            notify.lines().compactMap { line in
                line.hasPrefix("MAINPID=") ? Int32(line.dropFirst("MAINPID=".count)) : nil
            }
        }

        // MARK: Socket activation under systemd-socket-activate

        /// The server starts on the first connection, adopts the socket, serves the
        /// call and reports READY=1 (with MAINPID and STATUS) on the notify socket;
        /// SIGTERM then sends STOPPING=1 and exits 0, leaving the socket file alone
        /// (it is not the server's). Runs the system unit's ExecStart arguments verbatim.
        @Test("starts on the first connection under systemd-socket-activate and reports READY=1")
        func startsOnFirstConnection() async throws {
            try #require(FileManager.default.isExecutableFile(atPath: Self.socketActivate), "\(Self.socketActivate) is missing: run scripts/bootstrap.sh")
            let directory = try TempDirectory()
            defer { directory.remove() }
            let socketPath = directory.path + "/sock"
            let notify = try NotifySocket(path: directory.path + "/notify")
            let unitArguments = Array(try SystemdServeFlags.execStart(ofUnit: SystemdServeFlags.repositoryFile(Self.systemUnits[1])).dropFirst())
            let activator = try SpawnedProcess(
                // STATE_DIRECTORY as systemd sets it for StateDirectory=: the unit's
                // ExecStart has no --state-dir, the server's default reads this.
                [Self.socketActivate, "-l", socketPath, "--fdname=switchboard", "-E", "NOTIFY_SOCKET=\(notify.path)",
                 "-E", "STATE_DIRECTORY=\(directory.path)/state",
                 try SwitchboardBinary.path()] + unitArguments,
                logPath: directory.path + "/activate.log"
            )
            defer { activator.signal(SIGKILL) }
            let listening = await eventually(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: socketPath) }
            try #require(listening, "systemd-socket-activate did not create \(socketPath): \(activator.log)")
            try await Task.sleep(for: .milliseconds(300))
            #expect(notify.messages().isEmpty, "the server reported before any connection: \(notify.messages())")

            let status = try await Self.healthOnce(socketPath)
            #expect(status == .serving)
            #expect(await notify.waitFor("READY=1"), "no READY=1: \(notify.messages())\n\(activator.log)")
            // systemd-socket-activate execs the server in its own process.
            #expect(Self.mainPID(notify) == [activator.pid], "\(notify.messages())")
            #expect(notify.lines().contains { $0.hasPrefix("STATUS=serving: ") }, "\(notify.messages())")

            // A CLI call is served by the same, already running process.
            let cli = try await runCLI(["status", "--json"], socket: socketPath, directory: directory)
            #expect(cli.status == 0, "\(cli)")
            #expect(jsonInt(try jsonObject(cli.stdout)["pid"]) == Int(activator.pid), "\(cli)")

            activator.signal(SIGTERM)
            let exit = await activator.wait(timeout: .seconds(20))
            #expect(exit == .exited(0), "after SIGTERM: \(exit?.description ?? "still running")\n\(activator.log)")
            #expect(notify.lines().contains("STOPPING=1"), "\(notify.messages())")
            #expect(FileManager.default.fileExists(atPath: socketPath), "the server removed a socket it did not create")
        }

        /// Exit on idle under the real tool: the server exits 0 after the idle
        /// period; the next run of systemd-socket-activate on the same path serves
        /// the next client from a fresh process.
        @Test("exits when idle; the next client is served by a fresh start")
        func exitsWhenIdleAndRestarts() async throws {
            try #require(FileManager.default.isExecutableFile(atPath: Self.socketActivate), "\(Self.socketActivate) is missing: run scripts/bootstrap.sh")
            let directory = try TempDirectory()
            defer { directory.remove() }
            let socketPath = directory.path + "/sock"
            let notify = try NotifySocket(path: directory.path + "/notify")
            let arguments = [Self.socketActivate, "-l", socketPath, "--fdname=switchboard", "-E", "NOTIFY_SOCKET=\(notify.path)",
                             try SwitchboardBinary.path()] + SystemdServeFlags.serve(exitIdleAfter: "300ms", drainGrace: "2s", stateDir: directory.path + "/state")
            var pids: [Int32] = []
            for run in 1...2 {
                let activator = try SpawnedProcess(arguments, logPath: directory.path + "/activate-\(run).log")
                defer { activator.signal(SIGKILL) }
                let listening = await eventually(timeout: .seconds(10)) { RawConnection.canConnect(socketPath) || !activator.isRunning }
                try #require(listening && activator.isRunning, "run \(run): not listening: \(activator.log)")
                #expect(try await Self.healthOnce(socketPath) == .serving, "run \(run)")
                let exit = await activator.wait(timeout: .seconds(20))
                #expect(exit == .exited(0), "run \(run): \(exit?.description ?? "did not exit on idle")\n\(activator.log)")
                #expect(activator.log.contains("idle, exiting"), "run \(run): \(activator.log)")
                pids.append(activator.pid)
            }
            #expect(Self.mainPID(notify) == pids, "READY per start: \(notify.messages())")
            #expect(notify.lines().filter { $0 == "STOPPING=1" }.count == 2, "\(notify.messages())")
        }

        // MARK: Exit on idle across many cycles

        /// 200 connects over several exit/start cycles: none refused or dropped.
        ///
        /// systemd-socket-activate binds a new socket per run and exits with its
        /// child, so between two runs nobody listens and connections are refused:
        /// that is the tool, not what systemd does. systemd keeps the listening
        /// socket for the whole life of the .socket unit and starts the service
        /// whenever it is readable and the service is not running. ``Supervisor``
        /// does exactly that (one socket bound for the whole test; per start, the
        /// server gets it as fd 3 with LISTEN_FDS=1, LISTEN_FDNAMES and LISTEN_PID
        /// of the exec'd process) so that connections made while a server decides to
        /// exit, drains or is gone wait in the backlog and must all be served.
        /// Clients do not retry, so any refusal or drop fails the test. Waves of 20
        /// concurrent connects are spread with pauses around the idle period (300 ms)
        /// so that they land while a server runs, while it exits and after it exited.
        @Test("200 connects over several exit-on-idle cycles: none refused or dropped")
        func exitOnIdleCyclesLoseNoConnection() async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let supervisor = try Supervisor(
                directory: directory,
                serveArguments: SystemdServeFlags.serve(exitIdleAfter: "300ms", drainGrace: "2s", stateDir: directory.path + "/state")
            )
            defer { supervisor.stop() }
            let runner = Task { await supervisor.run() }
            defer { runner.cancel() }

            let failures = Locked<[String]>([])
            let served = Locked(0)
            let pauses: [Duration] = [.zero, .milliseconds(350), .milliseconds(120), .milliseconds(600), .milliseconds(300),
                                      .milliseconds(900), .milliseconds(250), .milliseconds(450), .milliseconds(330), .zero]
            for (wave, pause) in pauses.enumerated() {
                try await withTimeout(.seconds(40), "wave \(wave)", onTimeout: { supervisor.stop() }) {
                    await withTaskGroup(of: Void.self) { group in
                        for index in 0..<20 {
                            group.addTask {
                                try? await Task.sleep(for: .milliseconds(index * 3))
                                do {
                                    let status = try await Self.healthOnce(supervisor.socketPath)
                                    if status == .serving { served.withLock { $0 += 1 } } else {
                                        failures.withLock { $0.append("wave \(wave) #\(index): \(status)") }
                                    }
                                } catch {
                                    failures.withLock { $0.append("wave \(wave) #\(index): \(error)") }
                                }
                            }
                        }
                    }
                }
                try await Task.sleep(for: pause)
            }
            let problems = failures.withLock { $0 }
            let starts = supervisor.starts
            #expect(problems.isEmpty, "\(problems.count) connects failed: \(problems.prefix(10))\n\(supervisor.log.suffix(3000))")
            #expect(served.withLock { $0 } == 200)
            #expect(starts.count >= 3, "only \(starts.count) server starts: the test did not cross exit/start cycles")
            // Every server that ended did so on its own, cleanly.
            #expect(supervisor.exits.allSatisfy { $0 == .exited(0) }, "exits: \(supervisor.exits)\n\(supervisor.log.suffix(3000))")
            let idleExits = supervisor.log.components(separatedBy: "idle, exiting").count - 1
            #expect(idleExits >= 2, "\(idleExits) exits on idle over \(starts.count) starts")
        }

        // MARK: Drain on SIGTERM

        /// Two prompts that fit in the grace finish with their full output; one
        /// that does not fit ends with UNAVAILABLE; the server exits 0 after
        /// sending STOPPING=1.
        @Test("SIGTERM: prompts that fit finish, one that does not ends clearly, STOPPING=1, exit 0")
        func sigtermDrainsAndNotifies() async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let socketPath = directory.path + "/sock"
            let notify = try NotifySocket(path: directory.path + "/notify")
            let server = try ChildProcess(
                arguments: SystemdServeFlags.serve(exitIdleAfter: "10m", drainGrace: "3s", stateDir: directory.path + "/state")
                    + ["--socket", socketPath, "--echo-delay", "50ms"],
                // 200 ms watchdog timeout: a ping every 100 ms, also while draining.
                environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000"],
                directory: directory
            )
            defer { server.kill(signal: SIGKILL) }
            #expect(await notify.waitFor("READY=1"), "no READY=1: \(server.stderr)")

            // 20 tokens at 50 ms (about 1 s) fit in the 3 s grace; 200 (10 s) do not.
            let short1 = (1...20).map { "a\($0)" }
            let short2 = (1...20).map { "b\($0)" }
            let long = (1...200).map { "c\($0)" }
            var prompts: [ChildProcess] = []
            for words in [short1, short2, long] {
                prompts.append(try startCLI(["prompt"] + words, socket: socketPath, directory: directory))
            }
            for prompt in prompts {
                let streaming = await prompt.waitForStdout(timeout: .seconds(10)) { !$0.isEmpty }
                try #require(streaming, "no output before SIGTERM: \(prompt.stderr)")
            }
            server.kill(signal: SIGTERM)
            #expect(await notify.waitFor("STOPPING=1"), "no STOPPING=1: \(notify.messages())")

            let results = await [prompts[0].finish(timeout: .seconds(20)), prompts[1].finish(timeout: .seconds(20)), prompts[2].finish(timeout: .seconds(20))]
            #expect(results[0].status == 0 && words(results[0].stdout) == short1, "\(results[0])")
            #expect(results[1].status == 0 && words(results[1].stdout) == short2, "\(results[1])")
            #expect(results[2].status != 0, "\(results[2])")
            #expect(results[2].stderr.contains("UNAVAILABLE"), "the cut prompt must say why: \(results[2])")
            #expect(words(results[2].stdout).count < long.count, "\(results[2])")
            let exit = await server.wait(timeout: .seconds(20))
            #expect(exit == .exited(0), "server: \(exit?.description ?? "still running")\n\(server.stderr.suffix(2000))")
            let lines = notify.lines()
            let stopping = try #require(lines.firstIndex(of: "STOPPING=1"))
            #expect(lines[stopping...].contains("WATCHDOG=1"), "no watchdog ping during the drain: \(lines)")
        }

        // MARK: Bad activation environments

        /// Inconsistent variables fail with a clear message and a non-zero exit;
        /// LISTEN_PID naming another process is "not for us" (the server binds its
        /// own socket).
        @Test("inconsistent LISTEN_* variables fail clearly; another process's are ignored")
        func inconsistentEnvironment() async throws {
            let directory = try TempDirectory()
            defer { directory.remove() }
            let binary = try SwitchboardBinary.path()
            // `exec` keeps the shell's pid, so $$ is the server's pid.
            func serve(_ variables: String, _ extra: [String] = []) async throws -> (Termination?, String, SpawnedProcess) {
                let socketPath = directory.file("sock")
                let process = try SpawnedProcess(
                    ["/bin/sh", "-c", "export \(variables); exec \"$0\" \"$@\"", binary, "serve", "--socket", socketPath, "--state-dir", "none"] + extra,
                    logPath: directory.file("serve", suffix: ".log")
                )
                let exit = await process.wait(timeout: .seconds(15))
                return (exit, process.log, process)
            }
            let cases: [(String, String)] = [
                ("LISTEN_PID=$$ LISTEN_FDS=abc", "LISTEN_FDS=abc is not a number"),
                ("LISTEN_PID=$$ LISTEN_FDS=0", "LISTEN_FDS=0"),
                // Nothing passed at fd 3 (or something else of the process got it).
                ("LISTEN_PID=$$ LISTEN_FDS=1", "passed descriptor 3 is not"),
                ("LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=a:b", "LISTEN_FDNAMES names 2 descriptors but LISTEN_FDS=1"),
                ("LISTEN_PID=$$ LISTEN_FDS=2", "without LISTEN_FDNAMES"),
                ("LISTEN_FDS=1", "LISTEN_PID is not"),
            ]
            for (variables, message) in cases {
                let (exit, log, _) = try await serve(variables)
                #expect(exit != nil && exit != .exited(0), "\(variables): \(exit?.description ?? "still running")\n\(log)")
                #expect(log.contains("socket activation: ") && log.contains(message), "\(variables): \(log)")
            }
            // Not a socket at fd 3: /dev/null opened there by the shell.
            let (notSocket, notSocketLog, _) = try await serve("LISTEN_PID=$$ LISTEN_FDS=1; exec 3</dev/null")
            #expect(notSocket != nil && notSocket != .exited(0), "\(notSocketLog)")
            #expect(notSocketLog.contains("passed descriptor 3 is not a socket"), "\(notSocketLog)")

            // Meant for another process: ignored, the server binds --socket.
            let socketPath = directory.file("own")
            let other = try SpawnedProcess(
                ["/bin/sh", "-c", "export LISTEN_PID=1 LISTEN_FDS=1; exec \"$0\" \"$@\"", binary, "serve", "--socket", socketPath, "--state-dir", "none"],
                logPath: directory.file("other", suffix: ".log")
            )
            defer { other.signal(SIGKILL) }
            let listening = await eventually(timeout: .seconds(15)) { RawConnection.canConnect(socketPath) || !other.isRunning }
            #expect(listening && other.isRunning, "\(other.log)")
            other.signal(SIGTERM)
            #expect(await other.wait(timeout: .seconds(15)) == .exited(0), "\(other.log)")
        }

        // MARK: Unit files

        /// `systemd-analyze verify` accepts the units, with the ExecStart binary
        /// pointed at the one under test (verify checks that it is executable).
        /// It needs no running systemd; the user units need an XDG_RUNTIME_DIR.
        @Test("systemd-analyze verify accepts the system and user units")
        func unitsVerify() async throws {
            let analyze = "/usr/bin/systemd-analyze"
            try #require(FileManager.default.isExecutableFile(atPath: analyze), "\(analyze) is missing: run scripts/bootstrap.sh")
            let directory = try TempDirectory()
            defer { directory.remove() }
            let binary = try SwitchboardBinary.path()
            let runtime = directory.path + "/runtime"
            try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            for (scope, units) in [("system", Self.systemUnits), ("user", Self.userUnits)] {
                let unitDirectory = directory.path + "/" + scope
                try FileManager.default.createDirectory(atPath: unitDirectory, withIntermediateDirectories: true)
                var paths: [String] = []
                for unit in units {
                    let text = try String(contentsOfFile: SystemdServeFlags.repositoryFile(unit), encoding: .utf8)
                    let path = unitDirectory + "/" + URL(fileURLWithPath: unit).lastPathComponent
                    try text.replacingOccurrences(of: "/usr/local/bin/switchboard", with: binary).write(toFile: path, atomically: true, encoding: .utf8)
                    paths.append(path)
                }
                let arguments = [analyze] + (scope == "user" ? ["--user"] : []) + ["verify"] + paths
                let process = try SpawnedProcess(arguments, environment: ["XDG_RUNTIME_DIR": runtime], logPath: directory.file("verify-\(scope)", suffix: ".log"))
                let exit = await process.wait(timeout: .seconds(30))
                // verify exits 0 even for unknown keys or bad values; those are
                // printed with the unit's path, so any mention of our units fails.
                #expect(exit == .exited(0), "\(scope) units: \(exit?.description ?? "timed out")\n\(process.log)")
                #expect(!process.log.contains(unitDirectory), "\(scope) units have warnings:\n\(process.log)")
            }
        }

        /// The units run the installed binary with exactly the flags these tests pass.
        @Test("ExecStart of both services runs switchboard serve with the tests' flags")
        func execStartMatchesTests() throws {
            for unit in [Self.systemUnits[1], Self.userUnits[1]] {
                let words = try SystemdServeFlags.execStart(ofUnit: SystemdServeFlags.repositoryFile(unit))
                #expect(words.first == "/usr/local/bin/switchboard", "\(unit): \(words)")
                #expect(words.dropFirst().first == "serve", "\(unit): \(words)")
                let flags = Set(words.filter { $0.hasPrefix("--") })
                #expect(flags == SystemdServeFlags.names, "\(unit): \(words)")
                let testFlags = SystemdServeFlags.serve(exitIdleAfter: "1s", drainGrace: "1s", stateDir: "/tmp/x").filter { $0.hasPrefix("--") }
                #expect(Set(testFlags).subtracting(SystemdServeFlags.testOnlyNames) == flags)
                // The units keep sessions in systemd's state directory instead.
                let text = try String(contentsOfFile: SystemdServeFlags.repositoryFile(unit), encoding: .utf8)
                #expect(text.contains("\nStateDirectory=switchboard\n"), "\(unit): no StateDirectory=switchboard")
                // Every flag takes one value: flag, value, flag, value…
                #expect(words.count == 2 + 2 * flags.count, "\(unit): \(words)")
            }
            // The socket's FileDescriptorName is the name the server picks.
            for unit in ["systemd/switchboard.socket", "systemd/user/switchboard.socket"] {
                let text = try String(contentsOfFile: SystemdServeFlags.repositoryFile(unit), encoding: .utf8)
                #expect(text.contains("\nFileDescriptorName=switchboard\n"), "\(unit)")
            }
        }
    }
}

/// What systemd does for a .socket unit, in small: holds one listening socket for
/// its whole life and, whenever the socket is readable and no server runs, starts
/// one with the socket as fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=switchboard,
/// LISTEN_PID of the exec'd server).
final class Supervisor: Sendable {
    let socketPath: String
    private let listener: Int32
    private let directory: TempDirectory
    private let serveArguments: [String]
    private let state = Mutex<(current: SpawnedProcess?, starts: [Int32], exits: [Termination], stopped: Bool)>((nil, [], [], false))

    init(directory: TempDirectory, serveArguments: [String]) throws {
        let socketPath = directory.path + "/sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0, bindUnix(fd, socketPath) == 0, listen(fd, 1024) == 0 else {
            throw E2EError("cannot listen on \(socketPath): errno \(errno)")
        }
        self.listener = fd
        self.socketPath = socketPath
        self.directory = directory
        self.serveArguments = serveArguments
    }

    deinit {
        close(listener)
    }

    var starts: [Int32] { state.withLock { $0.starts } }
    var exits: [Termination] { state.withLock { $0.exits } }
    var log: String { (try? String(contentsOfFile: directory.path + "/servers.log", encoding: .utf8)) ?? "" }

    func stop() {
        let current = state.withLock { state in
            state.stopped = true
            return state.current
        }
        current?.signal(SIGKILL)
    }

    /// Until cancelled or stopped.
    func run() async {
        while !Task.isCancelled, !state.withLock({ $0.stopped }) {
            if let current = state.withLock({ $0.current }) {
                if let exit = current.termination {
                    state.withLock {
                        $0.exits.append(exit)
                        $0.current = nil
                    }
                    continue
                }
            } else {
                var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                if poll(&poller, 1, 0) == 1, poller.revents & Int16(POLLIN) != 0 {
                    do {
                        try start()
                    } catch {
                        stop()
                        return
                    }
                    continue
                }
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func start() throws {
        let binary = try SwitchboardBinary.path()
        let process = try SpawnedProcess(
            ["/bin/sh", "-c", "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=switchboard; exec \"$0\" \"$@\"", binary]
                + serveArguments,
            descriptorAs3: listener,
            logPath: directory.path + "/servers.log"
        )
        state.withLock {
            $0.current = process
            $0.starts.append(process.pid)
        }
    }
}
