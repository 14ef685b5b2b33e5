import SwitchboardClient
import SwitchboardProtocol
import Testing

/// A request string with a NUL byte fails with INVALID_ARGUMENT naming the field
/// before anything is sent (the encoder would cut the string at the NUL; the
/// server refuses the same with the same message).
@Suite("Request strings with a NUL byte", .timeLimit(.minutes(TestTimeScale.hangGuardMinutes)))
struct StringCheckTests {
    @Test("create, get, list, close, prompt and attach refuse a NUL; nothing is created, and nul1\\0junk does not find nul1")
    func refusedAgainstARealServer() async throws {
        try await withTestServer { server in
            try await server.withClient { client in
                let create = await switchboardError {
                    _ = try await client.createSession(CreateSessionRequest(sessionID: "nulid\0/../../etc"))
                }
                #expect(create == SwitchboardError(code: .invalidArgument, message: "session_id contains a NUL byte"))
                let label = await switchboardError {
                    _ = try await client.createSession(CreateSessionRequest(labels: [Label(key: "team\0x", value: "core")]))
                }
                #expect(label == SwitchboardError(code: .invalidArgument, message: "labels[0].key contains a NUL byte"))
                #expect(try await client.listSessions().sessions.isEmpty, "nothing was created")

                _ = try await client.createSession(CreateSessionRequest(sessionID: "nul1"))
                let get = await switchboardError { _ = try await client.getSession(id: "nul1\0junk") }
                #expect(get == SwitchboardError(code: .invalidArgument, message: "session_id contains a NUL byte"))
                let list = await switchboardError {
                    _ = try await client.listSessions(ListSessionsRequest(labelSelector: [Label(key: "k", value: "v\0")]))
                }
                #expect(list?.message == "label_selector[0].value contains a NUL byte")
                let close = await switchboardError { _ = try await client.closeSession(id: "nul1", reason: "bye\0") }
                #expect(close?.message == "reason contains a NUL byte")

                let prompt = await switchboardError {
                    _ = try await client.prompt(sessionID: "nul1", "first part\0second part").collect()
                }
                #expect(prompt == SwitchboardError(code: .invalidArgument, message: "prompt contains a NUL byte"))
                let attach = await switchboardError { _ = try await client.attach(sessionID: "nul1", turnID: "t\0").collect() }
                #expect(attach?.message == "turn_id contains a NUL byte")

                let status = try await client.sessionStatus(id: "nul1")
                #expect(status.turns.isEmpty, "no turn ran")
                #expect(status.session?.state == .idle, "the session was not closed")
                #expect(try await client.listSessions().sessions.map(\.id) == ["nul1"])
            }
        }
    }

    @Test("nothing is sent: the server sees only the Hello and the next clean call")
    func nothingIsSent() async throws {
        let fake = try FakeServer { connection in
            try connection.acceptHandshake()
            let start = try connection.receive(until: { $0.isStart })
            connection.send(Frame(callID: start.callID, kind: .end(CallEnd(
                code: .ok,
                payload: .healthCheckResponse(HealthCheckResponse(status: .serving))
            ))))
            connection.drainUntilClosed()
        }
        defer { fake.stop() }
        let client = try await SwitchboardClient.connect(socketPath: fake.socketPath)
        let create = await switchboardError { _ = try await client.createSession(CreateSessionRequest(sessionID: "a\0b")) }
        #expect(create?.code == .invalidArgument)
        let prompt = await switchboardError { _ = try await client.prompt(sessionID: "s", "a\0b").collect() }
        #expect(prompt?.code == .invalidArgument)
        #expect(try await client.health() == .serving)
        await client.close()
        try await fake.waitUntilScriptEnded()
        let methods = fake.receivedFrames.compactMap { frame -> String? in
            guard case .start(let start) = frame.kind else { return nil }
            return start.method
        }
        #expect(methods == [MethodName.healthCheck])
    }

    @Test("a worker's finish and failure with a NUL are refused locally; its output is bytes")
    func workerStrings() async throws {
        try await withTestServer { server in
            let worker = try await WorkerSession.connect(
                socketPath: server.socketPath,
                register: WorkerRegister(taskQueue: "q", capacity: 1)
            )
            let finish = await switchboardError { try await worker.finish(turnID: "t-1", stopReason: "end\0turn") }
            #expect(finish?.message == "finished.stop_reason contains a NUL byte")
            let fail = await switchboardError { try await worker.fail(turnID: "t-1", code: .internal, message: "oops\0") }
            #expect(fail?.message == "failed.message contains a NUL byte")
            let register = await switchboardError {
                _ = try await WorkerSession.connect(socketPath: server.socketPath, register: WorkerRegister(taskQueue: "q\0x", capacity: 1))
            }
            #expect(register?.message == "register.task_queue contains a NUL byte")
            await worker.close()
        }
    }
}
