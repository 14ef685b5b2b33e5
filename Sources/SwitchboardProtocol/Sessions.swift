/// A key/value label on a session.
public struct Label: Hashable, Sendable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

public enum SessionState: UInt32, Hashable, Sendable, CustomStringConvertible {
    case unspecified = 0
    /// No turn running, none queued.
    case idle = 1
    /// A turn is running.
    case busy = 2
    /// Closed: no more prompts.
    case closed = 3

    public var description: String {
        switch self {
        case .unspecified: "unspecified"
        case .idle: "idle"
        case .busy: "busy"
        case .closed: "closed"
        }
    }
}

/// Per-session settings; zero / empty means "the server default".
public struct SessionSettings: Hashable, Sendable {
    /// "echo", "exec" or "worker:QUEUE"; empty = server default.
    public var backend: String
    public var idleTimeoutMs: UInt64
    public var turnDeadlineMs: UInt64
    public var stallTimeoutMs: UInt64
    public var maxQueuedPrompts: UInt32
    /// `worker:QUEUE` backends: wait for a free worker, or fail UNAVAILABLE at once.
    public var whenNoWorker: NoWorkerPolicy
    /// History retention (0 = server default): finished turns kept, output bytes
    /// kept over all finished turns, and the age after which a turn is dropped.
    public var retainTurns: UInt32
    public var retainOutputBytes: UInt64
    public var retainAgeMs: UInt64

    public init(
        backend: String = "",
        idleTimeoutMs: UInt64 = 0,
        turnDeadlineMs: UInt64 = 0,
        stallTimeoutMs: UInt64 = 0,
        maxQueuedPrompts: UInt32 = 0,
        whenNoWorker: NoWorkerPolicy = .wait,
        retainTurns: UInt32 = 0,
        retainOutputBytes: UInt64 = 0,
        retainAgeMs: UInt64 = 0
    ) {
        self.retainTurns = retainTurns
        self.retainOutputBytes = retainOutputBytes
        self.retainAgeMs = retainAgeMs
        self.backend = backend
        self.idleTimeoutMs = idleTimeoutMs
        self.turnDeadlineMs = turnDeadlineMs
        self.stallTimeoutMs = stallTimeoutMs
        self.maxQueuedPrompts = maxQueuedPrompts
        self.whenNoWorker = whenNoWorker
    }
}

/// A snapshot of one session, as the wire carries it.
public struct Session: Hashable, Sendable {
    public var id: String
    public var labels: [Label]
    /// Effective settings (server defaults filled in).
    public var settings: SessionSettings
    public var state: SessionState
    /// Unix epoch milliseconds.
    public var createdAtMs: UInt64
    public var lastActivityMs: UInt64
    public var queuedPrompts: UInt32
    /// Empty when idle.
    public var currentTurnID: String
    public var turnsCompleted: UInt64
    public var ownerUID: UInt32
    /// The answer leaves the labels out: the session with them would not fit in
    /// the client's frame (only a session stored before labels were bounded).
    public var labelsOmitted: Bool

    public init(
        id: String,
        labels: [Label] = [],
        settings: SessionSettings = SessionSettings(),
        state: SessionState = .idle,
        createdAtMs: UInt64 = 0,
        lastActivityMs: UInt64 = 0,
        queuedPrompts: UInt32 = 0,
        currentTurnID: String = "",
        turnsCompleted: UInt64 = 0,
        ownerUID: UInt32 = 0,
        labelsOmitted: Bool = false
    ) {
        self.id = id
        self.labelsOmitted = labelsOmitted
        self.labels = labels
        self.settings = settings
        self.state = state
        self.createdAtMs = createdAtMs
        self.lastActivityMs = lastActivityMs
        self.queuedPrompts = queuedPrompts
        self.currentTurnID = currentTurnID
        self.turnsCompleted = turnsCompleted
        self.ownerUID = ownerUID
    }
}

public struct CreateSessionRequest: Hashable, Sendable {
    /// Client-chosen id (`[A-Za-z0-9._-]{1,128}`); empty = server-chosen.
    public var sessionID: String
    public var labels: [Label]
    public var settings: SessionSettings

    public init(sessionID: String = "", labels: [Label] = [], settings: SessionSettings = SessionSettings()) {
        self.sessionID = sessionID
        self.labels = labels
        self.settings = settings
    }
}

public struct GetSessionRequest: Hashable, Sendable {
    public var sessionID: String
    public init(sessionID: String) { self.sessionID = sessionID }
}

public struct ListSessionsRequest: Hashable, Sendable {
    /// Only sessions carrying all of these labels.
    public var labelSelector: [Label]
    /// 0 = server default (100); capped at 1000.
    public var pageSize: UInt32
    /// `nextPageToken` of the previous page; empty = first page.
    public var pageToken: String

    public init(labelSelector: [Label] = [], pageSize: UInt32 = 0, pageToken: String = "") {
        self.labelSelector = labelSelector
        self.pageSize = pageSize
        self.pageToken = pageToken
    }
}

public struct ListSessionsResponse: Hashable, Sendable {
    public var sessions: [Session]
    /// Empty on the last page.
    public var nextPageToken: String

    public init(sessions: [Session], nextPageToken: String = "") {
        self.sessions = sessions
        self.nextPageToken = nextPageToken
    }
}

public struct CloseSessionRequest: Hashable, Sendable {
    public var sessionID: String
    public var reason: String
    public init(sessionID: String, reason: String = "") {
        self.sessionID = sessionID
        self.reason = reason
    }
}

public struct CloseSessionResponse: Hashable, Sendable {
    public var session: Session?
    /// 1 when a running turn was cancelled by the close.
    public var cancelledTurns: UInt32
    /// Queued prompts failed by the close.
    public var rejectedPrompts: UInt32

    public init(session: Session?, cancelledTurns: UInt32, rejectedPrompts: UInt32) {
        self.session = session
        self.cancelledTurns = cancelledTurns
        self.rejectedPrompts = rejectedPrompts
    }
}
