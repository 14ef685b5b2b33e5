#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwitchboardCore
import SwitchboardProtocol

/// The methods a connection knows, by their wire path.
enum CallMethod: Equatable {
    case unary(UnaryMethod)
    /// `/switchboard.v1.Prompts/Prompt`, server streaming.
    case prompt
    /// `/switchboard.v1.Workers/Connect`, bidirectional (see `WorkerCall`).
    case workerConnect
    /// `/switchboard.v1.Prompts/Attach`, server streaming (see `AttachCall`).
    case attach

    init?(path: String) {
        if path == MethodName.prompt {
            self = .prompt
        } else if path == MethodName.attach {
            self = .attach
        } else if path == MethodName.workerConnect {
            self = .workerConnect
        } else if let unary = UnaryMethod(path: path) {
            self = .unary(unary)
        } else {
            return nil
        }
    }

    /// The payload case the method's request must be.
    var requestCase: String {
        switch self {
        case .unary(let method): method.requestCase
        case .prompt: "prompt_request"
        case .workerConnect: "worker_message"
        case .attach: "attach_request"
        }
    }
}

/// The unary methods: most are answered synchronously on the event loop, because
/// the registry calls behind them are short, lock-bounded and never wait on a
/// turn. Those that wait for the store (``isAsync``) are answered from a task.
enum UnaryMethod: CaseIterable {
    case createSession
    case getSession
    case listSessions
    case closeSession
    case getServerStatus
    case getSessionStatus
    case healthCheck
    case listTurns

    /// Answered by ``UnaryResponder/respondAsync(to:request:peerMaxFrameSize:)`` on a task, then
    /// written back on the connection's event loop: creating and closing a
    /// session are durable before they answer, and history is read from the store.
    var isAsync: Bool {
        switch self {
        case .createSession, .closeSession, .listTurns: true
        case .getSession, .listSessions, .getServerStatus, .getSessionStatus, .healthCheck: false
        }
    }

    private static let byPath = Dictionary(uniqueKeysWithValues: allCases.map { ($0.path, $0) })

    init?(path: String) {
        guard let method = Self.byPath[path] else { return nil }
        self = method
    }

    var path: String {
        switch self {
        case .createSession: MethodName.createSession
        case .getSession: MethodName.getSession
        case .listSessions: MethodName.listSessions
        case .closeSession: MethodName.closeSession
        case .getServerStatus: MethodName.getServerStatus
        case .getSessionStatus: MethodName.getSessionStatus
        case .healthCheck: MethodName.healthCheck
        case .listTurns: MethodName.listTurns
        }
    }

    var requestCase: String {
        switch self {
        case .createSession: "create_session_request"
        case .getSession: "get_session_request"
        case .listSessions: "list_sessions_request"
        case .closeSession: "close_session_request"
        case .getServerStatus: "server_status_request"
        case .getSessionStatus: "session_status_request"
        case .healthCheck: "health_check_request"
        case .listTurns: "list_turns_request"
        }
    }
}

/// Error text for a request of the wrong (or no) payload case.
func payloadMismatch(method: String, expected: String, got payload: Payload?) -> CallEnd {
    CallEnd(
        code: .invalidArgument,
        message: "\(method) expects \(expected), got \(payload?.caseName ?? "no payload")"
    )
}

/// Answers unary calls for one connection (whose peer owns the sessions it creates).
struct UnaryResponder {
    let server: ServerContext
    let peer: PeerCredentials
    /// The peer as the registry's ownership checks see it.
    let caller: Caller

    /// `peerMaxFrameSize` (the client's `Hello.max_frame_size`) bounds the
    /// sessions of a ListSessions page, of a server status and of GetSession
    /// (``SessionListBudget``): one user's sessions must not make another's
    /// answer too big for its frame.
    func respond(to method: UnaryMethod, request: Payload?, peerMaxFrameSize: Int) -> CallEnd {
        let registry = server.registry
        do throws(SwitchboardError) {
            switch (method, request) {
            case (.createSession, _), (.closeSession, _), (.listTurns, _):
                return CallEnd(code: .internal, message: "\(method.path) is answered asynchronously")
            case (.getSession, .getSessionRequest(let request)?):
                let session = try registry.getSession(id: request.sessionID, caller: caller)
                let maxBytes = peerMaxFrameSize - Self.sessionsFrameOverhead
                return .ok(.session(SessionListBudget.fitting(session, maxBytes: maxBytes)))
            case (.listSessions, .listSessionsRequest(let request)?):
                let maxBytes = peerMaxFrameSize - Self.sessionsFrameOverhead
                return .ok(.listSessionsResponse(try registry.listSessions(request, caller: caller, maxBytes: maxBytes)))
            case (.getServerStatus, .serverStatusRequest(let request)?):
                return .ok(.serverStatus(serverStatus(includeSessions: request.includeSessions, peerMaxFrameSize: peerMaxFrameSize)))
            case (.getSessionStatus, .sessionStatusRequest(let request)?):
                return .ok(.sessionStatus(try registry.sessionStatus(id: request.sessionID, caller: caller)))
            case (.healthCheck, .healthCheckRequest?):
                return .ok(.healthCheckResponse(health()))
            default:
                return payloadMismatch(method: method.path, expected: method.requestCase, got: request)
            }
        } catch {
            return CallEnd(code: error.code, message: error.message)
        }
    }

