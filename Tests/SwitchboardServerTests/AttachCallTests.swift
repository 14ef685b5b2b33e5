import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

/// Detached turns, Attach and ListTurns over a real socket.
@Suite("Attach and history calls")
struct AttachCallTests {
    private func accepted(_ result: PromptItem) -> String? {
        if case .event(.accepted(let accepted)) = result { return accepted.turnID }
        return nil
    }

    @Test func aVanishedClientsTurnRunsToItsEndAndIsReadableLater() async throws {
        try await withTestServer(tokenDelay: .milliseconds(5)) { server in
            let observer = try await server.connectAndHandshake()
            try await observer.createSession("d")
            let prompt = makePrompt(words: 200)
            var turnID = ""
            do {
                let client = try await server.connectAndHandshake()
                let id = try await client.startPrompt(session: "d", prompt: prompt)
                turnID = try #require(accepted(try await client.nextPromptItem(id)))
                var outputs = 0
                while outputs < 3 {
                    if case .event(.output) = try await client.nextPromptItem(id) { outputs += 1 }
                }
                client.close()
            }
            var finished: TurnSummary?
            try await eventually("the detached turn ends") {
                finished = try await observer.sessionStatus("d").turns.first { $0.state == .finished }
                return finished != nil
            }
            #expect(finished?.turnID == turnID)
            #expect(finished?.code == .ok)
            #expect(finished?.chunks == 200)

            let history = try await observer.listTurns(ListTurnsRequest(sessionID: "d", includeOutput: true))
            #expect(history.turns.count == 1)
            #expect(history.turns.first?.prompt == prompt)
            #expect(history.turns.first.map { String(decoding: $0.output, as: UTF8.self) } == prompt)

            let attach = try await observer.startAttach(session: "d", turn: turnID)
            let replay = try await observer.collectPrompt(attach)
            #expect(replay.end?.code == .ok)
            #expect(replay.text == prompt)
            #expect(replay.chunks.map(\.sequence) == Array(1...200))
            guard case .attached(let attached)? = replay.events.first else {
                Issue.record("attach must start with attached: \(replay.events.prefix(1))")
                return
            }
            #expect(attached == TurnAttached(turnID: turnID, state: .finished, lastSequence: 200))
            #expect(replay.finished?.chunks == 200)
        }
    }

    @Test func aSecondClientAttachedAfterNChunksGetsTheRestExactlyOnce() async throws {
        try await withTestServer(tokenDelay: .milliseconds(2)) { server in
            let owner = try await server.connectAndHandshake()
            try await owner.createSession("a")
            let prompt = makePrompt(words: 300)
            let id = try await owner.startPrompt(session: "a", prompt: prompt)
            var first = PromptResult()
            while first.chunks.count < 10 {
                guard case .event(let event) = try await owner.nextPromptItem(id) else {
                    Issue.record("the prompt ended early")
                    return
                }
                first.events.append(event)
            }
            let turnID = try #require(first.events.compactMap { if case .accepted(let a) = $0 { a.turnID } else { nil } }.first)

            let second = try await server.connectAndHandshake()
            let attach = try await second.startAttach(session: "a", afterSequence: 7)
            let followed = try await second.collectPrompt(attach, timeout: .seconds(30))
            let rest = try await owner.collectPrompt(id, timeout: .seconds(30))
            #expect(rest.end?.code == .ok)
            #expect(followed.end?.code == .ok)
            guard case .attached(let attached)? = followed.events.first else {
                Issue.record("attach must start with attached")
                return
            }
            #expect(attached.turnID == turnID)
            #expect(attached.lastSequence >= 10)
            #expect(followed.chunks.map(\.sequence) == Array(8...300))
            let all = first.chunks + rest.chunks
            #expect(followed.chunks == Array(all.dropFirst(7)))
            if case .finished = followed.events.last {} else { Issue.record("finished must come last") }
        }
    }

    @Test func cancellingAnAttachLeavesTheTurnRunning() async throws {
        // A turn of about 50 s (stretched with the time scale): it is still running
        // when the attach is cancelled, however slow the machine. The owner then
        // cancels it rather than waiting for its end.
        try await withTestServer(tokenDelay: TestTimeScale.milliseconds(50)) { server in
            let owner = try await server.connectAndHandshake()
            try await owner.createSession("c")
            let id = try await owner.startPrompt(session: "c", prompt: makePrompt(words: 1000))
            var ownerEvents: [PromptEvent] = []
            while !ownerEvents.contains(where: { if case .output = $0 { true } else { false } }) {
                guard case .event(let event) = try await owner.nextPromptItem(id) else {
                    Issue.record("the prompt ended early")
                    return
                }
                ownerEvents.append(event)
            }
            let watcher = try await server.connectAndHandshake()
            let attach = try await watcher.startAttach(session: "c")
            guard case .event(.attached(let attached)) = try await watcher.nextPromptItem(attach) else {
                Issue.record("expected attached")
                return
            }
            #expect(attached.state == .running)
            try await watcher.send(Frame(callID: attach, kind: .cancel(reason: "enough")))
            var end: CallEnd?
            while end == nil {
                if case .end(let callEnd) = try await watcher.nextPromptItem(attach) { end = callEnd }
            }
            #expect(end?.code == .cancelled)
            #expect(end?.message == "cancelled by client")
            // The turn was not touched: it is still running and still streaming.
            #expect(try await owner.sessionStatus("c").session?.state == .busy)
            while true {
                guard case .event(let event) = try await owner.nextPromptItem(id) else {
                    Issue.record("the prompt ended while it should be running")
                    return
                }
                if case .output = event { break }
            }
            try await owner.send(Frame(callID: id, kind: .cancel(reason: "done")))
            var ownerEnd: CallEnd?
            while ownerEnd == nil {
                if case .end(let callEnd) = try await owner.nextPromptItem(id) { ownerEnd = callEnd }
            }
            #expect(ownerEnd?.code == .cancelled)
        }
    }

