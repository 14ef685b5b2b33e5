import SwitchboardProtocol

/// How a ``SwitchboardClient`` connects and what it assumes for its calls.
public struct ClientConfiguration: Sendable {
    /// Sent in `Hello`; the server logs it and shows it in its connection list.
    public var clientName = "switchboard-swift"
    /// Bounds connecting *and* the handshake (Hello → Welcome). A server that accepts
    /// the socket but never answers must not hang `connect`.
    public var connectTimeout: Duration = .seconds(5)
    /// Applied to every call that does not pass its own timeout; `nil` = no deadline.
    /// Sent to the server as the call's `timeout_ms`; the client also enforces it
    /// itself (with a short grace period) in case the server cannot.
    public var defaultCallTimeout: Duration? = nil
    /// Largest frame this client accepts, announced in `Hello`; a larger frame from the
    /// server closes the connection (`RESOURCE_EXHAUSTED` as the cause).
    public var maxFrameSize: UInt32 = ProtocolVersion.defaultMaxFrameSize
    /// How ``SwitchboardClient/call(_:socketPath:configuration:)`` retries a call the
    /// server refused before processing it (drain, restart, socket activation).
    public var retry = RetryPolicy()
    /// What a prompt stream does when the connection is lost after the server
    /// accepted its turn, unless the prompt call says otherwise (see ``ResumePolicy``).
    public var resume: ResumePolicy = .off

    public init() {}
}