    /// Room a ListSessions or GetSession answer keeps in the client's frame for
    /// what surrounds its sessions: frame, call id, end, payload and response
    /// tags, the page token (an id, at most 128 bytes). About 170 bytes at most.
    static let sessionsFrameOverhead = 512

    /// Room a ListTurns answer keeps in the client's frame for what surrounds its
    /// turns (frame, call id, end, payload and response tags, the page token);
    /// the turns themselves are counted by the store's `TurnPageBudget`.
    static let listTurnsFrameOverhead = 1024

    /// The methods that wait for the store (``UnaryMethod/isAsync``); run on a task.
    /// `peerMaxFrameSize` (the client's `Hello.max_frame_size`) bounds a ListTurns
    /// page, which would otherwise be replaced by RESOURCE_EXHAUSTED when too big.
    func respondAsync(to method: UnaryMethod, request: Payload?, peerMaxFrameSize: Int) async -> CallEnd {
        let registry = server.registry
        do throws(SwitchboardError) {
            switch (method, request) {
            case (.createSession, .createSessionRequest(let request)?):
                return .ok(.session(try await registry.createSession(request, ownerUID: caller.uid, ownerIsAdmin: caller.isAdmin)))
            case (.closeSession, .closeSessionRequest(let request)?):
                let reason = request.reason.isEmpty ? "closed by client" : request.reason
                return .ok(.closeSessionResponse(
                    try await registry.closeSession(id: request.sessionID, reason: reason, caller: caller)
                ))
            case (.listTurns, .listTurnsRequest(let request)?):
                let maxBytes = max(0, peerMaxFrameSize - Self.listTurnsFrameOverhead)
                return .ok(.listTurnsResponse(try await registry.listTurns(request, caller: caller, maxBytes: maxBytes)))
            default:
                if !method.isAsync { return respond(to: method, request: request, peerMaxFrameSize: peerMaxFrameSize) }
                return payloadMismatch(method: method.path, expected: method.requestCase, got: request)
            }
        } catch {
            return CallEnd(code: error.code, message: error.message)
        }
    }

    /// NOT_SERVING while draining, and while the session store cannot write:
    /// new sessions and prompts fail then, so a probe should not send work here
    /// (reads still work, and the server recovers by itself once it can write).
    private func health() -> HealthCheckResponse {
        if server.draining.load(ordering: .relaxed) {
            return HealthCheckResponse(status: .notServing, reason: "draining")
        }
        if let failure = server.registry.store.writeFailure {
            return HealthCheckResponse(status: .notServing, reason: "session store cannot write: \(failure.message)")
        }
        return HealthCheckResponse(status: .serving)
    }

    /// The server's status; with `includeSessions`, the sessions the caller may
    /// see, as many as fit in the client's frame after the rest of the status,
    /// and how many were left out (`sessions_omitted`).
    private func serverStatus(includeSessions: Bool, peerMaxFrameSize: Int) -> ServerStatus {
        var status = serverStatusWithoutSessions()
        guard includeSessions else { return status }
        // The rest of the answer, measured as it will be framed (the largest call
        // id and omitted count, so that it is not below the real size).
        status.sessionsOmitted = .max
        let rest = Frame(callID: .max, kind: .end(.ok(.serverStatus(status)))).serializedBytes().count
        let (sessions, omitted) = server.registry.sessionSnapshots(caller: caller, maxBytes: peerMaxFrameSize - rest)
        status.sessions = sessions
        status.sessionsOmitted = UInt32(clamping: omitted)
        return status
    }

    private func serverStatusWithoutSessions() -> ServerStatus {
        let statistics = server.registry.statistics()
        let workers = server.registry.workers.snapshot()
        let uptime = ContinuousClock.now - server.startedAt
        let storeFailure = server.registry.store.writeFailure
        return ServerStatus(
            serverVersion: SwitchboardVersion.string,
            protocolVersion: ProtocolVersion.current,
            uptimeMs: UInt64(clamping: uptime.milliseconds),
            connections: UInt32(clamping: server.connectionCount.load(ordering: .relaxed)),
            sessionsTotal: UInt32(clamping: statistics.sessionsTotal),
            sessionsIdle: UInt32(clamping: statistics.sessionsIdle),
            sessionsBusy: UInt32(clamping: statistics.sessionsBusy),
            turnsInFlight: UInt32(clamping: statistics.turnsInFlight),
            queuedPrompts: UInt32(clamping: statistics.queuedPrompts),
            maxQueueDepth: UInt32(clamping: statistics.maxQueueDepth),
            turnsCompleted: statistics.turnsCompleted,
            draining: server.draining.load(ordering: .relaxed),
            pid: UInt32(clamping: getpid()),
            // Worker details (names, labels, queues) are for administrators only.
            workers: caller.isAdmin ? workers.workers : [],
            workerQueues: caller.isAdmin ? workers.queues : [],
            stateDirectory: caller.isAdmin ? server.registry.store.location : "",
            // Everyone: it is why their prompts fail (it names no path).
            storeError: storeFailure?.message ?? "",
            storeErrorSinceMs: storeFailure?.sinceMs ?? 0
        )
    }
}

extension CallEnd {
    static func ok(_ payload: Payload) -> CallEnd {
        CallEnd(code: .ok, payload: payload)
    }
}

extension Duration {
    /// Whole milliseconds (negative durations count as zero).
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        return seconds &* 1000 &+ attoseconds / 1_000_000_000_000_000
    }
}
