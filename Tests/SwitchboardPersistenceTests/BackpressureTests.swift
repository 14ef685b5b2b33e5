import Dispatch
import Synchronization
import SwitchboardCore
import SwitchboardPersistence
import SwitchboardProtocol
import Testing

/// The store's `beforeWrite` hook: while held, the writer thread blocks before
/// writing its next batch, a disk that does not keep up.
final class WriterHold: Sendable {
    private struct State {
        var holding = false
        var blocked = 0
    }
    private let state = Mutex(State())
    private let released = DispatchSemaphore(value: 0)

    /// Writer threads blocked in the hook now (0 or 1).
    var blocked: Int { state.withLockAnnotated { $0.blocked } }

    /// Blocks the writer at its next batch.
    func hold() {
        state.withLockAnnotated { $0.holding = true }
    }

    /// Lets the writer go, and every batch after.
    func release() {
        let blocked = state.withLockAnnotated { state in
            state.holding = false
            defer { state.blocked = 0 }
            return state.blocked
        }
        for _ in 0..<blocked { released.signal() }
    }

    /// Runs on the writer thread (a dedicated thread: blocking it is the point).
    func beforeWrite() {
        let wait = state.withLockAnnotated { state in
            if state.holding { state.blocked += 1 }
            return state.holding
        }
        if wait { released.wait() }
    }
}

/// A flag a task sets when its `waitForRoom` returned.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

@Suite("SQLiteSessionStore slows output producers when the writer falls behind")
struct BackpressureTests {
    static let chunkBytes = 1024
    static let limit = 16 * chunkBytes

    let hold = WriterHold()

    var options: SQLiteSessionStore.Options {
        var options = SQLiteSessionStore.Options(
            batchMaxBytes: 4 * Self.chunkBytes, batchInterval: .milliseconds(5), backlogLimitBytes: Self.limit
        )
        options.beforeWrite = { [hold] in hold.beforeWrite() }
        return options
    }

    /// Chunk `sequence`: its own bytes, so a read-back checks every one.
    static func chunk(_ sequence: UInt64) -> OutputChunk {
        OutputChunk(sequence: sequence, data: (0..<chunkBytes).map { UInt8(truncatingIfNeeded: Int(sequence) &* 31 &+ $0) })
    }

    func record(_ store: SQLiteSessionStore, _ sequences: ClosedRange<UInt64>) {
        for sequence in sequences {
            store.recordOutput(sessionID: "s", turnID: "t", chunk: Self.chunk(sequence))
        }
    }

    func waiter(_ store: SQLiteSessionStore, _ resumed: Flag) -> Task<Void, any Error> {
        Task {
            try await store.waitForRoom()
            resumed.set()
        }
    }

    /// A store with session "s" running turn "t", whose writer has taken the
    /// batch of chunk 1 and is held there (nothing commits until `hold.release()`).
    func openHeldStore(_ directory: ScratchDirectory) async throws -> SQLiteSessionStore {
        let store = try openStore(directory, options: options)
        try await store.createSession(makeSession("s"))
        store.recordTurnAccepted(StoredTurn(sessionID: "s", turnID: "t", prompt: "p", state: .queued, acceptedAtMs: 1))
        store.recordTurnStarted(sessionID: "s", turnID: "t", atMs: 2)
        hold.hold()
        record(store, 1...1)
        try await eventually("the writer holds a batch") { hold.blocked == 1 }
        return store
    }

    @Test("past backlogLimitBytes waitForRoom suspends until the held writer commits; a cancelled waiter leaves; output reads back exactly")
    func waitsUntilCommitted() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        defer { hold.release() }
        let store = try await openHeldStore(directory)
        try await store.waitForRoom()  // 1 KiB waits: room

        // 20 KiB uncommitted: over the 16 KiB limit.
        record(store, 2...20)
        #expect(store.backlogStatus.bytes == 20 * Self.chunkBytes)
        let resumed = Flag()
        let waiting = waiter(store, resumed)
        try await eventually("waitForRoom suspends") { store.backlogStatus.waiters == 1 }
        // The writer is held: nothing can have made room.
        #expect(!resumed.isSet)

        // A cancelled waiter leaves at once; the other keeps waiting.
        let cancelledFlag = Flag()
        let cancelled = waiter(store, cancelledFlag)
        try await eventually("a second waiter") { store.backlogStatus.waiters == 2 }
        cancelled.cancel()
        try await eventually("the cancelled waiter returns") { cancelledFlag.isSet }
        try await cancelled.value
        #expect(store.backlogStatus.waiters == 1)
        #expect(!resumed.isSet)

        // Reads see everything recorded, committed or not.
        #expect(try await store.output(sessionID: "s", turnID: "t", afterSequence: 0, limit: 100) == (1...20).map(Self.chunk))

        // The disk catches up: the waiter goes on.
        hold.release()
        try await eventually("waitForRoom returns after the commits") { resumed.isSet }
        try await waiting.value
        #expect(store.backlogStatus.waiters == 0)
        try await store.flush()
        #expect(store.backlogStatus.bytes == 0)
        try await store.waitForRoom()

        record(store, 21...24)
        store.recordTurnFinished(
            sessionID: "s", turnID: "t",
            ending: StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: 3)
        )
        try await store.flush()
        #expect(try await store.output(sessionID: "s", turnID: "t", afterSequence: 0, limit: 100) == (1...24).map(Self.chunk))
        try await store.close()
    }

    @Test("closing the store resumes a waiter while the writer is still held; everything recorded is on disk after")
    func closeResumesWaiters() async throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        defer { hold.release() }
        let store = try await openHeldStore(directory)
        record(store, 2...30)
        store.recordTurnFinished(
            sessionID: "s", turnID: "t",
            ending: StoredTurnEnding(code: .ok, message: "", stopReason: "end_turn", endedAtMs: 3)
        )
        let resumed = Flag()
        let waiting = waiter(store, resumed)
        try await eventually("waitForRoom suspends") { store.backlogStatus.waiters == 1 }

        let closing = Task { try await store.close() }
        try await eventually("close resumes the waiter") { resumed.isSet }
        try await waiting.value
        // Still held: it was the close, not a commit, that let it go.
        #expect(hold.blocked == 1)
        try await store.waitForRoom()  // closing: returns at once
        hold.release()
        try await closing.value

        let reopened = try openStore(directory, options: SQLiteSessionStore.Options())
        let page = try await reopened.turns(sessionID: "s", page: TurnPage(limit: 10, includeOutput: true))
        #expect(page.entries.first?.turn.state == .finished)
        #expect(page.entries.first?.turn.chunks == 30)
        #expect(page.entries.first?.output == (1...30).flatMap { Self.chunk($0).data })
        #expect(try await reopened.output(sessionID: "s", turnID: "t", afterSequence: 0, limit: 100) == (1...30).map(Self.chunk))
        try await reopened.close()
    }
}
