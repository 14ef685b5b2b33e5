import SwitchboardProtocol
import Testing

/// The wire check of `string` fields (NUL byte, invalid UTF-8) and the sender's
/// NUL check, with the field paths both report.
@Suite("String field checks")
struct StringFieldCheckTests {
    /// `frame` encoded, with the one occurrence of `marker` replaced by `bytes` of the same length.
    static func patched(_ frame: Frame, _ marker: String, _ bytes: [UInt8]) -> [UInt8] {
        let needle = Array(marker.utf8)
        var encoded = frame.serializedBytes()
        let start = encoded.indices.first { encoded[$0...].starts(with: needle) }!
        encoded.replaceSubrange(start..<(start + needle.count), with: bytes)
        return encoded
    }

    @Test("UTF-8 rules: RFC 3629, and a NUL wins over invalid UTF-8")
    func utf8Rules() {
        let valid: [[UInt8]] = [
            [], Array("plain ascii, longer than eight bytes".utf8), Array("café € 😀 日本".utf8),
            [0xF4, 0x8F, 0xBF, 0xBF], [0xEF, 0xBF, 0xBF], [0xE0, 0xA0, 0x80],
        ]
        for bytes in valid {
            #expect(InvalidStringField.problem(in: bytes) == nil, "\(bytes)")
        }
        let invalid: [[UInt8]] = [
            [0xFF], [0x80], [0xC0, 0xAF], [0xC1, 0xBF],  // stray continuation, overlong
            [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80],  // overlong, surrogate
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],  // above U+10FFFF
            [0x61, 0xE2, 0x82], Array("twelve bytes".utf8) + [0xC3],  // truncated
        ]
        for bytes in invalid {
            #expect(InvalidStringField.problem(in: bytes) == .invalidUTF8, "\(bytes)")
        }
        #expect(InvalidStringField.problem(in: Array("a\0b".utf8)) == .nulByte)
        #expect(InvalidStringField.problem(in: Array("sixteen bytes\0ab".utf8)) == .nulByte)
        #expect(InvalidStringField.problem(in: [0xFF, 0x00]) == .nulByte)
    }

    @Test("decoding names the refused field by its path in the request; valid frames decode clean")
    func decodingNamesTheField() throws {
        let create = Frame(callID: 7, kind: .start(CallStart(
            method: MethodName.createSession,
            payload: .createSessionRequest(CreateSessionRequest(
                sessionID: "sid",
                labels: [Label(key: "a", value: "b"), Label(key: "keyX", value: "v")],
                settings: SessionSettings(backend: "echoX")
            )),
            halfClose: true
        )))
        #expect(try Frame(serializedBytes: create.serializedBytes()).invalidString == nil)

        let nulKey = try Frame(serializedBytes: Self.patched(create, "keyX", Array("key\0".utf8)))
        #expect(nulKey.invalidString == InvalidStringField(field: "labels[1].key", problem: .nulByte))
        #expect(nulKey.invalidString?.error == SwitchboardError(code: .invalidArgument, message: "labels[1].key contains a NUL byte"))
        #expect(nulKey.callID == 7)

        let badBackend = try Frame(serializedBytes: Self.patched(create, "echoX", [0x65, 0x63, 0x68, 0x6F, 0xFF]))
        #expect(badBackend.invalidString?.message == "settings.backend is not valid UTF-8")

        let worker = Frame(callID: 3, kind: .message(CallMessage(payload: .workerMessage(.failed(turnID: "t-1", code: .internal, message: "oopsX")))))
        let badWorker = try Frame(serializedBytes: Self.patched(worker, "oopsX", Array("oops\0".utf8)))
        #expect(badWorker.invalidString?.message == "failed.message contains a NUL byte")

        let cancel = Frame(callID: 3, kind: .cancel(reason: "whyX"))
        #expect(try Frame(serializedBytes: Self.patched(cancel, "whyX", [0x77, 0x68, 0x79, 0xC2])).invalidString?.message == "reason is not valid UTF-8")

        // Output is bytes: anything goes.
        let output = Frame(callID: 3, kind: .message(CallMessage(payload: .promptEvent(.output(OutputChunk(sequence: 1, data: [0, 0xFF, 0xC0]))))))
        #expect(try Frame(serializedBytes: output.serializedBytes()).invalidString == nil)
    }

    @Test("libprotobuf-c refuses group wire types, so the wire check never has to skip one")
    func groupsAreRefused() {
        // call_id = 1, then an unknown field 20 as a start-group ... end-group pair.
        let bytes: [UInt8] = [0x08, 0x01, 0xA3, 0x01, 0xA4, 0x01]
        #expect(throws: SwitchboardError.self) { try Frame(serializedBytes: bytes) }
    }

    @Test("a sender finds the string with a NUL before it is cut off on the wire")
    func senderCheck() {
        let clean = Frame(kind: .start(CallStart(method: MethodName.prompt, payload: .promptRequest(PromptRequest(sessionID: "s", prompt: "hi")))))
        #expect(clean.fieldWithNUL() == nil)
        let prompt = Frame(kind: .start(CallStart(method: MethodName.prompt, payload: .promptRequest(PromptRequest(sessionID: "s", prompt: "first part\0second part")))))
        #expect(prompt.fieldWithNUL() == InvalidStringField(field: "prompt", problem: .nulByte))
        #expect(throws: SwitchboardError(code: .invalidArgument, message: "prompt contains a NUL byte")) {
            try prompt.checkStringsBeforeSending()
        }
        let label = Frame(kind: .start(CallStart(method: MethodName.createSession, payload: .createSessionRequest(CreateSessionRequest(
            labels: [Label(key: "k", value: "v"), Label(key: "k2", value: "v\0")]
        )))))
        #expect(label.fieldWithNUL()?.message == "labels[1].value contains a NUL byte")
        let metadata = Frame(kind: .start(CallStart(method: "m", metadata: [MetadataEntry(key: "a\0", value: "")])))
        #expect(metadata.fieldWithNUL()?.message == "metadata[0].key contains a NUL byte")
    }
}
