import Synchronization
import SwitchboardProtocol

/// The ``SessionStore`` of a server without a state directory (`--state-dir none`,
/// tests): everything lives in memory and is gone with the process.
///
/// Same semantics as the on-disk store, so the registry behaves the same with
/// either: durable calls return once the data is in the map, `record…` calls take
/// one short critical section, reads see everything recorded, and each session's
/// retention (finished turns, output bytes, age) is applied when a turn finishes,
/// which is what keeps the memory bounded. A zero retention field means no limit
/// at this layer (the registry fills in the server's defaults).
///
/// `load` returns what this same instance holds, with queued and running turns
/// rewritten as interrupted, exactly as a restart on a state directory would: the
/// registry's restore path can be tested without a disk.
public final class InMemorySessionStore: SessionStore {
    public var location: String { "" }

    private let state = Mutex(State())

    public init() {}

    private struct TurnData {
        var turn: StoredTurn
        var position: UInt64
        var output: [OutputChunk] = []
    }

    private struct SessionData {
        var session: StoredSession
        /// Kept turns, oldest first (positions strictly increasing).
        var turns: [TurnData] = []

        func index(of turnID: String) -> Int? {
            turns.lastIndex { $0.turn.turnID == turnID }
        }
    }

    private struct State {
        var sessions: [String: SessionData] = [:]
        /// Turn positions are store-wide, like the rowids of the on-disk store.
        var nextPosition: UInt64 = 1
        var closed = false
    }

    private static var closedError: SwitchboardError {
        SwitchboardError(code: .unavailable, message: "the session store is closed")
    }

    // MARK: Load

    public func load(interruptedMessage: String) async throws -> [StoredSession] {
        try state.withLockAnnotated { state throws(SwitchboardError) in
            guard !state.closed else { throw Self.closedError }
            var result: [StoredSession] = []
            for id in state.sessions.keys.sorted() {
                guard var data = state.sessions[id] else { continue }
                for index in data.turns.indices where data.turns[index].turn.state != .finished {
                    let turn = data.turns[index].turn
                    if turn.state == .running { data.session.turnsCompleted += 1 }
                    let endedAt = max(turn.startedAtMs, turn.acceptedAtMs, data.session.lastActivityMs)
                    data.turns[index].turn.state = .finished
                    data.turns[index].turn.ending = StoredTurnEnding(
                        code: .aborted,
                        message: interruptedMessage,
                        stopReason: "interrupted",
                        endedAtMs: endedAt
                    )
                }
                state.sessions[id] = data
                var session = data.session
                session.turns = data.turns.map(\.turn)
                result.append(session)
            }
            return result
        }
    }

    // MARK: Durable calls

    public func createSession(_ session: StoredSession) async throws {
        try state.withLockAnnotated { state throws(SwitchboardError) in
            guard !state.closed else { throw Self.closedError }
            guard state.sessions[session.id] == nil else {
                throw SwitchboardError(code: .alreadyExists, message: "session \"\(session.id)\" is already stored")
            }
            var stored = session
            stored.turns = []
            state.sessions[session.id] = SessionData(session: stored)
        }
    }

    public func deleteSession(id: String) async throws {
        try state.withLockAnnotated { state throws(SwitchboardError) in
            guard !state.closed else { throw Self.closedError }
            state.sessions[id] = nil
        }
    }

    // MARK: Records (never fail; records for unknown sessions or turns are dropped)

    public func recordActivity(sessionID: String, atMs: UInt64) {
        state.withLockAnnotated { state in
            guard state.sessions[sessionID] != nil else { return }
            state.sessions[sessionID]!.session.lastActivityMs = max(state.sessions[sessionID]!.session.lastActivityMs, atMs)
        }
    }

    public func recordTurnAccepted(_ turn: StoredTurn) {
        state.withLockAnnotated { state in
            guard state.sessions[turn.sessionID] != nil else { return }
            let position = state.nextPosition
            state.nextPosition += 1
            state.sessions[turn.sessionID]!.turns.append(TurnData(turn: turn, position: position))
            let session = state.sessions[turn.sessionID]!.session
            state.sessions[turn.sessionID]!.session.lastActivityMs = max(session.lastActivityMs, turn.acceptedAtMs)
        }
    }

    public func recordTurnStarted(sessionID: String, turnID: String, atMs: UInt64) {
        update(sessionID: sessionID, turnID: turnID) { data in
            guard data.turn.state != .finished else { return }
            data.turn.state = .running
            data.turn.startedAtMs = atMs
        }
    }

    /// A running turn is held to its session's `retainOutputBytes` too: retention
    /// at the turn's end would drop the output of a turn larger than the bound
    /// anyway, and until then a detached turn printing fast would grow this
    /// process without limit. Once over the bound the turn's output is dropped
    /// (`outputDropped`, reads answer OUT_OF_RANGE) and later chunks are only
    /// counted.
    public func recordOutput(sessionID: String, turnID: String, chunk: OutputChunk) {
        state.withLockAnnotated { state in
            // Only the values needed: a local copy of the session kept alive across
            // the append would copy its turns on every chunk.
            guard let bound = state.sessions[sessionID]?.session.settings.retainOutputBytes,
                let index = state.sessions[sessionID]?.index(of: turnID)
            else { return }
            Self.append(chunk, to: &state.sessions[sessionID]!.turns[index], bound: bound)
        }
    }

