import CProtobufC
import CSwitchboardProto

typealias CLabel = Switchboard__V1__Label
typealias CSessionSettings = Switchboard__V1__SessionSettings
typealias CSession = Switchboard__V1__Session
typealias CCreateSessionRequest = Switchboard__V1__CreateSessionRequest
typealias CGetSessionRequest = Switchboard__V1__GetSessionRequest
typealias CListSessionsRequest = Switchboard__V1__ListSessionsRequest
typealias CListSessionsResponse = Switchboard__V1__ListSessionsResponse
typealias CCloseSessionRequest = Switchboard__V1__CloseSessionRequest
typealias CCloseSessionResponse = Switchboard__V1__CloseSessionResponse

extension SessionState {
    var cValue: Switchboard__V1__SessionState {
        Switchboard__V1__SessionState(rawValue: numericCast(rawValue))
    }

    /// A number this build does not know (a newer peer's state) becomes `.unspecified`.
    init(cValue: Switchboard__V1__SessionState) {
        self = SessionState(rawValue: numericCast(cValue.rawValue)) ?? .unspecified
    }
}

extension Label {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CLabel> {
        let c = arena.message(switchboard__v1__label__init)
        c.pointee.key = arena.string(key)
        c.pointee.value = arena.string(value)
        return c
    }

    init(cMessage c: UnsafePointer<CLabel>) {
        self.init(key: swiftString(c.pointee.key), value: swiftString(c.pointee.value))
    }
}

extension CArena {
    mutating func labels(_ labels: [Label]) -> UnsafeMutablePointer<UnsafeMutablePointer<CLabel>?>? {
        pointerArray(labels) { label, arena in label.cMessage(in: &arena) }
    }
}

func swiftLabels(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CLabel>?>?, count: Int) -> [Label] {
    swiftArray(array, count: count, Label.init(cMessage:))
}

extension SessionSettings {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CSessionSettings> {
        let c = arena.message(switchboard__v1__session_settings__init)
        c.pointee.backend = arena.string(backend)
        c.pointee.idle_timeout_ms = idleTimeoutMs
        c.pointee.turn_deadline_ms = turnDeadlineMs
        c.pointee.stall_timeout_ms = stallTimeoutMs
        c.pointee.max_queued_prompts = maxQueuedPrompts
        c.pointee.when_no_worker = whenNoWorker.cValue
        c.pointee.retain_turns = retainTurns
        c.pointee.retain_output_bytes = retainOutputBytes
        c.pointee.retain_age_ms = retainAgeMs
        return c
    }

    /// An absent settings message means "all server defaults", as in proto3.
    init(cMessage pointer: UnsafePointer<CSessionSettings>?) {
        guard let c = pointer else {
            self.init()
            return
        }
        self.init(
            backend: swiftString(c.pointee.backend),
            idleTimeoutMs: c.pointee.idle_timeout_ms,
            turnDeadlineMs: c.pointee.turn_deadline_ms,
            stallTimeoutMs: c.pointee.stall_timeout_ms,
            maxQueuedPrompts: c.pointee.max_queued_prompts,
            whenNoWorker: NoWorkerPolicy(cValue: c.pointee.when_no_worker),
            retainTurns: c.pointee.retain_turns,
            retainOutputBytes: c.pointee.retain_output_bytes,
            retainAgeMs: c.pointee.retain_age_ms
        )
    }
}

extension Session {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CSession> {
        let c = arena.message(switchboard__v1__session__init)
        c.pointee.id = arena.string(id)
        c.pointee.n_labels = labels.count
        c.pointee.labels = arena.labels(labels)
        c.pointee.settings = settings.cMessage(in: &arena)
        c.pointee.state = state.cValue
        c.pointee.created_at_ms = createdAtMs
        c.pointee.last_activity_ms = lastActivityMs
        c.pointee.queued_prompts = queuedPrompts
        c.pointee.current_turn_id = arena.string(currentTurnID)
        c.pointee.turns_completed = turnsCompleted
        c.pointee.owner_uid = ownerUID
        c.pointee.labels_omitted = labelsOmitted ? 1 : 0
        return c
    }

