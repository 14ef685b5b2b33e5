import SwitchboardProtocol

/// Where sessions and their turns are kept: in memory (``InMemorySessionStore``)
/// or on disk (`SQLiteSessionStore` in the `SwitchboardPersistence` module).
///
/// The registry calls it so that nothing a client was told is lost:
/// - `createSession` and `closeSession` are durable when they return;
/// - turn events and output are *recorded* (non-blocking, in memory) and written
///   in batches by the store's own thread, so a crash loses at most the last
///   unwritten batch (see docs/ARCHITECTURE.md, "Durability");
/// - reads (`output`, `turns`) see everything recorded, written or not.
///
/// No method is called while a session or map lock is held, and implementations
/// never run database work on the caller's thread for the `record…` methods (an
/// event loop may call them).
public protocol SessionStore: Sendable {
    /// Where the store keeps its data, for status; empty = memory only.
    var location: String { get }

    /// Everything kept, for the registry to rebuild itself at start. Turns that
    /// were queued or running when the previous process died are rewritten as
    /// finished with ABORTED and `interruptedMessage` (their output so far kept),
    /// before this returns.
    func load(interruptedMessage: String) async throws -> [StoredSession]

    /// Makes a new session durable. Throws when it could not be written.
    func createSession(_ session: StoredSession) async throws
    /// Forgets a closed session and all its turns, durably.
    func deleteSession(id: String) async throws

    /// Records, without waiting for the disk: the session's last activity.
    func recordActivity(sessionID: String, atMs: UInt64)
    /// Records a turn that was accepted into its session's queue.
    func recordTurnAccepted(_ turn: StoredTurn)
    /// Records that a turn's backend started.
    func recordTurnStarted(sessionID: String, turnID: String, atMs: UInt64)
    /// Records one output chunk of a running turn; sequences arrive in order.
    func recordOutput(sessionID: String, turnID: String, chunk: OutputChunk)
    /// Records how a turn ended; then applies the session's retention.
    func recordTurnFinished(sessionID: String, turnID: String, ending: StoredTurnEnding)

    /// Output chunks of a turn with sequence > `afterSequence`, in order, at most
    /// `limit`. Throws OUT_OF_RANGE when retention dropped the output asked for,
    /// NOT_FOUND for an unknown turn.
    func output(sessionID: String, turnID: String, afterSequence: UInt64, limit: Int) async throws -> [OutputChunk]
    /// A page of the session's kept turns, oldest first.
    func turns(sessionID: String, page: TurnPage) async throws -> StoredTurnPage

    /// Writes everything recorded so far (shutdown, tests).
    func flush() async throws
    /// Flushes and releases the store; later calls fail.
    func close() async throws
}

/// A session as the store keeps it.
public struct StoredSession: Hashable, Sendable {
    public var id: String
    public var labels: [Label]
    /// Effective settings (server defaults filled in, retention included).
    public var settings: SessionSettings
    public var ownerUID: UInt32
    public var createdAtMs: UInt64
    public var lastActivityMs: UInt64
    /// Its kept turns, oldest first (only filled by `load`).
    public var turns: [StoredTurn]

    public init(
        id: String,
        labels: [Label],
        settings: SessionSettings,
        ownerUID: UInt32,
        createdAtMs: UInt64,
        lastActivityMs: UInt64,
        turns: [StoredTurn] = []
    ) {
        self.id = id
        self.labels = labels
        self.settings = settings
        self.ownerUID = ownerUID
        self.createdAtMs = createdAtMs
        self.lastActivityMs = lastActivityMs
        self.turns = turns
    }
}

/// A turn as the store keeps it (output is read separately).
public struct StoredTurn: Hashable, Sendable {
    public var sessionID: String
    public var turnID: String
    public var prompt: String
    /// `.queued`, `.running` or `.finished`.
    public var state: TurnState
    public var acceptedAtMs: UInt64
    public var startedAtMs: UInt64
    /// Set once finished.
    public var ending: StoredTurnEnding?
    /// Chunks and bytes recorded so far.
    public var chunks: UInt64
    public var bytes: UInt64
    /// Retention dropped this turn's output (the summary stays).
    public var outputDropped: Bool

    public init(
        sessionID: String,
        turnID: String,
        prompt: String,
        state: TurnState,
        acceptedAtMs: UInt64,
        startedAtMs: UInt64 = 0,
        ending: StoredTurnEnding? = nil,
        chunks: UInt64 = 0,
        bytes: UInt64 = 0,
        outputDropped: Bool = false
    ) {
        self.sessionID = sessionID
        self.turnID = turnID
        self.prompt = prompt
        self.state = state
        self.acceptedAtMs = acceptedAtMs
        self.startedAtMs = startedAtMs
        self.ending = ending
        self.chunks = chunks
        self.bytes = bytes
        self.outputDropped = outputDropped
    }
}

/// How a turn ended.
public struct StoredTurnEnding: Hashable, Sendable {
    public var code: StatusCode
    public var message: String
    public var stopReason: String
    public var endedAtMs: UInt64

    public init(code: StatusCode, message: String, stopReason: String, endedAtMs: UInt64) {
        self.code = code
        self.message = message
        self.stopReason = stopReason
        self.endedAtMs = endedAtMs
    }
}

/// Which page of a session's turns to read.
public struct TurnPage: Hashable, Sendable {
    /// Turns after this position (0 = from the oldest kept turn); the position is
    /// the store's own ordering key, carried in page tokens.
    public var afterPosition: UInt64
    public var limit: Int
    /// Also read each turn's whole output.
    public var includeOutput: Bool

    public init(afterPosition: UInt64 = 0, limit: Int, includeOutput: Bool) {
        self.afterPosition = afterPosition
        self.limit = limit
        self.includeOutput = includeOutput
    }
}

public struct StoredTurnPage: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var turn: StoredTurn
        /// The store's ordering key of this turn (for the next page's token).
        public var position: UInt64
        /// The output, chunks concatenated (with `includeOutput`).
        public var output: [UInt8]

        public init(turn: StoredTurn, position: UInt64, output: [UInt8] = []) {
            self.turn = turn
            self.position = position
            self.output = output
        }
    }

    public var entries: [Entry]
    /// More turns follow the last entry.
    public var hasMore: Bool

    public init(entries: [Entry], hasMore: Bool) {
        self.entries = entries
        self.hasMore = hasMore
    }
}
