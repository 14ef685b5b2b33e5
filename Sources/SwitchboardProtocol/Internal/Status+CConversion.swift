import CProtobufC
import CSwitchboardProto

typealias CServerStatusRequest = Switchboard__V1__ServerStatusRequest
typealias CServerStatus = Switchboard__V1__ServerStatus
typealias CSessionStatusRequest = Switchboard__V1__SessionStatusRequest
typealias CTurnSummary = Switchboard__V1__TurnSummary
typealias CSessionStatus = Switchboard__V1__SessionStatus
typealias CHealthCheckRequest = Switchboard__V1__HealthCheckRequest
typealias CHealthCheckResponse = Switchboard__V1__HealthCheckResponse

extension TurnState {
    var cValue: Switchboard__V1__TurnState {
        Switchboard__V1__TurnState(rawValue: numericCast(rawValue))
    }

    /// A number this build does not know becomes `.unspecified`.
    init(cValue: Switchboard__V1__TurnState) {
        self = TurnState(rawValue: numericCast(cValue.rawValue)) ?? .unspecified
    }
}

extension ServingStatus {
    var cValue: Switchboard__V1__ServingStatus {
        Switchboard__V1__ServingStatus(rawValue: numericCast(rawValue))
    }

    /// A number this build does not know becomes `.unknown`.
    init(cValue: Switchboard__V1__ServingStatus) {
        self = ServingStatus(rawValue: numericCast(cValue.rawValue)) ?? .unknown
    }
}

extension ServerStatusRequest {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CServerStatusRequest> {
        let c = arena.message(switchboard__v1__server_status_request__init)
        c.pointee.include_sessions = includeSessions ? 1 : 0
        return c
    }

    init(cMessage c: UnsafePointer<CServerStatusRequest>) {
        self.init(includeSessions: c.pointee.include_sessions != 0)
    }
}

extension ServerStatus {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CServerStatus> {
        let c = arena.message(switchboard__v1__server_status__init)
        c.pointee.server_version = arena.string(serverVersion)
        c.pointee.protocol_version = protocolVersion
        c.pointee.uptime_ms = uptimeMs
        c.pointee.connections = connections
        c.pointee.sessions_total = sessionsTotal
        c.pointee.sessions_idle = sessionsIdle
        c.pointee.sessions_busy = sessionsBusy
        c.pointee.turns_in_flight = turnsInFlight
        c.pointee.queued_prompts = queuedPrompts
        c.pointee.max_queue_depth = maxQueueDepth
        c.pointee.turns_completed = turnsCompleted
        c.pointee.draining = draining ? 1 : 0
        c.pointee.n_sessions = sessions.count
        c.pointee.sessions = arena.sessions(sessions)
        c.pointee.pid = pid
        c.pointee.n_workers = workers.count
        c.pointee.workers = arena.pointerArray(workers) { worker, arena in worker.cMessage(in: &arena) }
        c.pointee.n_worker_queues = workerQueues.count
        c.pointee.worker_queues = arena.pointerArray(workerQueues) { queue, arena in queue.cMessage(in: &arena) }
        c.pointee.state_directory = arena.string(stateDirectory)
        c.pointee.store_error = arena.string(storeError)
        c.pointee.store_error_since_ms = storeErrorSinceMs
        c.pointee.sessions_omitted = sessionsOmitted
        return c
    }

    init(cMessage c: UnsafePointer<CServerStatus>) {
        self.init(
            serverVersion: swiftString(c.pointee.server_version),
            protocolVersion: c.pointee.protocol_version,
            uptimeMs: c.pointee.uptime_ms,
            connections: c.pointee.connections,
            sessionsTotal: c.pointee.sessions_total,
            sessionsIdle: c.pointee.sessions_idle,
            sessionsBusy: c.pointee.sessions_busy,
            turnsInFlight: c.pointee.turns_in_flight,
            queuedPrompts: c.pointee.queued_prompts,
            maxQueueDepth: c.pointee.max_queue_depth,
            turnsCompleted: c.pointee.turns_completed,
            draining: c.pointee.draining != 0,
            sessions: swiftSessions(c.pointee.sessions, count: c.pointee.n_sessions),
            pid: c.pointee.pid,
            workers: swiftArray(c.pointee.workers, count: c.pointee.n_workers, WorkerInfo.init(cMessage:)),
            workerQueues: swiftArray(c.pointee.worker_queues, count: c.pointee.n_worker_queues, WorkerQueueInfo.init(cMessage:)),
            stateDirectory: swiftString(c.pointee.state_directory),
            storeError: swiftString(c.pointee.store_error),
            storeErrorSinceMs: c.pointee.store_error_since_ms,
            sessionsOmitted: c.pointee.sessions_omitted
        )
    }
}

extension SessionStatusRequest {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CSessionStatusRequest> {
        let c = arena.message(switchboard__v1__session_status_request__init)
        c.pointee.session_id = arena.string(sessionID)
        return c
    }

    init(cMessage c: UnsafePointer<CSessionStatusRequest>) {
        self.init(sessionID: swiftString(c.pointee.session_id))
    }
}

