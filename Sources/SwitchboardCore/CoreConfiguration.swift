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
    /// Sessions one uid may own at once (0: no per-uid limit). Administrators are
    /// bounded only by `maxSessions`. The default, a tenth of `maxSessions`, means
    /// one local user cannot take the whole server's session budget away from the
    /// others, while still leaving room for thousands of sessions per user.
    public var maxSessionsPerUID: Int
    /// Finished turns remembered per session, for status.
    public var finishedTurnsKept: Int
    /// History retention of a session that does not set its own, and the most a
    /// session may ask for (see ``SessionSettings/retainTurns``): finished turns
    /// kept in the store ...
    public var retainTurns: UInt32
    /// ... output bytes kept over all of a session's finished turns (older turns
    /// lose their output first, their summaries stay) ...
    public var retainOutputBytes: UInt64
    /// ... and how long a finished turn is kept.
    public var retainAge: Duration

    public init(
        defaultBackend: String = "echo",
        idleTimeout: Duration = .seconds(3600),
        turnDeadline: Duration = .seconds(600),
        stallTimeout: Duration = .seconds(120),
        maxQueuedPrompts: Int = 16,
        maxSessions: Int = 100_000,
        maxSessionsPerUID: Int = 10_000,
        finishedTurnsKept: Int = 16,
        retainTurns: UInt32 = 100,
        retainOutputBytes: UInt64 = 16 << 20,
        retainAge: Duration = .seconds(7 * 24 * 3600)
    ) {
        self.defaultBackend = defaultBackend
        self.idleTimeout = idleTimeout
        self.turnDeadline = turnDeadline
        self.stallTimeout = stallTimeout
        self.maxQueuedPrompts = maxQueuedPrompts
        self.maxSessions = maxSessions
        self.maxSessionsPerUID = maxSessionsPerUID
        self.finishedTurnsKept = finishedTurnsKept
        self.retainTurns = retainTurns
        self.retainOutputBytes = retainOutputBytes
        self.retainAge = retainAge
    }
}
