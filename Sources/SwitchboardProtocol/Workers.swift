/// What a `worker:QUEUE` turn does when no worker of its queue has free capacity.
public enum NoWorkerPolicy: UInt32, Hashable, Sendable, CustomStringConvertible {
    /// Wait for a worker, bounded by the turn's deadline (the protocol default).
    case wait = 0
    /// Fail the turn at once with UNAVAILABLE.
    case fail = 1

    public var description: String {
        switch self {
        case .wait: "wait"
        case .fail: "fail"
        }
    }
}

/// A worker's first message on `/switchboard.v1.Workers/Connect`.
public struct WorkerRegister: Hashable, Sendable {
    public var taskQueue: String
    /// Most turns the worker runs at once; at least 1.
    public var capacity: UInt32
    public var labels: [Label]
    public var displayName: String

    public init(taskQueue: String, capacity: UInt32, labels: [Label] = [], displayName: String = "") {
        self.taskQueue = taskQueue
        self.capacity = capacity
        self.labels = labels
        self.displayName = displayName
    }
}

/// The server's answer to ``WorkerRegister``.
public struct WorkerRegistered: Hashable, Sendable {
    public var workerID: String
    public var heartbeatIntervalMs: UInt64
    public var heartbeatTimeoutMs: UInt64

    public init(workerID: String, heartbeatIntervalMs: UInt64, heartbeatTimeoutMs: UInt64) {
        self.workerID = workerID
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.heartbeatTimeoutMs = heartbeatTimeoutMs
    }
}

/// One turn handed to a worker.
public struct TurnAssignment: Hashable, Sendable {
    public var turnID: String
    public var sessionID: String
    public var sessionLabels: [Label]
    public var prompt: String
    /// Milliseconds from when it was sent until the server ends the turn.
    public var deadlineMs: UInt64

    public init(turnID: String, sessionID: String, sessionLabels: [Label] = [], prompt: String, deadlineMs: UInt64) {
        self.turnID = turnID
        self.sessionID = sessionID
        self.sessionLabels = sessionLabels
        self.prompt = prompt
        self.deadlineMs = deadlineMs
    }
}

/// Worker -> server messages of a worker call.
public enum WorkerMessage: Hashable, Sendable {
    case register(WorkerRegister)
    case output(turnID: String, data: [UInt8])
    case finished(turnID: String, stopReason: String)
    case failed(turnID: String, code: StatusCode, message: String)
    case heartbeatAck(nonce: UInt64)
}

/// Server -> worker messages of a worker call.
public enum WorkerCommand: Hashable, Sendable {
    case registered(WorkerRegistered)
    case assignment(TurnAssignment)
    case cancellation(turnID: String, reason: String)
    case heartbeat(nonce: UInt64)
}

/// One registered worker, as status shows it.
public struct WorkerInfo: Hashable, Sendable {
    public var workerID: String
    public var taskQueue: String
    public var displayName: String
    public var labels: [Label]
    public var capacity: UInt32
    public var inFlight: UInt32
    public var turnsServed: UInt64
    /// Unix epoch milliseconds.
    public var connectedAtMs: UInt64

    public init(
        workerID: String,
        taskQueue: String,
        displayName: String = "",
        labels: [Label] = [],
        capacity: UInt32,
        inFlight: UInt32 = 0,
        turnsServed: UInt64 = 0,
        connectedAtMs: UInt64 = 0
    ) {
        self.workerID = workerID
        self.taskQueue = taskQueue
        self.displayName = displayName
        self.labels = labels
        self.capacity = capacity
        self.inFlight = inFlight
        self.turnsServed = turnsServed
        self.connectedAtMs = connectedAtMs
    }
}

/// One task queue, as status shows it.
public struct WorkerQueueInfo: Hashable, Sendable {
    public var taskQueue: String
    public var workers: UInt32
    /// Turns waiting for a worker with free capacity.
    public var waitingTurns: UInt32

    public init(taskQueue: String, workers: UInt32, waitingTurns: UInt32) {
        self.taskQueue = taskQueue
        self.workers = workers
        self.waitingTurns = waitingTurns
    }
}
