import SwitchboardClient
import SwitchboardProtocol
import Testing

/// Checks the shape of a complete turn: accepted, started, output 1…n, finished.
func expectCompleteTurn(_ events: [PromptEvent], prompt: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard case .accepted(let accepted)? = events.first else {
        Issue.record("first event is not accepted: \(events.prefix(1))", sourceLocation: sourceLocation)
        return
    }
    #expect(!accepted.turnID.isEmpty, sourceLocation: sourceLocation)
    #expect(events.dropFirst().first == .started(turnID: accepted.turnID), sourceLocation: sourceLocation)
    let chunks = events.outputChunks
    #expect(chunks.map(\.sequence) == (0..<chunks.count).map { UInt64($0 + 1) }, sourceLocation: sourceLocation)
    #expect(events.outputText == prompt, sourceLocation: sourceLocation)
    guard case .finished(let finished)? = events.last else {
        Issue.record("last event is not finished: \(events.suffix(1))", sourceLocation: sourceLocation)
        return
    }
    #expect(finished.turnID == accepted.turnID, sourceLocation: sourceLocation)
    #expect(finished.chunks == UInt64(chunks.count), sourceLocation: sourceLocation)
    #expect(finished.bytes == UInt64(prompt.utf8.count), sourceLocation: sourceLocation)
    #expect(events.count == chunks.count + 3, "events other than accepted/started/output/finished", sourceLocation: sourceLocation)
}

/// Consumes `stream` in a child task; `started` resolves once an event matching
/// `signal` (by default: the turn started) has arrived.
func startConsuming(
    _ stream: PromptStream,
    signalWhen signal: @escaping @Sendable (PromptEvent) -> Bool = { if case .started = $0 { true } else { false } }
) -> (started: Task<Void, any Error>, events: Task<[PromptEvent], any Error>) {
    let (signals, continuation) = AsyncStream<Void>.makeStream()
    let events = Task {
        var events: [PromptEvent] = []
        defer { continuation.finish() }
        for try await event in stream {
            events.append(event)
            if signal(event) { continuation.yield() }
        }
        return events
    }
    let started = Task {
        var iterator = signals.makeAsyncIterator()
        guard await iterator.next() != nil else { throw TimedOut(what: "the awaited event never came") }
    }
    return (started, events)
}

func words(_ count: Int, prefix: String = "w") -> String {
    (1...count).map { "\(prefix)\($0)" }.joined(separator: " ")
}

