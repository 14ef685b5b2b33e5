/*
 * switchboard.h: a small blocking C client of the Switchboard broker.
 *
 * One `sb_client` is one connection (Unix stream socket, handshake done by
 * sb_connect). Every call is a function that blocks until the server answers;
 * any number of calls may be open on one connection at once, from one thread
 * (several prompt iterators) or from several threads: the library multiplexes
 * them by call id and never starts threads of its own.
 *
 * Errors: every call returns a gRPC status code (0 = SB_OK) and, when `err` is
 * not NULL, fills it with the code and a message. Codes are the server's
 * (CallEnd / GoAway) or local ones: UNAVAILABLE (no server, connection lost),
 * DEADLINE_EXCEEDED (a timeout passed), RESOURCE_EXHAUSTED (a frame over a
 * limit), INVALID_ARGUMENT (bad arguments), INTERNAL (out of memory, a reply
 * the library does not understand).
 *
 * Results are plain structs that own their strings; free them with the
 * matching sb_*_clear function. Output strings are never NULL.
 *
 * Wire protocol: docs/PROTOCOL.md and proto/switchboard/v1/switchboard.proto.
 */
#ifndef SWITCHBOARD_H
#define SWITCHBOARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Status codes and errors
 * ------------------------------------------------------------------------- */

/* gRPC's canonical status codes, same names and numbers. */
typedef enum sb_code {
    SB_OK = 0,
    SB_CANCELLED = 1,
    SB_UNKNOWN = 2,
    SB_INVALID_ARGUMENT = 3,
    SB_DEADLINE_EXCEEDED = 4,
    SB_NOT_FOUND = 5,
    SB_ALREADY_EXISTS = 6,
    SB_PERMISSION_DENIED = 7,
    SB_RESOURCE_EXHAUSTED = 8,
    SB_FAILED_PRECONDITION = 9,
    SB_ABORTED = 10,
    SB_OUT_OF_RANGE = 11,
    SB_UNIMPLEMENTED = 12,
    SB_INTERNAL = 13,
    SB_UNAVAILABLE = 14,
    SB_DATA_LOSS = 15,
    SB_UNAUTHENTICATED = 16
} sb_code;

typedef struct sb_error {
    int code;           /* an sb_code */
    char message[512];  /* NUL-terminated, possibly truncated */
} sb_error;

/* "OK", "CANCELLED", ... (gRPC names); "UNKNOWN_CODE" outside 0..16. */
const char *sb_code_name(int code);

/*
 * Every string field of the protocol must be valid UTF-8 without a NUL byte; the
 * server answers INVALID_ARGUMENT naming the field otherwise, and so does this
 * library before sending: each request string is checked for UTF-8 ("prompt is
 * not valid UTF-8"). A C string cannot carry a NUL (it ends there), so bytes of
 * a known length (a prompt read from a file or stdin) should be checked with
 * sb_check_string() before they are passed as a string: it returns SB_OK, or
 * SB_INVALID_ARGUMENT with "FIELD contains a NUL byte" / "FIELD is not valid
 * UTF-8" in `err`.
 */
int sb_check_string(const void *bytes, size_t len, const char *field, sb_error *err);

/* ---------------------------------------------------------------------------
 * Connecting
 * ------------------------------------------------------------------------- */

typedef struct sb_options {
    const char *client_name;     /* sent in Hello; default "switchboard-c" */
    uint32_t max_frame_size;     /* largest frame accepted from the server; 0 = 4 MiB */
    uint32_t min_version;        /* protocol versions offered in Hello; 0 = 1 */
    uint32_t max_version;        /* 0 = 1 */
    int connect_timeout_ms;      /* connect + handshake; default 5000, <= 0 = no limit */
    uint64_t call_timeout_ms;    /* timeout_ms of every call without its own; 0 = none */
    int recv_timeout_ms;         /* longest wait for any frame of a call; 0 = no limit */
    size_t max_buffered_bytes;   /* frames held for a call nobody reads; default 16 MiB */
} sb_options;

/* Fills `options` with the defaults above. */
void sb_options_init(sb_options *options);

typedef struct sb_client sb_client;

