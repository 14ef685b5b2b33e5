import CProtobufC
import CSwitchboardProto

typealias CPayload = Switchboard__V1__Payload

extension Payload {
    func cMessage(in arena: inout CArena) -> UnsafeMutablePointer<CPayload> {
        let c = arena.message(switchboard__v1__payload__init)
        switch self {
        case .createSessionRequest(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_CREATE_SESSION_REQUEST
            c.pointee.create_session_request = value.cMessage(in: &arena)
        case .getSessionRequest(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_GET_SESSION_REQUEST
            c.pointee.get_session_request = value.cMessage(in: &arena)
        case .listSessionsRequest(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_LIST_SESSIONS_REQUEST
            c.pointee.list_sessions_request = value.cMessage(in: &arena)
        case .listSessionsResponse(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_LIST_SESSIONS_RESPONSE
            c.pointee.list_sessions_response = value.cMessage(in: &arena)
        case .closeSessionRequest(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_CLOSE_SESSION_REQUEST
            c.pointee.close_session_request = value.cMessage(in: &arena)
        case .closeSessionResponse(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_CLOSE_SESSION_RESPONSE
            c.pointee.close_session_response = value.cMessage(in: &arena)
        case .session(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_SESSION
            c.pointee.session = value.cMessage(in: &arena)
        case .promptRequest(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_PROMPT_REQUEST
            c.pointee.prompt_request = value.cMessage(in: &arena)
        case .promptEvent(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_PROMPT_EVENT
            c.pointee.prompt_event = value.cMessage(in: &arena)
        case .serverStatusRequest(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_SERVER_STATUS_REQUEST
            c.pointee.server_status_request = value.cMessage(in: &arena)
        case .serverStatus(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_SERVER_STATUS
            c.pointee.server_status = value.cMessage(in: &arena)
        case .sessionStatusRequest(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_SESSION_STATUS_REQUEST
            c.pointee.session_status_request = value.cMessage(in: &arena)
        case .sessionStatus(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_SESSION_STATUS
            c.pointee.session_status = value.cMessage(in: &arena)
        case .healthCheckRequest(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_HEALTH_CHECK_REQUEST
            c.pointee.health_check_request = value.cMessage(in: &arena)
        case .healthCheckResponse(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_HEALTH_CHECK_RESPONSE
            c.pointee.health_check_response = value.cMessage(in: &arena)
        case .workerMessage(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_WORKER_MESSAGE
            c.pointee.worker_message = value.cMessage(in: &arena)
        case .workerCommand(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_WORKER_COMMAND
            c.pointee.worker_command = value.cMessage(in: &arena)
        case .attachRequest(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_ATTACH_REQUEST
            c.pointee.attach_request = value.cMessage(in: &arena)
        case .listTurnsRequest(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_LIST_TURNS_REQUEST
            c.pointee.list_turns_request = value.cMessage(in: &arena)
        case .listTurnsResponse(let value):
            c.pointee.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_LIST_TURNS_RESPONSE
            c.pointee.list_turns_response = value.cMessage(in: &arena)
        }
        return c
    }

    /// The payload of an unpacked message field.
    ///
    /// `nil` when the field is absent, and also when the `body` oneof is unset or
    /// holds a case this build does not know (a newer peer's payload): the call's
    /// handler then answers INVALID_ARGUMENT for that call instead of the whole
    /// connection failing on a malformed frame.
    static func decode(_ pointer: UnsafeMutablePointer<CPayload>?) throws(SwitchboardError) -> Payload? {
        guard let c = pointer else { return nil }
        switch c.pointee.body_case {
        case SWITCHBOARD__V1__PAYLOAD__BODY_CREATE_SESSION_REQUEST:
            guard let value = c.pointee.create_session_request else { return nil }
            return .createSessionRequest(CreateSessionRequest(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_GET_SESSION_REQUEST:
            guard let value = c.pointee.get_session_request else { return nil }
            return .getSessionRequest(GetSessionRequest(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_LIST_SESSIONS_REQUEST:
            guard let value = c.pointee.list_sessions_request else { return nil }
            return .listSessionsRequest(ListSessionsRequest(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_LIST_SESSIONS_RESPONSE:
            guard let value = c.pointee.list_sessions_response else { return nil }
            return .listSessionsResponse(ListSessionsResponse(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_CLOSE_SESSION_REQUEST:
            guard let value = c.pointee.close_session_request else { return nil }
            return .closeSessionRequest(CloseSessionRequest(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_CLOSE_SESSION_RESPONSE:
            guard let value = c.pointee.close_session_response else { return nil }
            return .closeSessionResponse(CloseSessionResponse(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_SESSION:
            guard let value = c.pointee.session else { return nil }
            return .session(Session(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_PROMPT_REQUEST:
            guard let value = c.pointee.prompt_request else { return nil }
            return .promptRequest(PromptRequest(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_PROMPT_EVENT:
            guard let value = c.pointee.prompt_event else { return nil }
            return .promptEvent(try PromptEvent(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_SERVER_STATUS_REQUEST:
            guard let value = c.pointee.server_status_request else { return nil }
            return .serverStatusRequest(ServerStatusRequest(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_SERVER_STATUS:
            guard let value = c.pointee.server_status else { return nil }
            return .serverStatus(ServerStatus(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_SESSION_STATUS_REQUEST:
            guard let value = c.pointee.session_status_request else { return nil }
            return .sessionStatusRequest(SessionStatusRequest(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_SESSION_STATUS:
            guard let value = c.pointee.session_status else { return nil }
            return .sessionStatus(SessionStatus(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_HEALTH_CHECK_REQUEST:
            guard let value = c.pointee.health_check_request else { return nil }
            return .healthCheckRequest(HealthCheckRequest(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_HEALTH_CHECK_RESPONSE:
            guard let value = c.pointee.health_check_response else { return nil }
            return .healthCheckResponse(HealthCheckResponse(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_WORKER_MESSAGE:
            guard let value = c.pointee.worker_message else { return nil }
            return WorkerMessage.decode(value).map(Payload.workerMessage)
        case SWITCHBOARD__V1__PAYLOAD__BODY_WORKER_COMMAND:
            guard let value = c.pointee.worker_command else { return nil }
            return WorkerCommand.decode(value).map(Payload.workerCommand)
        case SWITCHBOARD__V1__PAYLOAD__BODY_ATTACH_REQUEST:
            guard let value = c.pointee.attach_request else { return nil }
            return .attachRequest(AttachRequest(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_LIST_TURNS_REQUEST:
            guard let value = c.pointee.list_turns_request else { return nil }
            return .listTurnsRequest(ListTurnsRequest(cMessage: value))
        case SWITCHBOARD__V1__PAYLOAD__BODY_LIST_TURNS_RESPONSE:
            guard let value = c.pointee.list_turns_response else { return nil }
            return .listTurnsResponse(ListTurnsResponse(cMessage: value))
        default:
            return nil
        }
    }
}
