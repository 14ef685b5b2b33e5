import Foundation
import Glibc
import SwitchboardClient
import SwitchboardProtocol
import Testing

/// The worker command the tests run: records, per worker, how many of its turns
/// run at once (from the worker's side: one marker file per running turn), sleeps
/// when the prompt starts with "slow" (10 s) or "medium" (1 s), and answers
/// `WORKER_ID|PROMPT`.
private func workerScript(in directory: String) throws -> String {
    let path = directory + "/worker.sh"
    let script = """
        #!/bin/sh
        p=$(cat)
        d="\(directory)/running-$SWITCHBOARD_WORKER_ID"
        mkdir -p "$d"
        touch "$d/$SWITCHBOARD_TURN_ID"
        ls "$d" | wc -l >> "$d.counts"
        case "$p" in
          slow*) sleep 10 ;;
          medium*) sleep 1 ;;
          *) sleep 0.3 ;;
        esac
        rm -f "$d/$SWITCHBOARD_TURN_ID"
        printf '%s|%s' "$SWITCHBOARD_WORKER_ID" "$p"
        """
    try script.write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o755)
    return path
}

private let unavailableExit = 10 + Int32(StatusCode.unavailable.rawValue)

extension EndToEnd {
    @Suite("Workers")
    struct WorkerTests {
        /// Starts `switchboard worker` and waits until it is registered; returns
        /// the process and its worker id.
        func startWorker(_ server: ServerProcess, queue: String = "q", capacity: Int = 2) async throws -> (ChildProcess, String) {
            let script = try workerScript(in: server.directory.path)
            let worker = try server.startCLI(["worker", "--queue", queue, "--capacity", "\(capacity)", "--kill-grace", "200ms", "--", script])
            var id: String?
            let registered = await eventually(timeout: .seconds(10)) {
                if let line = worker.stderr.split(separator: "\n").first(where: { $0.hasPrefix("worker w-") }) {
                    id = String(line.dropFirst("worker ".count).prefix { $0 != ":" })
                }
                return id != nil || !worker.isRunning
            }
            try #require(registered && id != nil, "worker did not register: \(worker.stderr)")
            return (worker, id!)
        }

        func workers(_ server: ServerProcess) async throws -> [[String: Any]] {
            let status = try await server.cli(["status", "--json"])
            try #require(status.status == 0, "\(status)")
            return try jsonObject(status.stdout)["workers"] as? [[String: Any]] ?? []
        }

        /// The most turns each worker ran at once, from its marker counts.
        func maxConcurrency(_ server: ServerProcess, worker id: String) -> Int {
            let path = server.directory.path + "/running-\(id).counts"
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }.max() ?? 0
        }

        @Test("two workers of capacity 2, six sessions at once: at most 2 per worker, all served, sessions stick")
        func sixSessionsTwoWorkers() async throws {
            try await withServer { server in
                let (w1, id1) = try await startWorker(server)
                let (w2, id2) = try await startWorker(server)
                defer { w1.kill(signal: SIGKILL); w2.kill(signal: SIGKILL) }
                let sessions = (1...6).map { "s\($0)" }
                for id in sessions {
                    let create = try await server.cli(["session", "create", "--id", id, "--backend", "worker:q"])
                    try #require(create.status == 0, "\(create)")
                }
                let prompts = try sessions.map { id in
                    try server.startCLI(["prompt", "--session", id, "medium-\(id)"])
                }
                var servedBy: [String: String] = [:]
                for (id, prompt) in zip(sessions, prompts) {
                    let result = await prompt.finish(timeout: .seconds(30))
                    #expect(result.status == 0, "\(result)")
                    let parts = result.stdout.split(separator: "|", maxSplits: 1).map(String.init)
                    try #require(parts.count == 2, "\(result)")
                    #expect(parts[1] == "medium-\(id)", "\(result)")
                    #expect([id1, id2].contains(parts[0]), "\(result)")
                    servedBy[id] = parts[0]
                }
                #expect(maxConcurrency(server, worker: id1) <= 2, "worker \(id1) ran more than 2 turns at once")
                #expect(maxConcurrency(server, worker: id2) <= 2, "worker \(id2) ran more than 2 turns at once")
                #expect(maxConcurrency(server, worker: id1) >= 1 && maxConcurrency(server, worker: id2) >= 1)

                // Later turns of each session go back to the worker that served it.
                for round in 1...2 {
                    for id in sessions {
                        let again = try await server.cli(["prompt", "--session", id, "again-\(round)"])
                        #expect(again.status == 0, "\(again)")
                        #expect(again.stdout == "\(servedBy[id]!)|again-\(round)", "\(id): \(again)")
                    }
                }
                let listed = try await workers(server)
                #expect(listed.compactMap { $0["worker_id"] as? String }.sorted() == [id1, id2].sorted())
                let served = listed.compactMap { jsonInt($0["turns_served"]) }.reduce(0, +)
                #expect(served == 18)
                #expect(listed.allSatisfy { jsonInt($0["capacity"]) == 2 && jsonInt($0["in_flight"]) == 0 })
            }
        }

