import SwitchboardProtocol

/// Small valid values of every message the fuzz targets cover, built with the
/// protocol's own types so the seeds are exactly what the encoder produces.
enum Samples {
    static let labels = [Label(key: "team", value: "zürich"), Label(key: "env", value: "prod")]
    static let settings = SessionSettings(
        backend: "worker:gpu", idleTimeoutMs: 3_600_000, turnDeadlineMs: 600_000, stallTimeoutMs: 120_000,
        maxQueuedPrompts: 16, whenNoWorker: .fail, retainTurns: 8, retainOutputBytes: 65_536, retainAgeMs: 86_400_000
    )
    static let session = Session(
        id: "sess-1", labels: labels, settings: settings, state: .busy, createdAtMs: 1_700_000_000_000,
        lastActivityMs: 1_700_000_000_500, queuedPrompts: 2, currentTurnID: "turn-7", turnsCompleted: 6, ownerUID: 1000
    )
    static let summary = TurnSummary(
        turnID: "turn-7", state: .finished, code: .deadlineExceeded, message: "deadline", stopReason: "deadline",
        chunks: 3, bytes: 42, startedAtMs: 1_700_000_000_100, endedAtMs: 1_700_000_000_400,
        promptPreview: "hello", acceptedAtMs: 1_700_000_000_050
    )
    static let metadata = [MetadataEntry(key: "user-agent", value: "fuzz-seed"), MetadataEntry(key: "x", value: "")]

    static let payloads: [Payload] = [
        .createSessionRequest(CreateSessionRequest(sessionID: "sess-1", labels: labels, settings: settings)),
        .getSessionRequest(GetSessionRequest(sessionID: "sess-1")),
        .listSessionsRequest(ListSessionsRequest(labelSelector: labels, pageSize: 10, pageToken: "cursor")),
        .listSessionsResponse(ListSessionsResponse(sessions: [session, Session(id: "idle")], nextPageToken: "next")),
        .closeSessionRequest(CloseSessionRequest(sessionID: "sess-1", reason: "done")),
        .closeSessionResponse(CloseSessionResponse(session: session, cancelledTurns: 1, rejectedPrompts: 2)),
        .session(session),
        .listTurnsRequest(ListTurnsRequest(sessionID: "sess-1", pageSize: 5, pageToken: "t", includeOutput: true)),
        .listTurnsResponse(ListTurnsResponse(
            turns: [TurnHistoryEntry(summary: summary, prompt: "hello", output: [0x00, 0xFF, 0x0A], outputDropped: true)],
            nextPageToken: "more"
        )),
        .promptRequest(PromptRequest(sessionID: "sess-1", prompt: "Explain ✨", whenBusy: .reject, cancelOnDisconnect: true)),
        .attachRequest(AttachRequest(sessionID: "sess-1", turnID: "turn-7", afterSequence: 3)),
        .promptEvent(.accepted(TurnAccepted(turnID: "turn-7", queuePosition: 1))),
        .promptEvent(.started(turnID: "turn-7")),
        .promptEvent(.output(OutputChunk(sequence: 1, data: [0x68, 0x69, 0x00, 0xFF]))),
        .promptEvent(.finished(TurnFinished(turnID: "turn-7", stopReason: "end_turn", chunks: 3, bytes: 42, durationMs: 300))),
        .promptEvent(.attached(TurnAttached(turnID: "turn-7", state: .running, lastSequence: 3))),
        .serverStatusRequest(ServerStatusRequest(includeSessions: true)),
        .serverStatus(ServerStatus(
            serverVersion: "0.1.0", uptimeMs: 1000, connections: 2, sessionsTotal: 1, sessionsBusy: 1,
            turnsInFlight: 1, queuedPrompts: 2, maxQueueDepth: 2, turnsCompleted: 6, draining: true,
            sessions: [session], pid: 4242,
            workers: [WorkerInfo(workerID: "w1", taskQueue: "gpu", displayName: "box", labels: labels, capacity: 2, inFlight: 1, turnsServed: 9, connectedAtMs: 5)],
            workerQueues: [WorkerQueueInfo(taskQueue: "gpu", workers: 1, waitingTurns: 3)],
            stateDirectory: "/var/lib/switchboard"
        )),
        .sessionStatusRequest(SessionStatusRequest(sessionID: "sess-1")),
        .sessionStatus(SessionStatus(session: session, turns: [summary])),
        .healthCheckRequest(HealthCheckRequest(service: "switchboard.v1.Sessions")),
        .healthCheckResponse(HealthCheckResponse(status: .serving)),
        .workerMessage(.register(WorkerRegister(taskQueue: "gpu", capacity: 2, labels: labels, displayName: "box"))),
        .workerMessage(.output(turnID: "turn-7", data: [0x00, 0x01, 0xFF])),
        .workerMessage(.finished(turnID: "turn-7", stopReason: "end_turn")),
        .workerMessage(.failed(turnID: "turn-7", code: .internal, message: "backend died")),
        .workerMessage(.heartbeatAck(nonce: 77)),
        .workerCommand(.registered(WorkerRegistered(workerID: "w1", heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 15_000))),
        .workerCommand(.assignment(TurnAssignment(
            turnID: "turn-7", sessionID: "sess-1", sessionLabels: labels, prompt: "hello", deadlineMs: 600_000
        ))),
        .workerCommand(.cancellation(turnID: "turn-7", reason: "client cancelled")),
        .workerCommand(.heartbeat(nonce: 77)),
    ]

