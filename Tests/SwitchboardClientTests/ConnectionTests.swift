import Foundation
import SwitchboardClient
import SwitchboardProtocol
import Testing

/// The client's timeouts under test (connect, call deadline) and every wait around
/// them (the fake server's pauses, hang guards, polling limits, the real server's
/// drain grace) are stretched by `TestTimeScale` together, so the suite holds under
/// Thread Sanitizer (scripts/test.sh) as it does in a plain run.
@Suite("Connection life cycle", .timeLimit(.minutes(TestTimeScale.hangGuardMinutes)))
struct ConnectionTests {
    @Test("connecting to a missing path fails with UNAVAILABLE naming the path")
    func missingPath() async throws {
        let path = "/tmp/sbc-missing-\(UUID().uuidString.prefix(8))/s.sock"
        let error = await switchboardError { _ = try await SwitchboardClient.connect(socketPath: path) }
        #expect(error?.code == .unavailable)
        #expect(error?.message == "no server at \(path)")
    }

    @Test("connecting to a socket file nobody listens on fails with UNAVAILABLE and the errno text")
    func staleSocketFile() async throws {
        let stale = try FakeServer { _ in }
        stale.closeListener()
        defer { removeSocketDirectory(stale.socketPath) }
        let error = await switchboardError { _ = try await SwitchboardClient.connect(socketPath: stale.socketPath) }
        #expect(error?.code == .unavailable)
        #expect(error?.message == "cannot connect to \(stale.socketPath): Connection refused")
    }

    @Test("Hello carries the client name and versions 1…1")
    func helloContents() async throws {
        let fake = try FakeServer { connection in
            try connection.acceptHandshake()
            connection.drainUntilClosed()
        }
        defer { fake.stop() }
        var configuration = ClientConfiguration()
        configuration.clientName = "hello-test"
        try await withSwitchboardClient(socketPath: fake.socketPath, configuration: configuration) { client in
            #expect(client.welcome.connectionID == 42)
            #expect(client.welcome.serverName == "fake")
        }
        let first = try #require(fake.receivedFrames.first)
        guard case .hello(let hello) = first.kind else {
            Issue.record("first frame is not Hello: \(first)")
            return
        }
        #expect(first.callID == 0)
        #expect(hello.clientName == "hello-test")
        #expect(hello.minVersion == 1)
        #expect(hello.maxVersion == 1)
    }

    @Test("a GoAway instead of Welcome fails connect with its code and message")
    func refusedHandshake() async throws {
        let fake = try FakeServer { connection in
            _ = try connection.receive()
            connection.send(Frame(kind: .goAway(GoAway(lastCallID: 0, code: .resourceExhausted, message: "too many connections"))))
        }
        defer { fake.stop() }
        let error = await switchboardError { _ = try await SwitchboardClient.connect(socketPath: fake.socketPath) }
        #expect(error == SwitchboardError(code: .resourceExhausted, message: "too many connections"))
    }

    @Test("a server that never answers Hello fails connect within connectTimeout")
    func handshakeTimeout() async throws {
        let fake = try FakeServer { connection in
            connection.drainUntilClosed()
        }
        defer { fake.stop() }
        var settings = ClientConfiguration()
        settings.connectTimeout = TestTimeScale.milliseconds(300)
        let configuration = settings
        let error = await switchboardError {
            _ = try await withTimeout(TestTimeScale.seconds(10)) {
                try await SwitchboardClient.connect(socketPath: fake.socketPath, configuration: configuration)
            }
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("no Welcome") == true)
    }

