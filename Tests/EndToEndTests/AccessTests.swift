import Foundation
import Glibc
import SwitchboardClient
import SwitchboardProtocol
import Testing

extension EndToEnd {
    /// Issue 7: clients of different uids on one server. The test process is root
    /// (an administrator); `OtherUser` runs the `switchboard` CLI (and a flood
    /// script) as ordinary users it creates.
    @Suite("Access control and limits between local users", .enabled(if: OtherUser.isAvailable, "needs root, setpriv and useradd (see the printed reason)"))
    struct Access {
        /// Exit code of the CLI for PERMISSION_DENIED (10 + 7).
        static let permissionDenied: Int32 = 17

        /// A server another user can reach: its temp directory traversable, its socket 0666.
        static func withSharedServer<R>(_ arguments: [String], _ body: (ServerProcess) async throws -> R) async throws -> R {
            try await withServer(["--socket-mode", "0666"] + arguments) { server in
                chmod(server.directory.path, 0o711)
                return try await body(server)
            }
        }

        static func expectDenied(_ result: CLIResult, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(result.status == permissionDenied, "\(result)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains("PERMISSION_DENIED"), "\(result)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains(message), "expected \"\(message)\" in:\n\(result)", sourceLocation: sourceLocation)
        }

        static func sessionIDs(inJSON text: String) throws -> [String] {
            let sessions = try jsonObject(text)["sessions"] as? [[String: Any]] ?? []
            return sessions.compactMap { $0["id"] as? String }.sorted()
        }

        @Test("another uid cannot see, prompt or close a session, nor register a worker")
        func anotherUIDIsConfinedToItsOwnSessions() async throws {
            let alice = try OtherUser.ensure("sbtest-alice")
            try await Self.withSharedServer([]) { server in
                let socket = server.socketPath
                let directory = server.directory
                func asAlice(_ arguments: [String]) async throws -> CLIResult {
                    try await alice.cli(arguments, socket: socket, directory: directory)
                }
                let created = try await server.cli(["session", "create", "--id", "roots"])
                try #require(created.status == 0, "\(created)")
                let rootTurn = try await server.cli(["prompt", "--session", "roots", "root", "words"])
                #expect(rootTurn.status == 0, "\(rootTurn)")

                let denial = { (action: String) in "session \"roots\" belongs to uid 0; uid \(alice.uid) may not \(action) it" }
                Self.expectDenied(try await asAlice(["session", "get", "roots"]), denial("read"))
                Self.expectDenied(try await asAlice(["prompt", "--session", "roots", "let", "me", "in"]), denial("prompt"))
                Self.expectDenied(try await asAlice(["session", "close", "roots"]), denial("close"))
                Self.expectDenied(try await asAlice(["status", "--session", "roots"]), denial("read the status of"))
                Self.expectDenied(
                    try await asAlice(["worker", "--queue", "q", "--", "cat"]),
                    "uid \(alice.uid) may not register workers on this server"
                )

                // Its own session works, and listing shows only it.
                let own = try await asAlice(["session", "create", "--id", "alices"])
                try #require(own.status == 0, "\(own)")
                let answer = try await asAlice(["prompt", "--session", "alices", "hello", "from", "alice"])
                #expect(answer.status == 0, "\(answer)")
                #expect(answer.stdout.contains("hello from alice"), "\(answer)")
                let list = try await asAlice(["session", "list", "--json"])
                try #require(list.status == 0, "\(list)")
                #expect(try Self.sessionIDs(inJSON: list.stdout) == ["alices"])
                // Status: counts for everyone, other users' sessions only for admins.
                let status = try await asAlice(["status", "--json"])
                try #require(status.status == 0, "\(status)")
                let document = try jsonObject(status.stdout)
                #expect(jsonInt(document["sessions_total"]) == 2, "\(status.stdout)")
                #expect(try Self.sessionIDs(inJSON: status.stdout) == ["alices"])

                // Root's session is untouched: one turn, still open.
                let rootView = try await server.cli(["session", "get", "roots", "--json"])
                #expect(rootView.status == 0, "\(rootView)")
                #expect(jsonInt(try jsonObject(rootView.stdout)["turns_completed"]) == 1, "\(rootView.stdout)")
                // The administrator sees and may manage both.
                let adminList = try await server.cli(["session", "list", "--json"])
                #expect(try Self.sessionIDs(inJSON: adminList.stdout) == ["alices", "roots"])
                let adminClose = try await server.cli(["session", "close", "alices"])
                #expect(adminClose.status == 0, "\(adminClose)")
                // Every refusal was logged with the peer's uid and pid.
                #expect(server.log.contains("peer_uid=\(alice.uid)"), "refusals not logged with the uid:\n\(server.log.suffix(2000))")
            }
        }

