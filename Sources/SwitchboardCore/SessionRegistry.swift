import Logging
import Synchronization
import SwitchboardProtocol

/// All live sessions, by id.
///
/// The map lock is held only to look up, insert or remove an entry, or to copy a
/// snapshot of the entries: never across a turn, an `await` or a backend call. Every
/// operation except running a turn is synchronous and fast, so the server may call
/// them directly on an event loop.
public final class SessionRegistry: Sendable {
    /// The defaults and limits this registry applies (announced in the handshake).
    public let configuration: CoreConfiguration
    private let backends: BackendRegistry
    private let logger: Logger
    private let counters = RegistryCounters()
    private let entries = Mutex<[String: ManagedSession]>([:])
    /// Registered workers by task queue (the `worker:QUEUE` backends).
    public let workers = WorkerPools()

    public init(configuration: CoreConfiguration, backends: BackendRegistry, logger: Logger) {
        self.configuration = configuration
        self.backends = backends
        self.logger = logger
    }

    // MARK: Sessions

    /// Creates a session. INVALID_ARGUMENT for a malformed id or an unknown backend,
    /// ALREADY_EXISTS for a taken id, RESOURCE_EXHAUSTED at `maxSessions`.
    public func createSession(_ request: CreateSessionRequest, ownerUID: UInt32) throws(SwitchboardError) -> Session {
        let requestedID = request.sessionID
        if !requestedID.isEmpty, !IDGenerator.isValidClientSessionID(requestedID) {
            throw SwitchboardError(
                code: .invalidArgument,
                message: "invalid session id \"\(requestedID.prefix(140))\": must match [A-Za-z0-9._-]{1,128}"
            )
        }
        if request.labels.contains(where: { $0.key.isEmpty }) {
            throw SwitchboardError(code: .invalidArgument, message: "label keys must not be empty")
        }
        let settings = effectiveSettings(request.settings)
        let backend: any Backend = settings.backend.hasPrefix("worker:")
            ? try workers.backend(for: settings)
            : try backends.backend(named: settings.backend)
        let session = try entries.withLockAnnotated { map throws(SwitchboardError) -> ManagedSession in
            if map.count >= configuration.maxSessions {
                throw SwitchboardError(
                    code: .resourceExhausted,
                    message: "too many sessions (limit \(configuration.maxSessions))"
                )
            }
            var id = requestedID
            if id.isEmpty {
                repeat { id = IDGenerator.sessionID() } while map[id] != nil
            } else if map[id] != nil {
                throw SwitchboardError(code: .alreadyExists, message: "session \"\(id)\" already exists")
            }
            let session = makeSession(id: id, labels: request.labels, settings: settings, ownerUID: ownerUID, backend: backend)
            map[id] = session
            counters.sessions.wrappingAdd(1, ordering: .relaxed)
            counters.idleSessions.wrappingAdd(1, ordering: .relaxed)
            return session
        }
        session.logger.debug("session created", metadata: ["backend": "\(settings.backend)"])
        return session.snapshot()
    }

    public func getSession(id: String) throws(SwitchboardError) -> Session {
        try lookup(id).snapshot()
    }

    /// Sessions sorted by id, filtered by labels (all must match), paged: the page
    /// token is the last id of the previous page.
    public func listSessions(_ request: ListSessionsRequest) throws(SwitchboardError) -> ListSessionsResponse {
        let pageSize = request.pageSize == 0 ? 100 : Int(min(request.pageSize, 1000))
        let token = request.pageToken
        let selector = request.labelSelector
        let all = entries.withLockAnnotated { Array($0.values) }
        var matching = all.filter { session in
            (token.isEmpty || session.id > token)
                && selector.allSatisfy { wanted in session.labels.contains(wanted) }
        }
        matching.sort { $0.id < $1.id }
        let page = matching.prefix(pageSize)
        let nextPageToken = matching.count > pageSize ? (page.last?.id ?? "") : ""
        return ListSessionsResponse(sessions: page.map { $0.snapshot() }, nextPageToken: nextPageToken)
    }

    /// Closes a session: fails its queued prompts (CANCELLED "session closed: …"),
    /// cancels its running turn without waiting for it, and removes it.
    public func closeSession(id: String, reason: String) throws(SwitchboardError) -> CloseSessionResponse {
        let session = try lookup(id)
        let response = try session.close(reason: reason.isEmpty ? "closed by request" : reason)
        removeEntry(id: id, ifSameAs: session)
        return response
    }

    /// The session plus its turns: running, queued, then the most recent finished
    /// (newest first).
    public func sessionStatus(id: String) throws(SwitchboardError) -> SessionStatus {
        try lookup(id).status()
    }

    /// Counters maintained on every transition: O(1) in the number of sessions.
    public func statistics() -> RegistryStatistics {
        counters.snapshot()
    }

    /// Every session, sorted by id.
    public func sessionSnapshots() -> [Session] {
        entries.withLockAnnotated { Array($0.values) }
            .sorted { $0.id < $1.id }
            .map { $0.snapshot() }
    }

