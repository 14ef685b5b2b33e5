import Synchronization
import SwitchboardCore
import SwitchboardProtocol
import Testing

/// An in-memory store whose `waitForRoom` suspends while the test says it has no
/// room (a disk that does not keep up), until the test makes room again.
final class RoomGatedStore: ForwardingSessionStore {
    let inner = InMemorySessionStore()
    private struct State {
        /// nil: room; otherwise the gate the waiters wait on.
        var full: Gate?
        var waiting = 0
    }
    private let state = Mutex(State())

    /// Callers suspended in `waitForRoom` now.
    var waiting: Int { state.withLockAnnotated { $0.waiting } }

    func fill() {
        state.withLockAnnotated { if $0.full == nil { $0.full = Gate() } }
    }

    func makeRoom() {
        state.withLockAnnotated { state in
            defer { state.full = nil }
            return state.full
        }?.open()
    }

    func waitForRoom() async {
        let gate = state.withLockAnnotated { state -> Gate? in
            if state.full != nil { state.waiting += 1 }
            return state.full
        }
        guard let gate else { return }
        defer { state.withLockAnnotated { $0.waiting -= 1 } }
        // A cancelled caller leaves (the contract), room or not.
        try? await gate.wait()
    }
}

@Suite("A store without room slows the turns producing output")
struct StoreBackpressureTests {
    let feed = FeedBackend()

    /// The text of the chunks the store holds for turn `turnID` of session "s".
    func stored(_ store: RoomGatedStore, _ turnID: String) async throws -> [OutputChunk] {
        try await store.output(sessionID: "s", turnID: turnID, afterSequence: 0, limit: 100)
    }

    @Test("a turn's output stops (not recorded, not sent) while the store has no room and continues in order after")
    func outputWaitsForRoom() async throws {
        let store = RoomGatedStore()
        let harness = Harness(extra: ["feed": feed], store: store)
        try await harness.createSession("s", backend: "feed")
        let turn = try harness.submit("s", "p")
        let recorder = EventRecorder()
        let running = harness.start(turn, recorder: recorder)
        feed.push("p", "a")
        feed.push("p", "b")
        await eventually("2 chunks") { recorder.chunks.count == 2 }

        store.fill()
        feed.push("p", "c")
        feed.push("p", "d")
        // The backend's write of "c" waits for room; nothing after it moves.
        await eventually("the turn waits for room") { store.waiting == 1 }
        #expect(recorder.chunks.count == 2)
        #expect(try await stored(store, turn.turnID).count == 2)
        #expect(try harness.registry.getSession(id: "s", caller: .server).state == .busy)

        store.makeRoom()
        await eventually("4 chunks") { recorder.chunks.count == 4 }
        feed.finish("p")
        let outcome = await value(of: running)
        #expect(outcome.code == .ok)
        #expect(recorder.text == "abcd")
        #expect(recorder.chunks.map(\.sequence) == [1, 2, 3, 4])
        let chunks = try await stored(store, turn.turnID)
        #expect(chunks.map(\.sequence) == [1, 2, 3, 4])
        #expect(String(decoding: chunks.flatMap(\.data), as: UTF8.self) == "abcd")
        #expect(store.waiting == 0)
    }

    @Test("a turn waiting for room ends at once when cancelled; the store is left as it was")
    func cancelWhileWaitingForRoom() async throws {
        let store = RoomGatedStore()
        let harness = Harness(extra: ["feed": feed], store: store)
        try await harness.createSession("s", backend: "feed")
        let turn = try harness.submit("s", "p")
        let recorder = EventRecorder()
        let running = harness.start(turn, recorder: recorder)
        feed.push("p", "a")
        await eventually("1 chunk") { recorder.chunks.count == 1 }

        store.fill()
        feed.push("p", "b")
        await eventually("the turn waits for room") { store.waiting == 1 }
        turn.cancel(reason: "changed my mind")
        let outcome = await value(of: running)
        #expect(outcome.code == .cancelled)
        #expect(store.waiting == 0)
        #expect(recorder.text == "a")
        #expect(try await stored(store, turn.turnID).map(\.sequence) == [1])
        // The session takes the next prompt (the store still has no room for
        // output, but accepting a turn does not wait for it).
        let next = try harness.submit("s", "q")
        #expect(next.queuePosition == 0)
        next.cancel(reason: "done")
        store.makeRoom()
    }
}
