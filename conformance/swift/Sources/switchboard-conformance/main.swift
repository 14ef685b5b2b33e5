// Swift runner of the conformance suite (conformance/scenarios.json).
//
//   switchboard-conformance --socket PATH --scenario NAME [key=value ...]
//
// Runs one scenario with the SwitchboardClient library against the server at PATH.
// Scenarios the library cannot express (a Hello with other versions, bytes that are
// not a frame) use a raw socket and SwitchboardProtocol's frame codec instead.
// Exit 0 = pass, 1 = fail (reason on stderr), 2 = unknown scenario / usage.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SwitchboardClient
import SwitchboardProtocol

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func check(_ condition: Bool, _ what: @autoclosure () -> String) throws {
    if !condition { throw Failure(what()) }
}

func words(_ n: Int) -> String {
    (1...max(n, 1)).map { "w\($0)" }.joined(separator: " ")
}

/// Runs `body`, which must fail with the status code named `want`.
@discardableResult
func expectCode(_ want: String, _ what: String, _ body: () async throws -> Void) async throws -> SwitchboardError {
    do {
        try await body()
    } catch let error as SwitchboardError {
        try check(error.code.name == want, "\(what): got \(error), want \(want)")
        return error
    }
    throw Failure("\(what): succeeded, want \(want)")
}

/// Collects a whole prompt's output; throws the call's error.
func output(_ stream: PromptStream) async throws -> String {
    var bytes: [UInt8] = []
    for try await event in stream {
        if case .output(let chunk) = event { bytes += chunk.data }
    }
    return String(decoding: bytes, as: UTF8.self)
}

struct Runner {
    let socketPath: String
    let args: [String: String]

    var prefix: String { args["prefix"] ?? "swift" }

    func p(_ key: String) throws -> String {
        guard let value = args[key] else { throw Failure("missing argument \(key)") }
        return value
    }

    func e(_ key: String) throws -> String { try p("expect." + key) }

    func n(_ key: String) throws -> Int {
        guard let value = Int(try p(key)) else { throw Failure("\(key) is not a number") }
        return value
    }

    func sid(_ suffix: String) -> String { "\(prefix)-\(suffix)" }

    func withClient<R: Sendable>(_ body: (SwitchboardClient) async throws -> R) async throws -> R {
        var configuration = ClientConfiguration()
        configuration.clientName = "conformance-swift"
        return try await withSwitchboardClient(socketPath: socketPath, configuration: configuration, body)
    }

    // MARK: handshake

    func handshake() async throws {
        try await withClient { client in
            try check(client.welcome.version == UInt32(try n("expect.version")), "version \(client.welcome.version)")
            try check(client.welcome.serverName == (try e("server_name")), "server name \(client.welcome.serverName)")
            try check(client.welcome.maxFrameSize > 0 && client.welcome.maxConcurrentCalls > 0, "limits are zero")
        }
    }

    /// The client library always offers the versions it speaks, so this one is raw.
    func handshake_unsupported_version() async throws {
        let raw = try RawConnection(path: socketPath)
        try raw.send(Frame(kind: .hello(Hello(minVersion: UInt32(try n("min_version")), maxVersion: UInt32(try n("max_version")), clientName: "conformance-swift"))))
        let goAway = try raw.expectGoAway()
        try check(goAway.code.name == (try e("code")), "GoAway \(goAway)")
        try check(goAway.message.contains(try e("message_contains")), "message \(goAway.message)")
        try check(try raw.isClosed(), "connection still open after GoAway")
    }

    func handshake_hello_first() async throws {
        let raw = try RawConnection(path: socketPath)
        try raw.send(Frame(kind: .ping(nonce: 1)))
        let goAway = try raw.expectGoAway()
        try check(goAway.code.name == (try e("code")), "GoAway \(goAway)")
        try check(try raw.isClosed(), "connection still open after GoAway")
    }

    func health() async throws {
        let status = try await withClient { try await $0.health() }
        try check(status == .serving && (try e("status")) == "SERVING", "health \(status)")
    }

    func ping() async throws {
        try await withClient { client in
            try await client.ping()
            try await client.ping()
        }
    }

    // MARK: sessions

    func sessions_create_get_close() async throws {
        let id = sid("s")
        let label = Label(key: try p("label_key"), value: try p("label_value"))
        let backend = try p("backend")
        let afterClose = try e("after_close")
        let state = try e("state")
        try await withClient { client in
            let s = try await client.createSession(CreateSessionRequest(sessionID: id, labels: [label], settings: SessionSettings(backend: backend)))
            try check(s.id == id && s.labels == [label], "created \(s)")
            try check(s.settings.backend == backend, "backend \(s.settings.backend)")
            try check(s.settings.idleTimeoutMs > 0 && s.settings.turnDeadlineMs > 0, "effective settings not filled in")
            try check(s.state.description.uppercased() == state, "state \(s.state)")
            let got = try await client.getSession(id: id)
            try check(got.id == id && got.labels == [label], "get \(got)")
            let closed = try await client.closeSession(id: id, reason: "conformance")
            try check(closed.session?.id == id, "close \(closed)")
            try await expectCode(afterClose, "get after close") { _ = try await client.getSession(id: id) }
            try await expectCode(afterClose, "close after close") { _ = try await client.closeSession(id: id) }
        }
    }