    // MARK: Turns

    /// Validates and enqueues (synchronous, event-loop safe). Throws NOT_FOUND,
    /// FAILED_PRECONDITION (busy with `.reject`, or closed), RESOURCE_EXHAUSTED
    /// (queue full). `deadline` is the call's deadline: it bounds the wait in the
    /// queue and the turn (together with the session's turn deadline).
    public func submitPrompt(
        _ request: PromptRequest,
        deadline: ContinuousClock.Instant?
    ) throws(SwitchboardError) -> PendingTurn {
        try lookup(request.sessionID).submit(request, deadline: deadline)
    }

    /// Shutdown: cancel every running turn and fail every queued prompt.
    public func cancelAllTurns(reason: String) {
        for session in entries.withLockAnnotated({ Array($0.values) }) {
            session.cancelAllTurns(reason: reason)
        }
    }

    // MARK: Idle cleanup

    /// One idle-cleanup sweep; returns the ids removed.
    public func removeIdleSessions() -> [String] {
        removeIdleSessions(nowMs: EpochClock.nowMs())
    }

    /// A sweep as of `nowMs` (Unix epoch ms): snapshot, skip busy or queued sessions
    /// (atomics only), close each candidate under its own lock with a recheck, and
    /// remove it only if the map still holds that same object.
    package func removeIdleSessions(nowMs: UInt64) -> [String] {
        let snapshot = entries.withLockAnnotated { Array($0.values) }
        var removed: [String] = []
        for session in snapshot where session.looksIdleExpired(nowMs: nowMs) {
            if removeIfIdle(session, nowMs: nowMs) { removed.append(session.id) }
        }
        return removed.sorted()
    }

    /// The per-candidate step of idle cleanup.
    package func removeIfIdle(_ session: ManagedSession, nowMs: UInt64) -> Bool {
        guard session.closeIfIdle(nowMs: nowMs) else { return false }
        return removeEntry(id: session.id, ifSameAs: session)
    }

    // MARK: Entries

    package func managedSession(id: String) -> ManagedSession? {
        entries.withLockAnnotated { $0[id] }
    }

    /// Puts a fresh session under `id` in place of the current one (which is left
    /// open), as a concurrent close-and-recreate would. A test seam for the
    /// identity-guarded removal.
    package func replaceSession(id: String) throws(SwitchboardError) {
        let old = try lookup(id)
        let replacement = makeSession(
            id: id,
            labels: old.labels,
            settings: old.settings,
            ownerUID: old.ownerUID,
            backend: old.backend
        )
        entries.withLockAnnotated { map in
            map[id] = replacement
            counters.idleSessions.wrappingAdd(1, ordering: .relaxed)
        }
    }

    /// Removes `id` only if the map still holds `session` (`===`), so a session that
    /// replaced it in the meantime is never clobbered.
    @discardableResult
    package func removeEntry(id: String, ifSameAs session: ManagedSession) -> Bool {
        let removed = entries.withLockAnnotated { map in
            guard map[id] === session else { return false }
            map[id] = nil
            counters.sessions.wrappingSubtract(1, ordering: .relaxed)
            return true
        }
        if removed { session.logger.debug("session removed") }
        return removed
    }

    private func lookup(_ id: String) throws(SwitchboardError) -> ManagedSession {
        guard let session = entries.withLockAnnotated({ $0[id] }) else {
            throw SwitchboardError(code: .notFound, message: "session \"\(id.prefix(140))\" not found")
        }
        return session
    }

    private func makeSession(
        id: String,
        labels: [Label],
        settings: SessionSettings,
        ownerUID: UInt32,
        backend: any Backend
    ) -> ManagedSession {
        ManagedSession(
            id: id,
            labels: labels,
            settings: settings,
            ownerUID: ownerUID,
            backend: backend,
            historyLimit: configuration.finishedTurnsKept,
            counters: counters,
            logger: logger
        )
    }

    /// Fills in server defaults; a session's queue bound is capped by the server's.
    private func effectiveSettings(_ requested: SessionSettings) -> SessionSettings {
        func ms(_ duration: Duration) -> UInt64 { UInt64(max(0, duration.milliseconds)) }
        let serverQueue = UInt32(clamping: max(0, configuration.maxQueuedPrompts))
        return SessionSettings(
            backend: requested.backend.isEmpty ? configuration.defaultBackend : requested.backend,
            idleTimeoutMs: requested.idleTimeoutMs == 0 ? ms(configuration.idleTimeout) : requested.idleTimeoutMs,
            turnDeadlineMs: requested.turnDeadlineMs == 0 ? ms(configuration.turnDeadline) : requested.turnDeadlineMs,
            stallTimeoutMs: requested.stallTimeoutMs == 0 ? ms(configuration.stallTimeout) : requested.stallTimeoutMs,
            maxQueuedPrompts: requested.maxQueuedPrompts == 0 ? serverQueue : min(requested.maxQueuedPrompts, serverQueue),
            whenNoWorker: requested.whenNoWorker
        )
    }
}
