public struct ServerStatusRequest: Hashable, Sendable {
    public var includeSessions: Bool
    public init(includeSessions: Bool = false) { self.includeSessions = includeSessions }
}

public struct ServerStatus: Hashable, Sendable {
    public var serverVersion: String
    public var protocolVersion: UInt32
    public var uptimeMs: UInt64
    public var connections: UInt32
    public var sessionsTotal: UInt32
    public var sessionsIdle: UInt32
    public var sessionsBusy: UInt32
    public var turnsInFlight: UInt32
    public var queuedPrompts: UInt32
    public var maxQueueDepth: UInt32
    public var turnsCompleted: UInt64
    public var draining: Bool
    public var sessions: [Session]
    public var pid: UInt32
    /// Registered workers, sorted by id.
    public var workers: [WorkerInfo]
    /// Task queues with workers or waiting turns, sorted by name.
    public var workerQueues: [WorkerQueueInfo]
    /// Where sessions are kept (shown to administrators); empty = memory only.
    public var stateDirectory: String
    /// Why the session store cannot write now ("database or disk is full");
    /// empty while it writes. New sessions and prompts fail meanwhile.
    public var storeError: String
    /// When the store's first failed write happened (Unix epoch ms); 0 = none.
    public var storeErrorSinceMs: UInt64
    /// Sessions the caller may see that `sessions` leaves out so that the answer
    /// fits in the client's frame (ListSessions pages through all of them).
    public var sessionsOmitted: UInt32

    public init(
        serverVersion: String = "",
        protocolVersion: UInt32 = ProtocolVersion.current,
        uptimeMs: UInt64 = 0,
        connections: UInt32 = 0,
        sessionsTotal: UInt32 = 0,
        sessionsIdle: UInt32 = 0,
        sessionsBusy: UInt32 = 0,
        turnsInFlight: UInt32 = 0,
        queuedPrompts: UInt32 = 0,
        maxQueueDepth: UInt32 = 0,
        turnsCompleted: UInt64 = 0,
        draining: Bool = false,
        sessions: [Session] = [],
        pid: UInt32 = 0,
        workers: [WorkerInfo] = [],
        workerQueues: [WorkerQueueInfo] = [],
        stateDirectory: String = "",
        storeError: String = "",
        storeErrorSinceMs: UInt64 = 0,
        sessionsOmitted: UInt32 = 0
    ) {
        self.stateDirectory = stateDirectory
        self.storeError = storeError
        self.storeErrorSinceMs = storeErrorSinceMs
        self.sessionsOmitted = sessionsOmitted
        self.serverVersion = serverVersion
        self.protocolVersion = protocolVersion
        self.uptimeMs = uptimeMs
        self.connections = connections
        self.sessionsTotal = sessionsTotal
        self.sessionsIdle = sessionsIdle
        self.sessionsBusy = sessionsBusy
        self.turnsInFlight = turnsInFlight
        self.queuedPrompts = queuedPrompts
        self.maxQueueDepth = maxQueueDepth
        self.turnsCompleted = turnsCompleted
        self.draining = draining
        self.sessions = sessions
        self.pid = pid
        self.workers = workers
        self.workerQueues = workerQueues
    }
}

/// `/switchboard.v1.Sessions/ListTurns`: a session's kept turns, oldest first.
public struct ListTurnsRequest: Hashable, Sendable {
    public var sessionID: String
    /// 0 = 20; the server caps it at 100. A page also ends before the turn that
    /// would take the response past the client's frame size (at least one turn;
    /// see ``TurnHistoryEntry/outputOmitted``).
    public var pageSize: UInt32
    /// `nextPageToken` of the previous page; empty = from the oldest kept turn.
    public var pageToken: String
    /// Include each turn's whole prompt and kept output.
    public var includeOutput: Bool

    public init(sessionID: String, pageSize: UInt32 = 0, pageToken: String = "", includeOutput: Bool = false) {
        self.sessionID = sessionID
        self.pageSize = pageSize
        self.pageToken = pageToken
        self.includeOutput = includeOutput
    }
}