@Suite("Prompt streams", .timeLimit(.minutes(TestTimeScale.hangGuardMinutes)))
struct PromptStreamTests {
    @Test("a prompt streams accepted, started, output 1…n and finished; the chunks are the prompt")
    func streamsInOrder() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                for prompt in ["hello", "hello streaming world, one token at a time", "  leading and trailing  ", "ünïcødé ✓ 🎉 text"] {
                    let events = try await client.prompt(sessionID: session.id, prompt).collect()
                    expectCompleteTurn(events, prompt: prompt)
                }
                let status = try await client.sessionStatus(id: session.id)
                #expect(status.turns.count == 4)
                #expect(status.turns.allSatisfy { $0.code == .ok && $0.state == .finished })
            }
        }
    }

    @Test("a stream that is never iterated sends nothing")
    func lazyStart() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                _ = client.prompt(sessionID: session.id, "never sent")
                try await client.ping()
                let status = try await client.sessionStatus(id: session.id)
                #expect(status.turns.isEmpty)
            }
        }
    }

    @Test("a prompt to a missing session fails with NOT_FOUND")
    func missingSession() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let error = await switchboardError { _ = try await client.prompt(sessionID: "missing", "hi").collect() }
                #expect(error?.code == .notFound)
            }
        }
    }

    @Test("reject-when-busy fails with FAILED_PRECONDITION; wait queues behind the running turn")
    func busyPolicies() async throws {
        try await withTestServer(echoDelay: .milliseconds(20)) { server in
            try await server.withClient { client in
                let session = try await client.createSession(CreateSessionRequest(sessionID: "busy"))
                // 300 tokens at 20 ms: far longer than this test needs; cancelled below.
                let running = startConsuming(client.prompt(sessionID: session.id, words(300, prefix: "a")))
                try await withTimeout(.seconds(10), "first turn starts") { try await running.started.value }

                let rejected = await switchboardError {
                    _ = try await client.prompt(sessionID: session.id, "rejected", whenBusy: .reject).collect()
                }
                #expect(rejected?.code == .failedPrecondition)

                let queuedText = "queued behind"
                let queued = startConsuming(
                    client.prompt(sessionID: session.id, queuedText, whenBusy: .wait),
                    signalWhen: { if case .accepted = $0 { true } else { false } }
                )
                try await withTimeout(.seconds(10), "queued prompt accepted") { try await queued.started.value }
                #expect(try await client.getSession(id: session.id).queuedPrompts == 1)

                // Ending the running turn lets the queued one run to completion.
                running.events.cancel()
                _ = await running.events.result
                let queuedEvents = try await queued.events.value
                guard case .accepted(let accepted)? = queuedEvents.first else {
                    Issue.record("no accepted event: \(queuedEvents)")
                    return
                }
                #expect(accepted.queuePosition == 1)
                expectCompleteTurn(queuedEvents, prompt: queuedText)
            }
        }
    }

    @Test("breaking out of the loop cancels the turn on the server")
    func breakCancels() async throws {
        try await withTestServer(echoDelay: .milliseconds(20)) { server in
            try await server.withClient { client in
                let session = try await client.createSession(CreateSessionRequest(sessionID: "brk"))
                var outputs = 0
                for try await event in client.prompt(sessionID: session.id, words(200)) {
                    if case .output = event {
                        outputs += 1
                        if outputs == 3 { break }
                    }
                }
                #expect(outputs == 3)
                let cancelled = try await eventually {
                    let turn = try await client.sessionStatus(id: session.id).turns.first
                    return turn?.state == .finished && turn?.code == .cancelled
                }
                #expect(cancelled, "the server did not record the turn as CANCELLED")
                let turn = try #require(try await client.sessionStatus(id: session.id).turns.first)
                #expect(turn.chunks < 200)

                // The session and the connection stay usable.
                let again = try await client.prompt(sessionID: session.id, "again").collect()
                expectCompleteTurn(again, prompt: "again")
            }
        }
    }

    @Test("cancelling the iterating task throws CANCELLED and cancels the turn")
    func taskCancellation() async throws {
        try await withTestServer(echoDelay: .milliseconds(20)) { server in
            try await server.withClient { client in
                let session = try await client.createSession(CreateSessionRequest(sessionID: "tc"))
                let running = startConsuming(client.prompt(sessionID: session.id, words(200)))
                try await withTimeout(.seconds(10), "turn starts") { try await running.started.value }
                running.events.cancel()
                let result = await running.events.result
                #expect(throws: SwitchboardError(code: .cancelled, message: "cancelled by the client")) { try result.get() }
                let cancelled = try await eventually {
                    let turn = try await client.sessionStatus(id: session.id).turns.first
                    return turn?.state == .finished && turn?.code == .cancelled
                }
                #expect(cancelled)
            }
        }
    }

    @Test("a task cancelled before it iterates sends nothing and throws CANCELLED")
    func cancelledBeforeStart() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let task = Task {
                    withUnsafeCurrentTask { $0?.cancel() }
                    return try await client.prompt(sessionID: session.id, "never").collect()
                }
                let error = await switchboardError { _ = try await task.value }
                #expect(error?.code == .cancelled)
                let unary = Task {
                    withUnsafeCurrentTask { $0?.cancel() }
                    return try await client.health()
                }
                let unaryError = await switchboardError { _ = try await unary.value }
                #expect(unaryError?.code == .cancelled)
                #expect(try await client.sessionStatus(id: session.id).turns.isEmpty)
            }
        }
    }

    @Test("closing the session under a running prompt ends the stream with CANCELLED")
    func closeSessionCancelsStream() async throws {
        try await withTestServer(echoDelay: .milliseconds(20)) { server in
            try await server.withClient { client in
                let session = try await client.createSession(CreateSessionRequest(sessionID: "closing"))
                let running = startConsuming(client.prompt(sessionID: session.id, words(200)))
                try await withTimeout(.seconds(10), "turn starts") { try await running.started.value }
                let closed = try await client.closeSession(id: session.id, reason: "test")
                #expect(closed.cancelledTurns == 1)
                let error = await switchboardError { _ = try await running.events.value }
                #expect(error?.code == .cancelled)
            }
        }
    }

    @Test("a prompt timeout ends the call with DEADLINE_EXCEEDED")
    func promptTimeout() async throws {
        try await withTestServer(echoDelay: .milliseconds(50)) { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let error = await switchboardError {
                    _ = try await client.prompt(sessionID: session.id, words(100), timeout: .milliseconds(200)).collect()
                }
                #expect(error?.code == .deadlineExceeded)
                let nonPositive = await switchboardError {
                    _ = try await client.prompt(sessionID: session.id, "x", timeout: .zero).collect()
                }
                #expect(nonPositive?.code == .deadlineExceeded)
            }
        }
    }

    @Test("a prompt larger than the server's frame limit fails locally; the connection stays usable")
    func oversizedPrompt() async throws {
        try await withTestServer(configureServer: { $0.maxFrameSize = 64 * 1024 }) { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                #expect(client.welcome.maxFrameSize == 64 * 1024)
                let huge = String(repeating: "x", count: 100 * 1024)
                let error = await switchboardError { _ = try await client.prompt(sessionID: session.id, huge).collect() }
                #expect(error?.code == .resourceExhausted)
                #expect(try await client.health() == .serving)
                let fits = String(repeating: "y", count: 32 * 1024)
                let events = try await client.prompt(sessionID: session.id, fits).collect()
                #expect(events.outputText == fits)
            }
        }
    }

    @Test("a slow consumer of a big stream gets every byte, in order")
    func slowConsumerManySmallChunks() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let prompt = words(10_000)
                var received: [UInt8] = []
                var sequences: [UInt64] = []
                var count = 0
                for try await event in client.prompt(sessionID: session.id, prompt) {
                    if case .output(let chunk) = event {
                        received += chunk.data
                        sequences.append(chunk.sequence)
                    }
                    count += 1
                    if count % 20 == 0 { try await Task.sleep(for: .milliseconds(1)) }
                }
                #expect(sequences == Array(1...UInt64(sequences.count)))
                #expect(sequences.count == 10_000)
                #expect(received == Array(prompt.utf8))
            }
        }
    }

    @Test("a slow consumer of big chunks gets every byte, in order")
    func slowConsumerBigChunks() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let alphabet = Array("abcdefghijklmnopqrstuvwxyz")
                let prompt = (0..<200).map { index in
                    String(repeating: alphabet[index % alphabet.count], count: 8 * 1024)
                }.joined(separator: " ")
                var received: [UInt8] = []
                var chunks = 0
                for try await event in client.prompt(sessionID: session.id, prompt) {
                    if case .output(let chunk) = event {
                        received += chunk.data
                        chunks += 1
                        if chunks % 10 == 0 { try await Task.sleep(for: .milliseconds(5)) }
                    }
                }
                #expect(chunks == 200)
                #expect(received.count == prompt.utf8.count)
                #expect(received == Array(prompt.utf8))
            }
        }
    }
}