extension TurnSummary {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CTurnSummary> {
        let c = arena.message(switchboard__v1__turn_summary__init)
        c.pointee.turn_id = arena.string(turnID)
        c.pointee.state = state.cValue
        c.pointee.code = code.rawValue
        c.pointee.message = arena.string(message)
        c.pointee.stop_reason = arena.string(stopReason)
        c.pointee.chunks = chunks
        c.pointee.bytes = bytes
        c.pointee.started_at_ms = startedAtMs
        c.pointee.ended_at_ms = endedAtMs
        c.pointee.prompt_preview = arena.string(promptPreview)
        c.pointee.accepted_at_ms = acceptedAtMs
        return c
    }

    init(cMessage c: UnsafePointer<CTurnSummary>) {
        self.init(
            turnID: swiftString(c.pointee.turn_id),
            state: TurnState(cValue: c.pointee.state),
            code: StatusCode(rawValue: c.pointee.code),
            message: swiftString(c.pointee.message),
            stopReason: swiftString(c.pointee.stop_reason),
            chunks: c.pointee.chunks,
            bytes: c.pointee.bytes,
            startedAtMs: c.pointee.started_at_ms,
            endedAtMs: c.pointee.ended_at_ms,
            promptPreview: swiftString(c.pointee.prompt_preview),
            acceptedAtMs: c.pointee.accepted_at_ms
        )
    }
}

extension SessionStatus {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CSessionStatus> {
        let c = arena.message(switchboard__v1__session_status__init)
        c.pointee.session = session?.cMessage(in: &arena)
        c.pointee.n_turns = turns.count
        c.pointee.turns = arena.pointerArray(turns) { turn, arena in turn.cMessage(in: &arena) }
        return c
    }

    init(cMessage c: UnsafePointer<CSessionStatus>) {
        self.init(
            session: c.pointee.session.map { Session(cMessage: $0) },
            turns: swiftArray(c.pointee.turns, count: c.pointee.n_turns, TurnSummary.init(cMessage:))
        )
    }
}

extension HealthCheckRequest {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CHealthCheckRequest> {
        let c = arena.message(switchboard__v1__health_check_request__init)
        c.pointee.service = arena.string(service)
        return c
    }

    init(cMessage c: UnsafePointer<CHealthCheckRequest>) {
        self.init(service: swiftString(c.pointee.service))
    }
}

extension HealthCheckResponse {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CHealthCheckResponse> {
        let c = arena.message(switchboard__v1__health_check_response__init)
        c.pointee.status = status.cValue
        c.pointee.reason = arena.string(reason)
        return c
    }

    init(cMessage c: UnsafePointer<CHealthCheckResponse>) {
        self.init(status: ServingStatus(cValue: c.pointee.status), reason: swiftString(c.pointee.reason))
    }
}

typealias CListTurnsRequest = Switchboard__V1__ListTurnsRequest
typealias CListTurnsResponse = Switchboard__V1__ListTurnsResponse
typealias CTurnRecord = Switchboard__V1__TurnRecord

extension ListTurnsRequest {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CListTurnsRequest> {
        let c = arena.message(switchboard__v1__list_turns_request__init)
        c.pointee.session_id = arena.string(sessionID)
        c.pointee.page_size = pageSize
        c.pointee.page_token = arena.string(pageToken)
        c.pointee.include_output = includeOutput ? 1 : 0
        return c
    }

    init(cMessage c: UnsafePointer<CListTurnsRequest>) {
        self.init(
            sessionID: swiftString(c.pointee.session_id),
            pageSize: c.pointee.page_size,
            pageToken: swiftString(c.pointee.page_token),
            includeOutput: c.pointee.include_output != 0
        )
    }
}

extension TurnHistoryEntry {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CTurnRecord> {
        let c = arena.message(switchboard__v1__turn_record__init)
        c.pointee.summary = summary.cMessage(in: &arena)
        c.pointee.prompt = arena.string(prompt)
        c.pointee.output = arena.binary(output)
        c.pointee.output_dropped = outputDropped ? 1 : 0
        c.pointee.output_omitted = outputOmitted ? 1 : 0
        return c
    }

    init(cMessage c: UnsafePointer<CTurnRecord>) {
        self.init(
            summary: c.pointee.summary.map { TurnSummary(cMessage: $0) } ?? TurnSummary(turnID: "", state: .unspecified),
            prompt: swiftString(c.pointee.prompt),
            output: swiftBytes(c.pointee.output),
            outputDropped: c.pointee.output_dropped != 0,
            outputOmitted: c.pointee.output_omitted != 0
        )
    }
}

extension ListTurnsResponse {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CListTurnsResponse> {
        let c = arena.message(switchboard__v1__list_turns_response__init)
        c.pointee.n_turns = turns.count
        c.pointee.turns = arena.pointerArray(turns) { turn, arena in turn.cMessage(in: &arena) }
        c.pointee.next_page_token = arena.string(nextPageToken)
        return c
    }

    init(cMessage c: UnsafePointer<CListTurnsResponse>) {
        self.init(
            turns: swiftArray(c.pointee.turns, count: c.pointee.n_turns, TurnHistoryEntry.init(cMessage:)),
            nextPageToken: swiftString(c.pointee.next_page_token)
        )
    }
}
