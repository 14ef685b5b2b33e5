import Synchronization
import SwitchboardProtocol

/// The server side of one connected worker's call: how the pool talks to it.
///
/// `send` must not block or suspend (the pool calls it right after a short
/// critical section, possibly on an event loop): the transport queues the command.
public protocol WorkerLink: Sendable {
    func send(_ command: WorkerCommand)

    /// Most output bytes of one turn that may wait for the prompting client
    /// before the link is asked to stop reading from the worker.
    var outputBacklogLimit: Int { get }

    /// Flow control (the worker protocol has none per turn): `turnID`'s output
    /// backlog went over ``outputBacklogLimit`` (`paused` true: stop reading from
    /// the worker) or drained below half of it / the turn ended (false: resume).
    /// Called right after the backlog changed, never under a pool lock; must not
    /// block or suspend. Calls for one turn alternate, starting with true.
    func outputBacklog(turnID: String, paused: Bool)
}

extension WorkerLink {
    public var outputBacklogLimit: Int { Int.max }
    public func outputBacklog(turnID: String, paused: Bool) {}
}

/// Every task queue's worker pool, by queue name, and the worker ids.
///
/// The directory lock is held only to find or create a pool; each pool has its own
/// lock. Nothing here waits on a turn.
public final class WorkerPools: Sendable {
    private let pools = Mutex<[String: WorkerPool]>([:])
    private let nextWorkerNumber = Atomic<UInt64>(1)

    public init() {}

    /// The pool of `queue`, created on first use (a session may name a queue
    /// before any worker registered for it).
    public func pool(named queue: String) -> WorkerPool {
        pools.withLockAnnotated { pools in
            if let pool = pools[queue] { return pool }
            let pool = WorkerPool(queue: queue)
            pools[queue] = pool
            return pool
        }
    }

    /// Registers a worker. INVALID_ARGUMENT for capacity 0 or a malformed queue name.
    /// `beforeJoining` runs with the new worker's id before the worker can get any
    /// assignment (the server answers `registered` there, so it goes out first).
    public func register(
        _ request: WorkerRegister,
        link: any WorkerLink,
        beforeJoining: (String) -> Void = { _ in }
    ) throws(SwitchboardError) -> RegisteredWorker {
        guard request.capacity >= 1 else {
            throw SwitchboardError(code: .invalidArgument, message: "worker capacity must be at least 1, got \(request.capacity)")
        }
        try Self.validateQueueName(request.taskQueue)
        try LabelRules.validate(request.labels, field: "register.labels")
        let number = nextWorkerNumber.wrappingAdd(1, ordering: .relaxed).oldValue
        let id = "w-\(number)"
        let pool = pool(named: request.taskQueue)
        beforeJoining(id)
        pool.add(WorkerPool.Member(
            id: id,
            register: request,
            link: link,
            connectedAtMs: EpochClock.nowMs()
        ))
        return RegisteredWorker(id: id, pool: pool)
    }

    /// A backend for a session created with `worker:QUEUE`.
    public func backend(for settings: SessionSettings) throws(SwitchboardError) -> WorkerBackend {
        let queue = String(settings.backend.dropFirst("worker:".count))
        try Self.validateQueueName(queue)
        return WorkerBackend(pool: pool(named: queue), whenNoWorker: settings.whenNoWorker)
    }

    /// Workers sorted by id, and queues that have workers or waiting turns.
    public func snapshot() -> (workers: [WorkerInfo], queues: [WorkerQueueInfo]) {
        let all = pools.withLockAnnotated { Array($0.values) }
        var workers: [WorkerInfo] = []
        var queues: [WorkerQueueInfo] = []
        for pool in all {
            let (members, waiting) = pool.snapshot()
            workers += members
            if !members.isEmpty || waiting > 0 {
                queues.append(WorkerQueueInfo(
                    taskQueue: pool.queue,
                    workers: UInt32(clamping: members.count),
                    waitingTurns: UInt32(clamping: waiting)
                ))
            }
        }
        workers.sort { ($0.workerID.count, $0.workerID) < ($1.workerID.count, $1.workerID) }
        queues.sort { $0.taskQueue < $1.taskQueue }
        return (workers, queues)
    }

    /// INVALID_ARGUMENT unless `queue` is a usable task queue name (`serve` checks its
    /// `--backend worker:QUEUE` with it before starting).
    public static func validateQueueName(_ queue: String) throws(SwitchboardError) {
        guard IDGenerator.isValidClientSessionID(queue) else {
            throw SwitchboardError(
                code: .invalidArgument,
                message: "invalid task queue name \"\(queue.prefix(140))\": must match [A-Za-z0-9._-]{1,128}"
            )
        }
    }
}