    func sessions_server_chosen_id() async throws {
        let pattern = try Regex(try e("id_pattern"))
        try await withClient { client in
            let s = try await client.createSession()
            try check(s.id.wholeMatch(of: pattern) != nil, "id \(s.id)")
            _ = try await client.closeSession(id: s.id)
        }
    }

    func sessions_list() async throws {
        let count = try n("count")
        let pageSize = UInt32(try n("page_size"))
        let firstPage = try n("expect.first_page")
        let secondPage = try n("expect.second_page")
        let selector = [Label(key: "conformance", value: prefix)]
        let ids = (0..<count).map { sid("l\($0)") }
        let unlabelled = sid("unlabelled")
        try await withClient { client in
            for id in ids {
                _ = try await client.createSession(CreateSessionRequest(sessionID: id, labels: selector))
            }
            _ = try await client.createSession(CreateSessionRequest(sessionID: unlabelled))
            let all = try await client.listSessions(ListSessionsRequest(labelSelector: selector))
            try check(all.sessions.map(\.id) == ids.sorted(), "list \(all.sessions.map(\.id))")
            try check(all.nextPageToken.isEmpty, "token on the only page")
            let first = try await client.listSessions(ListSessionsRequest(labelSelector: selector, pageSize: pageSize))
            try check(first.sessions.count == firstPage && !first.nextPageToken.isEmpty, "first page")
            let second = try await client.listSessions(ListSessionsRequest(labelSelector: selector, pageSize: pageSize, pageToken: first.nextPageToken))
            try check(second.sessions.count == secondPage && second.nextPageToken.isEmpty, "second page")
            try check((first.sessions + second.sessions).map(\.id) == ids.sorted(), "pages")
            for id in ids + [unlabelled] { _ = try await client.closeSession(id: id) }
        }
    }

