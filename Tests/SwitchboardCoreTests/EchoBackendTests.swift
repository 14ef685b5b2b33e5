import SwitchboardCore
import SwitchboardProtocol
import Testing

@Suite("Echo backend")
struct EchoBackendTests {
    @Test(
        "output concatenates back to the prompt, sequence numbers 1...n",
        arguments: ["hello world", "  leading and trailing  ", "one\ttwo\nthree\n\nfour", "single", "", "héllo wörld 🎉 ok"]
    )
    func echoesPrompt(prompt: String) async throws {
        let harness = Harness()
        try await harness.createSession("s", backend: "echo")
        let recorder = EventRecorder()
        let outcome = await value(of: harness.start(try harness.submit("s", prompt), recorder: recorder))
        #expect(outcome.code == .ok)
        #expect(outcome.finished.stopReason == "end_turn")
        #expect(recorder.text == prompt)
        #expect(recorder.chunks.map(\.sequence) == (0..<recorder.chunks.count).map { UInt64($0 + 1) })
        #expect(outcome.finished.chunks == UInt64(recorder.chunks.count))
        #expect(outcome.finished.bytes == UInt64(prompt.utf8.count))
        #expect(recorder.events.first == .started)
    }

    @Test("one chunk per word, whitespace kept")
    func tokens() async throws {
        let harness = Harness()
        try await harness.createSession("s", backend: "echo")
        let recorder = EventRecorder()
        _ = await value(of: harness.start(try harness.submit("s", "the quick  brown\nfox"), recorder: recorder))
        #expect(recorder.chunks.map { String(decoding: $0.data, as: UTF8.self) } == ["the ", "quick  ", "brown\n", "fox"])
        #expect(recorder.chunks.map(\.sequence) == [1, 2, 3, 4])
    }

    @Test("a token delay is honoured and cancellation stops it")
    func tokenDelayAndCancellation() async throws {
        let harness = Harness(echo: EchoBackend(tokenDelay: .seconds(30)))
        try await harness.createSession("s", backend: "echo")
        let recorder = EventRecorder()
        let task = harness.start(try harness.submit("s", "first second third"), recorder: recorder)
        await eventually("first token") { recorder.chunks.count == 1 }
        task.cancel()
        let outcome = await value(of: task)
        #expect(outcome.code == .cancelled)
        #expect(outcome.finished.chunks == 1)
        #expect(recorder.text == "first ")
    }
}
