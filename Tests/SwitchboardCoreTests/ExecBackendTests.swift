import Foundation
import SwitchboardCore
import Synchronization
import SwitchboardProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Exec backend")
struct ExecBackendTests {
    func harness(_ command: [String], killGrace: Duration = .milliseconds(200), environment: [String: String]? = nil)
        -> Harness
    {
        Harness(exec: ExecBackend(command: command, killGrace: killGrace, environment: environment))
    }

    func run(_ harness: Harness, _ prompt: String, session: String = "s") async throws -> (TurnOutcome, EventRecorder) {
        if harness.registry.managedSession(id: session) == nil {
            try await harness.createSession(session, backend: "exec")
        }
        let recorder = EventRecorder()
        let outcome = await value(of: harness.start(try harness.submit(session, prompt), recorder: recorder))
        return (outcome, recorder)
    }

    @Test("the prompt goes to stdin and stdout comes back; exit 0 is OK")
    func catRoundTrip() async throws {
        let (outcome, recorder) = try await run(harness(["cat"]), "hello\nexec")
        #expect(outcome.code == .ok)
        #expect(outcome.finished.stopReason == "exit:0")
        #expect(recorder.text == "hello\nexec")
        #expect(recorder.chunks.map(\.sequence) == (0..<recorder.chunks.count).map { UInt64($0 + 1) })
    }

    @Test("a large prompt and output flow at the same time (no pipe deadlock)")
    func largeRoundTrip() async throws {
        let prompt = String(repeating: "0123456789abcdef", count: 40_000)  // 640 KB
        let (outcome, recorder) = try await run(harness(["cat"]), prompt)
        #expect(outcome.code == .ok)
        #expect(recorder.text.utf8.count == prompt.utf8.count)
        #expect(recorder.text == prompt)
        #expect(outcome.finished.bytes == UInt64(prompt.utf8.count))
    }

    @Test("a slow reader slows the command instead of buffering without bound")
    func backpressure() async throws {
        let harness = harness(["sh", "-c", "head -c 2000000 /dev/zero"])
        try await harness.createSession("s", backend: "exec")
        let received = Counter()
        let turn = try harness.submit("s", "")
        let outcome = await value(of: Task {
            await turn.run { event in
                if case .output(let chunk) = event {
                    received.add(chunk.data.count)
                    try await Task.sleep(for: .microseconds(200))
                }
            }
        })
        #expect(outcome.code == .ok)
        #expect(received.value == 2_000_000)
    }

    @Test("stdout is streamed while the command still runs")
    func streamsBeforeExit() async throws {
        let harness = harness(["sh", "-c", "echo first; sleep 30; echo never"])
        try await harness.createSession("s", backend: "exec")
        let recorder = EventRecorder()
        let task = harness.start(try harness.submit("s", ""), recorder: recorder)
        await eventually("first line") { recorder.text == "first\n" }
        task.cancel()
        let outcome = await value(of: task)
        #expect(outcome.code == .cancelled)
        #expect(recorder.text == "first\n")
    }

    @Test("exit N is UNKNOWN with the last stderr line")
    func nonZeroExit() async throws {
        let (outcome, _) = try await run(
            harness(["sh", "-c", "echo noise >&2; echo 'last words' >&2; echo out; exit 3"]),
            ""
        )
        #expect(outcome.code == .unknown)
        #expect(outcome.message == "command exited with status 3: last words")
        #expect(outcome.finished.chunks >= 1)
    }

    /// A NUL in the status message would be refused on the wire (and a worker's
    /// `failed` carrying it refused, its turn left without an end).
    @Test("a NUL in the last stderr line becomes U+FFFD in the message")
    func nulInStderr() async throws {
        let (outcome, _) = try await run(harness(["sh", "-c", "printf 'bad\\000line\\n' >&2; exit 2"]), "")
        #expect(outcome.code == .unknown)
        #expect(outcome.message == "command exited with status 2: bad\u{FFFD}line")
    }

    @Test("only the last 4 KiB of a long stderr are kept")
    func longStderr() async throws {
        let (outcome, _) = try await run(
            harness(["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x >&2; echo >&2; echo final >&2; exit 1"]),
            ""
        )
        #expect(outcome.code == .unknown)
        #expect(outcome.message == "command exited with status 1: final")
    }

    @Test("death by a signal we did not send is ABORTED")
    func killedBySignal() async throws {
        let (outcome, _) = try await run(harness(["sh", "-c", "kill -9 $$"]), "")
        #expect(outcome.code == .aborted)
        #expect(outcome.message.contains("signal 9"))
    }

