import Foundation
import Glibc
import SwitchboardClient
import SwitchboardProtocol
import Testing

extension EndToEnd {
    @Suite("Bad input over raw sockets")
    struct BadInput {
        /// Hostile bytes on raw connections each get a clear error (a GoAway
        /// with the documented code before the close, or a CallEnd that leaves
        /// the connection usable), while a healthy client streams a long prompt
        /// undisturbed and the server's memory does not balloon.
        @Test("malformed input gets clear errors and never disturbs a healthy client")
        func badInputIsContained() async throws {
            try await withServer(["--echo-delay", "5ms"]) { server in
                let socket = server.socketPath
                // 400 tokens at 5 ms: the healthy stream runs through all the bad input.
                let promptText = (1...400).map { "tok\($0)" }.joined(separator: " ")
                let received = Locked(0)
                let healthy = Task {
                    try await withTimeout(.seconds(30), "healthy streaming prompt", onTimeout: server.kill) {
                        try await withSwitchboardClient(socketPath: socket) { client in
                            let session = try await client.createSession(CreateSessionRequest(sessionID: "healthy"))
                            var sequences: [UInt64] = []
                            var text: [UInt8] = []
                            var finished: TurnFinished?
                            for try await event in client.prompt(sessionID: session.id, promptText) {
                                switch event {
                                case .output(let chunk):
                                    sequences.append(chunk.sequence)
                                    text += chunk.data
                                    received.withLock { $0 += 1 }
                                case .finished(let end): finished = end
                                case .accepted, .started, .attached: break
                                }
                            }
                            return (sequences, String(decoding: text, as: UTF8.self), finished)
                        }
                    }
                }

                let streaming = await eventually(timeout: .seconds(10), interval: .milliseconds(5)) { received.withLock { $0 > 0 } }
                try #require(streaming, "the healthy prompt never streamed")
                try await Self.throwHostileBytes(at: server)
                let receivedDuringBadInput = received.withLock { $0 }

                let (sequences, text, finished) = try await healthy.value
                #expect(!sequences.isEmpty && sequences == (1...UInt64(sequences.count)).map { $0 }, "chunks out of order or missing: \(sequences)")
                #expect(text == promptText, "healthy stream output differs from the prompt")
                #expect(finished?.chunks == UInt64(sequences.count))
                #expect(
                    receivedDuringBadInput < sequences.count,
                    "the healthy stream was over (\(receivedDuringBadInput) chunks) before the bad input was: the test proved nothing"
                )

                #expect(server.isRunning, "the server died")
                let health = try await server.cli(["health"])
                #expect(health.status == 0, "\(health)")
            }
        }

