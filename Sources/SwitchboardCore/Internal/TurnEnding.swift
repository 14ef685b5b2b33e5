import SwitchboardProtocol

/// Why the core ended a turn before its backend finished on its own: the status,
/// message and stop reason the turn reports.
struct TurnEnding: Sendable, Hashable {
    var code: StatusCode
    var message: String
    var stopReason: String

    static func cancelled(_ reason: String) -> TurnEnding {
        TurnEnding(code: .cancelled, message: reason.isEmpty ? "turn cancelled" : reason, stopReason: "cancelled")
    }

    static func sessionClosed(_ reason: String) -> TurnEnding {
        TurnEnding(code: .cancelled, message: "session closed: \(reason)", stopReason: "cancelled")
    }

    static let deadline = TurnEnding(code: .deadlineExceeded, message: "turn deadline exceeded", stopReason: "deadline")

    static let deadlineWhileQueued = TurnEnding(
        code: .deadlineExceeded,
        message: "deadline exceeded while waiting in the session queue",
        stopReason: "deadline"
    )

    static func stalled(after timeout: Duration) -> TurnEnding {
        TurnEnding(
            code: .deadlineExceeded,
            message: "turn stalled: no output for \(timeout.milliseconds) ms",
            stopReason: "stalled"
        )
    }

    static let abandoned = TurnEnding(code: .cancelled, message: "turn abandoned before it ran", stopReason: "cancelled")

    /// The store has no room for the turn's output and cannot write (a full
    /// disk): the turn stops rather than wait for space that may not come.
    static func notStored(_ error: any Error) -> TurnEnding {
        let message = (error as? SwitchboardError)?.message ?? "the turn's output could not be stored: \(error)"
        return TurnEnding(code: .unavailable, message: message, stopReason: "error")
    }

    /// The sink threw: the receiver is gone or refused the output.
    static func outputFailed(_ error: any Error) -> TurnEnding {
        if let error = error as? SwitchboardError {
            return TurnEnding(code: error.code, message: error.message, stopReason: "cancelled")
        }
        if error is CancellationError {
            return .cancelled("output stream cancelled")
        }
        return TurnEnding(code: .cancelled, message: "output stream failed: \(error)", stopReason: "cancelled")
    }
}
