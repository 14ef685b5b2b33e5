from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

BUSY_POLICY_REJECT: BusyPolicy
BUSY_POLICY_WAIT: BusyPolicy
DESCRIPTOR: _descriptor.FileDescriptor
NO_WORKER_POLICY_FAIL: NoWorkerPolicy
NO_WORKER_POLICY_WAIT: NoWorkerPolicy
SERVING_STATUS_NOT_SERVING: ServingStatus
SERVING_STATUS_SERVING: ServingStatus
SERVING_STATUS_UNKNOWN: ServingStatus
SESSION_STATE_BUSY: SessionState
SESSION_STATE_CLOSED: SessionState
SESSION_STATE_IDLE: SessionState
SESSION_STATE_UNSPECIFIED: SessionState
TURN_STATE_FINISHED: TurnState
TURN_STATE_QUEUED: TurnState
TURN_STATE_RUNNING: TurnState
TURN_STATE_UNSPECIFIED: TurnState

class AttachRequest(_message.Message):
    __slots__ = ["after_sequence", "session_id", "turn_id"]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    session_id: str
    turn_id: str
    def __init__(self, session_id: _Optional[str] = ..., turn_id: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class CallEnd(_message.Message):
    __slots__ = ["code", "message", "payload", "trailers"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TRAILERS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    payload: Payload
    trailers: _containers.RepeatedCompositeFieldContainer[MetadataEntry]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., payload: _Optional[_Union[Payload, _Mapping]] = ..., trailers: _Optional[_Iterable[_Union[MetadataEntry, _Mapping]]] = ...) -> None: ...

class CallMessage(_message.Message):
    __slots__ = ["half_close", "payload"]
    HALF_CLOSE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    half_close: bool
    payload: Payload
    def __init__(self, payload: _Optional[_Union[Payload, _Mapping]] = ..., half_close: bool = ...) -> None: ...

class CallStart(_message.Message):
    __slots__ = ["half_close", "metadata", "method", "payload", "timeout_ms"]
    HALF_CLOSE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    half_close: bool
    metadata: _containers.RepeatedCompositeFieldContainer[MetadataEntry]
    method: str
    payload: Payload
    timeout_ms: int
    def __init__(self, method: _Optional[str] = ..., metadata: _Optional[_Iterable[_Union[MetadataEntry, _Mapping]]] = ..., timeout_ms: _Optional[int] = ..., payload: _Optional[_Union[Payload, _Mapping]] = ..., half_close: bool = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ["reason"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ["reason", "session_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    session_id: str
    def __init__(self, session_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CloseSessionResponse(_message.Message):
    __slots__ = ["cancelled_turns", "rejected_prompts", "session"]
    CANCELLED_TURNS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    cancelled_turns: int
    rejected_prompts: int
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., cancelled_turns: _Optional[int] = ..., rejected_prompts: _Optional[int] = ...) -> None: ...

class CreateSessionRequest(_message.Message):
    __slots__ = ["labels", "session_id", "settings"]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    session_id: str
    settings: SessionSettings
    def __init__(self, session_id: _Optional[str] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., settings: _Optional[_Union[SessionSettings, _Mapping]] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ["call_id", "cancel", "end", "go_away", "half_close", "hello", "message", "ping", "pong", "start", "welcome"]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    GO_AWAY_FIELD_NUMBER: _ClassVar[int]
    HALF_CLOSE_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    cancel: Cancel
    end: CallEnd
    go_away: GoAway
    half_close: HalfClose
    hello: Hello
    message: CallMessage
    ping: Ping
    pong: Pong
    start: CallStart
    welcome: Welcome
    def __init__(self, call_id: _Optional[int] = ..., hello: _Optional[_Union[Hello, _Mapping]] = ..., welcome: _Optional[_Union[Welcome, _Mapping]] = ..., start: _Optional[_Union[CallStart, _Mapping]] = ..., message: _Optional[_Union[CallMessage, _Mapping]] = ..., half_close: _Optional[_Union[HalfClose, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., end: _Optional[_Union[CallEnd, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., pong: _Optional[_Union[Pong, _Mapping]] = ..., go_away: _Optional[_Union[GoAway, _Mapping]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ["session_id"]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GoAway(_message.Message):
    __slots__ = ["code", "last_call_id", "message"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    last_call_id: int
    message: str
    def __init__(self, last_call_id: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class HalfClose(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class HealthCheckRequest(_message.Message):
    __slots__ = ["service"]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: str
    def __init__(self, service: _Optional[str] = ...) -> None: ...

class HealthCheckResponse(_message.Message):
    __slots__ = ["reason", "status"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    status: ServingStatus
    def __init__(self, status: _Optional[_Union[ServingStatus, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ["client_name", "max_frame_size", "max_version", "min_version"]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    client_name: str
    max_frame_size: int
    max_version: int
    min_version: int
    def __init__(self, min_version: _Optional[int] = ..., max_version: _Optional[int] = ..., client_name: _Optional[str] = ..., max_frame_size: _Optional[int] = ...) -> None: ...

class Label(_message.Message):
    __slots__ = ["key", "value"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ["label_selector", "page_size", "page_token"]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    label_selector: _containers.RepeatedCompositeFieldContainer[Label]
    page_size: int
    page_token: str
    def __init__(self, label_selector: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ["next_page_token", "sessions"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListTurnsRequest(_message.Message):
    __slots__ = ["include_output", "page_size", "page_token", "session_id"]
    INCLUDE_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    include_output: bool
    page_size: int
    page_token: str
    session_id: str
    def __init__(self, session_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_output: bool = ...) -> None: ...

class ListTurnsResponse(_message.Message):
    __slots__ = ["next_page_token", "turns"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    turns: _containers.RepeatedCompositeFieldContainer[TurnRecord]
    def __init__(self, turns: _Optional[_Iterable[_Union[TurnRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class MetadataEntry(_message.Message):
    __slots__ = ["key", "value"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ["data", "sequence"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    sequence: int
    def __init__(self, sequence: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class Payload(_message.Message):
    __slots__ = ["attach_request", "close_session_request", "close_session_response", "create_session_request", "get_session_request", "health_check_request", "health_check_response", "list_sessions_request", "list_sessions_response", "list_turns_request", "list_turns_response", "prompt_event", "prompt_request", "server_status", "server_status_request", "session", "session_status", "session_status_request", "worker_command", "worker_message"]
    ATTACH_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CLOSE_SESSION_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CLOSE_SESSION_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CREATE_SESSION_REQUEST_FIELD_NUMBER: _ClassVar[int]
    GET_SESSION_REQUEST_FIELD_NUMBER: _ClassVar[int]
    HEALTH_CHECK_REQUEST_FIELD_NUMBER: _ClassVar[int]
    HEALTH_CHECK_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    LIST_SESSIONS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    LIST_SESSIONS_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    LIST_TURNS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    LIST_TURNS_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_EVENT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SERVER_STATUS_FIELD_NUMBER: _ClassVar[int]
    SERVER_STATUS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_STATUS_FIELD_NUMBER: _ClassVar[int]
    SESSION_STATUS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    WORKER_COMMAND_FIELD_NUMBER: _ClassVar[int]
    WORKER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    attach_request: AttachRequest
    close_session_request: CloseSessionRequest
    close_session_response: CloseSessionResponse
    create_session_request: CreateSessionRequest
    get_session_request: GetSessionRequest
    health_check_request: HealthCheckRequest
    health_check_response: HealthCheckResponse
    list_sessions_request: ListSessionsRequest
    list_sessions_response: ListSessionsResponse
    list_turns_request: ListTurnsRequest
    list_turns_response: ListTurnsResponse
    prompt_event: PromptEvent
    prompt_request: PromptRequest
    server_status: ServerStatus
    server_status_request: ServerStatusRequest
    session: Session
    session_status: SessionStatus
    session_status_request: SessionStatusRequest
    worker_command: WorkerCommand
    worker_message: WorkerMessage
    def __init__(self, create_session_request: _Optional[_Union[CreateSessionRequest, _Mapping]] = ..., get_session_request: _Optional[_Union[GetSessionRequest, _Mapping]] = ..., list_sessions_request: _Optional[_Union[ListSessionsRequest, _Mapping]] = ..., list_sessions_response: _Optional[_Union[ListSessionsResponse, _Mapping]] = ..., close_session_request: _Optional[_Union[CloseSessionRequest, _Mapping]] = ..., close_session_response: _Optional[_Union[CloseSessionResponse, _Mapping]] = ..., session: _Optional[_Union[Session, _Mapping]] = ..., prompt_request: _Optional[_Union[PromptRequest, _Mapping]] = ..., prompt_event: _Optional[_Union[PromptEvent, _Mapping]] = ..., server_status_request: _Optional[_Union[ServerStatusRequest, _Mapping]] = ..., server_status: _Optional[_Union[ServerStatus, _Mapping]] = ..., session_status_request: _Optional[_Union[SessionStatusRequest, _Mapping]] = ..., session_status: _Optional[_Union[SessionStatus, _Mapping]] = ..., health_check_request: _Optional[_Union[HealthCheckRequest, _Mapping]] = ..., health_check_response: _Optional[_Union[HealthCheckResponse, _Mapping]] = ..., worker_message: _Optional[_Union[WorkerMessage, _Mapping]] = ..., worker_command: _Optional[_Union[WorkerCommand, _Mapping]] = ..., attach_request: _Optional[_Union[AttachRequest, _Mapping]] = ..., list_turns_request: _Optional[_Union[ListTurnsRequest, _Mapping]] = ..., list_turns_response: _Optional[_Union[ListTurnsResponse, _Mapping]] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ["nonce"]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ["nonce"]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class PromptEvent(_message.Message):
    __slots__ = ["accepted", "attached", "finished", "output", "started"]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    accepted: TurnAccepted
    attached: TurnAttached
    finished: TurnFinished
    output: OutputChunk
    started: TurnStarted
    def __init__(self, accepted: _Optional[_Union[TurnAccepted, _Mapping]] = ..., started: _Optional[_Union[TurnStarted, _Mapping]] = ..., output: _Optional[_Union[OutputChunk, _Mapping]] = ..., finished: _Optional[_Union[TurnFinished, _Mapping]] = ..., attached: _Optional[_Union[TurnAttached, _Mapping]] = ...) -> None: ...

class PromptRequest(_message.Message):
    __slots__ = ["cancel_on_disconnect", "prompt", "session_id", "when_busy"]
    CANCEL_ON_DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WHEN_BUSY_FIELD_NUMBER: _ClassVar[int]
    cancel_on_disconnect: bool
    prompt: str
    session_id: str
    when_busy: BusyPolicy
    def __init__(self, session_id: _Optional[str] = ..., prompt: _Optional[str] = ..., when_busy: _Optional[_Union[BusyPolicy, str]] = ..., cancel_on_disconnect: bool = ...) -> None: ...

class ServerStatus(_message.Message):
    __slots__ = ["connections", "draining", "max_queue_depth", "pid", "protocol_version", "queued_prompts", "server_version", "sessions", "sessions_busy", "sessions_idle", "sessions_omitted", "sessions_total", "state_directory", "store_error", "store_error_since_ms", "turns_completed", "turns_in_flight", "uptime_ms", "worker_queues", "workers"]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    QUEUED_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_BUSY_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_IDLE_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_OMITTED_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STATE_DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    STORE_ERROR_FIELD_NUMBER: _ClassVar[int]
    STORE_ERROR_SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    TURNS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TURNS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    UPTIME_MS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    WORKER_QUEUES_FIELD_NUMBER: _ClassVar[int]
    connections: int
    draining: bool
    max_queue_depth: int
    pid: int
    protocol_version: int
    queued_prompts: int
    server_version: str
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    sessions_busy: int
    sessions_idle: int
    sessions_omitted: int
    sessions_total: int
    state_directory: str
    store_error: str
    store_error_since_ms: int
    turns_completed: int
    turns_in_flight: int
    uptime_ms: int
    worker_queues: _containers.RepeatedCompositeFieldContainer[WorkerQueueInfo]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    def __init__(self, server_version: _Optional[str] = ..., protocol_version: _Optional[int] = ..., uptime_ms: _Optional[int] = ..., connections: _Optional[int] = ..., sessions_total: _Optional[int] = ..., sessions_idle: _Optional[int] = ..., sessions_busy: _Optional[int] = ..., turns_in_flight: _Optional[int] = ..., queued_prompts: _Optional[int] = ..., max_queue_depth: _Optional[int] = ..., turns_completed: _Optional[int] = ..., draining: bool = ..., sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., pid: _Optional[int] = ..., workers: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ..., worker_queues: _Optional[_Iterable[_Union[WorkerQueueInfo, _Mapping]]] = ..., state_directory: _Optional[str] = ..., store_error: _Optional[str] = ..., store_error_since_ms: _Optional[int] = ..., sessions_omitted: _Optional[int] = ...) -> None: ...

class ServerStatusRequest(_message.Message):
    __slots__ = ["include_sessions"]
    INCLUDE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    include_sessions: bool
    def __init__(self, include_sessions: bool = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ["created_at_ms", "current_turn_id", "id", "labels", "labels_omitted", "last_activity_ms", "owner_uid", "queued_prompts", "settings", "state", "turns_completed"]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LABELS_OMITTED_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVITY_MS_FIELD_NUMBER: _ClassVar[int]
    OWNER_UID_FIELD_NUMBER: _ClassVar[int]
    QUEUED_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TURNS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    created_at_ms: int
    current_turn_id: str
    id: str
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    labels_omitted: bool
    last_activity_ms: int
    owner_uid: int
    queued_prompts: int
    settings: SessionSettings
    state: SessionState
    turns_completed: int
    def __init__(self, id: _Optional[str] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., settings: _Optional[_Union[SessionSettings, _Mapping]] = ..., state: _Optional[_Union[SessionState, str]] = ..., created_at_ms: _Optional[int] = ..., last_activity_ms: _Optional[int] = ..., queued_prompts: _Optional[int] = ..., current_turn_id: _Optional[str] = ..., turns_completed: _Optional[int] = ..., owner_uid: _Optional[int] = ..., labels_omitted: bool = ...) -> None: ...

class SessionSettings(_message.Message):
    __slots__ = ["backend", "idle_timeout_ms", "max_queued_prompts", "retain_age_ms", "retain_output_bytes", "retain_turns", "stall_timeout_ms", "turn_deadline_ms", "when_no_worker"]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    RETAIN_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    RETAIN_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    RETAIN_TURNS_FIELD_NUMBER: _ClassVar[int]
    STALL_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    TURN_DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    WHEN_NO_WORKER_FIELD_NUMBER: _ClassVar[int]
    backend: str
    idle_timeout_ms: int
    max_queued_prompts: int
    retain_age_ms: int
    retain_output_bytes: int
    retain_turns: int
    stall_timeout_ms: int
    turn_deadline_ms: int
    when_no_worker: NoWorkerPolicy
    def __init__(self, backend: _Optional[str] = ..., idle_timeout_ms: _Optional[int] = ..., turn_deadline_ms: _Optional[int] = ..., stall_timeout_ms: _Optional[int] = ..., max_queued_prompts: _Optional[int] = ..., when_no_worker: _Optional[_Union[NoWorkerPolicy, str]] = ..., retain_turns: _Optional[int] = ..., retain_output_bytes: _Optional[int] = ..., retain_age_ms: _Optional[int] = ...) -> None: ...

class SessionStatus(_message.Message):
    __slots__ = ["session", "turns"]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    session: Session
    turns: _containers.RepeatedCompositeFieldContainer[TurnSummary]
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., turns: _Optional[_Iterable[_Union[TurnSummary, _Mapping]]] = ...) -> None: ...

class SessionStatusRequest(_message.Message):
    __slots__ = ["session_id"]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class TurnAccepted(_message.Message):
    __slots__ = ["queue_position", "turn_id"]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    queue_position: int
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., queue_position: _Optional[int] = ...) -> None: ...

class TurnAssignment(_message.Message):
    __slots__ = ["deadline_ms", "prompt", "session_id", "session_labels", "turn_id"]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_LABELS_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    deadline_ms: int
    prompt: str
    session_id: str
    session_labels: _containers.RepeatedCompositeFieldContainer[Label]
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., session_id: _Optional[str] = ..., session_labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., prompt: _Optional[str] = ..., deadline_ms: _Optional[int] = ...) -> None: ...

class TurnAttached(_message.Message):
    __slots__ = ["last_sequence", "state", "turn_id"]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    last_sequence: int
    state: TurnState
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., state: _Optional[_Union[TurnState, str]] = ..., last_sequence: _Optional[int] = ...) -> None: ...

class TurnCancellation(_message.Message):
    __slots__ = ["reason", "turn_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TurnFinished(_message.Message):
    __slots__ = ["bytes", "chunks", "duration_ms", "stop_reason", "turn_id"]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    bytes: int
    chunks: int
    duration_ms: int
    stop_reason: str
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., stop_reason: _Optional[str] = ..., chunks: _Optional[int] = ..., bytes: _Optional[int] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class TurnRecord(_message.Message):
    __slots__ = ["output", "output_dropped", "output_omitted", "prompt", "summary"]
    OUTPUT_DROPPED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_OMITTED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    output: bytes
    output_dropped: bool
    output_omitted: bool
    prompt: str
    summary: TurnSummary
    def __init__(self, summary: _Optional[_Union[TurnSummary, _Mapping]] = ..., prompt: _Optional[str] = ..., output: _Optional[bytes] = ..., output_dropped: bool = ..., output_omitted: bool = ...) -> None: ...

class TurnStarted(_message.Message):
    __slots__ = ["turn_id"]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ...) -> None: ...

class TurnSummary(_message.Message):
    __slots__ = ["accepted_at_ms", "bytes", "chunks", "code", "ended_at_ms", "message", "prompt_preview", "started_at_ms", "state", "stop_reason", "turn_id"]
    ACCEPTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    accepted_at_ms: int
    bytes: int
    chunks: int
    code: int
    ended_at_ms: int
    message: str
    prompt_preview: str
    started_at_ms: int
    state: TurnState
    stop_reason: str
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., state: _Optional[_Union[TurnState, str]] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., stop_reason: _Optional[str] = ..., chunks: _Optional[int] = ..., bytes: _Optional[int] = ..., started_at_ms: _Optional[int] = ..., ended_at_ms: _Optional[int] = ..., prompt_preview: _Optional[str] = ..., accepted_at_ms: _Optional[int] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ["connection_id", "handshake_timeout_ms", "idle_connection_timeout_ms", "max_buffered_output_bytes", "max_concurrent_calls", "max_connections", "max_connections_per_uid", "max_frame_size", "max_queued_prompts", "max_sessions_per_uid", "peer_is_admin", "peer_may_register_workers", "peer_uid", "server_name", "server_version", "version"]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    HANDSHAKE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    IDLE_CONNECTION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_BUFFERED_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_CALLS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONNECTIONS_PER_UID_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_PER_UID_FIELD_NUMBER: _ClassVar[int]
    PEER_IS_ADMIN_FIELD_NUMBER: _ClassVar[int]
    PEER_MAY_REGISTER_WORKERS_FIELD_NUMBER: _ClassVar[int]
    PEER_UID_FIELD_NUMBER: _ClassVar[int]
    SERVER_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    connection_id: int
    handshake_timeout_ms: int
    idle_connection_timeout_ms: int
    max_buffered_output_bytes: int
    max_concurrent_calls: int
    max_connections: int
    max_connections_per_uid: int
    max_frame_size: int
    max_queued_prompts: int
    max_sessions_per_uid: int
    peer_is_admin: bool
    peer_may_register_workers: bool
    peer_uid: int
    server_name: str
    server_version: str
    version: int
    def __init__(self, version: _Optional[int] = ..., server_name: _Optional[str] = ..., server_version: _Optional[str] = ..., max_frame_size: _Optional[int] = ..., max_concurrent_calls: _Optional[int] = ..., connection_id: _Optional[int] = ..., max_queued_prompts: _Optional[int] = ..., max_connections: _Optional[int] = ..., max_connections_per_uid: _Optional[int] = ..., max_sessions_per_uid: _Optional[int] = ..., handshake_timeout_ms: _Optional[int] = ..., idle_connection_timeout_ms: _Optional[int] = ..., max_buffered_output_bytes: _Optional[int] = ..., peer_uid: _Optional[int] = ..., peer_is_admin: bool = ..., peer_may_register_workers: bool = ...) -> None: ...

class WorkerCommand(_message.Message):
    __slots__ = ["assignment", "cancellation", "heartbeat", "registered"]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CANCELLATION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    assignment: TurnAssignment
    cancellation: TurnCancellation
    heartbeat: WorkerHeartbeat
    registered: WorkerRegistered
    def __init__(self, registered: _Optional[_Union[WorkerRegistered, _Mapping]] = ..., assignment: _Optional[_Union[TurnAssignment, _Mapping]] = ..., cancellation: _Optional[_Union[TurnCancellation, _Mapping]] = ..., heartbeat: _Optional[_Union[WorkerHeartbeat, _Mapping]] = ...) -> None: ...

class WorkerHeartbeat(_message.Message):
    __slots__ = ["nonce"]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ["capacity", "connected_at_ms", "display_name", "in_flight", "labels", "task_queue", "turns_served", "worker_id"]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TASK_QUEUE_FIELD_NUMBER: _ClassVar[int]
    TURNS_SERVED_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    capacity: int
    connected_at_ms: int
    display_name: str
    in_flight: int
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    task_queue: str
    turns_served: int
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., task_queue: _Optional[str] = ..., display_name: _Optional[str] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., capacity: _Optional[int] = ..., in_flight: _Optional[int] = ..., turns_served: _Optional[int] = ..., connected_at_ms: _Optional[int] = ...) -> None: ...

class WorkerMessage(_message.Message):
    __slots__ = ["failed", "finished", "heartbeat_ack", "output", "register"]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    failed: WorkerTurnFailed
    finished: WorkerTurnFinished
    heartbeat_ack: WorkerHeartbeat
    output: WorkerOutput
    register: WorkerRegister
    def __init__(self, register: _Optional[_Union[WorkerRegister, _Mapping]] = ..., output: _Optional[_Union[WorkerOutput, _Mapping]] = ..., finished: _Optional[_Union[WorkerTurnFinished, _Mapping]] = ..., failed: _Optional[_Union[WorkerTurnFailed, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[WorkerHeartbeat, _Mapping]] = ...) -> None: ...

class WorkerOutput(_message.Message):
    __slots__ = ["data", "turn_id"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class WorkerQueueInfo(_message.Message):
    __slots__ = ["task_queue", "waiting_turns", "workers"]
    TASK_QUEUE_FIELD_NUMBER: _ClassVar[int]
    WAITING_TURNS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    task_queue: str
    waiting_turns: int
    workers: int
    def __init__(self, task_queue: _Optional[str] = ..., workers: _Optional[int] = ..., waiting_turns: _Optional[int] = ...) -> None: ...

class WorkerRegister(_message.Message):
    __slots__ = ["capacity", "display_name", "labels", "task_queue"]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TASK_QUEUE_FIELD_NUMBER: _ClassVar[int]
    capacity: int
    display_name: str
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    task_queue: str
    def __init__(self, task_queue: _Optional[str] = ..., capacity: _Optional[int] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., display_name: _Optional[str] = ...) -> None: ...

class WorkerRegistered(_message.Message):
    __slots__ = ["heartbeat_interval_ms", "heartbeat_timeout_ms", "worker_id"]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_ms: int
    heartbeat_timeout_ms: int
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., heartbeat_timeout_ms: _Optional[int] = ...) -> None: ...

class WorkerTurnFailed(_message.Message):
    __slots__ = ["code", "message", "turn_id"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class WorkerTurnFinished(_message.Message):
    __slots__ = ["stop_reason", "turn_id"]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    stop_reason: str
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ..., stop_reason: _Optional[str] = ...) -> None: ...

class SessionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class NoWorkerPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class BusyPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class TurnState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ServingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