        /// Runs every hostile case in turn, each on its own raw connection. The
        /// blocking socket I/O runs off the concurrency pool; the checks run here.
        static func throwHostileBytes(at server: ServerProcess) async throws {
            let path = server.socketPath
            var random = SplitMix64(state: 0x5EED_CAFE)
            let hello = Frame(kind: .hello(Hello(clientName: "e2e-raw"))).prefixedBytes()

            // Random bytes in place of Hello (they do not decode as a Frame).
            let noise1 = (0..<256).map { _ in UInt8.random(in: 0...255, using: &random) }
            #expect(throws: SwitchboardError.self) { try Frame(serializedBytes: noise1) }
            expectGoAway(
                try await offPool {
                    let connection = try RawConnection(path: path)
                    try connection.send([0, 0, 1, 0] + noise1)
                    return try connection.receiveUntilClosed()
                },
                .invalidArgument,
                case: "random bytes before Hello"
            )

            // Random bytes after a good handshake.
            let noise2 = (0..<256).map { _ in UInt8.random(in: 0...255, using: &random) }
            #expect(throws: SwitchboardError.self) { try Frame(serializedBytes: noise2) }
            expectGoAway(
                try await offPool {
                    let connection = try RawConnection(path: path)
                    try connection.handshake()
                    try connection.send([0, 0, 1, 0] + noise2)
                    return try connection.receiveUntilClosed()
                },
                .invalidArgument,
                case: "random bytes after Hello"
            )

            // A 4 GiB length prefix: refused without allocating it.
            let before = try #require(server.residentKiB(), "cannot read VmRSS of the server")
            expectGoAway(
                try await offPool {
                    let connection = try RawConnection(path: path)
                    try connection.handshake()
                    try connection.send([0xFF, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 0x41, count: 1024))
                    return try connection.receiveUntilClosed()
                },
                .resourceExhausted,
                case: "4 GiB length prefix"
            )
            let after = try #require(server.residentKiB(), "cannot read VmRSS of the server")
            #expect(after - before < 100 * 1024, "VmRSS grew from \(before) KiB to \(after) KiB after a 4 GiB prefix")

            // A frame whose protobuf body is cut short (the prefix matches the cut body).
            let cut = Array(Frame(kind: .hello(Hello(clientName: "a client whose hello is cut short"))).serializedBytes().dropLast(5))
            #expect(throws: SwitchboardError.self) { try Frame(serializedBytes: cut) }
            expectGoAway(
                try await offPool {
                    let connection = try RawConnection(path: path)
                    try connection.send([0, 0, 0, UInt8(cut.count)] + cut)
                    return try connection.receiveUntilClosed()
                },
                .invalidArgument,
                case: "truncated protobuf body"
            )

            // A frame cut short by EOF: nothing to answer, the server just closes.
            let afterEOF = try await offPool {
                let connection = try RawConnection(path: path)
                try connection.handshake()
                try connection.send([0, 0, 0, 100] + [UInt8](repeating: 0x08, count: 10))
                connection.shutdownWrite()
                return try connection.receiveUntilClosed()
            }
            #expect(afterEOF.allSatisfy { if case .goAway = $0.kind { true } else { false } }, "truncated frame + EOF: \(afterEOF)")

            // A call before the handshake.
            let early = Frame(
                callID: 1,
                kind: .start(CallStart(method: MethodName.getServerStatus, payload: .serverStatusRequest(ServerStatusRequest()), halfClose: true))
            )
            expectGoAway(
                try await offPool {
                    let connection = try RawConnection(path: path)
                    try connection.send(early)
                    return try connection.receiveUntilClosed()
                },
                .failedPrecondition,
                case: "call before Hello"
            )

            // A protocol version the server does not speak.
            expectGoAway(
                try await offPool {
                    let connection = try RawConnection(path: path)
                    try connection.send(Frame(kind: .hello(Hello(minVersion: 99, maxVersion: 99, clientName: "from the future"))))
                    return try connection.receiveUntilClosed()
                },
                .failedPrecondition,
                case: "unsupported protocol version"
            )

            // A server-only frame from the client.
            expectGoAway(
                try await offPool {
                    let connection = try RawConnection(path: path)
                    try connection.send(hello)
                    _ = try connection.receive()
                    try connection.send(Frame(callID: 1, kind: .end(CallEnd(code: .ok))))
                    return try connection.receiveUntilClosed()
                },
                .invalidArgument,
                case: "server-only frame from a client"
            )

            // Unknown method, wrong and missing payloads: call errors; the same
            // connection then answers a status call.
            let ends = try await offPool {
                let connection = try RawConnection(path: path)
                try connection.handshake()
                let status = Payload.serverStatusRequest(ServerStatusRequest())
                return [
                    try connection.unary(callID: 1, method: "/switchboard.v1.Nope/Nothing", payload: status),
                    try connection.unary(callID: 2, method: MethodName.getServerStatus, payload: status),
                    try connection.unary(callID: 3, method: MethodName.getServerStatus, payload: .healthCheckRequest(HealthCheckRequest())),
                    try connection.unary(callID: 4, method: MethodName.getServerStatus, payload: status),
                    try connection.unary(callID: 5, method: MethodName.getSession, payload: nil),
                    try connection.unary(callID: 6, method: MethodName.getServerStatus, payload: status),
                ]
            }
            #expect(ends[0].code == .unimplemented && !ends[0].message.isEmpty, "unknown method: \(ends[0])")
            #expect(ends[2].code == .invalidArgument && !ends[2].message.isEmpty, "wrong payload type: \(ends[2])")
            #expect(ends[4].code == .invalidArgument && !ends[4].message.isEmpty, "missing payload: \(ends[4])")
            for (index, after) in [(1, "unknown method"), (3, "wrong payload type"), (5, "missing payload")] {
                let end = ends[index]
                #expect(end.code == .ok, "status on the same connection after \(after): \(end)")
                if case .serverStatus(let status)? = end.payload {
                    #expect(status.protocolVersion == ProtocolVersion.current)
                } else {
                    Issue.record("status after \(after) carried no ServerStatus: \(end)")
                }
            }
        }

        /// The frames before the close are exactly one GoAway on call 0 with one of
        /// `codes` and a message.
        static func expectGoAway(_ frames: [Frame], _ codes: StatusCode..., case name: String) {
            guard frames.count == 1, frames[0].callID == 0, case .goAway(let goAway) = frames[0].kind else {
                Issue.record("\(name): expected one GoAway before the close, got \(frames)")
                return
            }
            #expect(codes.contains(goAway.code), "\(name): GoAway code \(goAway.code), expected one of \(codes)")
            #expect(!goAway.message.isEmpty, "\(name): GoAway without a message")
        }
    }
}
