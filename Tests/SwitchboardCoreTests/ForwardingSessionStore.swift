import SwitchboardCore
import SwitchboardProtocol

/// A test store that hands every call to an in-memory store; a conformer
/// implements only the calls it slows down or observes (`SlowStore`,
/// `RoomGatedStore`).
protocol ForwardingSessionStore: SessionStore {
    var inner: InMemorySessionStore { get }
}

extension ForwardingSessionStore {
    var location: String { inner.location }
    func load(interruptedMessage: String) async throws -> [StoredSession] { try await inner.load(interruptedMessage: interruptedMessage) }
    func createSession(_ session: StoredSession) async throws { try await inner.createSession(session) }
    func deleteSession(id: String) async throws { try await inner.deleteSession(id: id) }
    func recordActivity(sessionID: String, atMs: UInt64) { inner.recordActivity(sessionID: sessionID, atMs: atMs) }
    func recordTurnAccepted(_ turn: StoredTurn) { inner.recordTurnAccepted(turn) }
    func recordTurnStarted(sessionID: String, turnID: String, atMs: UInt64) { inner.recordTurnStarted(sessionID: sessionID, turnID: turnID, atMs: atMs) }
    func recordOutput(sessionID: String, turnID: String, chunk: OutputChunk) { inner.recordOutput(sessionID: sessionID, turnID: turnID, chunk: chunk) }
    func recordTurnFinished(sessionID: String, turnID: String, ending: StoredTurnEnding) {
        inner.recordTurnFinished(sessionID: sessionID, turnID: turnID, ending: ending)
    }
    func output(sessionID: String, turnID: String, afterSequence: UInt64, limit: Int) async throws -> [OutputChunk] {
        try await inner.output(sessionID: sessionID, turnID: turnID, afterSequence: afterSequence, limit: limit)
    }
    func turns(sessionID: String, page: TurnPage) async throws -> StoredTurnPage { try await inner.turns(sessionID: sessionID, page: page) }
    func flush() async throws { try await inner.flush() }
    func close() async throws { try await inner.close() }
}