        @Test("the access policy refuses a uid it does not name, and lets a worker uid register")
        func policyFlags() async throws {
            let alice = try OtherUser.ensure("sbtest-alice")
            let bob = try OtherUser.ensure("sbtest-bob")
            try await Self.withSharedServer(["--allow-uid", "sbtest-bob", "--worker-uid", "\(bob.uid)"]) { server in
                let refused = try await alice.cli(["health"], socket: server.socketPath, directory: server.directory)
                Self.expectDenied(refused, "uid \(alice.uid) (gid \(alice.gid)) may not connect to this server")
                #expect(server.log.contains("connection refused") && server.log.contains("peer_uid=\(alice.uid)"), "\(server.log.suffix(2000))")

                let allowed = try await bob.cli(["health"], socket: server.socketPath, directory: server.directory)
                #expect(allowed.status == 0, "\(allowed)")
                let worker = try bob.start(
                    [try SwitchboardBinary.path(), "worker", "--queue", "bobs", "--name", "bob-worker", "--", "cat"],
                    environment: ["SWITCHBOARD_SOCKET": server.socketPath],
                    directory: server.directory
                )
                defer { worker.kill(signal: SIGKILL) }
                let registered = try await eventually(timeout: .seconds(10)) {
                    let status = try await server.cli(["status", "--json"])
                    return status.stdout.contains("bob-worker")
                }
                #expect(registered, "bob's worker never showed up in status: \(worker.stderr)")
            }
        }

        /// 2,000 connections from one uid against a per-uid limit of 256, plus 100
        /// slowloris connections from another that never finish their Hello, while
        /// root streams prompts on a connection of its own.
        @Test("a connection flood and slowloris from other users do not disturb a well-behaved client")
        func floodAndSlowloris() async throws {
            let flooder = try OtherUser.ensure("sbtest-alice")
            let loris = try OtherUser.ensure("sbtest-bob")
            try await Self.withSharedServer([
                "--max-connections", "2500", "--max-connections-per-uid", "256",
                "--handshake-timeout", "2s", "--echo-delay", "1ms",
            ]) { server in
                let script = server.directory.path + "/flood.py"
                try Self.floodScript.write(toFile: script, atomically: true, encoding: .utf8)
                chmod(script, 0o644)
                let memory = MemorySampler(pid: server.pid)
                let before = memory.sample()
                let sampling = Task { await memory.run() }

                try await withSwitchboardClient(socketPath: server.socketPath) { client in
                    let session = try await client.createSession(CreateSessionRequest(sessionID: "steady"))
                    let flood = try flooder.start([OtherUser.python, script, "flood", server.socketPath, "2000", "3"], directory: server.directory)
                    let slow = try loris.start([OtherUser.python, script, "slowloris", server.socketPath, "100", "0"], directory: server.directory)
                    defer {
                        flood.kill(signal: SIGKILL)
                        slow.kill(signal: SIGKILL)
                    }
                    // Root keeps streaming until both attackers are done (at least 50 prompts).
                    var prompts = 0
                    var failures: [String] = []
                    let deadline = ContinuousClock.now + .seconds(40)
                    while prompts < 50 || flood.isRunning || slow.isRunning, ContinuousClock.now < deadline {
                        let text = "steady prompt number \(prompts) with a few words"
                        var output: [UInt8] = []
                        var finished = false
                        do {
                            for try await event in client.prompt(sessionID: session.id, text) {
                                if case .output(let chunk) = event { output += chunk.data }
                                if case .finished = event { finished = true }
                            }
                            if !finished || String(decoding: output, as: UTF8.self) != text {
                                failures.append("prompt \(prompts): finished=\(finished) output=\(String(decoding: output, as: UTF8.self))")
                            }
                        } catch {
                            failures.append("prompt \(prompts): \(error)")
                        }
                        prompts += 1
                    }
                    let floodResult = await flood.finish(timeout: .seconds(30))
                    let slowResult = await slow.finish(timeout: .seconds(30))
                    sampling.cancel()
                    let after = memory.sample()
                    print("""
                        flood test: root streamed \(prompts) prompts, \(failures.count) failed
                        flood (uid \(flooder.uid)): \(floodResult.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
                        slowloris (uid \(loris.uid)): \(slowResult.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
                        server memory: VmRSS before \(before.rssKiB) KiB, peak sampled \(memory.peakRSSKiB) KiB, after \(after.rssKiB) KiB; VmHWM \(after.hwmKiB) KiB
                        """)
                    #expect(failures.isEmpty, "the well-behaved client was disturbed: \(failures.prefix(5))")
                    #expect(prompts >= 50)

                    try #require(floodResult.status == 0, "\(floodResult)")
                    let floodReport = try jsonObject(floodResult.stdout)
                    #expect(jsonInt(floodReport["welcome"]) == 256, "\(floodResult.stdout)")
                    #expect(jsonInt(floodReport["refused"]) == 2000 - 256, "\(floodResult.stdout)")
                    #expect(
                        floodReport["refusal_messages"] as? [String] == ["too many connections for uid \(flooder.uid) (limit 256)"],
                        "\(floodResult.stdout)"
                    )
                    #expect(jsonInt(floodReport["other"]) == 0, "\(floodResult.stdout)")

                    try #require(slowResult.status == 0, "\(slowResult)")
                    let slowReport = try jsonObject(slowResult.stdout)
                    #expect(jsonInt(slowReport["closed_with_goaway"]) == 100, "\(slowResult.stdout)")
                    #expect(slowReport["goaway_messages"] as? [String] == ["no Hello within 2000 ms"], "\(slowResult.stdout)")
                    #expect(jsonInt(slowReport["still_open"]) == 0, "\(slowResult.stdout)")

                    // A bound against runaway growth, not a measurement.
                    #expect(after.hwmKiB < 200 * 1024, "server peak RSS \(after.hwmKiB) KiB")
                    #expect(server.isRunning)
                    // Every flood connection is gone again: only root's is left.
                    let settled = try await eventually(timeout: .seconds(10)) {
                        let status = try await server.cli(["status", "--json"])
                        return jsonInt((try? jsonObject(status.stdout))?["connections"]) ?? 99 <= 2
                    }
                    #expect(settled, "connections were not released")
                }
            }
        }