    @Test("call ids start at 1 and strictly increase on the wire")
    func callIDs() async throws {
        let fake = try FakeServer { connection in
            try connection.acceptHandshake()
            while true {
                let frame = try connection.receive()
                if case .start = frame.kind {
                    connection.send(Frame(callID: frame.callID, kind: .end(CallEnd(
                        code: .ok,
                        payload: .healthCheckResponse(HealthCheckResponse(status: .serving))
                    ))))
                }
            }
        }
        defer { fake.stop() }
        try await withSwitchboardClient(socketPath: fake.socketPath) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<40 {
                    group.addTask {
                        let status = try await client.health()
                        #expect(status == .serving)
                    }
                }
                try await group.waitForAll()
            }
        }
        let starts = fake.receivedFrames.filter(\.isStart)
        #expect(starts.map(\.callID) == Array(1...40))
        for start in starts {
            guard case .start(let callStart) = start.kind else { continue }
            #expect(callStart.halfClose, "a unary call is one frame: CallStart with half_close")
            #expect(callStart.method == MethodName.healthCheck)
        }
    }

    @Test("GoAway: calls above last_call_id fail UNAVAILABLE, calls at or below it complete, new calls fail")
    func goAwaySplitsCalls() async throws {
        let fake = try FakeServer { connection in
            try connection.acceptHandshake()
            _ = try connection.receive(until: { $0.isStart })
            _ = try connection.receive(until: { $0.isStart })
            connection.send(Frame(kind: .goAway(GoAway(lastCallID: 1, code: .ok, message: "draining"))))
            Thread.sleep(forTimeInterval: 0.2 * Double(TestTimeScale.factor))
            connection.send(Frame(callID: 1, kind: .end(CallEnd(
                code: .ok,
                payload: .healthCheckResponse(HealthCheckResponse(status: .serving))
            ))))
            connection.drainUntilClosed()
        }
        defer { fake.stop() }
        try await withSwitchboardClient(socketPath: fake.socketPath) { client in
            let results = await withTaskGroup(of: Result<ServingStatus, SwitchboardError>.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        do { return .success(try await client.health()) } catch let error as SwitchboardError {
                            return .failure(error)
                        } catch {
                            return .failure(SwitchboardError(code: .unknown, message: "\(error)"))
                        }
                    }
                }
                var results: [Result<ServingStatus, SwitchboardError>] = []
                for await result in group { results.append(result) }
                return results
            }
            let successes = results.compactMap { try? $0.get() }
            let failures = results.compactMap { result -> SwitchboardError? in
                if case .failure(let error) = result { return error }
                return nil
            }
            #expect(successes == [.serving])
            #expect(failures.map(\.code) == [.unavailable])
            #expect(failures.first?.message.contains("draining") == true)

            let late = await switchboardError { _ = try await client.health() }
            #expect(late?.code == .unavailable)
        }
        try await fake.waitUntilScriptEnded()
        #expect(fake.receivedFrames.filter(\.isStart).count == 2, "a call after GoAway must not be sent")
    }

    @Test("a connection lost mid-call fails pending unary calls and streams with UNAVAILABLE")
    func connectionLost() async throws {
        let fake = try FakeServer { connection in
            try connection.acceptHandshake()
            _ = try connection.receive(until: { $0.isStart })
            _ = try connection.receive(until: { $0.isStart })
            connection.close()
        }
        defer { fake.stop() }
        let client = try await SwitchboardClient.connect(socketPath: fake.socketPath)
        async let unary = switchboardError { _ = try await client.getSession(id: "x") }
        async let stream = switchboardError { _ = try await client.prompt(sessionID: "x", "y").collect() }
        let (unaryError, streamError) = await (unary, stream)
        #expect(unaryError == SwitchboardError(code: .unavailable, message: "connection closed"))
        #expect(streamError == SwitchboardError(code: .unavailable, message: "connection closed"))
        let after = await switchboardError { try await client.ping() }
        #expect(after?.code == .unavailable)
        await client.close()
    }

    @Test("cancelling a unary call sends Cancel for its id and throws CANCELLED")
    func unaryCancellation() async throws {
        let fake = try FakeServer { connection in
            try connection.acceptHandshake()
            let start = try connection.receive(until: { $0.isStart })
            let cancel = try connection.receive(until: { $0.isCancel })
            // A late answer to the cancelled call must be ignored by the client.
            connection.send(Frame(callID: cancel.callID, kind: .end(CallEnd(code: .cancelled, message: "cancelled"))))
            _ = start
            let next = try connection.receive(until: { $0.isStart })
            connection.send(Frame(callID: next.callID, kind: .end(CallEnd(
                code: .ok,
                payload: .healthCheckResponse(HealthCheckResponse(status: .serving))
            ))))
            connection.drainUntilClosed()
        }
        defer { fake.stop() }
        try await withSwitchboardClient(socketPath: fake.socketPath) { client in
            let call = Task { try await client.health() }
            let sent = try await eventually(TestTimeScale.seconds(10)) { fake.receivedFrames.contains(where: \.isStart) }
            try #require(sent)
            call.cancel()
            let error = await switchboardError { _ = try await call.value }
            #expect(error?.code == .cancelled)
            #expect(try await client.health() == .serving)
        }
        let frames = fake.receivedFrames
        let cancel = try #require(frames.first(where: { $0.isCancel }))
        #expect(cancel.callID == 1)
        #expect(frames.filter(\.isStart).map(\.callID) == [1, 2])
    }

    @Test("a call the server never answers fails with DEADLINE_EXCEEDED and is cancelled")
    func clientSideDeadline() async throws {
        let fake = try FakeServer { connection in
            try connection.acceptHandshake()
            connection.drainUntilClosed()
        }
        defer { fake.stop() }
        var configuration = ClientConfiguration()
        let callTimeoutMs = TestTimeScale.ms(100)
        configuration.defaultCallTimeout = .milliseconds(callTimeoutMs)
        try await withSwitchboardClient(socketPath: fake.socketPath, configuration: configuration) { client in
            let error = await switchboardError {
                _ = try await withTimeout(TestTimeScale.seconds(10)) { try await client.health() }
            }
            #expect(error?.code == .deadlineExceeded)
        }
        // The Cancel went out before the call failed; the script records it once it
        // has read everything up to the close.
        try await fake.waitUntilScriptEnded()
        let frames = fake.receivedFrames
        let start = try #require(frames.first(where: { $0.isStart }))
        if case .start(let callStart) = start.kind {
            #expect(callStart.timeoutMs == UInt64(callTimeoutMs))
        }
        #expect(frames.contains { $0.isCancel && $0.callID == start.callID })
    }

    @Test("the client answers the server's Ping with a Pong")
    func answersPing() async throws {
        let fake = try FakeServer { connection in
            try connection.acceptHandshake()
            connection.send(Frame(kind: .ping(nonce: 7)))
            connection.drainUntilClosed()
        }
        defer { fake.stop() }
        let client = try await SwitchboardClient.connect(socketPath: fake.socketPath)
        let ponged = try await eventually(TestTimeScale.seconds(5)) {
            fake.receivedFrames.contains { $0.kind == .pong(nonce: 7) }
        }
        #expect(ponged)
        await client.close()
    }

    @Test("the real server going away: new calls fail UNAVAILABLE, a running prompt completes")
    func realServerDrain() async throws {
        try await withTestServer(echoDelay: .milliseconds(20), configureServer: { $0.drainGracePeriod = TestTimeScale.seconds(20) }) { server in
            try await server.withClient { client in
                let session = try await client.createSession()
                let prompt = words(20)
                let running = startConsuming(client.prompt(sessionID: session.id, prompt))
                try await withTimeout(TestTimeScale.seconds(10), "turn starts") { try await running.started.value }
                server.server.beginDrain()
                let refused = try await eventually(TestTimeScale.seconds(10)) {
                    let error = await switchboardError { _ = try await client.health() }
                    return error?.code == .unavailable
                }
                #expect(refused, "calls after the drain began were not refused with UNAVAILABLE")
                let events = try await running.events.value
                expectCompleteTurn(events, prompt: prompt)
            }
        }
    }
}
