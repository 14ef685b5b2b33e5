import SwitchboardProtocol
import Testing

@Suite("Decoding malformed and unusual input")
struct MalformedFrameTests {
    /// Decodes `bytes`; either it throws INVALID_ARGUMENT "malformed frame: ..." or the
    /// frame it yields re-encodes to a frame that decodes to itself. Returns whether it threw.
    @discardableResult
    private func checkDecodeIsSafe(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        do {
            let frame = try Frame(serializedBytes: bytes)
            let again = try Frame(serializedBytes: frame.serializedBytes())
            // A refused string (NUL, invalid UTF-8) is reported by `invalidString` of
            // the first decoding only: the re-encoded values are clean.
            var values = frame
            values.invalidString = nil
            #expect(again == values, "decoded frame is not stable under re-encoding", sourceLocation: sourceLocation)
            return false
        } catch {
            #expect(error.code == .invalidArgument, sourceLocation: sourceLocation)
            #expect(error.message.hasPrefix("malformed frame: "), sourceLocation: sourceLocation)
            return true
        }
    }

    @Test("random bytes never crash the decoder")
    func randomGarbage() {
        var generator = SplitMix64(seed: 0x5EED_0001)
        var failures = 0
        let runs = 5000
        for _ in 0..<runs {
            let count = Int.random(in: 0...96, using: &generator)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if checkDecodeIsSafe(bytes) { failures += 1 }
        }
        // Random bytes are almost never a valid frame with a kind.
        #expect(failures > runs * 9 / 10)
    }

    @Test("random bytes behind a valid frame header never crash the decoder")
    func garbageInsideValidEnvelope() {
        var generator = SplitMix64(seed: 0x5EED_0002)
        for field in UInt64(2)...11 {
            for _ in 0..<300 {
                let count = Int.random(in: 0...48, using: &generator)
                let body = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
                checkDecodeIsSafe(Wire.field(1, varint: 1) + Wire.field(field, bytes: body))
            }
        }
    }

    @Test("every truncation of a valid frame is rejected or decodes safely", arguments: Fixtures.frames)
    func truncated(_ named: NamedFrame) {
        let bytes = named.frame.serializedBytes()
        var rejected = 0
        for length in 0..<bytes.count {
            if checkDecodeIsSafe(Array(bytes[..<length])) { rejected += 1 }
        }
        // Cutting off the end of the kind's message always breaks its length prefix.
        #expect(checkDecodeIsSafe(Array(bytes.dropLast())))
        #expect(rejected > 0)
    }

    @Test("a valid frame with any one byte flipped is rejected or decodes safely", arguments: Fixtures.frames)
    func flippedByte(_ named: NamedFrame) {
        let bytes = named.frame.serializedBytes()
        for index in bytes.indices {
            for mask: UInt8 in [0xFF, 0x80, 0x01] {
                var corrupted = bytes
                corrupted[index] ^= mask
                checkDecodeIsSafe(corrupted)
            }
        }
    }

    @Test("a frame without a kind is rejected")
    func noKind() {
        let expected = SwitchboardError(code: .invalidArgument, message: "malformed frame: frame has no kind")
        #expect(decodeError([]) == expected)
        #expect(decodeError(Wire.field(1, varint: 42)) == expected)
        // A kind from a newer protocol version (field 12) is an unknown field here.
        #expect(decodeError(Wire.field(1, varint: 42) + Wire.field(12, bytes: [0x08, 0x01])) == expected)
    }

