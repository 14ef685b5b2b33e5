import SwitchboardCore
import SwitchboardProtocol
import Testing

/// A well-behaved client streaming a long echo prompt on its own connection,
/// started before some misbehaviour and checked after it: it must receive every
/// chunk, in order, and an OK end.
struct HealthyStream {
    let sessionID: String
    let prompt: String
    let task: Task<PromptResult, any Error>

    static func start(on server: TestServer, words: Int = 300) async throws -> HealthyStream {
        let sessionID = "healthy-\(UInt32.random(in: 0...UInt32.max))"
        let prompt = makePrompt(words: words)
        let path = server.path
        let task = Task {
            let client = try RawClient(path: path)
            try await client.handshake(name: "healthy")
            try await client.createSession(sessionID)
            let callID = try await client.startPrompt(session: sessionID, prompt: prompt)
            return try await client.collectPrompt(callID, timeout: .seconds(20))
        }
        // Wait until the turn is running, so the misbehaviour happens mid-stream.
        let registry = server.registry
        try await eventually("the healthy stream is running") {
            (try? registry.sessionStatus(id: sessionID, caller: .server))?.session?.state == .busy
        }
        return HealthyStream(sessionID: sessionID, prompt: prompt, task: task)
    }

    func verify() async throws {
        let result = try await task.value
        #expect(result.end?.code == .ok, "healthy stream ended with \(String(describing: result.end))")
        #expect(result.isWellFormed)
        #expect(result.text == prompt)
        #expect(result.finished?.chunks == UInt64(result.chunks.count))
    }
}
