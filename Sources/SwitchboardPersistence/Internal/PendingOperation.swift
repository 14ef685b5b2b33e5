import SwitchboardCore
import SwitchboardProtocol

/// A turn as the `record…` calls name it.
struct TurnKey: Hashable, Sendable {
    var sessionID: String
    var turnID: String
}

/// One recorded change waiting for the writer. The batch is an ordered list of
/// these, so a turn's acceptance, output and ending reach the database in the
/// order they were recorded.
enum PendingOperation: Sendable {
    /// Durable before `createSession` returns: the caller waits on `ticket`.
    case createSession(StoredSession, ticket: UInt64)
    /// Durable before `deleteSession` returns: the caller waits on `ticket`.
    case deleteSession(String, ticket: UInt64)
    case activity(sessionID: String, atMs: UInt64)
    case accepted(StoredTurn, position: UInt64)
    case started(TurnKey, position: UInt64, atMs: UInt64)
    case output(TurnKey, position: UInt64, chunk: OutputChunk)
    case finished(TurnKey, position: UInt64, ending: StoredTurnEnding)

    var sessionID: String {
        switch self {
        case .createSession(let session, _): session.id
        case .deleteSession(let id, _): id
        case .activity(let id, _): id
        case .accepted(let turn, _): turn.sessionID
        case .started(let key, _, _), .output(let key, _, _), .finished(let key, _, _): key.sessionID
        }
    }

    /// The turn this operation records, nil for session-wide ones.
    var turnID: String? {
        switch self {
        case .accepted(let turn, _): turn.turnID
        case .started(let key, _, _), .output(let key, _, _), .finished(let key, _, _): key.turnID
        case .createSession, .deleteSession, .activity: nil
        }
    }

    /// Needs a FULL-synchronous commit (create and delete are durable on return).
    var ticket: UInt64? {
        switch self {
        case .createSession(_, let ticket), .deleteSession(_, let ticket): ticket
        default: nil
        }
    }
}

/// What a read sees of the operations not yet committed (the batch being
/// written plus the one being collected), for one session.
struct PendingView: Sendable {
    var operations: [PendingOperation] = []

    /// Applies the pending changes of one turn to its stored form (which may
    /// be nil when its acceptance is still pending). `lastSequence` is the last
    /// chunk sequence the database had, so a chunk both committed and still in
    /// the snapshot is counted once.
    func apply(to turn: inout StoredTurn, lastSequence: UInt64) {
        for operation in operations {
            switch operation {
            case .started(let key, _, let atMs) where key.turnID == turn.turnID:
                if turn.state == .queued { turn.state = .running }
                turn.startedAtMs = atMs
            case .output(let key, _, let chunk) where key.turnID == turn.turnID:
                if chunk.sequence > lastSequence {
                    turn.chunks += 1
                    turn.bytes += UInt64(chunk.data.count)
                }
            case .finished(let key, _, let ending) where key.turnID == turn.turnID:
                turn.state = .finished
                turn.ending = ending
            default:
                break
            }
        }
    }

    /// Turns whose acceptance is still pending, in position order.
    var acceptedTurns: [(turn: StoredTurn, position: UInt64)] {
        operations.compactMap {
            if case .accepted(let turn, let position) = $0 { (turn, position) } else { nil }
        }
    }

    /// The pending chunks of one turn, in order.
    func chunks(turnID: String) -> [OutputChunk] {
        operations.compactMap {
            if case .output(let key, _, let chunk) = $0, key.turnID == turnID { chunk } else { nil }
        }
    }

    /// A delete of the session is pending.
    var deletesSession: Bool {
        operations.contains { if case .deleteSession = $0 { true } else { false } }
    }
}
