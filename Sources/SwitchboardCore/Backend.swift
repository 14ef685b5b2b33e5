import SwitchboardProtocol

/// Something that answers a prompt: runs one turn and streams its output.
///
/// The core calls `runTurn` at most once at a time per session, in FIFO order, in a
/// task of its own. It cancels that task when the turn is cancelled, closed, hits its
/// deadline or stalls; a backend must then stop promptly (that is what bounds a hung
/// turn) and should throw `CancellationError`.
public protocol Backend: Sendable {
    /// Runs one turn, writing output through `output`; returns the stop reason
    /// (e.g. "end_turn"). Throws ``SwitchboardError`` for failures; cancellation
    /// surfaces as `CancellationError`.
    func runTurn(_ turn: TurnRequest, output: TurnOutput) async throws -> String
}

/// What a backend gets to run one turn.
public struct TurnRequest: Sendable, Hashable {
    public var sessionID: String
    public var turnID: String
    public var prompt: String
    public var labels: [Label]
    /// When the core will end the turn with DEADLINE_EXCEEDED (informational: the
    /// core enforces it by cancelling the backend's task).
    public var deadline: ContinuousClock.Instant

    public init(sessionID: String, turnID: String, prompt: String, labels: [Label], deadline: ContinuousClock.Instant) {
        self.sessionID = sessionID
        self.turnID = turnID
        self.prompt = prompt
        self.labels = labels
        self.deadline = deadline
    }
}

/// The write side of a turn's output stream.
///
/// The core numbers chunks 1, 2, 3…, counts chunks and bytes, refreshes the stall
/// timer and the session's last activity, and forwards each chunk to the caller's
/// sink. `write` suspends while the sink does (backpressure), and throws once the
/// turn has ended or the sink failed. Calls must not overlap (await each write).
public struct TurnOutput: Sendable {
    private let handler: @Sendable ([UInt8]) async throws -> Void

    /// Builds an output that hands every write to `handler` (the core uses this;
    /// tests of a backend can use it to collect output).
    package init(_ handler: @escaping @Sendable ([UInt8]) async throws -> Void) {
        self.handler = handler
    }

    /// Emits one chunk of output; empty writes are ignored.
    public func write(_ data: [UInt8]) async throws {
        guard !data.isEmpty else { return }
        try await handler(data)
    }
}
