/*
 * C runner of the conformance suite (conformance/scenarios.json).
 *
 *   switchboard-c-conformance --socket PATH --scenario NAME [key=value ...]
 *
 * Runs one scenario with libswitchboard against the server at PATH.
 * Exit 0 = pass, 1 = fail (reason on stderr), 2 = unknown scenario / usage.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include "internal.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *socket_path;
static const char *scenario;
static char prefix[128] = "c";
static int n_args;
static char *keys[64];
static char *values[64];

#define FAIL(...)                                                  \
    do {                                                           \
        fprintf(stderr, "%s: ", scenario);                         \
        fprintf(stderr, __VA_ARGS__);                              \
        fprintf(stderr, " (runner.c:%d)\n", __LINE__);             \
        exit(1);                                                   \
    } while (0)
#define CHECK(cond, ...)            \
    do {                            \
        if (!(cond)) FAIL(__VA_ARGS__); \
    } while (0)

/* A call's code must be OK. */
#define OK(call, err)                                                                              \
    do {                                                                                           \
        if ((call) != SB_OK) FAIL("%s: %s: %s", #call, sb_code_name((err).code), (err).message);  \
    } while (0)

/* A call's code must be `want` (a code name). */
#define EXPECT_CODE(call, want, err)                                                               \
    do {                                                                                           \
        int got_ = (call);                                                                         \
        if (strcmp(sb_code_name(got_), (want)) != 0)                                              \
            FAIL("%s: got %s (%s), want %s", #call, sb_code_name(got_), (err).message, (want));   \
    } while (0)

static const char *arg(const char *key) {
    for (int i = 0; i < n_args; i++) {
        if (strcmp(keys[i], key) == 0) return values[i];
    }
    FAIL("missing argument %s", key);
}

static const char *expect(const char *key) {
    char full[128];
    snprintf(full, sizeof full, "expect.%s", key);
    return arg(full);
}

static long num(const char *s) {
    return strtol(s, NULL, 10);
}

static const char *sid(const char *suffix) {
    static char buf[8][256];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, 256, "%s-%s", prefix, suffix);
    return b;
}

static char *words(long n) {
    char *s = malloc((size_t)n * 12 + 1);
    if (!s) FAIL("out of memory");
    s[0] = '\0';
    size_t len = 0;
    for (long i = 1; i <= n; i++) len += (size_t)sprintf(s + len, "%sw%ld", i > 1 ? " " : "", i);
    return s;
}

static sb_client *connect_client(void) {
    sb_options o;
    sb_options_init(&o);
    o.client_name = "conformance-c";
    o.recv_timeout_ms = 30000;
    sb_error err;
    sb_client *c = sb_connect(socket_path, &o, &err);
    if (!c) FAIL("connect: %s: %s", sb_code_name(err.code), err.message);
    return c;
}

static void create(sb_client *c, const char *id) {
    sb_create_request r = { .session_id = id };
    sb_session s;
    sb_error err;
    OK(sb_create_session(c, &r, &s, &err), err);
    sb_session_clear(&s);
}

static void close_session(sb_client *c, const char *id) {
    sb_error err;
    OK(sb_close_session(c, id, "conformance", NULL, &err), err);
}

/* Collects a whole prompt's output into a string; returns the call's code. */
typedef struct output {
    char *data;
    size_t len;
} output;

static void append(output *o, const uint8_t *data, size_t len) {
    char *grown = realloc(o->data, o->len + len + 1);
    if (!grown) FAIL("out of memory");
    o->data = grown;
    memcpy(o->data + o->len, data, len);
    o->len += len;
    o->data[o->len] = '\0';
}

static int drain(sb_call *call, output *out, sb_error *err) {
    sb_prompt_event e;
    int r;
    while ((r = sb_call_next(call, &e, err)) == 1) {
        if (e.kind == SB_EVENT_OUTPUT && out) append(out, e.data, e.len);
    }
    return r == 0 ? SB_OK : err->code;
}

static sb_call *start_prompt(sb_client *c, const char *id, const char *text, int reject, uint64_t timeout_ms) {
    sb_prompt_request r = { .session_id = id, .prompt = text, .reject_if_busy = reject, .timeout_ms = timeout_ms };
    sb_error err;
    sb_call *call = sb_prompt_start(c, &r, &err);
    if (!call) FAIL("prompt start: %s: %s", sb_code_name(err.code), err.message);
    return call;
}

/* Runs a whole prompt; returns its code. */
static int run_prompt(sb_client *c, const char *id, const char *text, output *out, sb_error *err) {
    sb_call *call = start_prompt(c, id, text, 0, 0);
    int code = drain(call, out, err);
    sb_call_free(call);
    return code;
}

static void next_event(sb_call *call, int kind, sb_prompt_event *e) {
    sb_error err;
    int r = sb_call_next(call, e, &err);
    if (r != 1) FAIL("expected an event, got the end: %s: %s", sb_code_name(err.code), err.message);
    if (e->kind != kind) FAIL("event kind %d, want %d", e->kind, kind);
}

/* Raw socket helpers (for the frame-before-Hello scenario). */
static int raw_connect(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) FAIL("raw connect failed");
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int read_exact(int fd, uint8_t *buf, size_t len) {
    size_t have = 0;
    while (have < len) {
        ssize_t n = read(fd, buf + have, len - have);
        if (n <= 0) return -1;
        have += (size_t)n;
    }
    return 0;
}

/* Reads one frame; NULL at EOF. */
static Switchboard__V1__Frame *raw_read(int fd) {
    uint8_t header[4];
    if (read_exact(fd, header, 4) != 0) return NULL;
    uint32_t len = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
    if (len > 4u * 1024 * 1024) FAIL("frame of %u bytes", len);
    uint8_t *body = malloc(len ? len : 1);
    if (!body || read_exact(fd, body, len) != 0) FAIL("truncated frame");
    Switchboard__V1__Frame *f = switchboard__v1__frame__unpack(NULL, len, body);
    free(body);
    if (!f) FAIL("undecodable frame from the server");
    return f;
}

/* ------------------------------------------------------------------------- */
/* Scenarios                                                                 */

static void handshake(void) {
    sb_client *c = connect_client();
    const sb_welcome *w = sb_client_welcome(c);
    CHECK(w->version == (uint32_t)num(expect("version")), "version %u", w->version);
    CHECK(strcmp(w->server_name, expect("server_name")) == 0, "server_name %s", w->server_name);
    CHECK(w->max_frame_size > 0 && w->max_concurrent_calls > 0, "limits are zero");
    sb_close(c);
}

static void handshake_unsupported_version(void) {
    sb_options o;
    sb_options_init(&o);
    o.min_version = (uint32_t)num(arg("min_version"));
    o.max_version = (uint32_t)num(arg("max_version"));
    sb_error err;
    sb_client *c = sb_connect(socket_path, &o, &err);
    CHECK(c == NULL, "connected");
    CHECK(strcmp(sb_code_name(err.code), expect("code")) == 0, "got %s: %s", sb_code_name(err.code), err.message);
    CHECK(strstr(err.message, expect("message_contains")) != NULL, "message %s", err.message);
}

static void handshake_hello_first(void) {
    int fd = raw_connect();
    Switchboard__V1__Ping ping = SWITCHBOARD__V1__PING__INIT;
    ping.nonce = 1;
    Switchboard__V1__Frame f = SWITCHBOARD__V1__FRAME__INIT;
    f.kind_case = SWITCHBOARD__V1__FRAME__KIND_PING;
    f.ping = &ping;
    size_t len;
    uint8_t *buf = sb__pack_frame(&f, &len);
    CHECK(buf && write(fd, buf, len) == (ssize_t)len, "write");
    free(buf);
    Switchboard__V1__Frame *answer = raw_read(fd);
    CHECK(answer && answer->kind_case == SWITCHBOARD__V1__FRAME__KIND_GO_AWAY, "no GoAway");
    CHECK(strcmp(sb_code_name((int)answer->go_away->code), expect("code")) == 0, "GoAway %s",
          sb_code_name((int)answer->go_away->code));
    switchboard__v1__frame__free_unpacked(answer, NULL);
    Switchboard__V1__Frame *more = raw_read(fd);
    CHECK(more == NULL, "connection still open after GoAway");
    close(fd);
}

static void health(void) {
    sb_client *c = connect_client();
    sb_error err;
    int status;
    OK(sb_health(c, &status, &err), err);
    CHECK(status == SB_SERVING && strcmp(expect("status"), "SERVING") == 0, "status %d", status);
    sb_close(c);
}

static void ping(void) {
    sb_client *c = connect_client();
    sb_error err;
    OK(sb_ping(c, &err), err);
    OK(sb_ping(c, &err), err);
    sb_close(c);
}

static void sessions_create_get_close(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("s");
    sb_kv label = { arg("label_key"), arg("label_value") };
    sb_create_request r = { .session_id = id, .labels = &label, .n_labels = 1, .backend = arg("backend") };
    sb_session s;
    OK(sb_create_session(c, &r, &s, &err), err);
    CHECK(strcmp(s.id, id) == 0, "id %s", s.id);
    CHECK(s.n_labels == 1 && strcmp(s.labels[0].key, label.key) == 0 && strcmp(s.labels[0].value, label.value) == 0,
          "labels");
    CHECK(strcmp(s.settings.backend, r.backend) == 0, "backend %s", s.settings.backend);
    CHECK(s.settings.idle_timeout_ms > 0 && s.settings.turn_deadline_ms > 0, "effective settings not filled in");
    CHECK(s.state == SB_SESSION_IDLE && strcmp(expect("state"), "IDLE") == 0, "state %d", s.state);
    sb_session_clear(&s);
    OK(sb_get_session(c, id, &s, &err), err);
    CHECK(strcmp(s.id, id) == 0 && s.n_labels == 1, "get");
    sb_session_clear(&s);
    sb_close_result closed;
    OK(sb_close_session(c, id, "conformance", &closed, &err), err);
    CHECK(strcmp(closed.session.id, id) == 0, "close");
    sb_close_result_clear(&closed);
    EXPECT_CODE(sb_get_session(c, id, &s, &err), expect("after_close"), err);
    EXPECT_CODE(sb_close_session(c, id, NULL, NULL, &err), expect("after_close"), err);
    sb_close(c);
}

static void sessions_server_chosen_id(void) {
    sb_client *c = connect_client();
    sb_error err;
    sb_session s;
    OK(sb_create_session(c, NULL, &s, &err), err);
    regex_t re;
    CHECK(regcomp(&re, expect("id_pattern"), REG_EXTENDED | REG_NOSUB) == 0, "bad pattern");
    CHECK(regexec(&re, s.id, 0, NULL, 0) == 0, "id %s", s.id);
    regfree(&re);
    close_session(c, s.id);
    sb_session_clear(&s);
    sb_close(c);
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sessions_list(void) {
    sb_client *c = connect_client();
    sb_error err;
    long count = num(arg("count"));
    CHECK(count > 0 && count <= 16, "count");
    sb_kv label = { "conformance", prefix };
    const char *ids[16];
    char names[16][256];
    for (long i = 0; i < count; i++) {
        snprintf(names[i], sizeof names[i], "%s-l%ld", prefix, i);
        ids[i] = names[i];
        sb_create_request r = { .session_id = ids[i], .labels = &label, .n_labels = 1 };
        sb_session s;
        OK(sb_create_session(c, &r, &s, &err), err);
        sb_session_clear(&s);
    }
    create(c, sid("unlabelled"));
    qsort(ids, (size_t)count, sizeof ids[0], compare_strings);
    sb_list_request lr = { .label_selector = &label, .n_label_selector = 1 };
    sb_session_list all;
    OK(sb_list_sessions(c, &lr, &all, &err), err);
    CHECK(all.n_sessions == (size_t)count, "%zu sessions", all.n_sessions);
    for (long i = 0; i < count; i++) CHECK(strcmp(all.sessions[i].id, ids[i]) == 0, "order at %ld", i);
    CHECK(all.next_page_token[0] == '\0', "token on the only page");
    sb_session_list_clear(&all);
    lr.page_size = (uint32_t)num(arg("page_size"));
    sb_session_list first, second;
    OK(sb_list_sessions(c, &lr, &first, &err), err);
    CHECK(first.n_sessions == (size_t)num(expect("first_page")) && first.next_page_token[0], "first page");
    lr.page_token = first.next_page_token;
    OK(sb_list_sessions(c, &lr, &second, &err), err);
    CHECK(second.n_sessions == (size_t)num(expect("second_page")) && !second.next_page_token[0], "second page");
    for (size_t i = 0; i < first.n_sessions; i++) CHECK(strcmp(first.sessions[i].id, ids[i]) == 0, "page 1");
    for (size_t i = 0; i < second.n_sessions; i++)
        CHECK(strcmp(second.sessions[i].id, ids[first.n_sessions + i]) == 0, "page 2");
    sb_session_list_clear(&first);
    sb_session_list_clear(&second);
    for (long i = 0; i < count; i++) close_session(c, ids[i]);
    close_session(c, sid("unlabelled"));
    sb_close(c);
}

static void server_status(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("st");
    create(c, id);
    sb_server_status st;
    OK(sb_get_server_status(c, 1, &st, &err), err);
    CHECK(st.protocol_version == (uint32_t)num(expect("protocol_version")), "protocol %u", st.protocol_version);
    CHECK(st.server_version[0] && st.pid > 0 && st.connections >= 1 && st.sessions_total >= 1, "counters");
    int found = 0;
    for (size_t i = 0; i < st.n_sessions; i++) found |= strcmp(st.sessions[i].id, id) == 0;
    CHECK(found, "new session missing");
    sb_server_status_clear(&st);
    OK(sb_get_server_status(c, 0, &st, &err), err);
    CHECK(st.n_sessions == 0, "sessions without include_sessions");
    sb_server_status_clear(&st);
    close_session(c, id);
    sb_close(c);
}

static void session_status(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("ss");
    const char *prompt = arg("prompt");
    create(c, id);
    OK(run_prompt(c, id, prompt, NULL, &err), err);
    sb_session_status st;
    OK(sb_get_session_status(c, id, &st, &err), err);
    CHECK(strcmp(st.session.id, id) == 0 && st.session.turns_completed == 1, "session");
    CHECK(st.n_turns == 1, "%zu turns", st.n_turns);
    CHECK(st.turns[0].state == SB_TURN_FINISHED && strcmp(expect("turn_state"), "FINISHED") == 0, "turn state");
    CHECK(strcmp(sb_code_name((int)st.turns[0].code), expect("turn_code")) == 0, "turn code");
    CHECK(st.turns[0].bytes == strlen(prompt) && strcmp(st.turns[0].prompt_preview, prompt) == 0, "turn counts");
    sb_session_status_clear(&st);
    close_session(c, id);
    sb_close(c);
}

static void prompt_stream(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("p");
    const char *prompt = arg("prompt");
    create(c, id);
    sb_call *call = start_prompt(c, id, prompt, 0, 0);
    sb_prompt_event e;
    next_event(call, SB_EVENT_ACCEPTED, &e);
    CHECK(e.queue_position == (uint32_t)num(expect("queue_position")), "queue position %u", e.queue_position);
    char turn[128];
    snprintf(turn, sizeof turn, "%s", e.turn_id);
    next_event(call, SB_EVENT_STARTED, &e);
    CHECK(strcmp(e.turn_id, turn) == 0, "started turn id");
    output out = { 0 };
    uint64_t seq = 0;
    int r;
    int finished = 0;
    while ((r = sb_call_next(call, &e, &err)) == 1) {
        CHECK(!finished, "event after finished");
        if (e.kind == SB_EVENT_OUTPUT) {
            CHECK(e.sequence == seq + 1, "sequence %llu after %llu", (unsigned long long)e.sequence,
                  (unsigned long long)seq);
            seq = e.sequence;
            append(&out, e.data, e.len);
        } else {
            CHECK(e.kind == SB_EVENT_FINISHED, "event kind %d", e.kind);
            CHECK(strcmp(e.turn_id, turn) == 0, "finished turn id");
            CHECK(e.chunks == seq && e.bytes == strlen(prompt), "finished counts");
            finished = 1;
        }
    }
    CHECK(r == 0 && strcmp(expect("code"), "OK") == 0, "end: %s: %s", sb_code_name(err.code), err.message);
    CHECK(finished, "no finished event");
    CHECK(out.data && strcmp(out.data, prompt) == 0, "output != prompt");
    free(out.data);
    sb_call_free(call);
    close_session(c, id);
    sb_close(c);
}

static void prompt_wait_when_busy(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("q");
    char *first_prompt = words(num(arg("first_words")));
    const char *second_prompt = arg("second_prompt");
    create(c, id);
    sb_call *first = start_prompt(c, id, first_prompt, 0, 0);
    sb_prompt_event e;
    next_event(first, SB_EVENT_ACCEPTED, &e);
    sb_call *second = start_prompt(c, id, second_prompt, 0, 0);
    next_event(second, SB_EVENT_ACCEPTED, &e);
    CHECK(e.queue_position == (uint32_t)num(expect("queue_position")), "queue position %u", e.queue_position);
    output a = { 0 }, b = { 0 };
    EXPECT_CODE(drain(first, &a, &err), expect("code"), err);
    EXPECT_CODE(drain(second, &b, &err), expect("code"), err);
    CHECK(a.data && strcmp(a.data, first_prompt) == 0 && b.data && strcmp(b.data, second_prompt) == 0, "outputs");
    sb_session_status st;
    OK(sb_get_session_status(c, id, &st, &err), err);
    CHECK(st.n_turns == 2 && st.turns[1].ended_at_ms <= st.turns[0].started_at_ms, "turns overlapped");
    sb_session_status_clear(&st);
    free(a.data);
    free(b.data);
    free(first_prompt);
    sb_call_free(first);
    sb_call_free(second);
    close_session(c, id);
    sb_close(c);
}

static void cancel_mid_stream(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("c");
    long n = num(arg("words")), after = num(arg("cancel_after_chunks"));
    char *text = words(n);
    create(c, id);
    sb_call *call = start_prompt(c, id, text, 0, 0);
    sb_prompt_event e;
    long chunks = 0;
    int r;
    while ((r = sb_call_next(call, &e, &err)) == 1) {
        if (e.kind == SB_EVENT_OUTPUT && ++chunks == after) sb_call_cancel(call);
    }
    EXPECT_CODE(r == 0 ? SB_OK : err.code, expect("code"), err);
    CHECK(chunks >= after && chunks < n, "%ld chunks", chunks);
    sb_call_free(call);
    sb_session_status st;
    OK(sb_get_session_status(c, id, &st, &err), err);
    CHECK(st.n_turns == 1 && strcmp(sb_code_name((int)st.turns[0].code), expect("code")) == 0, "turn history");
    sb_session_status_clear(&st);
    output out = { 0 };
    OK(run_prompt(c, id, "after", &out, &err), err);
    CHECK(out.data && strcmp(out.data, "after") == 0, "next prompt");
    free(out.data);
    free(text);
    close_session(c, id);
    sb_close(c);
}

static void deadline(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("d");
    char *text = words(num(arg("words")));
    create(c, id);
    sb_call *call = start_prompt(c, id, text, 0, (uint64_t)num(arg("timeout_ms")));
    EXPECT_CODE(drain(call, NULL, &err), expect("code"), err);
    sb_call_free(call);
    sb_session_status st;
    OK(sb_get_session_status(c, id, &st, &err), err);
    CHECK(st.n_turns == 1 && strcmp(st.turns[0].stop_reason, expect("stop_reason")) == 0, "stop reason");
    sb_session_status_clear(&st);
    free(text);
    close_session(c, id);
    sb_close(c);
}

static void error_not_found(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("missing");
    const char *code = expect("code");
    sb_session s;
    sb_session_status st;
    EXPECT_CODE(sb_get_session(c, id, &s, &err), code, err);
    EXPECT_CODE(sb_close_session(c, id, NULL, NULL, &err), code, err);
    EXPECT_CODE(sb_get_session_status(c, id, &st, &err), code, err);
    sb_call *call = start_prompt(c, id, "hi", 0, 0);
    EXPECT_CODE(drain(call, NULL, &err), code, err);
    sb_call_free(call);
    sb_close(c);
}

static void error_already_exists(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("dup");
    create(c, id);
    sb_create_request r = { .session_id = id };
    sb_session s;
    EXPECT_CODE(sb_create_session(c, &r, &s, &err), expect("code"), err);
    close_session(c, id);
    sb_close(c);
}

static void error_invalid_argument(void) {
    sb_client *c = connect_client();
    sb_error err;
    sb_session s;
    sb_create_request bad_id = { .session_id = arg("bad_id") };
    EXPECT_CODE(sb_create_session(c, &bad_id, &s, &err), expect("code"), err);
    sb_create_request bad_backend = { .session_id = sid("b"), .backend = arg("bad_backend") };
    EXPECT_CODE(sb_create_session(c, &bad_backend, &s, &err), expect("code"), err);
    sb_close(c);
}

static void error_reject_when_busy(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("r");
    char *text = words(num(arg("words")));
    create(c, id);
    sb_call *first = start_prompt(c, id, text, 0, 0);
    sb_prompt_event e;
    next_event(first, SB_EVENT_ACCEPTED, &e);
    sb_call *rejected = start_prompt(c, id, "x", 1, 0);
    EXPECT_CODE(drain(rejected, NULL, &err), expect("code"), err);
    sb_call_free(rejected);
    output out = { 0 };
    OK(drain(first, &out, &err), err);
    CHECK(out.data && strcmp(out.data, text) == 0, "first turn output");
    free(out.data);
    free(text);
    sb_call_free(first);
    close_session(c, id);
    sb_close(c);
}

static void close_cancels_turns(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("x");
    char *text = words(num(arg("words")));
    create(c, id);
    sb_call *running = start_prompt(c, id, text, 0, 0);
    sb_prompt_event e;
    next_event(running, SB_EVENT_ACCEPTED, &e);
    sb_call *queued = start_prompt(c, id, "queued", 0, 0);
    next_event(queued, SB_EVENT_ACCEPTED, &e);
    sb_close_result closed;
    OK(sb_close_session(c, id, "conformance", &closed, &err), err);
    CHECK(closed.cancelled_turns == (uint32_t)num(expect("cancelled_turns")), "cancelled_turns %u", closed.cancelled_turns);
    CHECK(closed.rejected_prompts == (uint32_t)num(expect("rejected_prompts")), "rejected %u", closed.rejected_prompts);
    sb_close_result_clear(&closed);
    EXPECT_CODE(drain(running, NULL, &err), expect("code"), err);
    EXPECT_CODE(drain(queued, NULL, &err), expect("code"), err);
    sb_call_free(running);
    sb_call_free(queued);
    free(text);
    sb_close(c);
}

static void concurrent_calls(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *ids[2] = { sid("ca"), sid("cb") };
    const char *texts[2] = { arg("prompt_a"), arg("prompt_b") };
    sb_call *calls[2];
    for (int i = 0; i < 2; i++) create(c, ids[i]);
    for (int i = 0; i < 2; i++) calls[i] = start_prompt(c, ids[i], texts[i], 0, 0);
    CHECK(sb_call_id(calls[0]) < sb_call_id(calls[1]), "call ids do not increase");
    sb_prompt_event e;
    for (int i = 0; i < 2; i++) next_event(calls[i], SB_EVENT_ACCEPTED, &e);
    sb_server_status st;
    OK(sb_get_server_status(c, 1, &st, &err), err);
    int found = 0;
    for (size_t i = 0; i < st.n_sessions; i++) found += !strcmp(st.sessions[i].id, ids[0]) + !strcmp(st.sessions[i].id, ids[1]);
    CHECK(found == 2, "status misses the sessions");
    sb_server_status_clear(&st);
    output out[2] = { { 0 }, { 0 } };
    int live[2] = { 1, 1 };
    while (live[0] || live[1]) {  /* interleave the two streams */
        for (int i = 0; i < 2; i++) {
            if (!live[i]) continue;
            int r = sb_call_next(calls[i], &e, &err);
            if (r == 1 && e.kind == SB_EVENT_OUTPUT) append(&out[i], e.data, e.len);
            if (r != 1) {
                EXPECT_CODE(r == 0 ? SB_OK : err.code, expect("code"), err);
                live[i] = 0;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        CHECK(out[i].data && strcmp(out[i].data, texts[i]) == 0, "output %d", i);
        free(out[i].data);
        sb_call_free(calls[i]);
        close_session(c, ids[i]);
    }
    sb_close(c);
}

static void bad_frame(void) {
    const char *hex = arg("bytes_hex");
    size_t n = strlen(hex) / 2;
    uint8_t bytes[64];
    CHECK(n <= sizeof bytes, "too many bytes");
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        CHECK(sscanf(hex + 2 * i, "%2x", &v) == 1, "bad hex");
        bytes[i] = (uint8_t)v;
    }
    sb_client *c = connect_client();
    sb_error err;
    OK(sb__write_raw(c, bytes, n, &err), err);
    int status;
    EXPECT_CODE(sb_health(c, &status, &err), expect("code"), err);
    CHECK(sb_health(c, &status, &err) != SB_OK, "connection still usable after GoAway");
    sb_close(c);
}

/* --- ownership, turn history, attach --------------------------------------- */

static void ownership_peer(void) {
    sb_client *c = connect_client();
    sb_error err;
    const sb_welcome *w = sb_client_welcome(c);
    CHECK(w->peer_uid == (uint32_t)getuid(), "Welcome peer_uid %u, this process is uid %u", w->peer_uid, (unsigned)getuid());
    const char *id = sid("own");
    sb_create_request r = { .session_id = id };
    sb_session s;
    OK(sb_create_session(c, &r, &s, &err), err);
    CHECK(s.owner_uid == (uint32_t)getuid(), "owner_uid %u", s.owner_uid);
    sb_session_clear(&s);
    OK(sb_get_session(c, id, &s, &err), err);
    CHECK(s.owner_uid == (uint32_t)getuid(), "owner_uid %u on get", s.owner_uid);
    sb_session_clear(&s);
    sb_session_status st;
    OK(sb_get_session_status(c, id, &st, &err), err);
    sb_session_status_clear(&st);
    close_session(c, id);
    sb_close(c);
}

/* A turn's output chunks as a stream delivered them. */
typedef struct chunks {
    uint64_t sequence[512];
    output data[512];
    size_t n;
    char turn_id[128];          /* accepted or attached */
    int attached_state;
    uint64_t last_sequence;
    int attached, finished;
    uint64_t finished_chunks;
} chunks;

static void chunks_free(chunks *k) {
    for (size_t i = 0; i < k->n; i++) free(k->data[i].data);
    memset(k, 0, sizeof *k);
}

/* Takes one event into `k`; checks the order attached/accepted.. output.. finished. */
static void take(chunks *k, const sb_prompt_event *e) {
    switch (e->kind) {
    case SB_EVENT_ACCEPTED:
        snprintf(k->turn_id, sizeof k->turn_id, "%s", e->turn_id);
        break;
    case SB_EVENT_ATTACHED:
        CHECK(!k->attached && k->n == 0 && !k->finished, "attached is not the first event");
        k->attached = 1;
        snprintf(k->turn_id, sizeof k->turn_id, "%s", e->turn_id);
        k->attached_state = e->turn_state;
        k->last_sequence = e->last_sequence;
        break;
    case SB_EVENT_OUTPUT:
        CHECK(!k->finished, "output after finished");
        CHECK(k->n < 512, "too many chunks");
        k->sequence[k->n] = e->sequence;
        memset(&k->data[k->n], 0, sizeof k->data[k->n]);
        append(&k->data[k->n], e->data, e->len);
        k->n++;
        break;
    case SB_EVENT_FINISHED:
        CHECK(!k->finished, "two finished events");
        k->finished = 1;
        k->finished_chunks = e->chunks;
        break;
    }
}

/* Runs a stream to its end into `k`; returns its code. */
static int collect_stream(sb_call *call, chunks *k, sb_error *err) {
    sb_prompt_event e;
    int r;
    while ((r = sb_call_next(call, &e, err)) == 1) take(k, &e);
    sb_call_free(call);
    return r == 0 ? SB_OK : err->code;
}

static sb_call *start_attach(sb_client *c, const char *id, const char *turn_id, uint64_t after) {
    sb_attach_request r = { .session_id = id, .turn_id = turn_id, .after_sequence = after };
    sb_error err;
    sb_call *call = sb_attach_start(c, &r, &err);
    if (!call) FAIL("attach start: %s: %s", sb_code_name(err.code), err.message);
    return call;
}

/* Checks that `k` holds exactly the chunks from..to with sequences from..to. */
static void check_sequences(const chunks *k, uint64_t from, uint64_t to, const char *what) {
    CHECK(k->n == (to >= from ? to - from + 1 : 0), "%s: %zu chunks, want %llu..%llu", what, k->n,
          (unsigned long long)from, (unsigned long long)to);
    for (size_t i = 0; i < k->n; i++) {
        CHECK(k->sequence[i] == from + i, "%s: chunk %zu has sequence %llu", what, i, (unsigned long long)k->sequence[i]);
    }
}

static void list_turns_paging(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("lt");
    create(c, id);
    sb_list_turns_request lr = { .session_id = id };
    sb_turn_list list;
    OK(sb_list_turns(c, &lr, &list, &err), err);
    CHECK(list.n_turns == 0 && strcmp(list.next_page_token, "") == 0, "session without turns lists %zu", list.n_turns);
    sb_turn_list_clear(&list);

    char prompts_buf[1024];
    snprintf(prompts_buf, sizeof prompts_buf, "%s", arg("prompts"));
    char *prompts[16];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(prompts_buf, "|", &save); t && n < 16; t = strtok_r(NULL, "|", &save)) prompts[n++] = t;
    char ids[16][128];
    for (size_t i = 0; i < n; i++) {
        chunks k = { 0 };
        OK(collect_stream(start_prompt(c, id, prompts[i], 0, 0), &k, &err), err);
        snprintf(ids[i], sizeof ids[i], "%s", k.turn_id);
        chunks_free(&k);
    }
    size_t first = (size_t)num(expect("first_page")), second = (size_t)num(expect("second_page"));
    CHECK(first + second == n, "expectations do not add up to the prompts");
    lr.page_size = (uint32_t)num(arg("page_size"));
    OK(sb_list_turns(c, &lr, &list, &err), err);
    CHECK(list.n_turns == first && strcmp(list.next_page_token, "") != 0, "first page: %zu turns, token '%s'", list.n_turns,
          list.next_page_token);
    for (size_t i = 0; i < first; i++) {
        const sb_turn_record *t = &list.turns[i];
        CHECK(strcmp(t->summary.turn_id, ids[i]) == 0, "turn %zu is %s, want %s", i, t->summary.turn_id, ids[i]);
        CHECK(t->summary.state == SB_TURN_FINISHED && t->summary.code == SB_OK, "turn %zu state/code", i);
        CHECK(strcmp(t->summary.prompt_preview, prompts[i]) == 0, "turn %zu preview '%s'", i, t->summary.prompt_preview);
        CHECK(strcmp(t->prompt, "") == 0 && t->output_len == 0, "prompt/output without include_output");
    }
    char token[512];
    snprintf(token, sizeof token, "%s", list.next_page_token);
    sb_turn_list_clear(&list);
    lr.page_token = token;
    OK(sb_list_turns(c, &lr, &list, &err), err);
    CHECK(list.n_turns == second && strcmp(list.next_page_token, "") == 0, "second page: %zu turns, token '%s'",
          list.n_turns, list.next_page_token);
    for (size_t i = 0; i < second; i++) {
        CHECK(strcmp(list.turns[i].summary.turn_id, ids[first + i]) == 0, "second page turn %zu", i);
    }
    sb_turn_list_clear(&list);

    sb_list_turns_request full = { .session_id = id, .page_size = (uint32_t)n, .include_output = 1 };
    OK(sb_list_turns(c, &full, &list, &err), err);
    CHECK(list.n_turns == n, "include_output: %zu turns", list.n_turns);
    for (size_t i = 0; i < n; i++) {
        const sb_turn_record *t = &list.turns[i];
        CHECK(strcmp(t->summary.turn_id, ids[i]) == 0, "include_output turn %zu", i);
        CHECK(strcmp(t->prompt, prompts[i]) == 0, "prompt '%s'", t->prompt);
        CHECK(t->output_len == strlen(prompts[i]) && memcmp(t->output, prompts[i], t->output_len) == 0, "output '%s'",
              (const char *)t->output);
        CHECK(!t->output_dropped, "output_dropped");
    }
    sb_turn_list_clear(&list);
    sb_list_turns_request missing = { .session_id = sid("lt-missing") };
    EXPECT_CODE(sb_list_turns(c, &missing, &list, &err), expect("unknown_session"), err);
    close_session(c, id);
    sb_close(c);
}

static void attach_after_sequence(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("att");
    long n = num(arg("words"));
    uint64_t after = (uint64_t)num(arg("after_sequence"));
    char *text = words(n);
    create(c, id);
    chunks prompt = { 0 };
    OK(collect_stream(start_prompt(c, id, text, 0, 0), &prompt, &err), err);
    uint64_t total = prompt.n;
    CHECK(total > after, "the prompt gave only %llu chunks", (unsigned long long)total);

    chunks k = { 0 };
    EXPECT_CODE(collect_stream(start_attach(c, id, prompt.turn_id, after), &k, &err), expect("code"), err);
    CHECK(k.attached && strcmp(k.turn_id, prompt.turn_id) == 0, "attached to %s, want %s", k.turn_id, prompt.turn_id);
    CHECK(k.attached_state == SB_TURN_FINISHED && strcmp("FINISHED", expect("state")) == 0, "state %d", k.attached_state);
    CHECK(k.last_sequence == total, "last_sequence %llu, want %llu", (unsigned long long)k.last_sequence,
          (unsigned long long)total);
    check_sequences(&k, after + 1, total, "after N");
    for (size_t i = 0; i < k.n; i++) {
        const output *want = &prompt.data[after + i];
        CHECK(k.data[i].len == want->len && memcmp(k.data[i].data, want->data, want->len) == 0, "chunk %llu differs",
              (unsigned long long)k.sequence[i]);
    }
    CHECK(k.finished && k.finished_chunks == total, "finished");
    chunks_free(&k);

    /* Empty turn id: the most recent turn, every chunk. */
    output all = { 0 };
    OK(collect_stream(start_attach(c, id, "", 0), &k, &err), err);
    CHECK(strcmp(k.turn_id, prompt.turn_id) == 0, "empty turn id attached to %s", k.turn_id);
    check_sequences(&k, 1, total, "from 0");
    for (size_t i = 0; i < k.n; i++) append(&all, (const uint8_t *)k.data[i].data, k.data[i].len);
    CHECK(all.data && strcmp(all.data, text) == 0, "replayed output differs from the prompt");
    free(all.data);
    chunks_free(&k);

    /* After the last chunk: nothing replayed. */
    OK(collect_stream(start_attach(c, id, prompt.turn_id, total), &k, &err), err);
    CHECK(k.attached && k.n == 0 && k.finished, "after the last chunk: %zu chunks", k.n);
    chunks_free(&k);
    chunks_free(&prompt);
    free(text);
    close_session(c, id);
    sb_close(c);
}

static void attach_cancelled_turn(void) {
    sb_client *c = connect_client();
    sb_client *other = connect_client();
    sb_error err;
    const char *id = sid("attc");
    long n = num(arg("words")), after = num(arg("cancel_after_chunks"));
    char *text = words(n);
    create(c, id);
    sb_call *call = start_prompt(c, id, text, 0, 0);
    chunks prompt = { 0 };
    sb_prompt_event e;
    int r;
    while ((r = sb_call_next(call, &e, &err)) == 1) {
        take(&prompt, &e);
        if (e.kind == SB_EVENT_OUTPUT && (long)prompt.n == after) sb_call_cancel(call);
    }
    sb_call_free(call);
    EXPECT_CODE(r == 0 ? SB_OK : err.code, expect("code"), err);
    chunks k = { 0 };
    EXPECT_CODE(collect_stream(start_attach(other, id, prompt.turn_id, 0), &k, &err), expect("code"), err);
    CHECK(k.attached && k.attached_state == SB_TURN_FINISHED, "attached");
    CHECK(k.n >= (size_t)after && k.n < (size_t)n, "%zu chunks kept", k.n);
    check_sequences(&k, 1, k.n, "cancelled turn");
    CHECK(k.finished && k.finished_chunks == k.n, "finished");
    chunks_free(&k);
    chunks_free(&prompt);
    free(text);
    close_session(c, id);
    sb_close(other);
    sb_close(c);
}

static void attach_not_found(void) {
    sb_client *c = connect_client();
    sb_error err;
    const char *id = sid("atnf");
    const char *code = expect("code");
    create(c, id);
    chunks k = { 0 };
    EXPECT_CODE(collect_stream(start_attach(c, id, "", 0), &k, &err), code, err);
    chunks_free(&k);
    output out = { 0 };
    OK(run_prompt(c, id, "one turn", &out, &err), err);
    free(out.data);
    EXPECT_CODE(collect_stream(start_attach(c, id, arg("bad_turn_id"), 0), &k, &err), code, err);
    chunks_free(&k);
    EXPECT_CODE(collect_stream(start_attach(c, sid("atnf-missing"), "", 0), &k, &err), code, err);
    chunks_free(&k);
    close_session(c, id);
    sb_close(c);
}

static void attach_after_disconnect(void) {
    long n = num(arg("words")), cut = num(arg("disconnect_after_chunks"));
    char *text = words(n);
    for (int cancel_on_disconnect = 0; cancel_on_disconnect <= 1; cancel_on_disconnect++) {
        sb_error err;
        const char *id = sid(cancel_on_disconnect ? "atd-cod" : "atd");
        sb_client *gone = connect_client();
        create(gone, id);
        sb_prompt_request pr = { .session_id = id, .prompt = text, .cancel_on_disconnect = cancel_on_disconnect };
        sb_call *call = sb_prompt_start(gone, &pr, &err);
        if (!call) FAIL("prompt start: %s: %s", sb_code_name(err.code), err.message);
        chunks first = { 0 };
        sb_prompt_event e;
        while ((long)first.n < cut) {
            if (sb_call_next(call, &e, &err) != 1) FAIL("prompt ended early: %s: %s", sb_code_name(err.code), err.message);
            take(&first, &e);
        }
        /* The connection goes away without a Cancel, as when the process dies. */
        sb__drop_connection(gone);
        while (sb_call_next(call, &e, &err) == 1) {
        }
        sb_call_free(call);
        sb_close(gone);

        sb_client *c = connect_client();
        chunks rest = { 0 };
        int code = collect_stream(start_attach(c, id, first.turn_id, (uint64_t)cut), &rest, &err);
        CHECK(rest.attached && strcmp(rest.turn_id, first.turn_id) == 0, "attached");
        if (cancel_on_disconnect) {
            EXPECT_CODE(code, expect("cancel_on_disconnect_code"), err);
            CHECK(rest.finished_chunks < (uint64_t)n, "the turn ran to its end: %llu chunks",
                  (unsigned long long)rest.finished_chunks);
        } else {
            EXPECT_CODE(code, expect("code"), err);
            check_sequences(&rest, (uint64_t)cut + 1, (uint64_t)n, "rest");
            output all = { 0 };
            for (size_t i = 0; i < first.n; i++) append(&all, (const uint8_t *)first.data[i].data, first.data[i].len);
            for (size_t i = 0; i < rest.n; i++) append(&all, (const uint8_t *)rest.data[i].data, rest.data[i].len);
            CHECK(all.data && strcmp(all.data, text) == 0, "the two parts are not the prompt");
            CHECK(rest.finished && rest.finished_chunks == (uint64_t)n, "finished chunks %llu",
                  (unsigned long long)rest.finished_chunks);
            free(all.data);
        }
        chunks_free(&rest);
        chunks_free(&first);
        close_session(c, id);
        sb_close(c);
    }
    free(text);
}

typedef struct scenario_entry {
    const char *name;
    void (*run)(void);
} scenario_entry;

static const scenario_entry scenarios[] = {
    { "handshake", handshake },
    { "handshake_unsupported_version", handshake_unsupported_version },
    { "handshake_hello_first", handshake_hello_first },
    { "health", health },
    { "ping", ping },
    { "sessions_create_get_close", sessions_create_get_close },
    { "sessions_server_chosen_id", sessions_server_chosen_id },
    { "sessions_list", sessions_list },
    { "server_status", server_status },
    { "session_status", session_status },
    { "prompt_stream", prompt_stream },
    { "prompt_wait_when_busy", prompt_wait_when_busy },
    { "cancel_mid_stream", cancel_mid_stream },
    { "deadline", deadline },
    { "error_not_found", error_not_found },
    { "error_already_exists", error_already_exists },
    { "error_invalid_argument", error_invalid_argument },
    { "error_reject_when_busy", error_reject_when_busy },
    { "close_cancels_turns", close_cancels_turns },
    { "concurrent_calls", concurrent_calls },
    { "bad_frame_oversized", bad_frame },
    { "bad_frame_garbage", bad_frame },
    { "bad_frame_empty", bad_frame },
    { "ownership_peer", ownership_peer },
    { "list_turns_paging", list_turns_paging },
    { "attach_after_sequence", attach_after_sequence },
    { "attach_cancelled_turn", attach_cancelled_turn },
    { "attach_not_found", attach_not_found },
    { "attach_after_disconnect", attach_after_disconnect },
};

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            socket_path = argv[++i];
        } else if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc) {
            scenario = argv[++i];
        } else {
            char *eq = strchr(argv[i], '=');
            if (!eq || n_args == 64) {
                fprintf(stderr, "bad argument %s\n", argv[i]);
                return 2;
            }
            *eq = '\0';
            keys[n_args] = argv[i];
            values[n_args++] = eq + 1;
            if (strcmp(argv[i], "prefix") == 0) snprintf(prefix, sizeof prefix, "%s", eq + 1);
        }
    }
    if (!socket_path || !scenario) {
        fprintf(stderr, "usage: switchboard-c-conformance --socket PATH --scenario NAME [key=value ...]\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        if (strcmp(scenarios[i].name, scenario) == 0) {
            scenarios[i].run();
            return 0;
        }
    }
    fprintf(stderr, "unknown scenario %s\n", scenario);
    return 2;
}
