import SwitchboardProtocol

/// Where sessions and their turns are kept: in memory (``InMemorySessionStore``)
/// or on disk (`SQLiteSessionStore` in the `SwitchboardPersistence` module).
///
/// The registry calls it so that nothing a client was told is lost:
/// - `createSession` and `closeSession` are durable when they return;
/// - turn events and output are *recorded* (non-blocking, in memory) and written
///   in batches by the store's own thread, so a crash loses at most the last
///   unwritten batch (see docs/ARCHITECTURE.md, "Durability");
/// - reads (`output`, `turns`) see everything recorded, written or not;
/// - a turn that ends OK is answered OK only after `flush` returned for it, so
///   a client told OK never loses that turn; when the store cannot write
///   (``writeFailure``) the turn ends UNAVAILABLE instead, and new sessions and
///   prompts are refused until it can again.
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
    /// before this returns; a turn that was running counts in `turnsCompleted`.
    /// A turn's `prompt` may be only its beginning (at least
    /// ``StoredTurnPage/promptPrefixScalars`` scalars): the registry keeps only
    /// its preview.
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
    /// Suspends while the store holds more recorded output than it is willing to
    /// keep waiting for the disk; returns at once when there is room (the common
    /// case: it is called before every chunk) or once the store is closed.
    ///
    /// `record…` calls never wait, so a disk slower than the turns producing
    /// output would otherwise grow the store's backlog until the process runs out
    /// of memory; the core awaits this before recording each chunk, which slows
    /// the backend the way a slow reader does. Never blocks a thread; a cancelled
    /// caller returns promptly (room or not), so a cancelled turn never hangs here.
    /// Throws (UNAVAILABLE) when there is no room and the store cannot write
    /// (``writeFailure``): room may never come, and the turn ends with the error.
    func waitForRoom() async throws
    /// Records how a turn ended; then applies the session's retention.
    func recordTurnFinished(sessionID: String, turnID: String, ending: StoredTurnEnding)

    /// Output chunks of a turn with sequence > `afterSequence`, in order, at most
    /// `limit`. Throws OUT_OF_RANGE when retention dropped the output asked for,
    /// NOT_FOUND for an unknown turn.
    func output(sessionID: String, turnID: String, afterSequence: UInt64, limit: Int) async throws -> [OutputChunk]
    /// A page of the session's kept turns, oldest first.
    func turns(sessionID: String, page: TurnPage) async throws -> StoredTurnPage

    /// Returns once everything recorded before the call is durable: what a turn
    /// that ended OK awaits before its OK is sent (and shutdown, tests). Throws
    /// when that could not be done (UNAVAILABLE: the disk refused the write;
    /// the store keeps the records and retries, but cannot promise them).
    func flush() async throws
    /// Returns once the records of one turn are durable: at once when none of
    /// them waits to be written, else like ``flush()``. What an Attach to a
    /// finished turn awaits, so that replaying a turn committed long ago is
    /// answered OK even while the disk refuses writes.
    func flush(sessionID: String, turnID: String) async throws
    /// Why the store cannot write now (a full disk), since when; nil while it
    /// writes normally. Cleared by the store itself once a write succeeds again.
    var writeFailure: StoreWriteFailure? { get }
    /// Flushes and releases the store; later calls fail.
    func close() async throws
}

extension SessionStore {
    /// Stores that cannot tell one turn's records apart flush everything.
    public func flush(sessionID: String, turnID: String) async throws {
        try await flush()
    }

    /// A store that keeps everything in memory without a writer to wait for
    /// (``InMemorySessionStore``, test stores) always has room.
    public func waitForRoom() async {}

    /// A store without a disk (``InMemorySessionStore``, test stores) never
    /// fails to write.
    public var writeFailure: StoreWriteFailure? { nil }
}

/// Why a store cannot write, reported by status and health and in the errors of
/// the calls it refuses.
public struct StoreWriteFailure: Hashable, Sendable {
    /// The storage's own words, e.g. "database or disk is full".
    public var message: String
    /// When the first write failed (Unix epoch ms).
    public var sinceMs: UInt64

    public init(message: String, sinceMs: UInt64) {
        self.message = message
        self.sinceMs = sinceMs
    }
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
    /// Turns that started and then ended, however they ended (kept or not).
    /// Turns ended while queued do not count. Maintained by the store.
    public var turnsCompleted: UInt64
    /// Its kept turns, oldest first (only filled by `load`).
    public var turns: [StoredTurn]