    /// Every frame kind, and every payload in each envelope that carries one.
    static var frames: [Frame] {
        var frames: [Frame] = [
            Frame(kind: .hello(Hello(minVersion: 1, maxVersion: 3, clientName: "fuzz-seed", maxFrameSize: 65_536))),
            Frame(kind: .welcome(Welcome(
                version: 3, serverName: "switchboard", serverVersion: "0.1.0", maxFrameSize: 4_194_304,
                maxConcurrentCalls: 128, connectionID: 9, maxQueuedPrompts: 16,
                limits: ConnectionLimits(maxConnections: 100, maxConnectionsPerUID: 10, maxSessionsPerUID: 50,
                                         handshakeTimeoutMs: 5000, idleConnectionTimeoutMs: 60_000, maxBufferedOutputBytes: 1 << 20),
                peer: PeerGrant(uid: 1000, isAdmin: true, mayRegisterWorkers: true)
            ))),
            Frame(callID: 1, kind: .start(CallStart(method: MethodName.prompt, metadata: metadata, timeoutMs: 30_000, payload: nil, halfClose: false))),
            Frame(callID: 1, kind: .message(CallMessage(payload: nil, halfClose: true))),
            Frame(callID: 1, kind: .halfClose),
            Frame(callID: 1, kind: .cancel(reason: "user pressed ^C")),
            Frame(callID: 1, kind: .end(CallEnd(code: .failedPrecondition, message: "busy", payload: nil, trailers: metadata))),
            Frame(callID: 1, kind: .end(CallEnd(code: StatusCode(rawValue: 4242)))),
            Frame(kind: .ping(nonce: 1 << 40)),
            Frame(kind: .pong(nonce: 1 << 40)),
            Frame(kind: .goAway(GoAway(lastCallID: 5, code: .unavailable, message: "draining"))),
        ]
        for (index, payload) in payloads.enumerated() {
            let callID = UInt64(index + 2)
            frames.append(Frame(callID: callID, kind: .message(CallMessage(payload: payload, halfClose: index % 2 == 0))))
            frames.append(Frame(callID: callID, kind: .start(CallStart(method: "/switchboard.v1.Fuzz/M", metadata: [metadata[0]], timeoutMs: 100, payload: payload, halfClose: true))))
            frames.append(Frame(callID: callID, kind: .end(CallEnd(code: .ok, message: "", payload: payload))))
        }
        return frames
    }
}
