import Foundation
import Glibc
import SwitchboardProtocol
import Testing

extension EndToEnd {
    @Suite("Graceful drain")
    struct Drain {
        /// SIGTERM while a prompt streams: the prompt still gets all of its
        /// output, then the server exits 0 and removes its socket file.
        @Test("SIGTERM lets a streaming prompt finish, then exits 0 and removes the socket")
        func sigtermDrains() async throws {
            try await withServer(["--drain-grace", "5s", "--echo-delay", "50ms"]) { server in
                // 20 tokens at 50 ms: about 1 s.
                let promptWords = (1...20).map { "d\($0)" }
                let prompt = try server.startCLI(["prompt"] + promptWords)
                let streaming = await prompt.waitForStdout(timeout: .seconds(10)) { !$0.isEmpty }
                try #require(streaming, "no streamed output before SIGTERM: \(prompt.stderr)")
                try #require(prompt.isRunning, "the prompt ended before SIGTERM")

                let exit = await server.stop(timeout: .seconds(15))
                #expect(exit == .exited(0), "server after SIGTERM: \(exit?.description ?? "still running after 15 s")\n\(server.log.suffix(2000))")

                let result = await prompt.finish(timeout: .seconds(10))
                #expect(result.status == 0, "\(result)")
                #expect(words(result.stdout) == promptWords, "\(result)")
                #expect(!FileManager.default.fileExists(atPath: server.socketPath), "socket file left behind")
            }
        }

        /// A connection that has sent nothing when SIGTERM comes is refused with
        /// GoAway UNAVAILABLE (what a client reports as its connect error), never
        /// OK; a connection past the handshake gets GoAway OK, the drain.
        @Test("SIGTERM refuses a connection without Hello with GoAway UNAVAILABLE")
        func sigtermRefusesAConnectionWithoutHello() async throws {
            try await withServer(["--drain-grace", "5s"]) { server in
                let silent = try RawConnection(path: server.socketPath)
                let observer = try RawConnection(path: server.socketPath)
                _ = try await offPool { try observer.handshake() }
                // Both connections are admitted before the signal (the status counts them).
                var nextCallID: UInt64 = 1
                let admitted = try await eventually(timeout: .seconds(10)) {
                    let callID = nextCallID
                    nextCallID += 1
                    let end = try await offPool {
                        try observer.unary(callID: callID, method: MethodName.getServerStatus, payload: .serverStatusRequest(ServerStatusRequest()))
                    }
                    guard case .serverStatus(let status)? = end.payload else { return false }
                    return status.connections == 2
                }
                try #require(admitted, "the server never counted both connections")
                let exit = await server.stop(timeout: .seconds(15))
                #expect(exit == .exited(0), "server after SIGTERM: \(exit?.description ?? "still running after 15 s")")
                let refused = try await offPool { try silent.receiveUntilClosed() }
                #expect(refused == [Frame(kind: .goAway(GoAway(lastCallID: 0, code: .unavailable, message: "server is shutting down")))])
                let drained = try await offPool { try observer.receiveUntilClosed() }
                #expect(drained.last.map { if case .goAway(let goAway) = $0.kind { goAway.code == .ok } else { false } } == true, "\(drained)")
            }
        }
    }
}