    func server_status() async throws {
        let id = sid("st")
        let protocolVersion = UInt32(try n("expect.protocol_version"))
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            let status = try await client.serverStatus(includeSessions: true)
            try check(status.protocolVersion == protocolVersion, "protocol \(status.protocolVersion)")
            try check(!status.serverVersion.isEmpty && status.pid > 0 && status.connections >= 1 && status.sessionsTotal >= 1, "status \(status)")
            try check(status.sessions.contains { $0.id == id }, "new session missing")
            try check(try await client.serverStatus().sessions.isEmpty, "sessions without include_sessions")
            _ = try await client.closeSession(id: id)
        }
    }

    func session_status() async throws {
        let id = sid("ss")
        let prompt = try p("prompt")
        let turnState = try e("turn_state")
        let turnCode = try e("turn_code")
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            _ = try await output(client.prompt(sessionID: id, prompt))
            let status = try await client.sessionStatus(id: id)
            try check(status.session?.id == id && status.session?.turnsCompleted == 1, "session \(String(describing: status.session))")
            try check(status.turns.count == 1, "turns \(status.turns)")
            let turn = status.turns[0]
            try check(turn.state.description.uppercased() == turnState, "state \(turn.state)")
            try check(turn.code.name == turnCode, "code \(turn.code)")
            try check(turn.bytes == UInt64(prompt.utf8.count) && turn.promptPreview == prompt, "turn \(turn)")
            _ = try await client.closeSession(id: id)
        }
    }

    // MARK: prompts

    func prompt_stream() async throws {
        let id = sid("p")
        let prompt = try p("prompt")
        let queuePosition = UInt32(try n("expect.queue_position"))
        try check(try e("code") == "OK", "this runner expects an OK end")
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            var events: [PromptEvent] = []
            for try await event in client.prompt(sessionID: id, prompt) { events.append(event) }  // throws unless OK
            guard events.count >= 3, case .accepted(let accepted) = events[0], case .started(let startedID) = events[1],
                  case .finished(let finished) = events[events.count - 1] else {
                throw Failure("events \(events)")
            }
            try check(accepted.queuePosition == queuePosition, "queue position \(accepted.queuePosition)")
            try check(startedID == accepted.turnID && finished.turnID == accepted.turnID, "turn ids differ")
            var bytes: [UInt8] = []
            var sequence: UInt64 = 0
            for event in events[2..<(events.count - 1)] {
                guard case .output(let chunk) = event else { throw Failure("not output: \(event)") }
                try check(chunk.sequence == sequence + 1, "sequence \(chunk.sequence) after \(sequence)")
                sequence = chunk.sequence
                bytes += chunk.data
            }
            try check(bytes == Array(prompt.utf8), "output != prompt")
            try check(finished.chunks == sequence && finished.bytes == UInt64(prompt.utf8.count), "finished \(finished)")
            _ = try await client.closeSession(id: id)
        }
    }

    func prompt_wait_when_busy() async throws {
        let id = sid("q")
        let firstPrompt = words(try n("first_words"))
        let secondPrompt = try p("second_prompt")
        let queuePosition = UInt32(try n("expect.queue_position"))
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            var first = client.prompt(sessionID: id, firstPrompt).makeAsyncIterator()
            guard case .accepted? = try await first.next() else { throw Failure("first not accepted") }
            var second = client.prompt(sessionID: id, secondPrompt).makeAsyncIterator()
            guard case .accepted(let accepted)? = try await second.next() else { throw Failure("second not accepted") }
            try check(accepted.queuePosition == queuePosition, "queue position \(accepted.queuePosition)")
            let a = try await drain(&first)
            let b = try await drain(&second)
            try check(a == firstPrompt && b == secondPrompt, "outputs \(a) / \(b)")
            let turns = try await client.sessionStatus(id: id).turns
            try check(turns.count == 2 && turns[1].endedAtMs <= turns[0].startedAtMs, "turns overlapped")
            _ = try await client.closeSession(id: id)
        }
    }

    func cancel_mid_stream() async throws {
        let id = sid("c")
        let count = try n("words")
        let after = try n("cancel_after_chunks")
        let code = try e("code")
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            // Cancelling the iterating task is the library's way to cancel a call: it
            // sends a Cancel frame, and the iteration ends with CANCELLED.
            let consumer = Task { () -> Result<Int, SwitchboardError> in
                var chunks = 0
                do {
                    for try await event in client.prompt(sessionID: id, words(count)) {
                        if case .output = event {
                            chunks += 1
                            if chunks == after { withUnsafeCurrentTask { $0?.cancel() } }
                        }
                    }
                    return .success(chunks)
                } catch let error as SwitchboardError {
                    return .failure(error)
                } catch {
                    return .failure(SwitchboardError(code: .unknown, message: "\(error)"))
                }
            }
            switch await consumer.value {
            case .success(let chunks): throw Failure("prompt ended OK after \(chunks) chunks, want \(code)")
            case .failure(let error): try check(error.code.name == code, "got \(error), want \(code)")
            }
            // The server recorded the turn as cancelled (it may still be finishing it).
            var turns: [TurnSummary] = []
            for _ in 0..<100 {
                turns = try await client.sessionStatus(id: id).turns
                if turns.count == 1, turns[0].state == .finished { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            try check(turns.count == 1 && turns[0].code.name == code, "turns \(turns)")
            try check(turns[0].chunks < UInt64(count), "all output was produced")
            try check(try await output(client.prompt(sessionID: id, "after")) == "after", "next prompt")
            _ = try await client.closeSession(id: id)
        }
    }

    func deadline() async throws {
        let id = sid("d")
        let timeout = Duration.milliseconds(try n("timeout_ms"))
        let prompt = words(try n("words"))
        let code = try e("code")
        let stopReason = try e("stop_reason")
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            try await expectCode(code, "prompt") { _ = try await output(client.prompt(sessionID: id, prompt, timeout: timeout)) }
            let turns = try await client.sessionStatus(id: id).turns
            try check(turns.count == 1 && turns[0].stopReason == stopReason, "turns \(turns)")
            _ = try await client.closeSession(id: id)
        }
    }

    // MARK: workers

    func withWorker<R: Sendable>(
        _ queue: String, capacity: UInt32 = 1, labels: [Label] = [], displayName: String = "",
        _ body: (WorkerSession) async throws -> R
    ) async throws -> R {
        var configuration = ClientConfiguration()
        configuration.clientName = "conformance-swift-worker"
        let worker = try await WorkerSession.connect(
            socketPath: socketPath,
            register: WorkerRegister(taskQueue: queue, capacity: capacity, labels: labels, displayName: displayName),
            configuration: configuration
        )
        do {
            let result = try await body(worker)
            await worker.close()
            return result
        } catch {
            await worker.close()
            throw error
        }
    }

    func worker_register() async throws {
        let queue = sid("wq")
        let label = Label(key: try p("label_key"), value: try p("label_value"))
        let capacity = UInt32(try n("capacity"))
        let displayName = try p("display_name")
        let pattern = try Regex(try e("worker_id_pattern"))
        try await withWorker(queue, capacity: capacity, labels: [label], displayName: displayName) { worker in
            try check(worker.workerID.wholeMatch(of: pattern) != nil, "worker id \(worker.workerID)")
            try check(worker.registered.heartbeatIntervalMs > 0 && worker.registered.heartbeatTimeoutMs > 0,
                      "registered \(worker.registered)")
            try await withClient { client in
                let status = try await client.serverStatus()
                let info = status.workers.filter { $0.workerID == worker.workerID }
                try check(info.count == 1, "worker \(worker.workerID) not in status")
                try check(info[0].taskQueue == queue && info[0].capacity == capacity && info[0].labels == [label]
                          && info[0].displayName == displayName, "worker info \(info[0])")
                let queues = status.workerQueues.filter { $0.taskQueue == queue }
                try check(queues.count == 1 && queues[0].workers == 1, "queues \(queues)")
            }
        }
        try await expectCode(try e("bad_capacity"), "register capacity 0") {
            try await withWorker(sid("wq0"), capacity: 0) { _ in }
        }
    }

    func worker_serves_turn() async throws {
        let queue = sid("wq")
        let id = sid("w")
        let prompt = try p("prompt")
        let stopReason = try p("stop_reason")
        let label = Label(key: try p("label_key"), value: try p("label_value"))
        let code = try e("code")
        try await withWorker(queue) { worker in
            try await withClient { client in
                _ = try await client.createSession(CreateSessionRequest(sessionID: id, labels: [label], settings: SessionSettings(backend: "worker:\(queue)")))
                let prompting = Task { () throws -> [PromptEvent] in
                    var events: [PromptEvent] = []
                    for try await event in client.prompt(sessionID: id, prompt) { events.append(event) }  // throws unless OK
                    return events
                }
                var commands = worker.events.makeAsyncIterator()
                guard case .assignment(let a)? = try await commands.next() else { throw Failure("no assignment") }
                try check(a.sessionID == id && a.prompt == prompt && a.sessionLabels == [label] && a.deadlineMs > 0, "assignment \(a)")
                for (i, word) in prompt.split(separator: " ", omittingEmptySubsequences: false).enumerated() {
                    try await worker.output(turnID: a.turnID, Array(((i > 0 ? " " : "") + word).utf8))
                }
                try await worker.finish(turnID: a.turnID, stopReason: stopReason)
                let events = try await prompting.value
                guard events.count >= 3, case .accepted(let accepted) = events[0], case .started(let startedID) = events[1],
                      case .finished(let finished) = events[events.count - 1] else {
                    throw Failure("events \(events)")
                }
                try check(accepted.turnID == a.turnID && startedID == a.turnID && finished.turnID == a.turnID, "turn ids differ")
                var bytes: [UInt8] = []
                var sequence: UInt64 = 0
                for event in events[2..<(events.count - 1)] {
                    guard case .output(let chunk) = event else { throw Failure("not output: \(event)") }
                    try check(chunk.sequence == sequence + 1, "sequence \(chunk.sequence) after \(sequence)")
                    sequence = chunk.sequence
                    bytes += chunk.data
                }
                try check(bytes == Array(prompt.utf8), "output != prompt")
                try check(finished.stopReason == stopReason && finished.chunks == sequence
                          && finished.bytes == UInt64(prompt.utf8.count), "finished \(finished)")
                let turns = try await client.sessionStatus(id: id).turns
                try check(turns.count == 1 && turns[0].code.name == code, "turns \(turns)")
                _ = try await client.closeSession(id: id)
            }
        }
    }

    func worker_fail() async throws {
        let queue = sid("wq")
        let id = sid("w")
        let message = try p("message")
        guard let code = (0...16).map({ StatusCode(rawValue: $0) }).first(where: { $0.name == (try? p("code")) }) else {
            throw Failure("unknown code")
        }
        let want = try e("code")
        try await withWorker(queue) { worker in
            try await withClient { client in
                _ = try await client.createSession(CreateSessionRequest(sessionID: id, settings: SessionSettings(backend: "worker:\(queue)")))
                let prompting = Task { () throws -> String in try await output(client.prompt(sessionID: id, "fail this")) }
                var commands = worker.events.makeAsyncIterator()
                guard case .assignment(let a)? = try await commands.next() else { throw Failure("no assignment") }
                try await worker.fail(turnID: a.turnID, code: code, message: message)
                let error = try await expectCode(want, "prompt") { _ = try await prompting.value }
                try check(error.message == message, "message \(error.message)")
                _ = try await client.closeSession(id: id)
            }
        }
    }

    func worker_cancellation() async throws {
        let queue = sid("wq")
        let id = sid("w")
        let prompt = try p("prompt")
        let code = try e("code")
        try await withWorker(queue) { worker in
            try await withClient { client in
                _ = try await client.createSession(CreateSessionRequest(sessionID: id, settings: SessionSettings(backend: "worker:\(queue)")))
                // Cancelling the iterating task cancels the call (a Cancel frame).
                let prompting = Task { () -> SwitchboardError? in
                    do {
                        for try await event in client.prompt(sessionID: id, prompt) {
                            if case .output = event { withUnsafeCurrentTask { $0?.cancel() } }
                        }
                        return nil
                    } catch let error as SwitchboardError {
                        return error
                    } catch {
                        return SwitchboardError(code: .unknown, message: "\(error)")
                    }
                }
                var commands = worker.events.makeAsyncIterator()
                guard case .assignment(let a)? = try await commands.next() else { throw Failure("no assignment") }
                try await worker.output(turnID: a.turnID, Array("partial".utf8))
                let error = await prompting.value
                try check(error?.code.name == code, "prompt ended with \(String(describing: error)), want \(code)")
                guard case .cancellation(let turnID, _)? = try await commands.next() else { throw Failure("no cancellation") }
                try check(turnID == a.turnID, "cancellation of \(turnID), want \(a.turnID)")
                // The worker serves the session's next turn.
                let next = Task { () throws -> String in try await output(client.prompt(sessionID: id, "next")) }
                guard case .assignment(let b)? = try await commands.next() else { throw Failure("no second assignment") }
                try await worker.output(turnID: b.turnID, Array("next".utf8))
                try await worker.finish(turnID: b.turnID)
                try check(try await next.value == "next", "next turn output")
                _ = try await client.closeSession(id: id)
            }
        }
    }

    // MARK: errors

    func error_not_found() async throws {
        let id = sid("missing")
        let code = try e("code")
        try await withClient { client in
            try await expectCode(code, "get") { _ = try await client.getSession(id: id) }
            try await expectCode(code, "close") { _ = try await client.closeSession(id: id) }
            try await expectCode(code, "session status") { _ = try await client.sessionStatus(id: id) }
            try await expectCode(code, "prompt") { _ = try await output(client.prompt(sessionID: id, "hi")) }
        }
    }

    func error_already_exists() async throws {
        let id = sid("dup")
        let code = try e("code")
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            try await expectCode(code, "second create") { _ = try await client.createSession(CreateSessionRequest(sessionID: id)) }
            _ = try await client.closeSession(id: id)
        }
    }

    func error_invalid_argument() async throws {
        let badID = try p("bad_id")
        let badBackend = try p("bad_backend")
        let code = try e("code")
        let id = sid("b")
        try await withClient { client in
            try await expectCode(code, "bad id") { _ = try await client.createSession(CreateSessionRequest(sessionID: badID)) }
            try await expectCode(code, "bad backend") {
                _ = try await client.createSession(CreateSessionRequest(sessionID: id, settings: SessionSettings(backend: badBackend)))
            }
        }
    }

    func error_reject_when_busy() async throws {
        let id = sid("r")
        let prompt = words(try n("words"))
        let code = try e("code")
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            var first = client.prompt(sessionID: id, prompt).makeAsyncIterator()
            guard case .accepted? = try await first.next() else { throw Failure("not accepted") }
            try await expectCode(code, "rejected prompt") { _ = try await output(client.prompt(sessionID: id, "x", whenBusy: .reject)) }
            try check(try await drain(&first) == prompt, "first turn output")
            _ = try await client.closeSession(id: id)
        }
    }

    func close_cancels_turns() async throws {
        let id = sid("x")
        let prompt = words(try n("words"))
        let code = try e("code")
        let cancelledTurns = UInt32(try n("expect.cancelled_turns"))
        let rejectedPrompts = UInt32(try n("expect.rejected_prompts"))
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            var running = client.prompt(sessionID: id, prompt).makeAsyncIterator()
            guard case .accepted? = try await running.next() else { throw Failure("running not accepted") }
            var queued = client.prompt(sessionID: id, "queued").makeAsyncIterator()
            guard case .accepted? = try await queued.next() else { throw Failure("queued not accepted") }
            let closed = try await client.closeSession(id: id, reason: "conformance")
            try check(closed.cancelledTurns == cancelledTurns && closed.rejectedPrompts == rejectedPrompts, "close \(closed)")
            try await expectCode(code, "running prompt") { _ = try await drain(&running) }
            try await expectCode(code, "queued prompt") { _ = try await drain(&queued) }
        }
    }

    func concurrent_calls() async throws {
        let ids = [sid("ca"), sid("cb")]
        let texts = [try p("prompt_a"), try p("prompt_b")]
        try check(try e("code") == "OK", "this runner expects an OK end")
        try await withClient { client in
            for id in ids { _ = try await client.createSession(CreateSessionRequest(sessionID: id)) }
            var a = client.prompt(sessionID: ids[0], texts[0]).makeAsyncIterator()
            var b = client.prompt(sessionID: ids[1], texts[1]).makeAsyncIterator()
            guard case .accepted? = try await a.next(), case .accepted? = try await b.next() else { throw Failure("not accepted") }
            let status = try await client.serverStatus(includeSessions: true)
            try check(Set(ids).isSubset(of: Set(status.sessions.map(\.id))), "status misses the sessions")
            var outputs: [[UInt8]] = [[], []]
            var live = [true, true]
            while live[0] || live[1] {  // interleave the two streams on the one connection
                if live[0] { live[0] = try await step(&a, into: &outputs[0]) }
                if live[1] { live[1] = try await step(&b, into: &outputs[1]) }
            }
            try check(outputs.map { String(decoding: $0, as: UTF8.self) } == texts, "outputs \(outputs)")
            for id in ids { _ = try await client.closeSession(id: id) }
        }
    }

    // MARK: ownership, turn history, attach

    func ownership_peer() async throws {
        let id = sid("own")
        let uid = UInt32(getuid())
        try await withClient { client in
            try check(client.welcome.peer.uid == uid, "Welcome peer uid \(client.welcome.peer.uid), this process is uid \(uid)")
            let created = try await client.createSession(CreateSessionRequest(sessionID: id))
            try check(created.ownerUID == uid, "owner_uid \(created.ownerUID) on create")
            try check(try await client.getSession(id: id).ownerUID == uid, "owner_uid on get")
            _ = try await client.sessionStatus(id: id)
            _ = try await client.closeSession(id: id)
        }
    }

    func list_turns_paging() async throws {
        let id = sid("lt")
        let prompts = try p("prompts").split(separator: "|").map(String.init)
        let pageSize = UInt32(try n("page_size"))
        let firstCount = try n("expect.first_page")
        let secondCount = try n("expect.second_page")
        let unknown = try e("unknown_session")
        try check(firstCount + secondCount == prompts.count, "expectations do not add up to the prompts")
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            let empty = try await client.listTurns(ListTurnsRequest(sessionID: id))
            try check(empty.turns.isEmpty && empty.nextPageToken.isEmpty, "session without turns: \(empty)")
            var ids: [String] = []
            for prompt in prompts {
                var iterator = client.prompt(sessionID: id, prompt).makeAsyncIterator()
                guard case .accepted(let accepted)? = try await iterator.next() else { throw Failure("not accepted") }
                ids.append(accepted.turnID)
                _ = try await drain(&iterator)
            }
            let first = try await client.listTurns(ListTurnsRequest(sessionID: id, pageSize: pageSize))
            try check(first.turns.count == firstCount && !first.nextPageToken.isEmpty, "first page \(first)")
            for (index, turn) in first.turns.enumerated() {
                try check(turn.summary.turnID == ids[index], "turn \(index) is \(turn.summary.turnID), want \(ids[index])")
                try check(turn.summary.state == .finished && turn.summary.code == .ok, "turn \(index) \(turn.summary)")
                try check(turn.summary.promptPreview == prompts[index], "preview \(turn.summary.promptPreview)")
                try check(turn.prompt.isEmpty && turn.output.isEmpty, "prompt/output without include_output")
            }
            let second = try await client.listTurns(ListTurnsRequest(sessionID: id, pageSize: pageSize, pageToken: first.nextPageToken))
            try check(second.turns.count == secondCount && second.nextPageToken.isEmpty, "second page \(second)")
            try check(second.turns.map(\.summary.turnID) == Array(ids[firstCount...]), "second page turns")
            let full = try await client.listTurns(ListTurnsRequest(sessionID: id, pageSize: UInt32(prompts.count), includeOutput: true))
            try check(full.turns.map(\.summary.turnID) == ids, "include_output turns")
            for (turn, prompt) in zip(full.turns, prompts) {
                try check(turn.prompt == prompt && turn.output == Array(prompt.utf8), "record \(turn)")
                try check(!turn.outputDropped, "output_dropped")
            }
            try await expectCode(unknown, "unknown session") { _ = try await client.listTurns(ListTurnsRequest(sessionID: sid("lt-missing"))) }
            _ = try await client.closeSession(id: id)
        }
    }

    func attach_after_sequence() async throws {
        let id = sid("att")
        let text = words(try n("words"))
        let after = UInt64(try n("after_sequence"))
        let code = try e("code")
        let state = try e("state")
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            var turnID = ""
            var chunks: [OutputChunk] = []
            for try await event in client.prompt(sessionID: id, text) {
                switch event {
                case .accepted(let accepted): turnID = accepted.turnID
                case .output(let chunk): chunks.append(chunk)
                default: break
                }
            }
            let total = UInt64(chunks.count)
            try check(total > after, "the prompt gave only \(total) chunks")
            let replay = try await attachParts(client.attach(sessionID: id, turnID: turnID, afterSequence: after), code: code)
            try check(replay.attached.turnID == turnID, "attached to \(replay.attached.turnID)")
            try check(replay.attached.state.description.uppercased() == state, "state \(replay.attached.state)")
            try check(replay.attached.lastSequence == total, "last_sequence \(replay.attached.lastSequence), want \(total)")
            try check(replay.outputs == Array(chunks[Int(after)...]), "chunks differ from the prompt's: \(replay.outputs.map(\.sequence))")
            try check(replay.finished.turnID == turnID && replay.finished.chunks == total, "finished \(replay.finished)")
            let all = try await attachParts(client.attach(sessionID: id), code: "OK")
            try check(all.attached.turnID == turnID, "empty turn id: not the most recent turn")
            try check(all.outputs.map(\.sequence) == Array(1...total), "from 0: sequences")
            try check(all.outputs.flatMap(\.data) == Array(text.utf8), "from 0: output != prompt")
            let none = try await attachParts(client.attach(sessionID: id, turnID: turnID, afterSequence: total), code: "OK")
            try check(none.outputs.isEmpty, "after the last chunk: \(none.outputs.count) chunks")
            _ = try await client.closeSession(id: id)
        }
    }

    func attach_cancelled_turn() async throws {
        let id = sid("attc")
        let count = try n("words")
        let after = try n("cancel_after_chunks")
        let code = try e("code")
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            // Cancelling the iterating task sends a Cancel frame (see cancel_mid_stream).
            let consumer = Task { () -> (String, SwitchboardError?) in
                var turnID = ""
                var chunks = 0
                do {
                    for try await event in client.prompt(sessionID: id, words(count)) {
                        if case .accepted(let accepted) = event { turnID = accepted.turnID }
                        if case .output = event {
                            chunks += 1
                            if chunks == after { withUnsafeCurrentTask { $0?.cancel() } }
                        }
                    }
                    return (turnID, nil)
                } catch let error as SwitchboardError {
                    return (turnID, error)
                } catch {
                    return (turnID, SwitchboardError(code: .unknown, message: "\(error)"))
                }
            }
            let (turnID, error) = await consumer.value
            try check(error?.code.name == code, "prompt ended with \(String(describing: error)), want \(code)")
            try await withClient { other in
                let parts = try await attachParts(other.attach(sessionID: id, turnID: turnID), code: code)
                try check(parts.attached.state == .finished, "state \(parts.attached.state)")
                try check(parts.outputs.count >= after && parts.outputs.count < count, "\(parts.outputs.count) chunks kept")
                try check(parts.outputs.map(\.sequence) == (0..<parts.outputs.count).map { UInt64($0 + 1) }, "sequences")
                try check(parts.finished.chunks == UInt64(parts.outputs.count), "finished \(parts.finished)")
            }
            _ = try await client.closeSession(id: id)
        }
    }

    func attach_not_found() async throws {
        let id = sid("atnf")
        let code = try e("code")
        let badTurn = try p("bad_turn_id")
        try await withClient { client in
            _ = try await client.createSession(CreateSessionRequest(sessionID: id))
            try await expectCode(code, "session without turns") { for try await _ in client.attach(sessionID: id) {} }
            _ = try await output(client.prompt(sessionID: id, "one turn"))
            try await expectCode(code, "unknown turn") { for try await _ in client.attach(sessionID: id, turnID: badTurn) {} }
            try await expectCode(code, "unknown session") { for try await _ in client.attach(sessionID: sid("atnf-missing")) {} }
            _ = try await client.closeSession(id: id)
        }
    }

    func attach_after_disconnect() async throws {
        let count = try n("words")
        let cut = try n("disconnect_after_chunks")
        let code = try e("code")
        let cancelledCode = try e("cancel_on_disconnect_code")
        let text = words(count)
        for cancelOnDisconnect in [false, true] {
            let id = sid(cancelOnDisconnect ? "atd-cod" : "atd")
            var configuration = ClientConfiguration()
            configuration.clientName = "conformance-swift"
            let gone = try await SwitchboardClient.connect(socketPath: socketPath, configuration: configuration)
            _ = try await gone.createSession(CreateSessionRequest(sessionID: id))
            var iterator = gone.prompt(sessionID: id, text, cancelOnDisconnect: cancelOnDisconnect, resume: .off).makeAsyncIterator()
            var turnID = ""
            var first: [OutputChunk] = []
            while first.count < cut, let event = try await iterator.next() {
                if case .accepted(let accepted) = event { turnID = accepted.turnID }
                if case .output(let chunk) = event { first.append(chunk) }
            }
            try check(first.count == cut, "prompt ended after \(first.count) chunks")
            // The connection goes away under the open call, without a Cancel.
            await gone.close()
            _ = try? await iterator.next()
            try await withClient { client in
                if cancelOnDisconnect {
                    let parts = try await attachParts(client.attach(sessionID: id, turnID: turnID, afterSequence: UInt64(cut)), code: cancelledCode)
                    try check(parts.finished.chunks < UInt64(count), "the turn ran to its end: \(parts.finished)")
                } else {
                    let rest = try await attachParts(client.attach(sessionID: id, turnID: turnID, afterSequence: UInt64(cut)), code: code)
                    try check(rest.attached.turnID == turnID, "attached to another turn")
                    let all = first + rest.outputs
                    try check(all.map(\.sequence) == (1...count).map { UInt64($0) }, "sequences \(all.map(\.sequence))")
                    try check(all.flatMap(\.data) == Array(text.utf8), "the two parts are not the prompt")
                    try check(rest.finished.chunks == UInt64(count), "finished \(rest.finished)")
                }
                _ = try await client.closeSession(id: id)
            }
        }
    }

    // MARK: bad frames (raw: the library never sends such bytes)

    func bad_frame() async throws {
        guard let bytes = hexBytes(try p("bytes_hex")) else { throw Failure("bad hex") }
        let raw = try RawConnection(path: socketPath)
        try raw.send(Frame(kind: .hello(Hello(clientName: "conformance-swift"))))
        guard case .frame(let welcome) = try raw.receive(), case .welcome = welcome.kind else { throw Failure("no Welcome") }
        try raw.send(bytes)
        let goAway = try raw.expectGoAway()
        try check(goAway.code.name == (try e("code")), "GoAway \(goAway)")
        try check(try raw.isClosed(), "connection still open after GoAway")
    }
}

