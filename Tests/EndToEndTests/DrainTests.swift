import Foundation
import Glibc
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
    }
}