/* The server's Welcome. */
typedef struct sb_welcome {
    uint32_t version;
    char *server_name;
    char *server_version;
    uint32_t max_frame_size;
    uint32_t max_concurrent_calls;
    uint64_t connection_id;
    uint32_t max_queued_prompts;
    /* Added in the second protocol revision (appended: the struct is only ever
     * read through sb_client_welcome). The limits the server enforces, 0 = none. */
    uint32_t max_connections;
    uint32_t max_connections_per_uid;
    uint32_t max_sessions_per_uid;
    uint64_t handshake_timeout_ms;
    uint64_t idle_connection_timeout_ms;
    uint64_t max_buffered_output_bytes;
    /* Who the kernel says this client is (SO_PEERCRED) and what the server's
     * policy lets it do. Sessions of other uids answer PERMISSION_DENIED. */
    uint32_t peer_uid;
    int peer_is_admin;
    int peer_may_register_workers;
} sb_welcome;

/*
 * The default socket path, the same rule as the `switchboard` CLI:
 * $SWITCHBOARD_SOCKET, else $XDG_RUNTIME_DIR/switchboard.sock, else
 * /run/switchboard/switchboard.sock. Returns 0, or -1 when `size` is too small.
 */
int sb_default_socket_path(char *buffer, size_t size);

/*
 * Connects to `socket_path` (NULL = sb_default_socket_path) and performs the
 * handshake. `options` may be NULL. Returns NULL on failure with `err` filled:
 * UNAVAILABLE when no server listens there, the GoAway's code when the server
 * refuses the handshake (FAILED_PRECONDITION for an unsupported version).
 */
sb_client *sb_connect(const char *socket_path, const sb_options *options, sb_error *err);

/* Closes the connection and frees the client. Free every sb_call first. */
void sb_close(sb_client *client);

const sb_welcome *sb_client_welcome(const sb_client *client);

/* Changes the client's call and receive timeouts (see sb_options). */
void sb_set_timeouts(sb_client *client, uint64_t call_timeout_ms, int recv_timeout_ms);

/* ---------------------------------------------------------------------------
 * Messages (plain copies of the .proto messages)
 * ------------------------------------------------------------------------- */

typedef enum sb_session_state {
    SB_SESSION_UNSPECIFIED = 0,
    SB_SESSION_IDLE = 1,
    SB_SESSION_BUSY = 2,
    SB_SESSION_CLOSED = 3
} sb_session_state;

typedef enum sb_turn_state {
    SB_TURN_UNSPECIFIED = 0,
    SB_TURN_QUEUED = 1,
    SB_TURN_RUNNING = 2,
    SB_TURN_FINISHED = 3
} sb_turn_state;

typedef enum sb_serving_status {
    SB_SERVING_UNKNOWN = 0,
    SB_SERVING = 1,
    SB_NOT_SERVING = 2
} sb_serving_status;

/* Input key/value pair (labels, label selectors). */
typedef struct sb_kv {
    const char *key;
    const char *value;
} sb_kv;

/* Output label, owned by its session. */
typedef struct sb_label {
    char *key;
    char *value;
} sb_label;

typedef struct sb_settings {
    char *backend;
    uint64_t idle_timeout_ms;
    uint64_t turn_deadline_ms;
    uint64_t stall_timeout_ms;
    uint32_t max_queued_prompts;
} sb_settings;

typedef struct sb_session {
    char *id;
    sb_label *labels;
    size_t n_labels;
    sb_settings settings;
    int state;                 /* sb_session_state */
    uint64_t created_at_ms;    /* Unix epoch ms */
    uint64_t last_activity_ms;
    uint32_t queued_prompts;
    char *current_turn_id;     /* "" when idle */
    uint64_t turns_completed;
    uint32_t owner_uid;
    int labels_omitted;        /* 1: the answer left the labels out (too large for the frame) */
} sb_session;
void sb_session_clear(sb_session *session);

typedef struct sb_session_list {
    sb_session *sessions;
    size_t n_sessions;
    char *next_page_token;     /* "" on the last page */
} sb_session_list;
void sb_session_list_clear(sb_session_list *list);

typedef struct sb_close_result {
    sb_session session;
    uint32_t cancelled_turns;
    uint32_t rejected_prompts;
} sb_close_result;
void sb_close_result_clear(sb_close_result *result);

typedef struct sb_server_status {
    char *server_version;
    uint32_t protocol_version;
    uint64_t uptime_ms;
    uint32_t connections;
    uint32_t sessions_total;
    uint32_t sessions_idle;
    uint32_t sessions_busy;
    uint32_t turns_in_flight;
    uint32_t queued_prompts;
    uint32_t max_queue_depth;
    uint64_t turns_completed;
    int draining;
    sb_session *sessions;      /* only with include_sessions: as many as fit in one frame */
    size_t n_sessions;
    uint32_t pid;
    uint32_t sessions_omitted; /* sessions left out of `sessions` (sb_list_sessions has them all) */
} sb_server_status;
void sb_server_status_clear(sb_server_status *status);

