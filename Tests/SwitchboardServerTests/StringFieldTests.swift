import SwitchboardCore
import SwitchboardProtocol
import Testing

/// The length-prefixed bytes of `frame`, with the one occurrence of `marker` in its
/// encoding replaced by `bytes` of the same length (so every length on the wire
/// stays right): how a client in another language sends a NUL or invalid UTF-8,
/// which the Swift encoder cannot.
func frameBytes(_ frame: Frame, replacing marker: String, with bytes: [UInt8]) throws -> [UInt8] {
    let needle = Array(marker.utf8)
    precondition(needle.count == bytes.count, "the replacement must keep the length")
    var encoded = frame.prefixedBytes()
    let starts = encoded.indices.dropLast(needle.count - 1).filter { encoded[$0..<($0 + needle.count)].elementsEqual(needle) }
    guard starts.count == 1, let start = starts.first else {
        throw RawClientError(description: "marker \(marker) found \(starts.count) times in the frame")
    }
    encoded.replaceSubrange(start..<(start + needle.count), with: bytes)
    return encoded
}

/// Every string field is valid UTF-8 without a NUL byte, or the call ends with
/// INVALID_ARGUMENT naming the field, nothing is created or stored, and the
/// connection goes on (docs/PROTOCOL.md, "Strings").
@Suite("String fields on the wire")
struct StringFieldTests {
    static func start(_ id: UInt64, _ method: String, _ payload: Payload) -> Frame {
        Frame(callID: id, kind: .start(CallStart(method: method, payload: payload, halfClose: true)))
    }

    @Test("a NUL in session_id: INVALID_ARGUMENT naming it, no session created, not even the part before the NUL")
    func nulInSessionID() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            let id = client.newCallID()
            let create = Self.start(id, MethodName.createSession, .createSessionRequest(CreateSessionRequest(sessionID: "nulidX/../../etc")))
            try await client.sendRaw(try frameBytes(create, replacing: "nulidX", with: Array("nulid\0".utf8)))
            let end = try await client.expectEnd(of: id)
            #expect(end.code == .invalidArgument)
            #expect(end.message == "session_id contains a NUL byte")
            #expect(end.payload == nil)
            #expect(server.registry.statistics().sessionsTotal == 0)
            #expect(try await client.serverStatus().sessionsTotal == 0, "the connection stays usable")

