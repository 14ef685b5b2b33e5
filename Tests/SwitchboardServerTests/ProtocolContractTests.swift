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