/// A worker's membership in its pool, held by its call. Messages the worker sends
/// go through here; ``deregister(reason:)`` removes it (idempotent).
public struct RegisteredWorker: Sendable {
    public let id: String
    public let pool: WorkerPool

    /// Output for one of this worker's turns. INVALID_ARGUMENT when the turn is not
    /// assigned to it (a turn the server already ended is silently ignored).
    public func output(turnID: String, data: [UInt8]) throws(SwitchboardError) {
        try pool.output(workerID: id, turnID: turnID, data: data)
    }

    public func finish(turnID: String, stopReason: String) throws(SwitchboardError) {
        try pool.end(workerID: id, turnID: turnID, result: .finished(stopReason))
    }

    public func fail(turnID: String, code: StatusCode, message: String) throws(SwitchboardError) {
        let code = code == .ok ? StatusCode.unknown : code
        try pool.end(workerID: id, turnID: turnID, result: .failed(SwitchboardError(code: code, message: message)))
    }

    /// Removes the worker; each of its in-flight turns ends UNAVAILABLE.
    public func deregister(reason: String) {
        pool.remove(workerID: id, reason: reason)
    }
}

/// The workers of one task queue and the turns waiting for one.
///
/// One `Mutex` guards the members, their in-flight turns and the waiting FIFO; it is
/// held only for bookkeeping. Commands to workers and events to turns are sent
/// after unlocking.
public final class WorkerPool: Sendable {
    public let queue: String
    private let state = Mutex(State())
    private let maxTurnBacklog = Atomic<Int>(0)

    /// Turn ids a worker may still mention after the server ended the turn
    /// (cancelled, deadline): remembered per worker, the most recent ones.
    static let endedTurnsRemembered = 256

    struct Member {
        let id: String
        let register: WorkerRegister
        let link: any WorkerLink
        let connectedAtMs: UInt64
        var inFlight: [String: WorkerTurn] = [:]
        var turnsServed: UInt64 = 0
        var endedByServer: [String] = []

        init(id: String, register: WorkerRegister, link: any WorkerLink, connectedAtMs: UInt64) {
            self.id = id
            self.register = register
            self.link = link
            self.connectedAtMs = connectedAtMs
        }

        var hasRoom: Bool { inFlight.count < Int(register.capacity) }
    }

    struct State {
        var members: [String: Member] = [:]
        var waiting: [WorkerTurn] = []
        /// Session id -> the worker that served its last turn.
        var affinity: [String: String] = [:]
    }

    /// Work collected under the lock, done after it.
    private struct Effects {
        var commands: [(any WorkerLink, WorkerCommand)] = []
        var events: [(WorkerTurn, WorkerTurn.Event)] = []

        func perform() {
            for (turn, event) in events { turn.deliver(event) }
            for (link, command) in commands { link.send(command) }
        }
    }

    init(queue: String) {
        self.queue = queue
    }

    /// Picks a worker for a turn of `sessionID`: the one that served the session
    /// last if it is live with free capacity, else the least loaded with free
    /// capacity (fewest in flight, then most free slots, then oldest id). nil when
    /// every worker is full or there is none.
    static func choose(sessionID: String, members: [String: Member], preferred: String?) -> String? {
        if let preferred, let member = members[preferred], member.hasRoom { return preferred }
        var best: Member?
        for member in members.values where member.hasRoom {
            guard let current = best else {
                best = member
                continue
            }
            let free = Int(member.register.capacity) - member.inFlight.count
            let currentFree = Int(current.register.capacity) - current.inFlight.count
            if (member.inFlight.count, -free, member.connectedAtMs, member.id)
                < (current.inFlight.count, -currentFree, current.connectedAtMs, current.id) {
                best = member
            }
        }
        return best?.id
    }

    // MARK: Turns

    enum Submission {
        case assigned(workerID: String)
        case waiting
    }

    /// Assigns `turn` to a worker now, or queues it (`.wait`), or throws
    /// UNAVAILABLE (`.fail`) when no worker has free capacity.
    func submit(_ turn: WorkerTurn, whenNoWorker: NoWorkerPolicy) throws(SwitchboardError) -> Submission {
        let queue = self.queue
        let (submission, effects) = try state.withLockAnnotated { state throws(SwitchboardError) -> (Submission, Effects) in
            var effects = Effects()
            let preferred = state.affinity[turn.request.sessionID]
            if state.waiting.isEmpty,
               let workerID = Self.choose(sessionID: turn.request.sessionID, members: state.members, preferred: preferred) {
                Self.assign(turn, to: workerID, in: &state, effects: &effects)
                return (.assigned(workerID: workerID), effects)
            }
            switch whenNoWorker {
            case .fail:
                let reason = state.members.isEmpty ? "no worker is registered" : "every worker is at capacity"
                throw SwitchboardError(code: .unavailable, message: "task queue \"\(queue)\": \(reason)")
            case .wait:
                state.waiting.append(turn)
                return (.waiting, effects)
            }
        }
        effects.perform()
        return submission
    }