            // Get: "nul1\0junk" must not find "nul1".
            try await client.createSession("nul1")
            let get = client.newCallID()
            let request = Self.start(get, MethodName.getSession, .getSessionRequest(GetSessionRequest(sessionID: "nul1Xjunk")))
            try await client.sendRaw(try frameBytes(request, replacing: "nul1X", with: Array("nul1\0".utf8)))
            let getEnd = try await client.expectEnd(of: get)
            #expect(getEnd.code == .invalidArgument)
            #expect(getEnd.message == "session_id contains a NUL byte")
            #expect(getEnd.payload == nil)
        }
    }

    @Test("a NUL in a label key, invalid UTF-8 in a label value: INVALID_ARGUMENT naming the label, nothing created")
    func badLabels() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            let labels = [Label(key: "team", value: "blue"), Label(key: "ownerX", value: "VALUE")]
            let create = CreateSessionRequest(sessionID: "labelled", labels: labels)

            let first = client.newCallID()
            let nulKey = try frameBytes(Self.start(first, MethodName.createSession, .createSessionRequest(create)),
                                        replacing: "ownerX", with: Array("owner\0".utf8))
            try await client.sendRaw(nulKey)
            let nulEnd = try await client.expectEnd(of: first)
            #expect(nulEnd.code == .invalidArgument)
            #expect(nulEnd.message == "labels[1].key contains a NUL byte")

            let second = client.newCallID()
            let badValue = try frameBytes(Self.start(second, MethodName.createSession, .createSessionRequest(create)),
                                          replacing: "VALUE", with: [0x56, 0xC3, 0x28, 0xFF, 0x45])
            try await client.sendRaw(badValue)
            let utf8End = try await client.expectEnd(of: second)
            #expect(utf8End.code == .invalidArgument)
            #expect(utf8End.message == "labels[1].value is not valid UTF-8")

            #expect(server.registry.statistics().sessionsTotal == 0)
            // The same request with clean strings is fine: the refusal was about the bytes.
            let ok = try await client.unary(MethodName.createSession, .createSessionRequest(create))
            #expect(ok.code == .ok)
        }
    }

    @Test("a NUL or invalid UTF-8 in the prompt: INVALID_ARGUMENT naming it, no turn runs or is stored")
    func badPrompt() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("s")
            let prompt = PromptRequest(sessionID: "s", prompt: "first partXsecond part")

            let nul = client.newCallID()
            try await client.sendRaw(try frameBytes(Self.start(nul, MethodName.prompt, .promptRequest(prompt)),
                                                    replacing: "partXsecond", with: Array("part\0second".utf8)))
            let nulResult = try await client.collectPrompt(nul)
            #expect(nulResult.events.isEmpty, "no turn may be accepted: \(nulResult.events)")
            #expect(nulResult.end?.code == .invalidArgument)
            #expect(nulResult.end?.message == "prompt contains a NUL byte")

            // Invalid UTF-8 sent in a message after the start (not in the start itself).
            let bad = client.newCallID()
            try await client.send(Frame(callID: bad, kind: .start(CallStart(method: MethodName.prompt))))
            let message = Frame(callID: bad, kind: .message(CallMessage(payload: .promptRequest(prompt), halfClose: true)))
            try await client.sendRaw(try frameBytes(message, replacing: "partXsecond", with: Array("part".utf8) + [0xFF] + Array("second".utf8)))
            let badResult = try await client.collectPrompt(bad)
            #expect(badResult.events.isEmpty, "no turn may be accepted: \(badResult.events)")
            #expect(badResult.end?.code == .invalidArgument)
            #expect(badResult.end?.message == "prompt is not valid UTF-8")

            let status = try await client.sessionStatus("s")
            #expect(status.turns.isEmpty)
            #expect(status.session?.turnsCompleted == 0)
            // The session still takes a clean prompt.
            let good = try await client.collectPrompt(try await client.startPrompt(session: "s", prompt: "clean words"))
            #expect(good.end?.code == .ok)
        }
    }

    @Test("a NUL in the method name or a metadata entry ends the call, not the connection")
    func badEnvelopeStrings() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            let id = client.newCallID()
            let start = Frame(callID: id, kind: .start(CallStart(
                method: MethodName.healthCheck + "Xjunk",
                payload: .healthCheckRequest(HealthCheckRequest()),
                halfClose: true
            )))
            try await client.sendRaw(try frameBytes(start, replacing: "Xjunk", with: Array("\0junk".utf8)))
            let end = try await client.expectEnd(of: id)
            #expect(end.code == .invalidArgument)
            #expect(end.message == "method contains a NUL byte")

            let second = client.newCallID()
            let withMetadata = Frame(callID: second, kind: .start(CallStart(
                method: MethodName.healthCheck,
                metadata: [MetadataEntry(key: "trace", value: "abcX")],
                payload: .healthCheckRequest(HealthCheckRequest()),
                halfClose: true
            )))
            try await client.sendRaw(try frameBytes(withMetadata, replacing: "abcX", with: [0x61, 0x62, 0x63, 0xC0]))
            let metadataEnd = try await client.expectEnd(of: second)
            #expect(metadataEnd.code == .invalidArgument)
            #expect(metadataEnd.message == "metadata[0].value is not valid UTF-8")
            #expect(try await client.serverStatus().connections >= 1)
        }
    }

    @Test("a NUL in the Hello's client name: GoAway INVALID_ARGUMENT naming it")
    func badHello() async throws {
        try await withTestServer { server in
            let client = try server.connect()
            let hello = Frame(kind: .hello(Hello(clientName: "clientX")))
            try await client.sendRaw(try frameBytes(hello, replacing: "clientX", with: Array("client\0".utf8)))
            let frames = try await client.readUntilClosed()
            BadInputTests.expectGoAway(frames, .invalidArgument, "client_name contains a NUL byte")
        }
    }

    @Test("worker strings: a NUL in a stop reason ends the worker's call naming the field; output is bytes and passes as is")
    func workerStrings() async throws {
        try await withTestServer { server in
            let worker = try await server.connectAndHandshake()
            let call = worker.newCallID()
            try await worker.send(Frame(callID: call, kind: .start(CallStart(
                method: MethodName.workerConnect,
                payload: .workerMessage(.register(WorkerRegister(taskQueue: "q", capacity: 2)))
            ))))
            let registered = try await worker.expectFrame(forCall: call)
            guard case .message(let message) = registered.kind, case .workerCommand(.registered)? = message.payload else {
                Issue.record("expected registered, got \(registered)")
                return
            }
            let client = try await server.connectAndHandshake()
            let create = try await client.unary(MethodName.createSession, .createSessionRequest(CreateSessionRequest(
                sessionID: "w", settings: SessionSettings(backend: "worker:q")
            )))
            try #require(create.code == .ok)

            // Output with a NUL and invalid UTF-8 is bytes: delivered byte for byte.
            let prompt = try await client.startPrompt(session: "w", prompt: "go")
            let turnID = try await Self.nextAssignment(worker, call)
            let rawOutput: [UInt8] = [0x61, 0x00, 0x62, 0xFF, 0xFE, 0x0A]
            try await worker.send(Frame(callID: call, kind: .message(CallMessage(payload: .workerMessage(.output(turnID: turnID, data: rawOutput))))))
            let finished = Frame(callID: call, kind: .message(CallMessage(payload: .workerMessage(.finished(turnID: turnID, stopReason: "end_turn")))))
            try await worker.send(finished)
            let first = try await client.collectPrompt(prompt)
            #expect(first.end?.code == .ok)
            #expect(first.events.flatMap { event -> [UInt8] in
                if case .output(let chunk) = event { return chunk.data }
                return []
            } == rawOutput)

            // A NUL in the stop reason: the worker's call ends, naming the field.
            let second = try await client.startPrompt(session: "w", prompt: "again")
            let secondTurn = try await Self.nextAssignment(worker, call)
            let badFinish = Frame(callID: call, kind: .message(CallMessage(payload: .workerMessage(.finished(turnID: secondTurn, stopReason: "endXturn")))))
            try await worker.sendRaw(try frameBytes(badFinish, replacing: "endXturn", with: Array("end\0turn".utf8)))
            let workerEnd = try await worker.expectEnd(of: call)
            #expect(workerEnd.code == .invalidArgument)
            #expect(workerEnd.message == "finished.stop_reason contains a NUL byte")
            // The turn did not end OK with a cut-off stop reason: the worker is gone.
            let secondResult = try await client.collectPrompt(second)
            #expect(secondResult.end?.code == .unavailable, "\(String(describing: secondResult.end))")
        }
    }

    /// Reads worker frames (answering heartbeats) until a turn assignment; returns its turn id.
    static func nextAssignment(_ worker: RawClient, _ call: UInt64) async throws -> String {
        while true {
            let frame = try await worker.expectFrame(forCall: call)
            guard case .message(let message) = frame.kind, case .workerCommand(let command)? = message.payload else {
                throw RawClientError(description: "expected a worker command, got \(frame)")
            }
            switch command {
            case .assignment(let assignment):
                return assignment.turnID
            case .heartbeat(let nonce):
                try await worker.send(Frame(callID: call, kind: .message(CallMessage(payload: .workerMessage(.heartbeatAck(nonce: nonce))))))
            case .registered, .cancellation:
                continue
            }
        }
    }
}
