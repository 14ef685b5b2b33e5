/// What a prompt does when its session already has a turn running or queued.
public enum BusyPolicy: UInt32, Hashable, Sendable {
    /// Wait in the session's FIFO queue (bounded; a full queue is RESOURCE_EXHAUSTED).
    case wait = 0
    /// Fail at once with FAILED_PRECONDITION.
    case reject = 1
}

public struct PromptRequest: Hashable, Sendable {
    public var sessionID: String
    public var prompt: String
    public var whenBusy: BusyPolicy
    /// By default the turn keeps running when the caller's connection goes away
    /// (its output is kept for ``AttachRequest``); `true` cancels it instead.
    public var cancelOnDisconnect: Bool

    public init(sessionID: String, prompt: String, whenBusy: BusyPolicy = .wait, cancelOnDisconnect: Bool = false) {
        self.sessionID = sessionID
        self.prompt = prompt
        self.whenBusy = whenBusy
        self.cancelOnDisconnect = cancelOnDisconnect
    }
}

/// `/switchboard.v1.Prompts/Attach`: replay a turn's kept output after
/// `afterSequence`, then follow the turn live to its end.
public struct AttachRequest: Hashable, Sendable {
    public var sessionID: String
    /// Empty = the session's running turn, else its most recent one.
    public var turnID: String
    /// Replay chunks with a sequence number above this; 0 = from the first chunk.
    public var afterSequence: UInt64

    public init(sessionID: String, turnID: String = "", afterSequence: UInt64 = 0) {
        self.sessionID = sessionID
        self.turnID = turnID
        self.afterSequence = afterSequence
    }
}

/// Attach's first event: the turn it follows and where that turn stands.
public struct TurnAttached: Hashable, Sendable {
    public var turnID: String
    public var state: TurnState
    /// Highest output sequence number produced so far.
    public var lastSequence: UInt64

    public init(turnID: String, state: TurnState, lastSequence: UInt64) {
        self.turnID = turnID
        self.state = state
        self.lastSequence = lastSequence
    }
}

public struct TurnAccepted: Hashable, Sendable {
    public var turnID: String
    /// 0 = runs now; N = N turns ahead of it (the running one included).
    public var queuePosition: UInt32
    public init(turnID: String, queuePosition: UInt32) {
        self.turnID = turnID
        self.queuePosition = queuePosition
    }
}

public struct OutputChunk: Hashable, Sendable {
    /// 1, 2, 3, ... per turn, without gaps.
    public var sequence: UInt64
    public var data: [UInt8]
    public init(sequence: UInt64, data: [UInt8]) {
        self.sequence = sequence
        self.data = data
    }
}

public struct TurnFinished: Hashable, Sendable {
    public var turnID: String
    /// The backend's reason: "end_turn", "exit:0", "cancelled", "deadline", ...
    public var stopReason: String
    public var chunks: UInt64
    public var bytes: UInt64
    public var durationMs: UInt64

    public init(turnID: String, stopReason: String, chunks: UInt64, bytes: UInt64, durationMs: UInt64) {
        self.turnID = turnID
        self.stopReason = stopReason
        self.chunks = chunks
        self.bytes = bytes
        self.durationMs = durationMs
    }
}

/// One event of a streamed prompt: accepted, started, output*, finished, in that order.
/// An attach call sends attached, output*, finished. The call's `CallEnd` then
/// carries the turn's status.
public enum PromptEvent: Hashable, Sendable {
    case attached(TurnAttached)
    case accepted(TurnAccepted)
    case started(turnID: String)
    case output(OutputChunk)
    case finished(TurnFinished)
}