        @Test("SIGKILL of a worker mid two turns: both clients get UNAVAILABLE, the sessions move on")
        func killedWorker() async throws {
            try await withServer { server in
                let (w1, id1) = try await startWorker(server)
                defer { w1.kill(signal: SIGKILL) }
                for id in ["a", "b"] {
                    let create = try await server.cli(["session", "create", "--id", id, "--backend", "worker:q"])
                    try #require(create.status == 0, "\(create)")
                }
                let prompts = try ["a", "b"].map { try server.startCLI(["prompt", "--session", $0, "slow"]) }
                let running = try await eventually(timeout: .seconds(10)) {
                    try await workers(server).first.flatMap { jsonInt($0["in_flight"]) } == 2
                }
                try #require(running, "both turns never reached the worker: \(w1.stderr)")
                let (w2, id2) = try await startWorker(server)
                defer { w2.kill(signal: SIGKILL) }

                w1.kill(signal: SIGKILL)
                for prompt in prompts {
                    let result = await prompt.finish(timeout: .seconds(10))
                    #expect(!result.timedOut, "the prompt hung after its worker died: \(result)")
                    #expect(result.status == unavailableExit, "\(result)")
                    #expect(result.stderr.contains("UNAVAILABLE"), "\(result)")
                }
                let gone = try await eventually(timeout: .seconds(5)) {
                    try await workers(server).compactMap { $0["worker_id"] as? String } == [id2]
                }
                #expect(gone, "worker \(id1) still listed")
                for id in ["a", "b"] {
                    let next = try await server.cli(["prompt", "--session", id, "next"])
                    #expect(next.status == 0, "\(next)")
                    #expect(next.stdout == "\(id2)|next", "\(next)")
                }
            }
        }

        @Test("a hung worker (SIGSTOP) is dropped by the heartbeat check; other workers' turns are unaffected")
        func hungWorker() async throws {
            try await withServer(["--worker-heartbeat-interval", "100ms", "--worker-heartbeat-timeout", "1s"]) { server in
                let (w1, id1) = try await startWorker(server)
                defer { w1.kill(signal: SIGCONT); w1.kill(signal: SIGKILL) }
                for id in ["h", "o"] {
                    let create = try await server.cli(["session", "create", "--id", id, "--backend", "worker:q"])
                    try #require(create.status == 0, "\(create)")
                }
                let hung = try server.startCLI(["prompt", "--session", "h", "slow"])
                let running = try await eventually(timeout: .seconds(10)) {
                    try await workers(server).first.flatMap { jsonInt($0["in_flight"]) } == 1
                }
                try #require(running)
                let (w2, id2) = try await startWorker(server)
                defer { w2.kill(signal: SIGKILL) }
                let other = try server.startCLI(["prompt", "--session", "o", "medium-o"])
                w1.kill(signal: SIGSTOP)

                let hungResult = await hung.finish(timeout: .seconds(15))
                #expect(!hungResult.timedOut, "\(hungResult)")
                #expect(hungResult.status == unavailableExit, "\(hungResult)")
                #expect(hungResult.stderr.contains("heartbeat"), "\(hungResult)")
                let otherResult = await other.finish(timeout: .seconds(15))
                #expect(otherResult.status == 0, "\(otherResult)")
                #expect(otherResult.stdout == "\(id2)|medium-o", "\(otherResult)")
                let listed = try await workers(server).compactMap { $0["worker_id"] as? String }
                #expect(listed == [id2], "the hung worker \(id1) is still listed")
            }
        }

