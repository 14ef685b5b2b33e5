import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

/// A raw worker: handshake, register on `queue`; returns the client and the call id.
private func registerRawWorker(_ server: TestServer, queue: String) async throws -> (RawClient, UInt64) {
    let worker = try await server.connectAndHandshake()
    let call = worker.newCallID()
    try await worker.send(Frame(callID: call, kind: .start(CallStart(
        method: MethodName.workerConnect,
        payload: .workerMessage(.register(WorkerRegister(taskQueue: queue, capacity: 1)))
    ))))
    let first = try await worker.expectFrame(forCall: call)
    guard case .message(let message) = first.kind, case .workerCommand(.registered)? = message.payload else {
        throw RawClientError(description: "expected registered, got \(first)")
    }
    return (worker, call)
}

private func createWorkerSession(_ client: RawClient, _ id: String, queue: String) async throws {
    let end = try await client.unary(MethodName.createSession, .createSessionRequest(CreateSessionRequest(
        sessionID: id,
        settings: SessionSettings(backend: "worker:\(queue)")
    )))
    guard end.code == .ok else { throw RawClientError(description: "create session failed: \(end)") }
}

private func workers(_ server: TestServer, _ queue: String) -> [WorkerInfo] {
    server.registry.workers.snapshot().workers.filter { $0.taskQueue == queue }
}

/// Bytes `offset..<offset+count` of an endless 0, 1, ..., 250, 0, 1, ... stream.
/// Sliced from a precomputed cycle: computing 50 MB byte by byte in a debug build
/// kept the cooperative threads busy for seconds and starved the other tests.
private func pattern(_ offset: Int, _ count: Int) -> [UInt8] {
    let start = offset % 251
    if count <= patternCycle.count - start { return Array(patternCycle[start..<(start + count)]) }
    return (0..<count).map { UInt8(truncatingIfNeeded: (offset + $0) % 251) }
}

private let patternCycle: [UInt8] = (0..<(64 * 1024 + 251)).map { UInt8(truncatingIfNeeded: $0 % 251) }

@Suite("Worker backpressure and liveness")
struct WorkerBackpressureTests {
    @Test("a worker flooding 50 MB to a client that does not read: bounded backlog, worker kept, every byte in order")
    func floodToSlowClient() async throws {
        let limit = 512 * 1024
        let chunk = 64 * 1024
        let total = 50 * 1024 * 1024
        // Pausing turns autoRead off, which stops the next read event, but frames
        // already read are still delivered: the frame that crossed the limit plus
        // what the current read loop took in (NIO reads up to `maxMessagesPerRead`,
        // 4 by default, buffers of at most 64 KiB each). A bound independent of the
        // 50 MB the worker sends.
        let slack = limit + chunk + 4 * 64 * 1024
        try await withTestServer(configure: {
            $0.maxBufferedOutputBytesPerCall = limit
            // This raw worker never answers heartbeats: only its output frames
            // show it alive, so the timeout stretches with the time scale (a
            // loaded machine can leave its task unscheduled for a while).
            $0.workerHeartbeatInterval = .milliseconds(100)
            $0.workerHeartbeatTimeout = TestTimeScale.milliseconds(500)
        }) { server in
            let client = try await server.connectAndHandshake()
            try await createWorkerSession(client, "flood", queue: "flood")
            let workerTask = Task {
                let (worker, call) = try await registerRawWorker(server, queue: "flood")
                var turnID = ""
                while turnID.isEmpty {
                    let frame = try await worker.expectFrame(forCall: call)
                    guard case .message(let message) = frame.kind else { continue }
                    switch message.payload {
                    case .workerCommand(.assignment(let assignment))?:
                        turnID = assignment.turnID
                    case .workerCommand(.heartbeat(let nonce))?:
                        // Alive while idle, however long a loaded run takes to assign
                        // the turn (once it floods, only its output shows it alive).
                        try await worker.send(Frame(callID: call, kind: .message(CallMessage(
                            payload: .workerMessage(.heartbeatAck(nonce: nonce))
                        ))))
                    default:
                        break
                    }
                }
                var offset = 0
                while offset < total {
                    let data = pattern(offset, min(chunk, total - offset))
                    try await worker.send(Frame(callID: call, kind: .message(CallMessage(
                        payload: .workerMessage(.output(turnID: turnID, data: data))
                    ))))
                    offset += data.count
                }
                try await worker.send(Frame(callID: call, kind: .message(CallMessage(
                    payload: .workerMessage(.finished(turnID: turnID, stopReason: "end_turn"))
                ))))
                // Stays connected until the turn is over.
                while workers(server, "flood").first?.inFlight != 0 {
                    try await Task.sleep(for: .milliseconds(10))
                }
                worker.close()
            }
            let prompt = try await client.startPrompt(session: "flood", prompt: "flood")
            let pool = server.registry.workers.pool(named: "flood")
            try await eventually("the turn's backlog reaches the limit") { pool.maxTurnBacklogBytes >= limit }
            // Paused for several heartbeat timeouts: the server stopped reading,
            // so the worker's silence must not count.
            try await Task.sleep(for: TestTimeScale.seconds(2))
            let backlog = pool.maxTurnBacklogBytes
            #expect(backlog <= slack, "backlog \(backlog) for a limit of \(limit)")
            #expect(server.server.maxPendingOutboundBytes <= limit + chunk + 1024)
            #expect(workers(server, "flood").count == 1, "the paused worker was declared dead")

            var received = 0
            var inOrder = true
            var end: CallEnd?
            while end == nil {
                switch try await client.nextPromptItem(prompt) {
                case .event(.output(let output)):
                    if inOrder, output.data != pattern(received, output.data.count) { inOrder = false }
                    received += output.data.count
                case .event:
                    break
                case .end(let callEnd):
                    end = callEnd
                }
            }
            #expect(end?.code == .ok, "\(String(describing: end))")
            #expect(received == total)
            #expect(inOrder)
            try await workerTask.value
            #expect(pool.maxTurnBacklogBytes <= slack, "backlog \(pool.maxTurnBacklogBytes)")
        }
    }

    @Test("a worker that stops answering heartbeats is dropped and its connection closed with GoAway")
    func hungWorkerConnectionClosed() async throws {
        try await withTestServer(configure: {
            $0.workerHeartbeatInterval = .milliseconds(100)
            $0.workerHeartbeatTimeout = .milliseconds(400)
        }) { server in
            let (worker, call) = try await registerRawWorker(server, queue: "hung")
            #expect(workers(server, "hung").count == 1)
            // The worker never answers: the call ends, then the connection.
            var callEnd: CallEnd?
            var goAway: GoAway?
            for frame in try await worker.readUntilClosed(timeout: .seconds(10)) {
                if frame.callID == call, case .end(let end) = frame.kind { callEnd = end }
                if case .goAway(let away) = frame.kind { goAway = away }
            }
            #expect(callEnd?.code == .unavailable, "\(String(describing: callEnd))")
            #expect(goAway?.code == .unavailable, "\(String(describing: goAway))")
            #expect(goAway?.message == "worker missed heartbeats")
            #expect(workers(server, "hung").isEmpty)
        }
    }
}