    private static func assign(_ turn: WorkerTurn, to workerID: String, in state: inout State, effects: inout Effects) {
        guard var member = state.members[workerID] else { return }
        member.inFlight[turn.request.turnID] = turn
        state.members[workerID] = member
        state.affinity[turn.request.sessionID] = workerID
        let remaining = ContinuousClock.now.duration(to: turn.request.deadline)
        let deadlineMs = UInt64(max(0, remaining.milliseconds))
        effects.events.append((turn, .assigned(workerID: workerID)))
        effects.commands.append((member.link, .assignment(TurnAssignment(
            turnID: turn.request.turnID,
            sessionID: turn.request.sessionID,
            sessionLabels: turn.request.labels,
            prompt: turn.request.prompt,
            deadlineMs: deadlineMs
        ))))
    }

    /// Hands waiting turns (FIFO) to workers with free capacity.
    private static func dispatchWaiting(_ state: inout State, effects: inout Effects) {
        while let turn = state.waiting.first {
            guard let workerID = choose(
                sessionID: turn.request.sessionID,
                members: state.members,
                preferred: state.affinity[turn.request.sessionID]
            ) else { return }
            state.waiting.removeFirst()
            assign(turn, to: workerID, in: &state, effects: &effects)
        }
    }

    /// The core ended the turn (cancelled, closed, deadline, stall): stop waiting
    /// for it, or tell its worker and free the slot at once.
    func withdraw(_ turn: WorkerTurn, reason: String) {
        let turnID = turn.request.turnID
        let effects = state.withLockAnnotated { state -> Effects in
            var effects = Effects()
            if let index = state.waiting.firstIndex(where: { $0 === turn }) {
                state.waiting.remove(at: index)
                return effects
            }
            for (id, var member) in state.members where member.inFlight[turnID] === turn {
                member.inFlight[turnID] = nil
                member.endedByServer.append(turnID)
                if member.endedByServer.count > Self.endedTurnsRemembered { member.endedByServer.removeFirst() }
                effects.commands.append((member.link, .cancellation(turnID: turnID, reason: reason)))
                state.members[id] = member
                Self.dispatchWaiting(&state, effects: &effects)
                break
            }
            return effects
        }
        effects.perform()
    }

    // MARK: Members

    func add(_ member: Member) {
        let effects = state.withLockAnnotated { state -> Effects in
            var effects = Effects()
            state.members[member.id] = member
            Self.dispatchWaiting(&state, effects: &effects)
            return effects
        }
        effects.perform()
    }

    func remove(workerID: String, reason: String) {
        let queue = self.queue
        let effects = state.withLockAnnotated { state -> Effects in
            var effects = Effects()
            guard let member = state.members.removeValue(forKey: workerID) else { return effects }
            let error = SwitchboardError(
                code: .unavailable,
                message: "worker \(workerID) of task queue \"\(queue)\" went away: \(reason)"
            )
            for turn in member.inFlight.values {
                effects.events.append((turn, .failed(error)))
            }
            state.affinity = state.affinity.filter { $0.value != workerID }
            return effects
        }
        effects.perform()
    }

