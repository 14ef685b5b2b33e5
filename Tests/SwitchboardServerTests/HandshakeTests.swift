#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardCore
import SwitchboardProtocol
import SwitchboardServer
import Testing

@Suite("Handshake and connections")
struct HandshakeTests {
    @Test func welcomeCarriesTheLimits() async throws {
        try await withTestServer(configure: { configuration in
            configuration.serverName = "test-board"
            configuration.maxFrameSize = 1 << 20
            configuration.maxConcurrentCallsPerConnection = 7
        }) { server in
            let first = try server.connect()
            let welcome = try await first.handshake()
            #expect(welcome.version == 1)
            #expect(welcome.serverName == "test-board")
            #expect(welcome.serverVersion == SwitchboardVersion.string)
            #expect(welcome.maxFrameSize == 1 << 20)
            #expect(welcome.maxConcurrentCalls == 7)
            #expect(welcome.maxQueuedPrompts == 16)
            let second = try await server.connect().handshake()
            #expect(second.connectionID != welcome.connectionID)
        }
    }

    @Test func pingIsAnsweredWithPong() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            try await client.send(Frame(kind: .ping(nonce: 0xDEAD_BEEF)))
            let frame = try await client.expectFrame()
            #expect(frame == Frame(kind: .pong(nonce: 0xDEAD_BEEF)))
        }
    }

    @Test func handshakeTimeoutClosesTheConnection() async throws {
        try await withTestServer(configure: { $0.handshakeTimeout = .milliseconds(100) }) { server in
            let client = try server.connect()
            let frames = try await client.readUntilClosed()
            BadInputTests.expectGoAway(frames, .deadlineExceeded, "no Hello within 100 ms")
        }
    }

    @Test func connectionLimit() async throws {
        try await withTestServer(configure: { $0.maxConnections = 2 }) { server in
            let first = try await server.connectAndHandshake()
            let second = try await server.connectAndHandshake()
            let third = try server.connect()
            BadInputTests.expectGoAway(
                try await third.readUntilClosed(),
                .resourceExhausted,
                "too many connections (limit 2)"
            )
            // The admitted ones are unaffected.
            _ = try await first.serverStatus()
            let status = try await second.serverStatus()
            #expect(status.connections == 2)
            // A slot frees up when a client leaves.
            first.close()
            let listener = server.server
            try await eventually("the closed connection is released") { listener.connectionCount == 1 }
            let fourth = try await server.connectAndHandshake()
            _ = try await fourth.serverStatus()
        }
    }

    @Test func sessionOwnerIsThePeerUID() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndHandshake()
            let session = try await client.createSession("owned")
            #expect(session.ownerUID == getuid())
        }
    }
}