    init(cMessage c: UnsafePointer<CSession>) {
        self.init(
            id: swiftString(c.pointee.id),
            labels: swiftLabels(c.pointee.labels, count: c.pointee.n_labels),
            settings: SessionSettings(cMessage: c.pointee.settings),
            state: SessionState(cValue: c.pointee.state),
            createdAtMs: c.pointee.created_at_ms,
            lastActivityMs: c.pointee.last_activity_ms,
            queuedPrompts: c.pointee.queued_prompts,
            currentTurnID: swiftString(c.pointee.current_turn_id),
            turnsCompleted: c.pointee.turns_completed,
            ownerUID: c.pointee.owner_uid,
            labelsOmitted: c.pointee.labels_omitted != 0
        )
    }
}

extension CArena {
    mutating func sessions(_ sessions: [Session]) -> UnsafeMutablePointer<UnsafeMutablePointer<CSession>?>? {
        pointerArray(sessions) { session, arena in session.cMessage(in: &arena) }
    }
}

func swiftSessions(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CSession>?>?, count: Int) -> [Session] {
    swiftArray(array, count: count, Session.init(cMessage:))
}

extension CreateSessionRequest {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CCreateSessionRequest> {
        let c = arena.message(switchboard__v1__create_session_request__init)
        c.pointee.session_id = arena.string(sessionID)
        c.pointee.n_labels = labels.count
        c.pointee.labels = arena.labels(labels)
        c.pointee.settings = settings.cMessage(in: &arena)
        return c
    }

    init(cMessage c: UnsafePointer<CCreateSessionRequest>) {
        self.init(
            sessionID: swiftString(c.pointee.session_id),
            labels: swiftLabels(c.pointee.labels, count: c.pointee.n_labels),
            settings: SessionSettings(cMessage: c.pointee.settings)
        )
    }
}

extension GetSessionRequest {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CGetSessionRequest> {
        let c = arena.message(switchboard__v1__get_session_request__init)
        c.pointee.session_id = arena.string(sessionID)
        return c
    }

    init(cMessage c: UnsafePointer<CGetSessionRequest>) {
        self.init(sessionID: swiftString(c.pointee.session_id))
    }
}

extension ListSessionsRequest {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CListSessionsRequest> {
        let c = arena.message(switchboard__v1__list_sessions_request__init)
        c.pointee.n_label_selector = labelSelector.count
        c.pointee.label_selector = arena.labels(labelSelector)
        c.pointee.page_size = pageSize
        c.pointee.page_token = arena.string(pageToken)
        return c
    }

    init(cMessage c: UnsafePointer<CListSessionsRequest>) {
        self.init(
            labelSelector: swiftLabels(c.pointee.label_selector, count: c.pointee.n_label_selector),
            pageSize: c.pointee.page_size,
            pageToken: swiftString(c.pointee.page_token)
        )
    }
}

extension ListSessionsResponse {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CListSessionsResponse> {
        let c = arena.message(switchboard__v1__list_sessions_response__init)
        c.pointee.n_sessions = sessions.count
        c.pointee.sessions = arena.sessions(sessions)
        c.pointee.next_page_token = arena.string(nextPageToken)
        return c
    }

    init(cMessage c: UnsafePointer<CListSessionsResponse>) {
        self.init(
            sessions: swiftSessions(c.pointee.sessions, count: c.pointee.n_sessions),
            nextPageToken: swiftString(c.pointee.next_page_token)
        )
    }
}

extension CloseSessionRequest {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CCloseSessionRequest> {
        let c = arena.message(switchboard__v1__close_session_request__init)
        c.pointee.session_id = arena.string(sessionID)
        c.pointee.reason = arena.string(reason)
        return c
    }

    init(cMessage c: UnsafePointer<CCloseSessionRequest>) {
        self.init(sessionID: swiftString(c.pointee.session_id), reason: swiftString(c.pointee.reason))
    }
}

extension CloseSessionResponse {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CCloseSessionResponse> {
        let c = arena.message(switchboard__v1__close_session_response__init)
        c.pointee.session = session?.cMessage(in: &arena)
        c.pointee.cancelled_turns = cancelledTurns
        c.pointee.rejected_prompts = rejectedPrompts
        return c
    }

    init(cMessage c: UnsafePointer<CCloseSessionResponse>) {
        self.init(
            session: c.pointee.session.map { Session(cMessage: $0) },
            cancelledTurns: c.pointee.cancelled_turns,
            rejectedPrompts: c.pointee.rejected_prompts
        )
    }
}
