/// The one error type of Switchboard: a status code, a human-readable message and,
/// optionally, the underlying error that caused it.
///
/// Every failure that crosses the wire is one of these; the client library throws
/// it with the code and message the server sent.
public struct SwitchboardError: Error, Sendable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    public var cause: (any Error)?

    public init(code: StatusCode, message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        var text = "\(code.name): \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}

extension SwitchboardError: Equatable {
    /// Two errors are equal when code and message are; the cause is diagnostic only.
    public static func == (lhs: SwitchboardError, rhs: SwitchboardError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }
}