    @Test("a command that cannot start is FAILED_PRECONDITION")
    func spawnFailure() async throws {
        let (outcome, _) = try await run(harness(["/nonexistent/switchboard-test-command"]), "")
        #expect(outcome.code == .failedPrecondition)
        #expect(outcome.message.hasPrefix("cannot start command"))
        #expect(outcome.message.contains("No such file"))
    }

    @Test("the environment is the configured one plus the session and turn ids")
    func environment() async throws {
        let harness = harness(
            ["/bin/sh", "-c", "echo \"$SWITCHBOARD_SESSION_ID $FOO ${HOME:-unset} $SWITCHBOARD_TURN_ID\""],
            environment: ["FOO": "bar"]
        )
        try await harness.createSession("env-test", backend: "exec")
        let turn = try harness.submit("env-test", "")
        let recorder = EventRecorder()
        let outcome = await value(of: harness.start(turn, recorder: recorder))
        #expect(outcome.code == .ok)
        #expect(recorder.text == "env-test bar unset \(turn.turnID)\n")
    }

    @Test("a command that traps SIGTERM is killed after the grace period, its whole group with it")
    func sigtermTrappingCommandIsKilled() async throws {
        let grace = Duration.milliseconds(300)
        let harness = harness(["sh", "-c", "echo $$; trap '' TERM; sleep 60"], killGrace: grace)
        try await harness.createSession("s", backend: "exec")
        let recorder = EventRecorder()
        let task = harness.start(try harness.submit("s", ""), recorder: recorder)
        await eventually("pid printed") { recorder.text.hasSuffix("\n") }
        let group = try #require(pid_t(recorder.text.trimmingCharacters(in: .whitespacesAndNewlines)))
        await eventually("sleep started") { liveProcesses(inGroup: group).count >= 2 }

        let closedAt = ContinuousClock.now
        _ = try await harness.registry.closeSession(id: "s", reason: "test", caller: .server)
        let outcome = await value(of: task)
        let elapsed = closedAt.duration(to: .now)
        #expect(outcome.code == .cancelled)
        #expect(outcome.message == "session closed: test")
        // SIGTERM was ignored, so only the SIGKILL after the grace ended it; and the
        // turn ended at about the grace, not after the command's 60 seconds.
        #expect(elapsed >= grace)
        #expect(elapsed < .seconds(10))
        #expect(liveProcesses(inGroup: group).isEmpty)
        // The leader was reaped by us: it is not even a zombie.
        #expect(processState(group) == nil)
    }

    @Test("cancelling a turn kills the command's whole process group")
    func cancellationKillsGroup() async throws {
        let harness = harness(["sh", "-c", "echo $$; sleep 60 & sleep 60; wait"], killGrace: .seconds(5))
        try await harness.createSession("s", backend: "exec")
        let recorder = EventRecorder()
        let task = harness.start(try harness.submit("s", ""), recorder: recorder)
        await eventually("pid printed") { recorder.text.hasSuffix("\n") }
        let group = try #require(pid_t(recorder.text.trimmingCharacters(in: .whitespacesAndNewlines)))
        await eventually("both sleeps started") { liveProcesses(inGroup: group).count >= 3 }

        task.cancel()
        let outcome = await value(of: task)
        #expect(outcome.code == .cancelled)
        await eventually("group gone") { liveProcesses(inGroup: group).isEmpty }
        #expect(processState(group) == nil)
    }