typedef struct sb_turn_summary {
    char *turn_id;
    int state;                 /* sb_turn_state */
    uint32_t code;             /* final status code when finished */
    char *message;
    char *stop_reason;
    uint64_t chunks;
    uint64_t bytes;
    uint64_t started_at_ms;
    uint64_t ended_at_ms;
    char *prompt_preview;
} sb_turn_summary;

typedef struct sb_session_status {
    sb_session session;
    sb_turn_summary *turns;    /* running, queued, then recent finished ones */
    size_t n_turns;
} sb_session_status;
void sb_session_status_clear(sb_session_status *status);

/* ---------------------------------------------------------------------------
 * Unary calls. All return an sb_code; `out` is filled only on SB_OK.
 * ------------------------------------------------------------------------- */

typedef struct sb_create_request {
    const char *session_id;    /* NULL or "" = server-chosen */
    const sb_kv *labels;
    size_t n_labels;
    const char *backend;       /* NULL = server default ("echo", "exec", "worker:Q") */
    uint64_t idle_timeout_ms;  /* 0 = server default, same for the next three */
    uint64_t turn_deadline_ms;
    uint64_t stall_timeout_ms;
    uint32_t max_queued_prompts;
} sb_create_request;

/* `request` may be NULL (all defaults). */
int sb_create_session(sb_client *client, const sb_create_request *request, sb_session *out, sb_error *err);
int sb_get_session(sb_client *client, const char *session_id, sb_session *out, sb_error *err);

typedef struct sb_list_request {
    const sb_kv *label_selector;
    size_t n_label_selector;
    uint32_t page_size;        /* 0 = server default */
    const char *page_token;    /* NULL or "" = first page */
} sb_list_request;

/* `request` may be NULL (first page of everything). */
int sb_list_sessions(sb_client *client, const sb_list_request *request, sb_session_list *out, sb_error *err);
/* `reason` and `out` may be NULL. */
int sb_close_session(sb_client *client, const char *session_id, const char *reason, sb_close_result *out, sb_error *err);
int sb_get_server_status(sb_client *client, int include_sessions, sb_server_status *out, sb_error *err);
int sb_get_session_status(sb_client *client, const char *session_id, sb_session_status *out, sb_error *err);
/* `*status` becomes SB_SERVING or SB_NOT_SERVING (draining). */
int sb_health(sb_client *client, int *status, sb_error *err);
/* One Ping/Pong round trip (liveness). */
int sb_ping(sb_client *client, sb_error *err);

/* ---------------------------------------------------------------------------
 * Prompts (server streaming)
 * ------------------------------------------------------------------------- */

typedef struct sb_prompt_request {
    const char *session_id;
    const char *prompt;
    int reject_if_busy;        /* 0 = wait in the session's queue; 1 = FAILED_PRECONDITION at once */
    uint64_t timeout_ms;       /* the call's deadline, queueing included; 0 = the client's call_timeout_ms */
    /* 0 (default): the turn runs on when this connection goes away, and
     * sb_attach can follow it later; 1: a lost connection cancels the turn. */
    int cancel_on_disconnect;
} sb_prompt_request;

typedef enum sb_event_kind {
    SB_EVENT_ACCEPTED = 1,
    SB_EVENT_STARTED = 2,
    SB_EVENT_OUTPUT = 3,
    SB_EVENT_FINISHED = 4,
    SB_EVENT_ATTACHED = 5      /* first event of an attach */
} sb_event_kind;

/* One event; the pointers are valid until the next sb_call_next / sb_call_free
 * (or, in a callback, until the callback returns). */
typedef struct sb_prompt_event {
    int kind;                  /* sb_event_kind */
    const char *turn_id;       /* accepted, started, finished, attached */
    uint32_t queue_position;   /* accepted: 0 = runs now */
    uint64_t sequence;         /* output: 1, 2, 3, ... */
    const uint8_t *data;       /* output bytes (not NUL-terminated) */
    size_t len;
    const char *stop_reason;   /* finished */
    uint64_t chunks;           /* finished */
    uint64_t bytes;            /* finished */
    uint64_t duration_ms;      /* finished */
    int turn_state;            /* attached: sb_turn_state of the turn followed */
    uint64_t last_sequence;    /* attached: highest sequence produced so far */
} sb_prompt_event;

/* Called for every event; return non-zero to cancel the turn. */
typedef int (*sb_event_fn)(const sb_prompt_event *event, void *user);