/// An attach stream's parts: attached, the output chunks, finished (checked to come in
/// that order); the stream must end with the status named `code`.
func attachParts(_ stream: PromptStream, code: String) async throws -> (attached: TurnAttached, outputs: [OutputChunk], finished: TurnFinished) {
    var events: [PromptEvent] = []
    do {
        for try await event in stream { events.append(event) }
        try check(code == "OK", "attach ended OK, want \(code)")
    } catch let error as SwitchboardError {
        try check(error.code.name == code, "attach ended with \(error), want \(code)")
    }
    guard case .attached(let attached)? = events.first, case .finished(let finished)? = events.last, events.count >= 2 else {
        throw Failure("events \(events)")
    }
    let outputs = try events.dropFirst().dropLast().map { event -> OutputChunk in
        guard case .output(let chunk) = event else { throw Failure("not output between attached and finished: \(event)") }
        return chunk
    }
    return (attached, outputs, finished)
}

/// The rest of a stream's output; throws the call's error.
func drain(_ iterator: inout PromptStream.AsyncIterator) async throws -> String {
    var bytes: [UInt8] = []
    while let event = try await iterator.next() {
        if case .output(let chunk) = event { bytes += chunk.data }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// One event; false when the stream ended OK.
func step(_ iterator: inout PromptStream.AsyncIterator, into bytes: inout [UInt8]) async throws -> Bool {
    guard let event = try await iterator.next() else { return false }
    if case .output(let chunk) = event { bytes += chunk.data }
    return true
}

func hexBytes(_ hex: String) -> [UInt8]? {
    let digits = Array(hex.utf8)
    guard digits.count % 2 == 0 else { return nil }
    return stride(from: 0, to: digits.count, by: 2).compactMap { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16) }
}

// MARK: - A raw socket, for the scenarios below the client library

final class RawConnection {
    enum Received { case frame(Frame), closed }
    let fd: Int32
    var reader = FrameReader()

    init(path: String) throws {
        #if canImport(Glibc)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure("socket(): errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Failure("socket path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw Failure("connect(\(path)): errno \(errno)") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)  // only against hangs
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ frame: Frame) throws { try send(frame.prefixedBytes()) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { throw Failure("write(): errno \(errno)") }
            offset += sent
        }
    }

    func receive() throws -> Received {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let frame = try reader.next() { return .frame(frame) }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                reader.append(buffer[0..<count])
            } else if count == 0 || errno == ECONNRESET {
                return .closed
            } else if errno != EINTR {
                throw Failure("read(): errno \(errno)")
            }
        }
    }

    func expectGoAway() throws -> GoAway {
        guard case .frame(let frame) = try receive(), case .goAway(let goAway) = frame.kind else {
            throw Failure("expected a GoAway")
        }
        return goAway
    }

    func isClosed() throws -> Bool {
        if case .closed = try receive() { return true }
        return false
    }
}

