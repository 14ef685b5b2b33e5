import Logging
import Synchronization
import SwitchboardProtocol

/// All live sessions, by id.
///
/// The map lock is held only to look up, insert or remove an entry, or to copy a
/// snapshot of the entries: never across a turn, an `await` or a backend call. Every
/// operation except running a turn, creating or closing a session (which wait for
/// the store), attaching and reading history is synchronous and fast, so the server
/// may call them directly on an event loop.
public final class SessionRegistry: Sendable {
    /// The defaults and limits this registry applies (announced in the handshake).
    public let configuration: CoreConfiguration
    let backends: BackendRegistry
    let logger: Logger
    private let counters = RegistryCounters()
    private let entries = Mutex<[String: ManagedSession]>([:])
    /// Live sessions per owner uid, for `maxSessionsPerUID` in O(1). A leaf lock,
    /// taken only inside the map lock (or alone), so the two counts move together.
    private let sessionsPerOwner = Mutex<[UInt32: Int]>([:])
    /// Registered workers by task queue (the `worker:QUEUE` backends).
    public let workers = WorkerPools()
    /// Where sessions and their turns are kept (memory, or the state directory).
    public let store: any SessionStore

    public init(
        configuration: CoreConfiguration,
        backends: BackendRegistry,
        logger: Logger,
        store: any SessionStore = InMemorySessionStore()
    ) {
        self.configuration = configuration
        self.backends = backends
        self.logger = logger
        self.store = store
    }

    // MARK: Sessions

    /// Creates a session owned by `ownerUID`. INVALID_ARGUMENT for a malformed id,
    /// labels that break ``LabelRules`` or an unknown backend, ALREADY_EXISTS for
    /// a taken id, RESOURCE_EXHAUSTED at `maxSessions`, or at `maxSessionsPerUID`
    /// for an owner that is not an administrator (`ownerIsAdmin`); UNAVAILABLE
    /// when the store cannot keep it.
    ///
    /// The session is durable when this returns: it is written to the store first,
    /// and stays invisible (its id taken) until then; on a store failure it is not
    /// kept.
    public func createSession(
        _ request: CreateSessionRequest,
        ownerUID: UInt32,
        ownerIsAdmin: Bool = false
    ) async throws(SwitchboardError) -> Session {
        let session = try insertSession(request, ownerUID: ownerUID, ownerIsAdmin: ownerIsAdmin)
        do {
            try await store.createSession(session.stored())
        } catch {
            _ = try? session.close(reason: "the store failed")
            removeEntry(id: session.id, ifSameAs: session)
            session.logger.error("session not created: the store failed: \(error)")
            throw SwitchboardError(
                code: .unavailable,
                message: "session \"\(session.id)\" could not be stored: \(Self.describe(error))",
                cause: error
            )
        }
        session.becomeVisible()
        session.logger.debug("session created", metadata: ["backend": "\(session.settings.backend)"])
        return session.snapshot()
    }

