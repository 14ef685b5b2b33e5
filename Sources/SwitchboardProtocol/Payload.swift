/// The typed body of a call message (the `Payload` oneof of the wire contract).
///
/// Each method expects one case for its requests and one for its responses; a
/// mismatch is answered with `INVALID_ARGUMENT`, not guessed at.
public enum Payload: Hashable, Sendable {
    case createSessionRequest(CreateSessionRequest)
    case getSessionRequest(GetSessionRequest)
    case listSessionsRequest(ListSessionsRequest)
    case listSessionsResponse(ListSessionsResponse)
    case closeSessionRequest(CloseSessionRequest)
    case closeSessionResponse(CloseSessionResponse)
    case session(Session)
    case promptRequest(PromptRequest)
    case promptEvent(PromptEvent)
    case serverStatusRequest(ServerStatusRequest)
    case serverStatus(ServerStatus)
    case sessionStatusRequest(SessionStatusRequest)
    case sessionStatus(SessionStatus)
    case healthCheckRequest(HealthCheckRequest)
    case healthCheckResponse(HealthCheckResponse)
    case workerMessage(WorkerMessage)
    case workerCommand(WorkerCommand)
    case attachRequest(AttachRequest)
    case listTurnsRequest(ListTurnsRequest)
    case listTurnsResponse(ListTurnsResponse)

    /// The proto field name of the case, for error messages ("expected X, got Y").
    public var caseName: String {
        switch self {
        case .createSessionRequest: "create_session_request"
        case .getSessionRequest: "get_session_request"
        case .listSessionsRequest: "list_sessions_request"
        case .listSessionsResponse: "list_sessions_response"
        case .closeSessionRequest: "close_session_request"
        case .closeSessionResponse: "close_session_response"
        case .session: "session"
        case .promptRequest: "prompt_request"
        case .promptEvent: "prompt_event"
        case .serverStatusRequest: "server_status_request"
        case .serverStatus: "server_status"
        case .sessionStatusRequest: "session_status_request"
        case .sessionStatus: "session_status"
        case .healthCheckRequest: "health_check_request"
        case .healthCheckResponse: "health_check_response"
        case .workerMessage: "worker_message"
        case .workerCommand: "worker_command"
        case .attachRequest: "attach_request"
        case .listTurnsRequest: "list_turns_request"
        case .listTurnsResponse: "list_turns_response"
        }
    }
}

/// Fully qualified method names, `/switchboard.v1.Service/Method`.
public enum MethodName {
    public static let createSession = "/switchboard.v1.Sessions/CreateSession"
    public static let getSession = "/switchboard.v1.Sessions/GetSession"
    public static let listSessions = "/switchboard.v1.Sessions/ListSessions"
    public static let closeSession = "/switchboard.v1.Sessions/CloseSession"
    public static let prompt = "/switchboard.v1.Prompts/Prompt"
    public static let attach = "/switchboard.v1.Prompts/Attach"
    public static let listTurns = "/switchboard.v1.Sessions/ListTurns"
    public static let getServerStatus = "/switchboard.v1.Status/GetServerStatus"
    public static let getSessionStatus = "/switchboard.v1.Status/GetSessionStatus"
    public static let healthCheck = "/switchboard.v1.Health/Check"
    public static let workerConnect = "/switchboard.v1.Workers/Connect"
}
