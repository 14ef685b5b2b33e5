import SwitchboardProtocol
import Testing

/// A frame with a readable name for parameterized tests.
struct NamedFrame: Sendable, CustomTestStringConvertible {
    var name: String
    var frame: Frame
    var testDescription: String { name }
}

/// Values with a non-default value in every field: unicode strings, binary bytes
/// with 0x00 and 0xFF, large integers, repeated fields with several elements.
enum Fixtures {
    static let labels = [
        Label(key: "team", value: "Zürich 🚀"),
        Label(key: "env", value: "prod"),
        Label(key: "ключ", value: "значение"),
    ]

    static let settings = SessionSettings(
        backend: "worker:gpu-queue",
        idleTimeoutMs: 3_600_000,
        turnDeadlineMs: UInt64.max,
        stallTimeoutMs: 120_001,
        maxQueuedPrompts: UInt32.max
    )

    static let session = Session(
        id: "sess-ü-🚀",
        labels: labels,
        settings: settings,
        state: .busy,
        createdAtMs: 1_700_000_000_123,
        lastActivityMs: 1_700_000_999_999,
        queuedPrompts: 3,
        currentTurnID: "turn-42",
        turnsCompleted: UInt64.max - 1,
        ownerUID: 4_294_967_294
    )

    static let otherSession = Session(
        id: "second",
        labels: [Label(key: "k", value: "v")],
        settings: SessionSettings(backend: "echo", idleTimeoutMs: 1, turnDeadlineMs: 2, stallTimeoutMs: 3, maxQueuedPrompts: 4),
        state: .closed,
        createdAtMs: 5,
        lastActivityMs: 6,
        queuedPrompts: 7,
        currentTurnID: "t",
        turnsCompleted: 8,
        ownerUID: 9
    )

    static let idleSession = Session(
        id: "idle-1", labels: [], settings: SessionSettings(), state: .idle, createdAtMs: 10, lastActivityMs: 11
    )

    static let turnSummaries = [
        TurnSummary(
            turnID: "turn-3", state: .running, code: .ok, message: "", stopReason: "",
            chunks: 12, bytes: 34_567, startedAtMs: 1_700_000_000_000, endedAtMs: 0, promptPreview: "Hallo Welt… 👋"
        ),
        TurnSummary(
            turnID: "turn-4", state: .queued, code: .unavailable, message: "worker gone", stopReason: "none",
            chunks: 1, bytes: 2, startedAtMs: 3, endedAtMs: 4, promptPreview: "queued"
        ),
        TurnSummary(
            turnID: "turn-2", state: .finished, code: .deadlineExceeded, message: "turn deadline of 10s passed",
            stopReason: "deadline", chunks: UInt64.max, bytes: UInt64.max - 7, startedAtMs: 1_699_999_999_000,
            endedAtMs: 1_700_000_000_000, promptPreview: "日本語のプロンプト"
        ),
    ]

    static let outputChunk = OutputChunk(sequence: UInt64.max, data: [0x00, 0xFF, 0x7F, 0x80, 0x00, 0x0A, 0xC3])

    /// Every case of `PromptEvent`.
    static let promptEvents: [PromptEvent] = [
        .accepted(TurnAccepted(turnID: "turn-✓-1", queuePosition: 17)),
        .started(turnID: "turn-✓-1"),
        .output(outputChunk),
        .output(OutputChunk(sequence: 1, data: [])),
        .finished(TurnFinished(
            turnID: "turn-✓-1", stopReason: "end_turn", chunks: 1_234_567_890_123,
            bytes: UInt64.max, durationMs: 987_654_321
        )),
    ]

    /// Every case of `Payload` (some more than once: with and without optionals).
    static let payloads: [Payload] = [
        .createSessionRequest(CreateSessionRequest(sessionID: "my.session-1_x", labels: labels, settings: settings)),
        .getSessionRequest(GetSessionRequest(sessionID: "sess-ü-🚀")),
        .listSessionsRequest(ListSessionsRequest(labelSelector: labels, pageSize: 1000, pageToken: "cursor:Ω")),
        .listSessionsResponse(ListSessionsResponse(sessions: [session, otherSession, idleSession], nextPageToken: "next→")),
        .listSessionsResponse(ListSessionsResponse(sessions: [], nextPageToken: "")),
        .closeSessionRequest(CloseSessionRequest(sessionID: "sess-ü-🚀", reason: "user hung up ☎️")),
        .closeSessionResponse(CloseSessionResponse(session: session, cancelledTurns: 1, rejectedPrompts: 5)),
        .closeSessionResponse(CloseSessionResponse(session: nil, cancelledTurns: 0, rejectedPrompts: 2)),
        .session(session),
        .promptRequest(PromptRequest(sessionID: "sess-ü-🚀", prompt: "Erkläre 🌍\nin drei Sätzen.\t", whenBusy: .reject)),
        .promptRequest(PromptRequest(sessionID: "s", prompt: "wait please", whenBusy: .wait)),
        .serverStatusRequest(ServerStatusRequest(includeSessions: true)),
        .serverStatus(ServerStatus(
            serverVersion: "0.1.0-β", protocolVersion: 7, uptimeMs: UInt64.max, connections: 12,
            sessionsTotal: 3, sessionsIdle: 1, sessionsBusy: 2, turnsInFlight: 2, queuedPrompts: 5,
            maxQueueDepth: 4, turnsCompleted: 1 << 40, draining: true,
            sessions: [session, otherSession, idleSession], pid: 123_456
        )),
        .serverStatus(ServerStatus(
            serverVersion: "0.1.0", stateDirectory: "/var/lib/switchboard/switchboard.sqlite",
            storeError: "database or disk is full", storeErrorSinceMs: 1_700_000_000_123
        )),
        .sessionStatusRequest(SessionStatusRequest(sessionID: "sess-ü-🚀")),
        .sessionStatus(SessionStatus(session: session, turns: turnSummaries)),
        .sessionStatus(SessionStatus(session: nil, turns: [])),
        .healthCheckRequest(HealthCheckRequest(service: "switchboard.v1.Sessions")),
        .healthCheckResponse(HealthCheckResponse(status: .notServing)),
        .healthCheckResponse(HealthCheckResponse(status: .notServing, reason: "session store cannot write: database or disk is full")),
        .healthCheckResponse(HealthCheckResponse(status: .serving)),
    ] + promptEvents.map { .promptEvent($0) }