    private static func append(_ chunk: OutputChunk, to data: inout TurnData, bound: UInt64) {
        guard data.turn.state != .finished, chunk.sequence == data.turn.chunks + 1 else { return }
        data.turn.chunks = chunk.sequence
        data.turn.bytes += UInt64(chunk.data.count)
        guard !data.turn.outputDropped else { return }
        if bound > 0, data.turn.bytes > bound {
            data.output = []
            data.turn.outputDropped = true
        } else {
            data.output.append(chunk)
        }
    }

    public func recordTurnFinished(sessionID: String, turnID: String, ending: StoredTurnEnding) {
        state.withLockAnnotated { state in
            guard var session = state.sessions[sessionID], let index = session.index(of: turnID) else { return }
            // A turn that had started completed (`TurnQueue.finishExecuting`).
            if session.turns[index].turn.state == .running { session.session.turnsCompleted += 1 }
            session.turns[index].turn.state = .finished
            session.turns[index].turn.ending = ending
            session.session.lastActivityMs = max(session.session.lastActivityMs, ending.endedAtMs)
            Self.applyRetention(to: &session, nowMs: ending.endedAtMs)
            state.sessions[sessionID] = session
        }
    }

    private func update(sessionID: String, turnID: String, _ body: (inout TurnData) -> Void) {
        state.withLockAnnotated { state in
            guard let index = state.sessions[sessionID]?.index(of: turnID) else { return }
            body(&state.sessions[sessionID]!.turns[index])
        }
    }

    /// Drops finished turns beyond `retainTurns` and older than `retainAgeMs`, then
    /// the output of the oldest finished turns until the finished turns' output fits
    /// in `retainOutputBytes` (their summaries stay, marked `outputDropped`).
    /// Turns that have not finished are never touched.
    private static func applyRetention(to session: inout SessionData, nowMs: UInt64) {
        let settings = session.session.settings
        if settings.retainAgeMs > 0, nowMs > settings.retainAgeMs {
            let cutoff = nowMs - settings.retainAgeMs
            session.turns.removeAll { data in
                data.turn.state == .finished && (data.turn.ending?.endedAtMs ?? 0) < cutoff
            }
        }
        if settings.retainTurns > 0 {
            var excess = session.turns.count { $0.turn.state == .finished } - Int(settings.retainTurns)
            if excess > 0 {
                session.turns.removeAll { data in
                    guard excess > 0, data.turn.state == .finished else { return false }
                    excess -= 1
                    return true
                }
            }
        }
        if settings.retainOutputBytes > 0 {
            var total = session.turns.reduce(UInt64(0)) { sum, data in
                data.turn.state == .finished && !data.turn.outputDropped ? sum + data.turn.bytes : sum
            }
            for index in session.turns.indices where total > settings.retainOutputBytes {
                let turn = session.turns[index].turn
                guard turn.state == .finished, !turn.outputDropped, turn.bytes > 0 else { continue }
                total -= turn.bytes
                session.turns[index].output = []
                session.turns[index].turn.outputDropped = true
            }
        }
    }

    // MARK: Reads

    public func output(sessionID: String, turnID: String, afterSequence: UInt64, limit: Int) async throws -> [OutputChunk] {
        try state.withLockAnnotated { state throws(SwitchboardError) in
            guard !state.closed else { throw Self.closedError }
            guard let session = state.sessions[sessionID], let index = session.index(of: turnID) else {
                throw SwitchboardError(code: .notFound, message: "turn \"\(turnID.prefix(140))\" of session \"\(sessionID.prefix(140))\" not found")
            }
            let data = session.turns[index]
            if data.turn.outputDropped, afterSequence < data.turn.chunks {
                throw SwitchboardError(
                    code: .outOfRange,
                    message: "the output of turn \(turnID) is no longer kept (session retention)"
                )
            }
            // Sequences are 1, 2, 3, ... without gaps: chunk n is at index n - 1.
            let start = Int(clamping: min(afterSequence, UInt64(data.output.count)))
            let end = min(data.output.count, start + max(0, limit))
            return Array(data.output[start..<end])
        }
    }

    public func turns(sessionID: String, page: TurnPage) async throws -> StoredTurnPage {
        try state.withLockAnnotated { state throws(SwitchboardError) in
            guard !state.closed else { throw Self.closedError }
            guard let session = state.sessions[sessionID] else {
                throw SwitchboardError(code: .notFound, message: "session \"\(sessionID.prefix(140))\" not found")
            }
            // Output is concatenated only for the turns that go into the page.
            var budget = TurnPageBudget(page: page)
            var entries: [StoredTurnPage.Entry] = []
            for data in session.turns where data.position > page.afterPosition {
                switch budget.admit(data.turn, promptBytes: data.turn.prompt.utf8.count) {
                case .pageFull:
                    return StoredTurnPage(entries: entries, hasMore: true)
                case .omitted(let withoutPrompt):
                    entries.append(StoredTurnPage.Entry(
                        turn: data.turn, position: data.position, outputOmitted: true, promptOmitted: withoutPrompt
                    ))
                case .whole:
                    entries.append(StoredTurnPage.Entry(
                        turn: data.turn,
                        position: data.position,
                        output: page.includeOutput ? data.output.flatMap(\.data) : []
                    ))
                }
            }
            return StoredTurnPage(entries: entries, hasMore: false)
        }
    }

    // MARK: Lifecycle

    public func flush() async throws {}

    public func close() async throws {
        state.withLockAnnotated { state in
            state.closed = true
            state.sessions = [:]
        }
    }
}