    @Test("bytes that are not protobuf are rejected with the malformed-frame message")
    func notProtobuf() {
        // Field 1 with the invalid wire type 7.
        let error = decodeError([0x0F, 0x01])
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.hasPrefix("malformed frame: ") == true)
        // A length that runs past the end.
        #expect(decodeError([0x22, 0x05, 0x0A]) != nil)
        // A varint that never ends.
        #expect(decodeError([0x08] + Array(repeating: 0xFF, count: 11)) != nil)
    }

    @Test("a prompt event without an event is rejected")
    func emptyPromptEvent() {
        let payload = Wire.field(9, bytes: [])
        let bytes = Wire.field(1, varint: 3) + Wire.field(5, bytes: Wire.field(1, bytes: payload))
        #expect(decodeError(bytes) == SwitchboardError(
            code: .invalidArgument, message: "malformed frame: prompt event has no event"
        ))
    }

    @Test("a call message without payload decodes with payload nil")
    func messageWithoutPayload() throws {
        let bare = Wire.field(1, varint: 3) + Wire.field(5, bytes: [])
        #expect(try Frame(serializedBytes: bare) == Frame(callID: 3, kind: .message(CallMessage(payload: nil))))

        let halfClosed = Wire.field(1, varint: 3) + Wire.field(5, bytes: Wire.field(2, varint: 1))
        #expect(try Frame(serializedBytes: halfClosed) == Frame(callID: 3, kind: .message(CallMessage(payload: nil, halfClose: true))))
    }

    @Test("a payload with no body or an unknown body decodes as nil")
    func unknownPayloadCase() throws {
        let empty = Wire.field(1, varint: 3) + Wire.field(5, bytes: Wire.field(1, bytes: []))
        #expect(try Frame(serializedBytes: empty) == Frame(callID: 3, kind: .message(CallMessage(payload: nil))))

        // Field 21 is reserved for future payloads (16-20 are the worker, attach and history messages).
        let future = Wire.field(1, varint: 3)
            + Wire.field(4, bytes: Wire.field(1, string: "/x.Y/Z") + Wire.field(4, bytes: Wire.field(21, bytes: [0x08, 0x01])))
        #expect(try Frame(serializedBytes: future) == Frame(callID: 3, kind: .start(CallStart(method: "/x.Y/Z"))))
    }

    @Test("unknown enum numbers decode as the default case, unknown status codes are kept")
    func unknownEnumNumbers() throws {
        // Session{id: "s", state: 9}
        let session = Wire.field(1, string: "s") + Wire.field(4, varint: 9)
        let sessionFrame = Wire.field(5, bytes: Wire.field(1, bytes: Wire.field(7, bytes: session)))
        let decodedSession = try Frame(serializedBytes: sessionFrame)
        #expect(decodedSession == Frame(kind: .message(CallMessage(payload: .session(Session(id: "s", state: .unspecified))))))

        // PromptRequest{session_id: "s", prompt: "p", when_busy: 5}
        let prompt = Wire.field(1, string: "s") + Wire.field(2, string: "p") + Wire.field(3, varint: 5)
        let promptFrame = Wire.field(5, bytes: Wire.field(1, bytes: Wire.field(8, bytes: prompt)))
        #expect(try Frame(serializedBytes: promptFrame)
            == Frame(kind: .message(CallMessage(payload: .promptRequest(PromptRequest(sessionID: "s", prompt: "p", whenBusy: .wait))))))

        // TurnSummary{turn_id: "t", state: 77, code: 99}
        let turn = Wire.field(1, string: "t") + Wire.field(2, varint: 77) + Wire.field(3, varint: 99)
        let statusFrame = Wire.field(5, bytes: Wire.field(1, bytes: Wire.field(13, bytes: Wire.field(2, bytes: turn))))
        #expect(try Frame(serializedBytes: statusFrame) == Frame(kind: .message(CallMessage(payload: .sessionStatus(SessionStatus(
            session: nil, turns: [TurnSummary(turnID: "t", state: .unspecified, code: StatusCode(rawValue: 99))]
        ))))))

        // HealthCheckResponse{status: 3}
        let healthFrame = Wire.field(5, bytes: Wire.field(1, bytes: Wire.field(15, bytes: Wire.field(1, varint: 3))))
        #expect(try Frame(serializedBytes: healthFrame)
            == Frame(kind: .message(CallMessage(payload: .healthCheckResponse(HealthCheckResponse(status: .unknown))))))
    }

    @Test("unknown fields are skipped")
    func unknownFields() throws {
        let ping = Wire.field(1, varint: 5) + Wire.field(15, string: "from the future")
        let bytes = Wire.field(1, varint: 2) + Wire.field(9, bytes: ping) + Wire.field(99, varint: 1)
        #expect(try Frame(serializedBytes: bytes) == Frame(callID: 2, kind: .ping(nonce: 5)))
    }

    @Test("invalid UTF-8 in a string is not fatal to decoding: the frame says which field, for the receiver to refuse")
    func invalidUTF8() throws {
        let hello = Wire.field(3, bytes: [0x66, 0xFF, 0x6F, 0xC3])
        let frame = try Frame(serializedBytes: Wire.field(2, bytes: hello))
        guard case .hello(let decoded) = frame.kind else {
            Issue.record("expected a hello, got \(frame)")
            return
        }
        #expect(decoded.clientName == "f\u{FFFD}o\u{FFFD}")
        #expect(frame.invalidString == InvalidStringField(field: "client_name", problem: .invalidUTF8))
    }

    @Test("an embedded NUL truncates a string (protobuf-c uses C strings); senders find it first, receivers see it on the wire")
    func embeddedNUL() throws {
        let frame = Frame(kind: .cancel(reason: "before\0after"))
        #expect(frame.fieldWithNUL() == InvalidStringField(field: "reason", problem: .nulByte))
        let onTheWire = Wire.field(7, bytes: Wire.field(1, bytes: Array("before\0after".utf8)))
        #expect(try Frame(serializedBytes: onTheWire).invalidString == InvalidStringField(field: "reason", problem: .nulByte))
        #expect(frame.serializedBytes() == Wire.field(7, bytes: Wire.field(1, string: "before")))
        #expect(try Frame(serializedBytes: frame.serializedBytes()) == Frame(kind: .cancel(reason: "before")))
        // Bytes fields carry NULs intact.
        let chunk = Frame(kind: .message(CallMessage(payload: .promptEvent(.output(OutputChunk(sequence: 1, data: [0, 0, 0]))))))
        #expect(try Frame(serializedBytes: chunk.serializedBytes()) == chunk)
    }

    @Test("a decoded frame does not depend on the input buffer afterwards")
    func decodedValuesAreCopies() throws {
        let original = Frame(callID: 1, kind: .message(CallMessage(payload: .promptEvent(.output(Fixtures.outputChunk)))))
        var bytes = original.serializedBytes()
        let decoded = try Frame(serializedBytes: bytes)
        for index in bytes.indices { bytes[index] = 0xAA }
        #expect(decoded == original)
    }
}