    static let metadata = [
        MetadataEntry(key: "user-agent", value: "switchboard-swift/0.1 (Linux) ✨"),
        MetadataEntry(key: "x-trace", value: "abc123"),
        MetadataEntry(key: "empty", value: ""),
    ]

    /// Every kind of `Frame`, with and without optional payloads.
    static let frames: [NamedFrame] = [
        NamedFrame(name: "hello", frame: Frame(kind: .hello(Hello(
            minVersion: 2, maxVersion: 9, clientName: "switchboard-cli 🛠", maxFrameSize: 16 * 1024 * 1024
        )))),
        NamedFrame(name: "welcome", frame: Frame(kind: .welcome(Welcome(
            version: 3, serverName: "switchboard@höst", serverVersion: "0.1.0", maxFrameSize: 4_194_304,
            maxConcurrentCalls: 128, connectionID: UInt64.max, maxQueuedPrompts: 16
        )))),
        NamedFrame(name: "start without payload", frame: Frame(callID: 1, kind: .start(CallStart(
            method: MethodName.prompt, metadata: metadata, timeoutMs: 30_000, payload: nil, halfClose: false
        )))),
        NamedFrame(name: "halfClose", frame: Frame(callID: UInt64.max, kind: .halfClose)),
        NamedFrame(name: "cancel", frame: Frame(callID: 99, kind: .cancel(reason: "user pressed ^C — abbrechen"))),
        NamedFrame(name: "cancel without reason", frame: Frame(callID: 100, kind: .cancel(reason: ""))),
        NamedFrame(name: "message without payload", frame: Frame(callID: 2, kind: .message(CallMessage(payload: nil, halfClose: true)))),
        NamedFrame(name: "end without payload", frame: Frame(callID: 3, kind: .end(CallEnd(
            code: .failedPrecondition, message: "session busy: ⏳", payload: nil, trailers: metadata
        )))),
        NamedFrame(name: "end with unknown code", frame: Frame(callID: 4, kind: .end(CallEnd(code: StatusCode(rawValue: 4242))))),
        NamedFrame(name: "ping", frame: Frame(kind: .ping(nonce: UInt64.max))),
        NamedFrame(name: "pong", frame: Frame(kind: .pong(nonce: 0x0123_4567_89AB_CDEF))),
        NamedFrame(name: "goAway", frame: Frame(kind: .goAway(GoAway(
            lastCallID: 1 << 62, code: .unavailable, message: "draining: server is shutting down ⛔"
        )))),
    ]
        + payloads.enumerated().flatMap { index, payload -> [NamedFrame] in
            let callID = UInt64(1000 + index)
            return [
                NamedFrame(name: "start with \(payload.caseName) #\(index)", frame: Frame(callID: callID, kind: .start(CallStart(
                    method: "/switchboard.v1.Service/Method\(index)", metadata: metadata,
                    timeoutMs: UInt64(index) + 1, payload: payload, halfClose: true
                )))),
                NamedFrame(name: "message with \(payload.caseName) #\(index)", frame: Frame(
                    callID: callID, kind: .message(CallMessage(payload: payload, halfClose: index % 2 == 0))
                )),
                NamedFrame(name: "end with \(payload.caseName) #\(index)", frame: Frame(callID: callID, kind: .end(CallEnd(
                    code: .ok, message: "done #\(index)", payload: payload, trailers: [metadata[index % metadata.count]]
                )))),
            ]
        }

    /// A stable name for each frame kind, to check that the fixtures cover all of them.
    static func kindName(_ kind: Frame.Kind) -> String {
        switch kind {
        case .hello: "hello"
        case .welcome: "welcome"
        case .start: "start"
        case .message: "message"
        case .halfClose: "half_close"
        case .cancel: "cancel"
        case .end: "end"
        case .ping: "ping"
        case .pong: "pong"
        case .goAway: "go_away"
        }
    }

    static func payload(of kind: Frame.Kind) -> Payload? {
        switch kind {
        case .start(let start): start.payload
        case .message(let message): message.payload
        case .end(let end): end.payload
        default: nil
        }
    }
}

/// SplitMix64: a tiny deterministic generator, so fuzz runs are reproducible.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Hand-written protobuf encoding, to build wire bytes independently of the codec.
enum Wire {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
        return bytes
    }

    /// A varint field (wire type 0).
    static func field(_ number: UInt64, varint value: UInt64) -> [UInt8] {
        varint(number << 3) + varint(value)
    }

    /// A length-delimited field (wire type 2): a message, string or bytes.
    static func field(_ number: UInt64, bytes body: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(UInt64(body.count)) + body
    }

    static func field(_ number: UInt64, string: String) -> [UInt8] {
        field(number, bytes: Array(string.utf8))
    }
}

/// Decodes, expecting a SwitchboardError (the only error the codec throws).
func decodeError(_ bytes: [UInt8]) -> SwitchboardError? {
    do {
        _ = try Frame(serializedBytes: bytes)
        return nil
    } catch {
        return error
    }
}