    /// The synchronous part of `createSession`: validates and takes the id with an
    /// invisible session.
    private func insertSession(
        _ request: CreateSessionRequest,
        ownerUID: UInt32,
        ownerIsAdmin: Bool
    ) throws(SwitchboardError) -> ManagedSession {
        let requestedID = request.sessionID
        if !requestedID.isEmpty, !IDGenerator.isValidClientSessionID(requestedID) {
            throw SwitchboardError(
                code: .invalidArgument,
                message: "invalid session id \"\(requestedID.prefix(140))\": must match [A-Za-z0-9._-]{1,128}"
            )
        }
        try LabelRules.validate(request.labels)
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
            } else if let existing = map[id] {
                if existing.state == .closed {
                    // Closed, its delete from the store not yet done (see closeSession).
                    throw SwitchboardError(code: .unavailable, message: "session \"\(id)\" is being closed; retry")
                }
                throw SwitchboardError(code: .alreadyExists, message: "session \"\(id)\" already exists")
            }
            try reserveOwnerSlot(ownerUID, isAdmin: ownerIsAdmin)
            let session = makeSession(
                id: id,
                labels: request.labels,
                settings: settings,
                ownerUID: ownerUID,
                backend: backend,
                visible: false
            )
            map[id] = session
            counters.sessions.wrappingAdd(1, ordering: .relaxed)
            counters.idleSessions.wrappingAdd(1, ordering: .relaxed)
            return session
        }
        return session
    }

    public func getSession(id: String, caller: Caller) throws(SwitchboardError) -> Session {
        try lookup(id, caller: caller, action: "read").snapshot()
    }

    /// Sessions sorted by id, filtered by labels (all must match), paged: the page
    /// token is the last id of the previous page. A token that cannot be a session
    /// id was never issued and is INVALID_ARGUMENT, as for `ListTurns`; one that can
    /// is a cursor (the session it names may have been closed since). A caller
    /// that is not an administrator sees only its own sessions.
    ///
    /// A page holds at most `pageSize` sessions and at most `maxBytes` of them as
    /// ``SessionListBudget`` counts (the server passes the client's frame size
    /// less room for the frame around them): it ends before the session that
    /// would pass either. A first session too large on its own comes without
    /// its labels (`labelsOmitted`), so that paging always advances.
    public func listSessions(
        _ request: ListSessionsRequest,
        caller: Caller,
        maxBytes: Int = .max
    ) throws(SwitchboardError) -> ListSessionsResponse {
        let pageSize = request.pageSize == 0 ? 100 : Int(min(request.pageSize, 1000))
        let token = request.pageToken
        guard token.isEmpty || IDGenerator.isValidClientSessionID(token) else {
            throw SwitchboardError(code: .invalidArgument, message: "invalid page token \"\(token.prefix(40))\"")
        }
        let selector = request.labelSelector
        let all = entries.withLockAnnotated { Array($0.values) }
        var matching = all.filter { session in
            session.isVisible
                && caller.mayAccess(ownerUID: session.ownerUID)
                && (token.isEmpty || session.id > token)
                && selector.allSatisfy { wanted in session.labels.contains(wanted) }
        }
        matching.sort { $0.id < $1.id }
        var budget = SessionListBudget(maxBytes: maxBytes, maxCount: pageSize, admitsFirst: true)
        var page: [Session] = []
        filling: for session in matching {
            let snapshot = session.snapshot()
            switch budget.admit(snapshot) {
            case .whole: page.append(snapshot)
            case .withoutLabels: page.append(snapshot.withoutLabels())
            case .full: break filling
            }
        }
        let nextPageToken = matching.count > page.count ? (page.last?.id ?? "") : ""
        return ListSessionsResponse(sessions: page, nextPageToken: nextPageToken)
    }

    /// Closes a session: fails its queued prompts (CANCELLED "session closed: …"),
    /// cancels its running turn without waiting for it, deletes it from the store
    /// and removes it before returning. When the store fails, the session is
    /// closed all the same but the caller gets UNAVAILABLE (it would come back at
    /// the next start).
    ///
    /// Until the delete has returned the closed session keeps its id in the map,
    /// invisible (NOT_FOUND to lookups): a create of the same id meanwhile gets
    /// UNAVAILABLE "being closed; retry" instead of racing the delete (which could
    /// otherwise delete the new session from the store, or make its create fail).
    public func closeSession(id: String, reason: String, caller: Caller) async throws(SwitchboardError) -> CloseSessionResponse {
        let session = try lookup(id, caller: caller, action: "close")
        let response = try session.close(reason: reason.isEmpty ? "closed by request" : reason)
        session.becomeInvisible()
        defer { removeEntry(id: id, ifSameAs: session) }
        do {
            try await store.deleteSession(id: id)
        } catch {
            session.logger.error("closed session not deleted: the store failed: \(error)")
            throw SwitchboardError(
                code: .unavailable,
                message: "session \"\(id)\" was closed but could not be deleted from the store: \(Self.describe(error))",
                cause: error
            )
        }
        return response
    }

    /// The session plus its turns: running, queued, then the most recent finished
    /// (newest first).
    public func sessionStatus(id: String, caller: Caller) throws(SwitchboardError) -> SessionStatus {
        try lookup(id, caller: caller, action: "read the status of").status()
    }

    /// Counters maintained on every transition: O(1) in the number of sessions.
    public func statistics() -> RegistryStatistics {
        counters.snapshot()
    }

    /// Every session the caller may see (all of them for an administrator, its own
    /// otherwise), sorted by id.
    public func sessionSnapshots(caller: Caller = .server) -> [Session] {
        visibleSessions(caller: caller).map { $0.snapshot() }
    }

    /// The sessions of a server status: those the caller may see, sorted by id,
    /// as many as fit in `maxBytes` (``SessionListBudget``; a first session too
    /// large with its labels comes without them when that fits), and how many
    /// were left out.
    public func sessionSnapshots(caller: Caller, maxBytes: Int) -> (sessions: [Session], omitted: Int) {
        let visible = visibleSessions(caller: caller)
        var budget = SessionListBudget(maxBytes: maxBytes, admitsFirst: false)
        var sessions: [Session] = []
        for session in visible {
            let snapshot = session.snapshot()
            let admission = budget.admit(snapshot)
            if admission == .full { break }
            sessions.append(admission == .whole ? snapshot : snapshot.withoutLabels())
        }
        return (sessions, visible.count - sessions.count)
    }

    private func visibleSessions(caller: Caller) -> [ManagedSession] {
        entries.withLockAnnotated { Array($0.values) }
            .filter { $0.isVisible && caller.mayAccess(ownerUID: $0.ownerUID) }
            .sorted { $0.id < $1.id }
    }

    // MARK: Turns

    /// Validates and enqueues (synchronous, event-loop safe). Throws NOT_FOUND,
    /// FAILED_PRECONDITION (busy with `.reject`, or closed), RESOURCE_EXHAUSTED
    /// (queue full), PERMISSION_DENIED (another uid's session). `deadline` is the
    /// call's deadline: it bounds the wait in the queue and the turn (together with
    /// the session's turn deadline).
    public func submitPrompt(
        _ request: PromptRequest,
        deadline: ContinuousClock.Instant?,
        caller: Caller
    ) throws(SwitchboardError) -> PendingTurn {
        let session = try lookup(request.sessionID, caller: caller, action: "prompt")
        // A turn whose record cannot be written could only end UNAVAILABLE after
        // running: refused before it runs (the store retries by itself, so a
        // later prompt succeeds once the disk takes writes again).
        if let failure = store.writeFailure {
            throw Self.storeCannotWrite(failure)
        }
        return try session.submit(request, deadline: deadline)
    }

    /// The error of a prompt refused while the store cannot write.
    static func storeCannotWrite(_ failure: StoreWriteFailure) -> SwitchboardError {
        SwitchboardError(
            code: .unavailable,
            message: "the session store cannot write to its disk (\(failure.message)): new prompts are refused until it can"
        )
    }

    /// Shutdown: cancel every running turn and fail every queued prompt.
    public func cancelAllTurns(reason: String) {
        for session in entries.withLockAnnotated({ Array($0.values) }) {
            session.cancelAllTurns(reason: reason)
        }
    }

    // MARK: Idle cleanup

    /// One idle-cleanup sweep; returns the ids closed (each leaves the map once
    /// the store has deleted it).
    public func removeIdleSessions() -> [String] {
        removeIdleSessions(nowMs: EpochClock.nowMs())
    }

    /// A sweep as of `nowMs` (Unix epoch ms): snapshot, skip sessions still being
    /// created (invisible: `createSession` would answer OK for a closed one) and
    /// busy or queued ones (atomics only), close each candidate under its own
    /// lock with a recheck, and remove it only if the map still holds that same
    /// object.
    package func removeIdleSessions(nowMs: UInt64) -> [String] {
        let snapshot = entries.withLockAnnotated { Array($0.values) }
        var removed: [String] = []
        for session in snapshot where session.isVisible && session.looksIdleExpired(nowMs: nowMs) {
            if removeIfIdle(session, nowMs: nowMs) { removed.append(session.id) }
        }
        return removed.sorted()
    }

    /// The per-candidate step of idle cleanup. The session is deleted from the
    /// store on a task of its own (the sweep does not wait for the disk), and
    /// leaves the map only when that delete has returned, as in `closeSession`.
    package func removeIfIdle(_ session: ManagedSession, nowMs: UInt64) -> Bool {
        guard session.closeIfIdle(nowMs: nowMs) else { return false }
        session.becomeInvisible()
        // Replaced in the meantime: the id is the replacement's, in the store too.
        guard managedSession(id: session.id) === session else { return false }
        let (store, id, logger) = (self.store, session.id, session.logger)
        Task {
            do {
                try await store.deleteSession(id: id)
            } catch {
                logger.error("idle session not deleted from the store: \(error)")
            }
            self.removeEntry(id: id, ifSameAs: session)
        }
        return true
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
            // The replaced session's slot passes to the replacement: same owner.
        }
    }

    /// Puts a session loaded from the store into the map (restore at start); false
    /// when the id is taken. Restored sessions are not held to the per-uid limit.
    func insertRestored(_ session: ManagedSession) -> Bool {
        entries.withLockAnnotated { map in
            guard map[session.id] == nil else { return false }
            try? reserveOwnerSlot(session.ownerUID, isAdmin: true)
            map[session.id] = session
            counters.sessions.wrappingAdd(1, ordering: .relaxed)
            counters.idleSessions.wrappingAdd(1, ordering: .relaxed)
            return true
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
            releaseOwnerSlot(session.ownerUID)
            return true
        }
        if removed { session.logger.debug("session removed") }
        return removed
    }

    /// The session under `id`; one still being created (not yet durable) is not found.
    private func lookup(_ id: String) throws(SwitchboardError) -> ManagedSession {
        guard let session = entries.withLockAnnotated({ $0[id] }), session.isVisible else {
            throw SwitchboardError(code: .notFound, message: "session \"\(id.prefix(140))\" not found")
        }
        return session
    }

    /// A session the caller may act on: NOT_FOUND when there is none, PERMISSION_DENIED
    /// when it belongs to another uid and the caller is not an administrator.
    /// (Existence is not hidden: ids are random or chosen by their owner, and the
    /// refusal names the owner so that an operator can tell who to ask.)
    package func lookup(_ id: String, caller: Caller, action: String) throws(SwitchboardError) -> ManagedSession {
        let session = try lookup(id)
        guard caller.mayAccess(ownerUID: session.ownerUID) else {
            throw SwitchboardError(
                code: .permissionDenied,
                message: "session \"\(id.prefix(140))\" belongs to uid \(session.ownerUID); uid \(caller.uid) may not \(action) it"
            )
        }
        return session
    }

    /// Counts a new session against its owner (called under the map lock, so the
    /// check and the insert are one step). Administrators are bounded only by
    /// `maxSessions`.
    private func reserveOwnerSlot(_ ownerUID: UInt32, isAdmin: Bool) throws(SwitchboardError) {
        let limit = configuration.maxSessionsPerUID
        try sessionsPerOwner.withLockAnnotated { counts throws(SwitchboardError) in
            let current = counts[ownerUID, default: 0]
            if !isAdmin, limit > 0, current >= limit {
                throw SwitchboardError(
                    code: .resourceExhausted,
                    message: "too many sessions for uid \(ownerUID) (limit \(limit))"
                )
            }
            counts[ownerUID] = current + 1
        }
    }

    private func releaseOwnerSlot(_ ownerUID: UInt32) {
        sessionsPerOwner.withLockAnnotated { counts in
            let remaining = counts[ownerUID, default: 0] - 1
            counts[ownerUID] = remaining > 0 ? remaining : nil
        }
    }

    func makeSession(
        id: String,
        labels: [Label],
        settings: SessionSettings,
        ownerUID: UInt32,
        backend: any Backend,
        visible: Bool = true,
        restored: ManagedSession.RestoredState? = nil
    ) -> ManagedSession {
        ManagedSession(
            id: id,
            labels: labels,
            settings: settings,
            ownerUID: ownerUID,
            backend: backend,
            historyLimit: configuration.finishedTurnsKept,
            counters: counters,
            logger: logger,
            store: store,
            visible: visible,
            restored: restored
        )
    }

    /// A store error's message, for the caller.
    static func describe(_ error: any Error) -> String {
        (error as? SwitchboardError)?.message ?? "\(error)"
    }

    /// Fills in server defaults; a session's queue bound and retention are capped
    /// by the server's, so a client cannot make the server keep more than its
    /// operator allows (memory with `--state-dir none`, disk otherwise).
    private func effectiveSettings(_ requested: SessionSettings) -> SessionSettings {
        func ms(_ duration: Duration) -> UInt64 { UInt64(max(0, duration.milliseconds)) }
        /// 0 asks for the server's value; a server value of 0 means no limit.
        func capped<Value: FixedWidthInteger>(_ requested: Value, _ server: Value) -> Value {
            requested == 0 ? server : (server == 0 ? requested : min(requested, server))
        }
        let serverQueue = UInt32(clamping: max(0, configuration.maxQueuedPrompts))
        return SessionSettings(
            backend: requested.backend.isEmpty ? configuration.defaultBackend : requested.backend,
            idleTimeoutMs: requested.idleTimeoutMs == 0 ? ms(configuration.idleTimeout) : requested.idleTimeoutMs,
            turnDeadlineMs: requested.turnDeadlineMs == 0 ? ms(configuration.turnDeadline) : requested.turnDeadlineMs,
            stallTimeoutMs: requested.stallTimeoutMs == 0 ? ms(configuration.stallTimeout) : requested.stallTimeoutMs,
            maxQueuedPrompts: requested.maxQueuedPrompts == 0 ? serverQueue : min(requested.maxQueuedPrompts, serverQueue),
            whenNoWorker: requested.whenNoWorker,
            retainTurns: capped(requested.retainTurns, configuration.retainTurns),
            retainOutputBytes: capped(requested.retainOutputBytes, configuration.retainOutputBytes),
            retainAgeMs: capped(requested.retainAgeMs, ms(configuration.retainAge))
        )
    }
}