        @Test("a --cancel-on-disconnect client that disconnects: the worker is told and its capacity is free again")
        func cancellationReachesWorker() async throws {
            try await withServer { server in
                let (w1, _) = try await startWorker(server, capacity: 1)
                defer { w1.kill(signal: SIGKILL) }
                for id in ["c", "d"] {
                    let create = try await server.cli(["session", "create", "--id", id, "--backend", "worker:q", "--fail-if-no-worker"])
                    try #require(create.status == 0, "\(create)")
                }
                let prompt = try server.startCLI(["prompt", "--session", "c", "--cancel-on-disconnect", "slow"])
                let started = await eventually(timeout: .seconds(10)) { w1.stderr.contains("started (session c") }
                try #require(started, "\(w1.stderr)")
                // Capacity 1 is taken: a fail-fast session is refused at once.
                let refused = try await server.cli(["prompt", "--session", "d", "quick"])
                #expect(refused.status == unavailableExit, "\(refused)")

                prompt.kill(signal: SIGKILL)
                let cancelled = await eventually(timeout: .seconds(10)) { w1.stderr.contains("cancelled") }
                #expect(cancelled, "no cancellation reached the worker: \(w1.stderr)")
                let free = try await eventually(timeout: .seconds(5)) {
                    try await workers(server).first.flatMap { jsonInt($0["in_flight"]) } == 0
                }
                #expect(free)
                let next = try await server.cli(["prompt", "--session", "d", "quick"])
                #expect(next.status == 0, "\(next)")
                #expect(next.stdout.hasSuffix("|quick"), "\(next)")
            }
        }

        @Test("bad workers get clear errors: capacity 0, output for a foreign turn, garbage; others unaffected")
        func badWorkers() async throws {
            try await withServer { server in
                let (good, goodID) = try await startWorker(server)
                defer { good.kill(signal: SIGKILL) }
                let create = try await server.cli(["session", "create", "--id", "g", "--backend", "worker:q"])
                try #require(create.status == 0, "\(create)")

                // Capacity 0.
                await #expect {
                    _ = try await WorkerSession.connect(socketPath: server.socketPath, register: WorkerRegister(taskQueue: "q", capacity: 0))
                } throws: { error in
                    let error = error as? SwitchboardError
                    return error?.code == .invalidArgument && error?.message.contains("capacity") == true
                }

                // Output for a turn it does not own.
                let rogue = try await WorkerSession.connect(socketPath: server.socketPath, register: WorkerRegister(taskQueue: "other", capacity: 1))
                try await rogue.output(turnID: "t-000000000001", Array("stolen".utf8))
                do {
                    for try await event in rogue.events { Issue.record("unexpected \(event)") }
                    Issue.record("the rogue worker's call ended without an error")
                } catch let error as SwitchboardError {
                    #expect(error.code == .invalidArgument)
                    #expect(error.message.contains("not assigned"), "\(error)")
                }

                // Garbage on a worker connection: that connection ends with a GoAway.
                let raw = try RawConnection(path: server.socketPath)
                try raw.handshake()
                try raw.send(Frame(callID: 1, kind: .start(CallStart(
                    method: MethodName.workerConnect,
                    payload: .workerMessage(.register(WorkerRegister(taskQueue: "q", capacity: 1)))
                ))))
                try raw.send([0, 0, 0, 5, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
                let frames = try raw.receiveUntilClosed(timeout: .seconds(10))
                let goAway = frames.compactMap { frame -> GoAway? in
                    if case .goAway(let goAway) = frame.kind { goAway } else { nil }
                }.first
                #expect(goAway?.code == .invalidArgument, "\(frames)")

                // A wrong payload on the worker call: INVALID_ARGUMENT for that call only.
                let raw2 = try RawConnection(path: server.socketPath)
                try raw2.handshake()
                try raw2.send(Frame(callID: 1, kind: .start(CallStart(
                    method: MethodName.workerConnect,
                    payload: .promptRequest(PromptRequest(sessionID: "g", prompt: "x"))
                ))))
                let end = try raw2.receive(timeout: .seconds(5))
                guard case .frame(let frame) = end, case .end(let callEnd) = frame.kind else {
                    Issue.record("expected a CallEnd, got \(end)")
                    return
                }
                #expect(callEnd.code == .invalidArgument, "\(callEnd)")

                // The good worker and the session are unaffected.
                let prompt = try await server.cli(["prompt", "--session", "g", "fine"])
                #expect(prompt.status == 0, "\(prompt)")
                #expect(prompt.stdout == "\(goodID)|fine", "\(prompt)")
                let listed = try await workers(server).compactMap { $0["worker_id"] as? String }
                #expect(listed == [goodID], "\(listed)")
            }
        }
    }
}
