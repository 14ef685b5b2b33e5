import SwitchboardProtocol
import Testing

@Suite("Frame round trips")
struct FrameRoundTripTests {
    @Test("every frame survives serializedBytes -> init(serializedBytes:)", arguments: Fixtures.frames)
    func roundTrip(_ named: NamedFrame) throws {
        let bytes = named.frame.serializedBytes()
        #expect(!bytes.isEmpty)
        let decoded = try Frame(serializedBytes: bytes)
        #expect(decoded == named.frame)
    }

    @Test("withSerializedBytes and prefixedBytes agree with serializedBytes", arguments: Fixtures.frames)
    func encodingsAgree(_ named: NamedFrame) throws {
        let bytes = named.frame.serializedBytes()
        let viaClosure = named.frame.withSerializedBytes { Array($0) }
        #expect(viaClosure == bytes)

        let prefixed = named.frame.prefixedBytes()
        #expect(prefixed.count == bytes.count + FrameLength.prefixSize)
        let length = prefixed.withUnsafeBytes { FrameLength.read(from: $0) }
        #expect(Int(length) == bytes.count)
        #expect(Array(prefixed.dropFirst(FrameLength.prefixSize)) == bytes)

        let decoded = try named.frame.withSerializedBytes { try Frame(serializedBytes: $0) }
        #expect(decoded == named.frame)
    }

    @Test("the fixtures cover every frame kind")
    func fixturesCoverEveryKind() {
        let kinds = Set(Fixtures.frames.map { Fixtures.kindName($0.frame.kind) })
        #expect(kinds == [
            "hello", "welcome", "start", "message", "half_close", "cancel", "end", "ping", "pong", "go_away",
        ])
    }

    @Test("the fixtures cover every payload case and every prompt event")
    func fixturesCoverEveryPayload() {
        let payloads = Fixtures.frames.compactMap { Fixtures.payload(of: $0.frame.kind) }
        #expect(Set(payloads.map(\.caseName)) == [
            "create_session_request", "get_session_request", "list_sessions_request", "list_sessions_response",
            "close_session_request", "close_session_response", "session", "prompt_request", "prompt_event",
            "server_status_request", "server_status", "session_status_request", "session_status",
            "health_check_request", "health_check_response",
        ])
        var events = Set<String>()
        for case .promptEvent(let event) in payloads {
            switch event {
            case .accepted: events.insert("accepted")
            case .started: events.insert("started")
            case .output: events.insert("output")
            case .finished: events.insert("finished")
            case .attached: events.insert("attached")
            }
        }
        #expect(events == ["accepted", "started", "output", "finished"])
    }

    @Test("different frames encode to different bytes")
    func encodingsAreDistinct() {
        let encodings = Fixtures.frames.map { $0.frame.serializedBytes() }
        #expect(Set(encodings).count == Fixtures.frames.count)
    }

    @Test("every enum case survives a round trip", arguments: [SessionState.unspecified, .idle, .busy, .closed])
    func sessionStates(_ state: SessionState) throws {
        var session = Fixtures.session
        session.state = state
        let frame = Frame(callID: 1, kind: .end(CallEnd(code: .ok, payload: .session(session))))
        #expect(try Frame(serializedBytes: frame.serializedBytes()) == frame)
    }

    @Test("every turn state and serving status survives a round trip")
    func turnStatesAndServingStatus() throws {
        for state in [TurnState.unspecified, .queued, .running, .finished] {
            let turn = TurnSummary(turnID: "t", state: state, code: .aborted)
            let frame = Frame(callID: 1, kind: .end(CallEnd(code: .ok, payload: .sessionStatus(SessionStatus(session: nil, turns: [turn])))))
            #expect(try Frame(serializedBytes: frame.serializedBytes()) == frame)
        }
        for status in [ServingStatus.unknown, .serving, .notServing] {
            let frame = Frame(callID: 1, kind: .end(CallEnd(code: .ok, payload: .healthCheckResponse(HealthCheckResponse(status: status)))))
            #expect(try Frame(serializedBytes: frame.serializedBytes()) == frame)
        }
    }

    @Test("every canonical status code and an unknown one survive in CallEnd, GoAway and TurnSummary")
    func statusCodes() throws {
        for code in StatusCode.allCanonical + [StatusCode(rawValue: 17), StatusCode(rawValue: UInt32.max)] {
            let frames = [
                Frame(callID: 5, kind: .end(CallEnd(code: code, message: code.name))),
                Frame(kind: .goAway(GoAway(lastCallID: 9, code: code, message: code.name))),
                Frame(callID: 5, kind: .message(CallMessage(payload: .sessionStatus(SessionStatus(
                    session: nil, turns: [TurnSummary(turnID: "t", state: .finished, code: code)]
                ))))),
            ]
            for frame in frames {
                #expect(try Frame(serializedBytes: frame.serializedBytes()) == frame)
            }
        }
    }

    @Test("default values round trip (proto3 omits them on the wire)")
    func defaults() throws {
        let frames = [
            Frame(kind: .ping(nonce: 0)),
            Frame(kind: .hello(Hello(minVersion: 0, maxVersion: 0, clientName: "", maxFrameSize: 0))),
            Frame(kind: .end(CallEnd(code: .ok))),
            Frame(kind: .message(CallMessage(payload: .session(Session(id: "", state: .unspecified))))),
            Frame(kind: .message(CallMessage(payload: .promptEvent(.output(OutputChunk(sequence: 0, data: [])))))),
        ]
        for frame in frames {
            #expect(try Frame(serializedBytes: frame.serializedBytes()) == frame)
        }
        // call_id 0 and an empty HalfClose: just the oneof tag and a zero length.
        #expect(Frame(kind: .halfClose).serializedBytes() == [0x32, 0x00])
    }
}