        /// Opens connections as fast as it can and tallies the server's answers.
        /// `flood SOCKET N HOLD`: N connections each send Hello at once; prints
        /// {"welcome", "refused", "refusal_messages", "other", ...} and keeps the
        /// admitted ones open HOLD seconds. `slowloris SOCKET N _`: N connections
        /// each send a partial Hello and nothing more; prints how they were closed.
        static let floodScript = PythonWire.script(
            imports: #"""
                import json, resource, selectors, socket, struct, sys, time

                mode, path, count, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                if soft < count + 64:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))

                """#,
            body: #"""

                hello_body = field(2, number(1, 1) + number(2, 1) + field(3, mode.encode()))
                hello = struct.pack(">I", len(hello_body)) + hello_body

                def first_frame(buffer):
                    if len(buffer) < 4: return None
                    (length,) = struct.unpack(">I", buffer[:4])
                    if len(buffer) < 4 + length: return None
                    return parse(buffer[4:4 + length])

                socks, started = [], time.monotonic()
                report = {"welcome": 0, "refused": 0, "refusal_messages": [], "other": 0, "other_answers": [],
                          "connect_errors": 0, "closed_with_goaway": 0, "goaway_messages": [], "still_open": 0}
                for _ in range(count):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.setblocking(True)  # a full accept backlog then waits instead of failing with EAGAIN
                    try:
                        s.connect(path)
                        s.sendall(hello if mode == "flood" else hello[:len(hello) - 3])
                    except BrokenPipeError:
                        pass  # refused already: its GoAway is still there to read
                    except OSError as error:
                        report["connect_errors"] += 1
                        report["other_answers"].append("connect: %s" % error)
                        s.close()
                        continue
                    s.setblocking(False)
                    socks.append(s)

                selector = selectors.DefaultSelector()
                buffers = {}
                for s in socks:
                    selector.register(s, selectors.EVENT_READ)
                    buffers[s] = b""
                pending = set(socks)
                deadline = time.monotonic() + 25
                while pending and time.monotonic() < deadline:
                    for key, _ in selector.select(timeout=0.5):
                        s = key.fileobj
                        try:
                            data = s.recv(65536)
                        except (ConnectionResetError, BlockingIOError):
                            data = b""
                        buffers[s] += data
                        frame = first_frame(buffers[s])
                        if frame is None and data:
                            continue
                        selector.unregister(s)
                        pending.discard(s)
                        if frame is None:
                            report["other"] += 1
                            report["other_answers"].append("closed without a frame")
                        elif 3 in frame:
                            report["welcome"] += 1
                        elif 11 in frame:
                            goaway = parse(frame[11])
                            code, message = goaway.get(2, 0), goaway.get(3, b"").decode()
                            if mode == "slowloris":
                                report["closed_with_goaway"] += 1
                                if message not in report["goaway_messages"]: report["goaway_messages"].append(message)
                            elif code == 8:
                                report["refused"] += 1
                                if message not in report["refusal_messages"]: report["refusal_messages"].append(message)
                            else:
                                report["other"] += 1
                                report["other_answers"].append("GoAway %d %s" % (code, message))
                        else:
                            report["other"] += 1
                            report["other_answers"].append("frame %s" % sorted(frame))
                report["still_open"] = len(pending)
                report["seconds"] = round(time.monotonic() - started, 2)
                report["other_answers"] = report["other_answers"][:10]
                print(json.dumps(report), flush=True)
                time.sleep(hold)
                for s in socks: s.close()
                """#
        )
    }
}

/// Samples a process's VmRSS and VmHWM from /proc/PID/status.
final class MemorySampler: Sendable {
    let pid: Int32
    private let peak = Locked(0)

    init(pid: Int32) { self.pid = pid }

    var peakRSSKiB: Int { peak.withLock { $0 } }

    func sample() -> (rssKiB: Int, hwmKiB: Int) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func value(_ key: String) -> Int {
            for line in text.split(separator: "\n") where line.hasPrefix(key) {
                return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
            }
            return 0
        }
        let result = (value("VmRSS:"), value("VmHWM:"))
        peak.withLock { $0 = max($0, result.0) }
        return result
    }

    /// Samples every 50 ms until cancelled.
    func run() async {
        while !Task.isCancelled {
            _ = sample()
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}