    @Test("the turn deadline kills a hung command")
    func deadlineKillsCommand() async throws {
        // The shell writes its pid (its process group) to a file, not to stdout:
        // on a loaded machine the turn's output can still be on its way through
        // the cooperative pool when the deadline cancels the turn, and is dropped.
        let pidFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("sb-deadline-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: pidFile) }
        let harness = harness(["sh", "-c", "echo $$ > \"$1\"; exec sleep 60", "sh", pidFile])
        try await harness.createSession("s", backend: "exec", settings: SessionSettings(turnDeadlineMs: UInt64(TestTimeScale.ms(3_000))))
        let recorder = EventRecorder()
        let outcome = await value(of: harness.start(try harness.submit("s", ""), recorder: recorder))
        #expect(outcome.code == .deadlineExceeded)
        #expect(outcome.finished.stopReason == "deadline")
        let written = (try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? ""
        let group = try #require(pid_t(written.trimmingCharacters(in: .whitespacesAndNewlines)), "pid file: \(written.debugDescription)")
        // The leader was the only process: reaped, so the group no longer exists.
        #expect(kill(-group, 0) == -1 && errno == ESRCH)
    }

    @Test("a stalled command is ended as stalled")
    func stallKillsCommand() async throws {
        let harness = harness(["sh", "-c", "echo hi; exec sleep 60"])
        try await harness.createSession("s", backend: "exec", settings: SessionSettings(stallTimeoutMs: UInt64(TestTimeScale.ms(3_000))))
        let (outcome, recorder) = try await run(harness, "")
        #expect(outcome.code == .deadlineExceeded)
        #expect(outcome.finished.stopReason == "stalled")
        #expect(recorder.text == "hi\n")
    }

    @Test("concurrent spawns do not leak pipe descriptors into each other's children")
    func noDescriptorLeaks() async throws {
        // Each child lists its descriptors with their targets. Its stdio pipes
        // ("pipe:[inode]", one inode per pipe whichever end) are its own turn's;
        // a leak is a concurrent turn's pipe showing up above fd 2. Pipes other
        // tests of this process create (Foundation's `Pipe` is inheritable) may
        // appear too, but never with a turn's inode, so they do not count.
        let harness = harness(["sh", "-c", "sleep 0.05; ls -l /proc/$$/fd"])
        let listings = await withTaskGroup(of: [Int32: String].self) { group in
            for index in 0..<6 {
                group.addTask {
                    guard let (outcome, recorder) = try? await run(harness, "", session: "s\(index)"),
                        outcome.code == .ok
                    else {
                        Issue.record("turn \(index) failed")
                        return [:]
                    }
                    var descriptors: [Int32: String] = [:]
                    // "lrwx------ 1 user group 64 Nov 21 17:32 3 -> pipe:[12345]"
                    for line in recorder.text.split(separator: "\n") {
                        let words = line.split(separator: " ")
                        guard let arrow = words.firstIndex(of: "->"), arrow > 0, arrow + 1 < words.count,
                            let fd = Int32(words[arrow - 1])
                        else { continue }
                        descriptors[fd] = String(words[arrow + 1])
                    }
                    return descriptors
                }
            }
            var listings: [[Int32: String]] = []
            for await listing in group { listings.append(listing) }
            return listings
        }
        #expect(listings.count == 6)
        let turnPipes = Set(listings.flatMap { descriptors in
            (0...2).compactMap { descriptors[$0] }.filter { $0.hasPrefix("pipe:") }
        })
        // stdout and stderr of six turns: at least six distinct pipes (the test
        // would prove nothing if the children's stdio were not pipes).
        #expect(turnPipes.count >= 6, "stdio pipes seen: \(turnPipes)")
        for descriptors in listings {
            #expect(Set(descriptors.keys).isSuperset(of: [0, 1, 2]))
            let leakedPipes = descriptors.filter { fd, target in fd > 2 && turnPipes.contains(target) }
            #expect(leakedPipes.isEmpty, "leaked: \(leakedPipes)")
        }
    }
}

extension ExecBackendTests {
    @Test("a command gets only stdio, even a descriptor this process left inheritable")
    func onlyStdioIsInherited() async throws {
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)  // plain pipe(): no close-on-exec
        defer { close(fds[0]); close(fds[1]) }
        let target = try #require(try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fds[0])"))
        let harness = harness(["sh", "-c", "ls -l /proc/$$/fd"])
        let (outcome, recorder) = try await run(harness, "")
        #expect(outcome.code == .ok)
        #expect(recorder.text.contains("pipe:["), "the listing shows the command's stdio pipes: \(recorder.text)")
        #expect(!recorder.text.contains(target), "the command inherited \(target): \(recorder.text)")
    }
}

/// Thread-safe byte counter for sinks.
final class Counter: Sendable {
    private let total = Mutex(0)
    func add(_ count: Int) { total.withLockAnnotated { $0 += count } }
    var value: Int { total.withLockAnnotated { $0 } }
}

/// `/proc/<pid>/stat` fields 3 (state) and 5 (process group), or nil.
private func processState(_ pid: pid_t) -> (state: Character, group: pid_t)? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 2, let state = fields[0].first, let group = pid_t(fields[2]) else { return nil }
    return (state, group)
}

/// Processes of `group` that are still alive. Zombies are dead: orphans killed with
/// their group are reparented to PID 1, which in some sandboxes never reaps them.
private func liveProcesses(inGroup group: pid_t) -> [pid_t] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { pid_t($0) }.filter { pid in
        guard let (state, processGroup) = processState(pid) else { return false }
        return processGroup == group && state != "Z" && state != "X"
    }
}