@Suite("Wire format (bytes written by hand)")
struct WireFormatTests {
    @Test("ping encodes as the proto field numbers say")
    func ping() throws {
        // Frame{call_id: 1, ping(9){nonce(1): 300}}
        let expected: [UInt8] = [0x08, 0x01, 0x4A, 0x03, 0x08, 0xAC, 0x02]
        let frame = Frame(callID: 1, kind: .ping(nonce: 300))
        #expect(frame.serializedBytes() == expected)
        #expect(try Frame(serializedBytes: expected) == frame)
    }

    @Test("the output-chunk fast path writes the same bytes a generic protobuf encoder would")
    func outputChunk() throws {
        let chunk = Wire.field(1, varint: 3) + Wire.field(2, bytes: [0x00, 0xFF])
        let event = Wire.field(3, bytes: chunk)
        let payload = Wire.field(9, bytes: event)
        for halfClose in [false, true] {
            let message = Wire.field(1, bytes: payload) + (halfClose ? Wire.field(2, varint: 1) : [])
            let expected = Wire.field(1, varint: 7) + Wire.field(5, bytes: message)
            let frame = Frame(callID: 7, kind: .message(CallMessage(
                payload: .promptEvent(.output(OutputChunk(sequence: 3, data: [0x00, 0xFF]))), halfClose: halfClose
            )))
            #expect(frame.serializedBytes() == expected)
            #expect(frame.withSerializedBytes { Array($0) } == expected)
            #expect(try Frame(serializedBytes: expected) == frame)
        }
    }

    @Test("an output chunk outside the fast path (in a CallEnd) uses the same field numbers")
    func outputChunkInCallEnd() throws {
        let chunk = Wire.field(1, varint: 3) + Wire.field(2, bytes: [0x00, 0xFF])
        let payload = Wire.field(9, bytes: Wire.field(3, bytes: chunk))
        let expected = Wire.field(1, varint: 7) + Wire.field(8, bytes: Wire.field(1, varint: 5) + Wire.field(3, bytes: payload))
        let frame = Frame(callID: 7, kind: .end(CallEnd(
            code: .notFound, payload: .promptEvent(.output(OutputChunk(sequence: 3, data: [0x00, 0xFF])))
        )))
        #expect(frame.serializedBytes() == expected)
    }

