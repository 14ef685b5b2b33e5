import SwitchboardCore
import SwitchboardProtocol
import Testing

/// Each kind of bad input gets a clear answer, affects only its own connection
/// (or only its own call), and never disturbs a client streaming at the same time.
@Suite("Bad input")
struct BadInputTests {
    enum BadInput: String, CaseIterable, CustomTestStringConvertible {
        case randomBytes
        case hugeLengthPrefix
        case truncatedFrameThenClose
        case frameBeforeHandshake
        case unsupportedVersion
        case unknownMethod
        case wrongMessageType
        case missingPayload
        case garbageBody
        case serverOnlyFrame
        case nonIncreasingCallID
        case frameForUnstartedCall

        var testDescription: String { rawValue }
    }

    @Test(arguments: BadInput.allCases)
    func badInputWhileAnotherClientStreams(_ input: BadInput) async throws {
        // The healthy stream (300 words) must still be running when the bad input
        // arrives: its pace stretches with the time scale.
        try await withTestServer(tokenDelay: TestTimeScale.milliseconds(2)) { server in
            let healthy = try await HealthyStream.start(on: server)
            try await Self.exercise(input, on: server)
            try await healthy.verify()
            // The server as a whole still answers.
            let probe = try await server.connectAndHandshake()
            _ = try await probe.serverStatus()
        }
    }

    static func expectGoAway(
        _ frames: [Frame],
        _ code: StatusCode,
        _ message: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard frames.count == 1, case .goAway(let goAway) = frames[0].kind else {
            Issue.record("expected exactly one GoAway, got \(frames)", sourceLocation: sourceLocation)
            return
        }
        #expect(goAway.code == code, sourceLocation: sourceLocation)
        if let message {
            #expect(goAway.message == message, sourceLocation: sourceLocation)
        }
    }

    static func exercise(_ input: BadInput, on server: TestServer) async throws {
        switch input {
        case .randomBytes:
            let client = try server.connect()
            var generator = SystemRandomNumberGenerator()
            var bytes = (0..<65_536).map { _ in UInt8.random(in: 0...255, using: &generator) }
            bytes[0] = max(bytes[0], 1)  // a length of at least 16 MiB: over the maximum
            try await client.sendRaw(bytes)
            expectGoAway(try await client.readUntilClosed(), .resourceExhausted)

        case .hugeLengthPrefix:
            let before = residentSetSize()
            let client = try await server.connectAndHandshake()
            try await client.sendRaw([0xFF, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 0x42, count: 4096))
            expectGoAway(
                try await client.readUntilClosed(),
                .resourceExhausted,
                "frame of 4294967295 bytes exceeds the maximum of 4194304 bytes"
            )
            let growth = residentSetSize() - before
            #expect(growth < 256 << 20, "RSS grew by \(growth) bytes after a 4 GiB prefix")

        case .truncatedFrameThenClose:
            let client = try await server.connectAndHandshake()
            let frame = Frame(callID: 1, kind: .start(CallStart(
                method: MethodName.getServerStatus,
                payload: .serverStatusRequest(ServerStatusRequest()),
                halfClose: true
            ))).prefixedBytes()
            try await client.sendRaw(Array(frame.prefix(frame.count - 3)))
            client.close()
            let listener = server.server
            try await eventually("the truncated connection is gone") { listener.connectionCount == 1 }

        case .frameBeforeHandshake:
            let client = try server.connect()
            try await client.send(Frame(kind: .ping(nonce: 1)))
            expectGoAway(try await client.readUntilClosed(), .failedPrecondition, "expected Hello as the first frame")

        case .unsupportedVersion:
            let client = try server.connect()
            try await client.send(Frame(kind: .hello(Hello(minVersion: 2, maxVersion: 3, clientName: "future"))))
            expectGoAway(
                try await client.readUntilClosed(),
                .failedPrecondition,
                "server speaks protocol version 1; client offered 2–3"
            )

        case .unknownMethod:
            let client = try await server.connectAndHandshake()
            let end = try await client.unary("/switchboard.v1.Nope/Nothing", .healthCheckRequest(HealthCheckRequest()))
            #expect(end.code == .unimplemented)
            #expect(end.message == "unknown method /switchboard.v1.Nope/Nothing")
            _ = try await client.serverStatus()

        case .wrongMessageType:
            let client = try await server.connectAndHandshake()
            let end = try await client.unary(
                MethodName.getServerStatus,
                .promptRequest(PromptRequest(sessionID: "x", prompt: "y"))
            )
            #expect(end.code == .invalidArgument)
            #expect(end.message == "/switchboard.v1.Status/GetServerStatus expects server_status_request, got prompt_request")
            _ = try await client.serverStatus()

        case .missingPayload:
            let client = try await server.connectAndHandshake()
            let end = try await client.unary(MethodName.getSession, nil)
            #expect(end.code == .invalidArgument)
            #expect(end.message == "/switchboard.v1.Sessions/GetSession expects get_session_request, got no payload")
            let prompt = try await client.unary(MethodName.prompt, nil)
            #expect(prompt.code == .invalidArgument)
            _ = try await client.serverStatus()

        case .garbageBody:
            let client = try await server.connectAndHandshake()
            try await client.sendRaw([0, 0, 0, 8] + [UInt8](repeating: 0xFF, count: 8))
            expectGoAway(try await client.readUntilClosed(), .invalidArgument)

        case .serverOnlyFrame:
            let client = try await server.connectAndHandshake()
            try await client.send(Frame(callID: 1, kind: .end(CallEnd(code: .ok))))
            expectGoAway(try await client.readUntilClosed(), .invalidArgument, "unexpected end frame from client")

        case .nonIncreasingCallID:
            let client = try await server.connectAndHandshake()
            _ = try await client.unary(MethodName.healthCheck, .healthCheckRequest(HealthCheckRequest()), callID: 5)
            try await client.send(Frame(callID: 3, kind: .start(CallStart(
                method: MethodName.healthCheck,
                payload: .healthCheckRequest(HealthCheckRequest()),
                halfClose: true
            ))))
            expectGoAway(
                try await client.readUntilClosed(),
                .invalidArgument,
                "call id 3 is not greater than the previous call id 5"
            )

        case .frameForUnstartedCall:
            let client = try await server.connectAndHandshake()
            try await client.send(Frame(callID: 9, kind: .message(CallMessage(payload: nil, halfClose: true))))
            expectGoAway(
                try await client.readUntilClosed(),
                .invalidArgument,
                "message frame for call 9, which was never started"
            )
        }
    }
}