    func output(workerID: String, turnID: String, data: [UInt8]) throws(SwitchboardError) {
        let found = try state.withLockAnnotated { state throws(SwitchboardError) -> (WorkerTurn, any WorkerLink)? in
            guard let turn = try Self.ownedTurn(state, workerID: workerID, turnID: turnID),
                  let link = state.members[workerID]?.link else { return nil }
            return (turn, link)
        }
        guard let (turn, link) = found else { return }
        let backlog = turn.deliverOutput(data, link: link)
        var current = maxTurnBacklog.load(ordering: .relaxed)
        while backlog > current {
            let (exchanged, original) = maxTurnBacklog.compareExchange(expected: current, desired: backlog, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
    }

    /// Test hook: the most output bytes any turn of this queue has had waiting
    /// for its prompting client (bounded by the link's limit plus what the
    /// transport had already read when it paused).
    package var maxTurnBacklogBytes: Int { maxTurnBacklog.load(ordering: .relaxed) }

    enum Result {
        case finished(String)
        case failed(SwitchboardError)
    }

    func end(workerID: String, turnID: String, result: Result) throws(SwitchboardError) {
        let effects = try state.withLockAnnotated { state throws(SwitchboardError) -> Effects in
            var effects = Effects()
            guard let turn = try Self.ownedTurn(state, workerID: workerID, turnID: turnID),
                  var member = state.members[workerID] else { return effects }
            member.inFlight[turnID] = nil
            member.turnsServed += 1
            state.members[workerID] = member
            switch result {
            case .finished(let reason): effects.events.append((turn, .finished(reason)))
            case .failed(let error): effects.events.append((turn, .failed(error)))
            }
            Self.dispatchWaiting(&state, effects: &effects)
            return effects
        }
        effects.perform()
    }

    /// The turn if `workerID` runs it; nil if the server already ended it; throws
    /// INVALID_ARGUMENT if the worker never had it.
    private static func ownedTurn(_ state: State, workerID: String, turnID: String) throws(SwitchboardError) -> WorkerTurn? {
        guard let member = state.members[workerID] else { return nil }
        if let turn = member.inFlight[turnID] { return turn }
        if member.endedByServer.contains(turnID) { return nil }
        throw SwitchboardError(
            code: .invalidArgument,
            message: "turn \"\(turnID.prefix(140))\" is not assigned to worker \(workerID)"
        )
    }

    // MARK: Status

    func snapshot() -> (workers: [WorkerInfo], waiting: Int) {
        let queue = self.queue
        return state.withLockAnnotated { state in
            let workers = state.members.values.map { member in
                WorkerInfo(
                    workerID: member.id,
                    taskQueue: queue,
                    displayName: member.register.displayName,
                    labels: member.register.labels,
                    capacity: member.register.capacity,
                    inFlight: UInt32(clamping: member.inFlight.count),
                    turnsServed: member.turnsServed,
                    connectedAtMs: member.connectedAtMs
                )
            }
            return (workers, state.waiting.count)
        }
    }

    /// The worker that served `sessionID` last, while it is registered.
    package func affinity(of sessionID: String) -> String? {
        state.withLockAnnotated { $0.affinity[sessionID] }
    }
}

/// One turn routed to a task queue: the events its backend task consumes.
final class WorkerTurn: Sendable {
    enum Event: Sendable {
        case assigned(workerID: String)
        case output([UInt8])
        case finished(String)
        case failed(SwitchboardError)
    }

    let request: TurnRequest
    let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    /// Output bytes delivered but not yet consumed by the backend.
    private let backlog = Mutex(Backlog())

    private struct Backlog {
        var bytes = 0
        var limit = Int.max
        /// Set while the worker's link is paused because of this turn.
        var pausedLink: (any WorkerLink)?
        var released = false
    }

    init(request: TurnRequest) {
        self.request = request
        (events, continuation) = AsyncStream.makeStream(of: Event.self)
    }

    /// Queues output for the backend; asks `link` to stop reading from the worker
    /// once the backlog is over the link's limit. Returns the backlog in bytes.
    func deliverOutput(_ data: [UInt8], link: any WorkerLink) -> Int {
        let limit = link.outputBacklogLimit
        let (pause, bytes) = backlog.withLockAnnotated { backlog -> (Bool, Int) in
            guard !backlog.released else { return (false, 0) }
            backlog.bytes += data.count
            backlog.limit = limit
            guard backlog.pausedLink == nil, backlog.bytes > limit else { return (false, backlog.bytes) }
            backlog.pausedLink = link
            return (true, backlog.bytes)
        }
        if pause { link.outputBacklog(turnID: request.turnID, paused: true) }
        deliver(.output(data))
        return bytes
    }

    /// The backend consumed `count` output bytes: resumes the worker once the
    /// backlog is at most half the limit.
    func consumed(_ count: Int) {
        let link = backlog.withLockAnnotated { backlog -> (any WorkerLink)? in
            backlog.bytes = max(0, backlog.bytes - count)
            guard let link = backlog.pausedLink, backlog.bytes <= backlog.limit / 2 else { return nil }
            backlog.pausedLink = nil
            return link
        }
        link?.outputBacklog(turnID: request.turnID, paused: false)
    }

    /// The backend stopped consuming (the turn is over): what is left is dropped
    /// and a paused worker resumes. Idempotent.
    func releaseBacklog() {
        let link = backlog.withLockAnnotated { backlog -> (any WorkerLink)? in
            backlog.released = true
            backlog.bytes = 0
            defer { backlog.pausedLink = nil }
            return backlog.pausedLink
        }
        link?.outputBacklog(turnID: request.turnID, paused: false)
    }

    func deliver(_ event: Event) {
        continuation.yield(event)
        switch event {
        case .finished, .failed: continuation.finish()
        case .assigned, .output: break
        }
    }

    /// No more events (the core ended the turn).
    func close() {
        continuation.finish()
    }
}
