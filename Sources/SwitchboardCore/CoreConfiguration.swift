/// Server-wide defaults and limits of the core.
///
/// A session's own settings (``SessionSettings``) override the defaults when they
/// are non-zero; `maxQueuedPrompts` is also the ceiling for a session's own value,
/// so one session cannot queue more than the server allows.
public struct CoreConfiguration: Sendable, Hashable {
    /// Backend of a session that does not name one.
    public var defaultBackend: String
    /// A session with no activity for this long is closed by idle cleanup.
    public var idleTimeout: Duration
    /// Longest a turn may run, counted from when it starts (`.zero`: no limit
    /// besides the call's own deadline).
    public var turnDeadline: Duration
    /// A turn that produces no output for this long is ended as stalled
    /// (`.zero`: never).
    public var stallTimeout: Duration
    /// Prompts that may wait behind a running turn, per session.
    public var maxQueuedPrompts: Int
    /// Sessions the registry holds at most.
    public var maxSessions: Int
    /// Finished turns remembered per session, for status.
    public var finishedTurnsKept: Int

    public init(
        defaultBackend: String = "echo",
        idleTimeout: Duration = .seconds(3600),
        turnDeadline: Duration = .seconds(600),
        stallTimeout: Duration = .seconds(120),
        maxQueuedPrompts: Int = 16,
        maxSessions: Int = 100_000,
        finishedTurnsKept: Int = 16
    ) {
        self.defaultBackend = defaultBackend
        self.idleTimeout = idleTimeout
        self.turnDeadline = turnDeadline
        self.stallTimeout = stallTimeout
        self.maxQueuedPrompts = maxQueuedPrompts
        self.maxSessions = maxSessions
        self.finishedTurnsKept = finishedTurnsKept
    }
}
