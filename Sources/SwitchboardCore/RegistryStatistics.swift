/// Registry-wide counters for status; read without waiting on any turn.
public struct RegistryStatistics: Sendable, Hashable {
    /// Sessions in the registry.
    public var sessionsTotal: Int
    /// Sessions with no turn running.
    public var sessionsIdle: Int
    /// Sessions with a turn running.
    public var sessionsBusy: Int
    /// Turns holding their session's slot (running), including turns of sessions
    /// that were just closed and whose backend is still winding down.
    public var turnsInFlight: Int
    /// Prompts waiting in a session queue, over all sessions.
    public var queuedPrompts: Int
    /// The longest session queue.
    public var maxQueueDepth: Int
    /// Turns that ran and ended (any status) since the registry started.
    public var turnsCompleted: UInt64

    public init(
        sessionsTotal: Int = 0,
        sessionsIdle: Int = 0,
        sessionsBusy: Int = 0,
        turnsInFlight: Int = 0,
        queuedPrompts: Int = 0,
        maxQueueDepth: Int = 0,
        turnsCompleted: UInt64 = 0
    ) {
        self.sessionsTotal = sessionsTotal
        self.sessionsIdle = sessionsIdle
        self.sessionsBusy = sessionsBusy
        self.turnsInFlight = turnsInFlight
        self.queuedPrompts = queuedPrompts
        self.maxQueueDepth = maxQueueDepth
        self.turnsCompleted = turnsCompleted
    }
}
