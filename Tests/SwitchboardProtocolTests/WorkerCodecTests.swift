import SwitchboardProtocol
import Testing

@Suite("Worker protocol codec")
struct WorkerCodecTests {
    static let labels = [Label(key: "gpu", value: "a100 🚀"), Label(key: "zone", value: "ü")]

    static let payloads: [Payload] = [
        .workerMessage(.register(WorkerRegister(taskQueue: "gpu-queue", capacity: 4, labels: labels, displayName: "worker ✨"))),
        .workerMessage(.register(WorkerRegister(taskQueue: "q", capacity: 0))),
        .workerMessage(.output(turnID: "t-1", data: [0x00, 0xFF, 0x41, 0x00])),
        .workerMessage(.finished(turnID: "t-1", stopReason: "end_turn")),
        .workerMessage(.failed(turnID: "t-2", code: .resourceExhausted, message: "out of memory ☠")),
        .workerMessage(.heartbeatAck(nonce: UInt64.max)),
        .workerCommand(.registered(WorkerRegistered(workerID: "w-1", heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 5000))),
        .workerCommand(.assignment(TurnAssignment(
            turnID: "t-9", sessionID: "s-ü", sessionLabels: labels, prompt: "hello\nworld", deadlineMs: 600_000
        ))),
        .workerCommand(.cancellation(turnID: "t-9", reason: "client disconnected")),
        .workerCommand(.heartbeat(nonce: 7)),
        .serverStatus(ServerStatus(
            serverVersion: "1.0",
            pid: 42,
            workers: [
                WorkerInfo(
                    workerID: "w-1", taskQueue: "q", displayName: "one", labels: labels,
                    capacity: 2, inFlight: 1, turnsServed: UInt64.max, connectedAtMs: 1_700_000_000_000
                ),
                WorkerInfo(workerID: "w-2", taskQueue: "r", capacity: 1),
            ],
            workerQueues: [WorkerQueueInfo(taskQueue: "q", workers: 1, waitingTurns: 3)]
        )),
        .session(Session(id: "s", settings: SessionSettings(backend: "worker:q", whenNoWorker: .fail))),
        .session(Session(id: "s", settings: SessionSettings(backend: "worker:q", whenNoWorker: .wait))),
    ]

    @Test("worker payloads survive a frame round trip", arguments: payloads)
    func roundTrip(_ payload: Payload) throws {
        let frame = Frame(callID: 3, kind: .message(CallMessage(payload: payload)))
        let decoded = try Frame(serializedBytes: frame.serializedBytes())
        #expect(decoded == frame)
    }

    @Test("every worker message and command kind has a distinct encoding")
    func distinct() {
        let encodings = Self.payloads.map { Frame(callID: 1, kind: .message(CallMessage(payload: $0))).serializedBytes() }
        #expect(Set(encodings).count == Self.payloads.count)
    }

    @Test("the worker method name")
    func methodName() {
        #expect(MethodName.workerConnect == "/switchboard.v1.Workers/Connect")
        #expect(Payload.workerMessage(.heartbeatAck(nonce: 1)).caseName == "worker_message")
        #expect(Payload.workerCommand(.heartbeat(nonce: 1)).caseName == "worker_command")
    }

    @Test("a worker message with no kind decodes as a missing payload, not a broken frame")
    func emptyWorkerMessage() throws {
        // CallMessage{payload: Payload{worker_message(16): WorkerMessage{}}}:
        // Frame.call_id = 1 (08 01), message (2a) len 5 -> CallMessage.payload (0a) len 3
        // -> Payload field 16, wire type 2 (82 01) len 0.
        let bytes: [UInt8] = [0x08, 0x01, 0x2A, 0x05, 0x0A, 0x03, 0x82, 0x01, 0x00]
        let frame = try Frame(serializedBytes: bytes)
        #expect(frame == Frame(callID: 1, kind: .message(CallMessage(payload: nil))))
    }
}