/*
 * Sends a prompt and calls `on_event` for each event until the call ends.
 * Returns the call's final status: SB_OK, CANCELLED (the callback asked, the
 * session was closed), DEADLINE_EXCEEDED, FAILED_PRECONDITION (busy session
 * with reject_if_busy), NOT_FOUND, ...
 */
int sb_prompt(sb_client *client, const sb_prompt_request *request, sb_event_fn on_event, void *user, sb_error *err);

/* Iterator form. */
typedef struct sb_call sb_call;

/* Starts the prompt call; NULL on failure (err filled). */
sb_call *sb_prompt_start(sb_client *client, const sb_prompt_request *request, sb_error *err);

/*
 * Waits for the next event. Returns 1 with `*event` filled, 0 when the call
 * ended OK, or -1 when it ended with an error (`err` filled, code != OK).
 */
int sb_call_next(sb_call *call, sb_prompt_event *event, sb_error *err);

/* Asks the server to cancel the call (it then ends with CANCELLED). Safe from
 * any thread while another thread is blocked in sb_call_next. */
void sb_call_cancel(sb_call *call);

/* The call's id on the connection. */
uint64_t sb_call_id(const sb_call *call);

/* Frees the call; an open call is cancelled first. */
void sb_call_free(sb_call *call);

/* ---------------------------------------------------------------------------
 * Attach (server streaming): follow a turn again, e.g. after a lost connection
 * ------------------------------------------------------------------------- */

typedef struct sb_attach_request {
    const char *session_id;
    const char *turn_id;       /* NULL or "" = the running turn, else the most recent one */
    uint64_t after_sequence;   /* replay chunks with sequence > this; 0 = from the first */
    uint64_t timeout_ms;       /* bounds the attach (not the turn); 0 = the client's call_timeout_ms */
} sb_attach_request;

/*
 * Follows a turn: events are SB_EVENT_ATTACHED {turn_id, turn_state,
 * last_sequence}, then SB_EVENT_OUTPUT for every kept chunk with sequence >
 * after_sequence (replayed, then live), then SB_EVENT_FINISHED. The call ends
 * with the turn's status (OK, CANCELLED, DEADLINE_EXCEEDED, ABORTED for a turn
 * a server restart interrupted, ...), or NOT_FOUND (no such session or turn,
 * or no turns), PERMISSION_DENIED (another uid's session), OUT_OF_RANGE
 * (retention dropped the output asked for). Cancelling (a non-zero return from
 * the callback, sb_call_cancel, sb_call_free) ends only the attach, never the
 * turn. Same callback and iterator as the prompt calls.
 */
int sb_attach(sb_client *client, const sb_attach_request *request, sb_event_fn on_event, void *user, sb_error *err);
sb_call *sb_attach_start(sb_client *client, const sb_attach_request *request, sb_error *err);

/* ---------------------------------------------------------------------------
 * Turn history: /switchboard.v1.Sessions/ListTurns
 * ------------------------------------------------------------------------- */

typedef struct sb_list_turns_request {
    const char *session_id;
    uint32_t page_size;        /* 0 = server default (20); the server caps it at 100 */
    const char *page_token;    /* NULL or "" = from the oldest kept turn */
    int include_output;        /* 1 = each record carries its whole prompt and kept output */
} sb_list_turns_request;

typedef struct sb_turn_record {
    sb_turn_summary summary;
    uint64_t accepted_at_ms;
    char *prompt;              /* the whole prompt (include_output only), else "" */
    uint8_t *output;           /* chunks concatenated (include_output only); never NULL, */
    size_t output_len;         /*   NUL-terminated after output_len for convenience */
    int output_dropped;        /* retention removed this turn's output */
    int output_omitted;        /* too large for one page (the client's max frame size): output */
                               /*   left out (prompt too if it alone does not fit); use sb_attach */
} sb_turn_record;

typedef struct sb_turn_list {
    sb_turn_record *turns;     /* oldest first */
    size_t n_turns;
    char *next_page_token;     /* "" on the last page */
} sb_turn_list;
void sb_turn_list_clear(sb_turn_list *list);

/* One page of a session's kept turns; pass next_page_token back as page_token
 * for the next one. NOT_FOUND for an unknown session, INVALID_ARGUMENT for a
 * page token the server did not issue. */
int sb_list_turns(sb_client *client, const sb_list_turns_request *request, sb_turn_list *out, sb_error *err);

#ifdef __cplusplus
}
#endif

#endif /* SWITCHBOARD_H */
