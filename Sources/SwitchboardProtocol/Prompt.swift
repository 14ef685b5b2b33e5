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

    public init(sessionID: String, prompt: String, whenBusy: BusyPolicy = .wait) {
        self.sessionID = sessionID
        self.prompt = prompt
        self.whenBusy = whenBusy
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
/// The call's `CallEnd` then carries the turn's status.
public enum PromptEvent: Hashable, Sendable {
    case accepted(TurnAccepted)
    case started(turnID: String)
    case output(OutputChunk)
    case finished(TurnFinished)
}