    /// Cancelled in the same write as its start: the replay of a finished turn's
    /// stored output stops and the attach ends CANCELLED. The writer never has to
    /// wait for this fast reader, so only the attach itself can notice.
    @Test func aCancelledAttachStopsItsReplay() async throws {
        try await withTestServer(tokenDelay: .zero) { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("r")
            let words = 2000
            let done = try await client.collectPrompt(try await client.startPrompt(session: "r", prompt: makePrompt(words: words)))
            #expect(done.end?.code == .ok)
            #expect(done.chunks.count == words)

            let attach = client.newCallID()
            let start = Frame(callID: attach, kind: .start(CallStart(
                method: MethodName.attach,
                payload: .attachRequest(AttachRequest(sessionID: "r")),
                halfClose: true
            )))
            let cancel = Frame(callID: attach, kind: .cancel(reason: "enough"))
            try await client.sendRaw(start.prefixedBytes() + cancel.prefixedBytes())
            let result = try await client.collectPrompt(attach)
            #expect(result.end?.code == .cancelled)
            #expect(result.end?.message == "cancelled by client")
            #expect(result.chunks.count < words)
            #expect(result.finished == nil)
            // The connection and the session are fine.
            let again = try await client.collectPrompt(try await client.startAttach(session: "r"))
            #expect(again.end?.code == .ok)
            #expect(again.chunks.count == words)
        }
    }

    /// The frame limit a client announced is its own: once it is gone, a chunk
    /// above that limit is recorded like any other and the detached turn ends OK.
    @Test func aDetachedTurnIsNotBoundByTheGoneClientsFrameLimit() async throws {
        try await withTestServer(tokenDelay: TestTimeScale.milliseconds(20)) { server in
            let observer = try await server.connectAndHandshake()
            try await observer.createSession("big")
            // 30 short words (about 0.6 s), then one of 4 KiB, long after the client left.
            let prompt = makePrompt(words: 30) + " " + String(repeating: "y", count: 4096) + " tail"
            do {
                let client = try server.connect()
                try await client.send(Frame(kind: .hello(Hello(clientName: "tiny", maxFrameSize: 1024))))
                guard case .welcome = try await client.expectFrame().kind else {
                    Issue.record("no Welcome")
                    return
                }
                let id = try await client.startPrompt(session: "big", prompt: prompt)
                while true {
                    if case .event(.output) = try await client.nextPromptItem(id) { break }
                }
                client.close()
            }
            var finished: TurnSummary?
            try await eventually("the detached turn ends") {
                finished = try await observer.sessionStatus("big").turns.first { $0.state == .finished }
                return finished != nil
            }
            #expect(finished?.code == .ok, "\(finished?.message ?? "")")
            #expect(finished?.chunks == 32)
            let history = try await observer.listTurns(ListTurnsRequest(sessionID: "big", includeOutput: true))
            #expect(history.turns.first.map { String(decoding: $0.output, as: UTF8.self) } == prompt)
        }
    }

    @Test func badAttachAndListTurnsRequestsAreClearErrors() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("e")
            let missing = try await client.collectPrompt(try await client.startAttach(session: "nope"))
            #expect(missing.end?.code == .notFound)
            #expect(missing.events.isEmpty)
            let noTurns = try await client.collectPrompt(try await client.startAttach(session: "e"))
            #expect(noTurns.end?.code == .notFound)
            let unknownTurn = try await client.collectPrompt(try await client.startAttach(session: "e", turn: "t-000000000000"))
            #expect(unknownTurn.end?.code == .notFound)
            let wrongPayload = try await client.unary(MethodName.attach, .listTurnsRequest(ListTurnsRequest(sessionID: "e")))
            #expect(wrongPayload.code == .invalidArgument)
            let badToken = try await client.unary(MethodName.listTurns, .listTurnsRequest(ListTurnsRequest(sessionID: "e", pageToken: "zz")))
            #expect(badToken.code == .invalidArgument)
            let unknownSession = try await client.unary(MethodName.listTurns, .listTurnsRequest(ListTurnsRequest(sessionID: "nope")))
            #expect(unknownSession.code == .notFound)
            let empty = try await client.listTurns(ListTurnsRequest(sessionID: "e"))
            #expect(empty.turns.isEmpty)
            #expect(empty.nextPageToken.isEmpty)
        }
    }
}
