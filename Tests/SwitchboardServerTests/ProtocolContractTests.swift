#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

/// What docs/PROTOCOL.md promises a client, checked over a raw socket with
/// hand-made frames, as a client written from the document alone would see it.
/// The rows of "Behaviour a client can observe" name these tests.
@Suite("Protocol contract")
struct ProtocolContractTests {
    // MARK: Handshake and drain

    /// A connection refused before its Welcome reports the GoAway's code as the
    /// connect error: a drain refuses with UNAVAILABLE, never OK.
    @Test func aConnectionWithoutHelloIsRefusedUnavailableByADrain() async throws {
        let (server, dir) = try await DrainTests.startServer(tokenDelay: .zero, grace: TestTimeScale.seconds(5))
        defer { removeDirectory(dir) }
        let silent = try server.connect()
        try await eventually("the silent connection is admitted") { server.server.connectionCount == 1 }
        server.server.beginDrain()
        let frames = try await silent.readUntilClosed()
        #expect(frames == [Frame(kind: .goAway(GoAway(lastCallID: 0, code: .unavailable, message: "server is shutting down")))])
        try await server.runTask.value
    }

    // MARK: Unary calls

    /// A unary request that arrives without half-close is answered at once; the
    /// half-close is not waited for.
    @Test func aUnaryRequestWithoutHalfCloseIsAnsweredAtOnce() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            try await client.createSession("s")
            let id = client.newCallID()
            try await client.send(Frame(callID: id, kind: .start(CallStart(
                method: MethodName.getSession,
                timeoutMs: 300,
                payload: .getSessionRequest(GetSessionRequest(sessionID: "s")),
                halfClose: false
            ))))
            let end = try await client.expectEnd(of: id)
            #expect(end.code == .ok)
            guard case .session(let session)? = end.payload else {
                Issue.record("expected a session, got \(end)")
                return
            }
            #expect(session.id == "s")
            // The request in a later message, still without half-close: the same.
            let later = client.newCallID()
            try await client.send(Frame(callID: later, kind: .start(CallStart(method: MethodName.getSession))))
            try await client.send(Frame(callID: later, kind: .message(CallMessage(
                payload: .getSessionRequest(GetSessionRequest(sessionID: "s"))
            ))))
            #expect(try await client.expectEnd(of: later).code == .ok)
            // A late half-close is a frame of an ended call: ignored.
            try await client.send(Frame(callID: id, kind: .halfClose))
            _ = try await client.serverStatus()
        }
    }

    /// `timeout_ms` holds for a call still waiting for its request: unary,
    /// prompt and attach alike end DEADLINE_EXCEEDED, and the connection goes on.
    @Test(arguments: [MethodName.getSession, MethodName.prompt, MethodName.attach])
    func aCallWaitingForItsRequestEndsAtItsDeadline(_ method: String) async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            let id = client.newCallID()
            try await client.send(Frame(callID: id, kind: .start(CallStart(method: method, timeoutMs: 200))))
            let end = try await client.expectEnd(of: id)
            #expect(end.code == .deadlineExceeded)
            #expect(end.message.hasPrefix("deadline of 200 ms exceeded"))
            // The request arriving afterwards belongs to an ended call: ignored.
            try await client.send(Frame(callID: id, kind: .halfClose))
            _ = try await client.serverStatus()
        }
    }

    // MARK: Helpers

    /// A client past the handshake that announced the smallest frame size.
    static func tinyClient(_ server: TestServer) async throws -> RawClient {
        let client = try server.connect()
        try await client.send(Frame(kind: .hello(Hello(clientName: "tiny", maxFrameSize: 1024))))
        let frame = try await client.expectFrame()
        guard case .welcome = frame.kind else {
            throw RawClientError(description: "expected Welcome, got \(frame)")
        }
        return client
    }
}