/// One kept turn of a session's history.
public struct TurnHistoryEntry: Hashable, Sendable {
    public var summary: TurnSummary
    /// The whole prompt (with `includeOutput` only).
    public var prompt: String
    /// The turn's output, chunks concatenated (with `includeOutput` only).
    public var output: [UInt8]
    /// Retention dropped this turn's output.
    public var outputDropped: Bool
    /// The turn did not fit in one ListTurns response (the client's frame size):
    /// its output was left out, and its prompt too when the prompt alone does not
    /// fit. Attach streams the output in chunks.
    public var outputOmitted: Bool

    public init(
        summary: TurnSummary,
        prompt: String = "",
        output: [UInt8] = [],
        outputDropped: Bool = false,
        outputOmitted: Bool = false
    ) {
        self.summary = summary
        self.prompt = prompt
        self.output = output
        self.outputDropped = outputDropped
        self.outputOmitted = outputOmitted
    }
}

public struct ListTurnsResponse: Hashable, Sendable {
    public var turns: [TurnHistoryEntry]
    /// Empty when this is the last page.
    public var nextPageToken: String

    public init(turns: [TurnHistoryEntry], nextPageToken: String = "") {
        self.turns = turns
        self.nextPageToken = nextPageToken
    }
}

public struct SessionStatusRequest: Hashable, Sendable {
    public var sessionID: String
    public init(sessionID: String) { self.sessionID = sessionID }
}

public enum TurnState: UInt32, Hashable, Sendable, CustomStringConvertible {
    case unspecified = 0
    case queued = 1
    case running = 2
    case finished = 3

    public var description: String {
        switch self {
        case .unspecified: "unspecified"
        case .queued: "queued"
        case .running: "running"
        case .finished: "finished"
        }
    }
}

public struct TurnSummary: Hashable, Sendable {
    public var turnID: String
    public var state: TurnState
    /// Final status (valid when finished).
    public var code: StatusCode
    public var message: String
    public var stopReason: String
    public var chunks: UInt64
    public var bytes: UInt64
    public var startedAtMs: UInt64
    public var endedAtMs: UInt64
    /// First bytes of the prompt (at most 200).
    public var promptPreview: String
    public var acceptedAtMs: UInt64

    public init(
        turnID: String,
        state: TurnState,
        code: StatusCode = .ok,
        message: String = "",
        stopReason: String = "",
        chunks: UInt64 = 0,
        bytes: UInt64 = 0,
        startedAtMs: UInt64 = 0,
        endedAtMs: UInt64 = 0,
        promptPreview: String = "",
        acceptedAtMs: UInt64 = 0
    ) {
        self.acceptedAtMs = acceptedAtMs
        self.turnID = turnID
        self.state = state
        self.code = code
        self.message = message
        self.stopReason = stopReason
        self.chunks = chunks
        self.bytes = bytes
        self.startedAtMs = startedAtMs
        self.endedAtMs = endedAtMs
        self.promptPreview = promptPreview
    }
}

public struct SessionStatus: Hashable, Sendable {
    public var session: Session?
    /// Running, queued, then the most recent finished turns.
    public var turns: [TurnSummary]
    public init(session: Session?, turns: [TurnSummary]) {
        self.session = session
        self.turns = turns
    }
}

public enum ServingStatus: UInt32, Hashable, Sendable {
    case unknown = 0
    case serving = 1
    case notServing = 2
}

public struct HealthCheckRequest: Hashable, Sendable {
    public var service: String
    public init(service: String = "") { self.service = service }
}

public struct HealthCheckResponse: Hashable, Sendable {
    public var status: ServingStatus
    /// Why NOT_SERVING ("draining", "session store cannot write: …"); empty when SERVING.
    public var reason: String
    public init(status: ServingStatus, reason: String = "") {
        self.status = status
        self.reason = reason
    }
}