// MARK: - main

func printError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.append(UInt8(ascii: "\n"))
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

var socketPath = ""
var scenario = ""
var values: [String: String] = [:]
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--socket": socketPath = arguments.popFirst() ?? ""
    case "--scenario": scenario = arguments.popFirst() ?? ""
    default:
        guard let equals = argument.firstIndex(of: "=") else {
            printError("bad argument \(argument)")
            exit(2)
        }
        values[String(argument[..<equals])] = String(argument[argument.index(after: equals)...])
    }
}
guard !socketPath.isEmpty, !scenario.isEmpty else {
    printError("usage: switchboard-conformance --socket PATH --scenario NAME [key=value ...]")
    exit(2)
}

let runner = Runner(socketPath: socketPath, args: values)
let scenarios: [String: (Runner) async throws -> Void] = [
    "handshake": { try await $0.handshake() },
    "handshake_unsupported_version": { try await $0.handshake_unsupported_version() },
    "handshake_hello_first": { try await $0.handshake_hello_first() },
    "health": { try await $0.health() },
    "ping": { try await $0.ping() },
    "sessions_create_get_close": { try await $0.sessions_create_get_close() },
    "sessions_server_chosen_id": { try await $0.sessions_server_chosen_id() },
    "sessions_list": { try await $0.sessions_list() },
    "server_status": { try await $0.server_status() },
    "session_status": { try await $0.session_status() },
    "prompt_stream": { try await $0.prompt_stream() },
    "prompt_wait_when_busy": { try await $0.prompt_wait_when_busy() },
    "cancel_mid_stream": { try await $0.cancel_mid_stream() },
    "deadline": { try await $0.deadline() },
    "error_not_found": { try await $0.error_not_found() },
    "error_already_exists": { try await $0.error_already_exists() },
    "error_invalid_argument": { try await $0.error_invalid_argument() },
    "error_reject_when_busy": { try await $0.error_reject_when_busy() },
    "close_cancels_turns": { try await $0.close_cancels_turns() },
    "concurrent_calls": { try await $0.concurrent_calls() },
    "bad_frame_oversized": { try await $0.bad_frame() },
    "bad_frame_garbage": { try await $0.bad_frame() },
    "bad_frame_empty": { try await $0.bad_frame() },
    "worker_register": { try await $0.worker_register() },
    "worker_serves_turn": { try await $0.worker_serves_turn() },
    "worker_fail": { try await $0.worker_fail() },
    "worker_cancellation": { try await $0.worker_cancellation() },
    "ownership_peer": { try await $0.ownership_peer() },
    "list_turns_paging": { try await $0.list_turns_paging() },
    "attach_after_sequence": { try await $0.attach_after_sequence() },
    "attach_cancelled_turn": { try await $0.attach_cancelled_turn() },
    "attach_not_found": { try await $0.attach_not_found() },
    "attach_after_disconnect": { try await $0.attach_after_disconnect() },
]
guard let run = scenarios[scenario] else {
    printError("unknown scenario \(scenario)")
    exit(2)
}
do {
    try await run(runner)
} catch {
    printError("\(scenario): \(error)")
    exit(1)
}
