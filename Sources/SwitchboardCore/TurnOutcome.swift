import SwitchboardProtocol

/// What a running turn reports to its caller, in order: `.started` once it holds
/// its session's slot and its backend starts, then every `.output` chunk.
public enum TurnEvent: Sendable, Hashable {
    case started
    case output(OutputChunk)
}

/// How a turn ended: the call's final status plus the `finished` event.
public struct TurnOutcome: Sendable, Hashable {
    public var code: StatusCode
    public var message: String
    /// Counts, duration and stop reason ("end_turn", "exit:0", "cancelled",
    /// "deadline", "stalled", "error", ...).
    public var finished: TurnFinished

    public init(code: StatusCode, message: String, finished: TurnFinished) {
        self.code = code
        self.message = message
        self.finished = finished
    }

    /// The outcome of a turn that ended before its backend ran (nothing produced).
    init(turnID: String, ending: TurnEnding) {
        self.init(
            code: ending.code,
            message: ending.message,
            finished: TurnFinished(turnID: turnID, stopReason: ending.stopReason, chunks: 0, bytes: 0, durationMs: 0)
        )
    }
}