    public init(
        id: String,
        labels: [Label],
        settings: SessionSettings,
        ownerUID: UInt32,
        createdAtMs: UInt64,
        lastActivityMs: UInt64,
        turnsCompleted: UInt64 = 0,
        turns: [StoredTurn] = []
    ) {
        self.id = id
        self.labels = labels
        self.settings = settings
        self.ownerUID = ownerUID
        self.createdAtMs = createdAtMs
        self.lastActivityMs = lastActivityMs
        self.turnsCompleted = turnsCompleted
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
    /// Also read each turn's whole prompt and output.
    public var includeOutput: Bool
    /// At most this many bytes of turns in the page, as ``TurnPageBudget`` counts
    /// them (prompts and output with `includeOutput`, plus each turn's summary):
    /// the page is one response frame, and a client refuses a frame above its
    /// `Hello.max_frame_size`. The page ends before the turn that would pass it;
    /// its first turn is always there, without its output when it alone does not
    /// fit (``StoredTurnPage/Entry/outputOmitted``). `Int.max`: no bound.
    public var maxBytes: Int

    public init(afterPosition: UInt64 = 0, limit: Int, includeOutput: Bool, maxBytes: Int = .max) {
        self.afterPosition = afterPosition
        self.limit = limit
        self.includeOutput = includeOutput
        self.maxBytes = maxBytes
    }
}

public struct StoredTurnPage: Hashable, Sendable {
    /// How much of a prompt a store must at least return when it does not return
    /// the whole prompt, in Unicode scalars: more than the 200 bytes of a summary's
    /// prompt preview, so the preview made from the prefix is the whole prompt's.
    public static let promptPrefixScalars = 256

    public struct Entry: Hashable, Sendable {
        /// The turn. `turn.prompt` is the whole prompt when the page includes
        /// output and the prompt is not omitted; otherwise it may be only its first
        /// ``StoredTurnPage/promptPrefixScalars`` scalars (enough for the preview).
        public var turn: StoredTurn
        /// The store's ordering key of this turn (for the next page's token).
        public var position: UInt64
        /// The output, chunks concatenated (with `includeOutput`).
        public var output: [UInt8]
        /// The turn alone is over the page's byte budget: its output was left out.
        public var outputOmitted: Bool
        /// Even its prompt alone is over the budget: leave the prompt out too.
        public var promptOmitted: Bool

        public init(
            turn: StoredTurn,
            position: UInt64,
            output: [UInt8] = [],
            outputOmitted: Bool = false,
            promptOmitted: Bool = false
        ) {
            self.turn = turn
            self.position = position
            self.output = output
            self.outputOmitted = outputOmitted
            self.promptOmitted = promptOmitted
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

/// Fills a ``TurnPage`` turn by turn within its count and byte bounds. Both
/// stores use it, before they read a turn's whole prompt and output, so they cut
/// pages at the same turns and never load what they would not send.
public struct TurnPageBudget: Sendable {
    /// What of the next turn goes into the page.
    public enum Admission: Hashable, Sendable {
        /// Everything the page asks for.
        case whole
        /// The first turn of a page, too large on its own: its summary, its prompt
        /// unless `withoutPrompt` (the prompt alone is too large too), no output.
        case omitted(withoutPrompt: Bool)
        /// Nothing: the page is full (count or bytes) and ends before this turn.
        case pageFull
    }

    /// What a turn's summary costs besides its message, stop reason and turn id:
    /// the record's and summary's tags and lengths, state, code, counters, times
    /// and the prompt preview (at most 200 bytes). Generous, so that a page of
    /// `maxBytes` never makes a larger frame.
    public static let summaryOverhead = 512

    public let page: TurnPage
    /// Turns admitted so far.
    public private(set) var count = 0
    /// Bytes admitted so far.
    public private(set) var bytes = 0

    public init(page: TurnPage) {
        self.page = page
    }

    /// Admits (or not) the next turn. `promptBytes` is the size of its whole
    /// prompt in UTF-8 (the store may hold only a prefix in `turn.prompt`);
    /// its output counts `turn.bytes` unless retention dropped it.
    public mutating func admit(_ turn: StoredTurn, promptBytes: Int) -> Admission {
        guard count < max(1, page.limit) else { return .pageFull }
        let summary = Self.summaryOverhead + turn.turnID.utf8.count
            + (turn.ending.map { $0.message.utf8.count + $0.stopReason.utf8.count } ?? 0)
        let prompt = page.includeOutput ? max(0, promptBytes) : 0
        let output = page.includeOutput && !turn.outputDropped ? Int(clamping: turn.bytes) : 0
        let total = Self.sum(Self.sum(summary, prompt), output)
        let remaining = max(0, page.maxBytes) - bytes
        if total <= remaining {
            count += 1
            bytes += total
            return .whole
        }
        guard count == 0 else { return .pageFull }
        count += 1
        guard output > 0 || prompt > 0 else {
            // Nothing to leave out: the summary goes as it is.
            bytes += summary
            return .whole
        }
        let withPrompt = Self.sum(summary, prompt)
        let withoutPrompt = withPrompt > remaining
        bytes = Self.sum(bytes, withoutPrompt ? summary : withPrompt)
        return .omitted(withoutPrompt: withoutPrompt)
    }

    /// `a + b`, saturating at `Int.max` (a stored byte count is a `UInt64`).
    private static func sum(_ a: Int, _ b: Int) -> Int {
        let (value, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : value
    }
}