    @Test("a session request encodes strings, repeated labels and the nested settings message")
    func createSession() throws {
        let label = Wire.field(1, string: "k") + Wire.field(2, string: "ü")
        let settings = Wire.field(1, string: "echo") + Wire.field(5, varint: 2)
        let request = Wire.field(1, string: "s1") + Wire.field(2, bytes: label) + Wire.field(2, bytes: label)
            + Wire.field(3, bytes: settings)
        let start = Wire.field(1, string: MethodName.createSession) + Wire.field(4, bytes: Wire.field(1, bytes: request))
            + Wire.field(5, varint: 1)
        let expected = Wire.field(1, varint: 1) + Wire.field(4, bytes: start)
        let frame = Frame(callID: 1, kind: .start(CallStart(
            method: MethodName.createSession,
            payload: .createSessionRequest(CreateSessionRequest(
                sessionID: "s1",
                labels: [Label(key: "k", value: "ü"), Label(key: "k", value: "ü")],
                settings: SessionSettings(backend: "echo", maxQueuedPrompts: 2)
            )),
            halfClose: true
        )))
        #expect(frame.serializedBytes() == expected)
        #expect(try Frame(serializedBytes: expected) == frame)
    }
}

@Suite("Large frames (beyond the arena's inline memory)")
struct LargeFrameTests {
    @Test("a status with hundreds of sessions round trips")
    func manySessions() throws {
        let sessions = (0..<300).map { index in
            Session(
                id: "session-\(index)",
                labels: [Label(key: "index", value: "\(index)"), Label(key: "team", value: "t\(index % 7)")],
                settings: SessionSettings(backend: "worker:q\(index)", idleTimeoutMs: UInt64(index)),
                state: index.isMultiple(of: 2) ? .idle : .busy,
                createdAtMs: UInt64(index) * 1000,
                turnsCompleted: UInt64(index)
            )
        }
        let frame = Frame(callID: 8, kind: .end(CallEnd(code: .ok, payload: .serverStatus(ServerStatus(
            serverVersion: "x", sessionsTotal: 300, sessions: sessions
        )))))
        let bytes = frame.serializedBytes()
        #expect(bytes.count > 8192)
        #expect(try Frame(serializedBytes: bytes) == frame)
        #expect(frame.withSerializedBytes { Array($0) } == bytes)
    }

    @Test("a 300 KB prompt and a 1 MiB output chunk round trip")
    func largeStringsAndBytes() throws {
        let prompt = String(repeating: "Grüße 🌍 ", count: 20_000)
        let promptFrame = Frame(callID: 9, kind: .start(CallStart(
            method: MethodName.prompt, payload: .promptRequest(PromptRequest(sessionID: "s", prompt: prompt))
        )))
        #expect(try Frame(serializedBytes: promptFrame.serializedBytes()) == promptFrame)

        var generator = SplitMix64(seed: 42)
        let data = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let chunk = OutputChunk(sequence: 12, data: data)
        // The fast path (CallMessage) borrows the data; CallEnd goes through the arena.
        for frame in [
            Frame(callID: 9, kind: .message(CallMessage(payload: .promptEvent(.output(chunk))))),
            Frame(callID: 9, kind: .end(CallEnd(code: .ok, payload: .promptEvent(.output(chunk))))),
        ] {
            let bytes = frame.serializedBytes()
            #expect(bytes.count > 1 << 20)
            #expect(try Frame(serializedBytes: bytes) == frame)
            #expect(try frame.withSerializedBytes { try Frame(serializedBytes: $0) } == frame)
            #expect(Array(frame.prefixedBytes().dropFirst(4)) == bytes)
        }
    }
}
