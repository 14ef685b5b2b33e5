/*
 * Tests of the C client against a real server ($SWITCHBOARD_BIN) and against a
 * small hostile fake server. Built and run by `make test` under ASan + UBSan.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include "harness.h"
#include "internal.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

static server fast;  /* echo backend without delay */
static server slow;  /* echo backend, 40 ms between words */
static char dir[64];

static sb_client *connect_to(const server *s) {
    sb_error err;
    sb_client *c = sb_connect(s->socket_path, NULL, &err);
    if (!c) fprintf(stderr, "  connect %s: %s: %s\n", s->socket_path, sb_code_name(err.code), err.message);
    return c;
}

/* A unique session id per test run. */
static const char *sid(const char *name) {
    static char buf[8][128];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, 128, "c-%ld-%s", (long)getpid(), name);
    return b;
}

/* Words "w1 w2 ... wn". */
static char *words(int n) {
    char *s = malloc((size_t)n * 8 + 1);
    s[0] = '\0';
    for (int i = 1; i <= n; i++) {
        char w[16];
        snprintf(w, sizeof w, "%sw%d", i > 1 ? " " : "", i);
        strcat(s, w);
    }
    return s;
}

/* ------------------------------------------------------------------------- */

static void test_handshake(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    const sb_welcome *w = sb_client_welcome(c);
    CHECK(w->version == 1);
    CHECK(strcmp(w->server_name, "switchboard") == 0);
    CHECK(w->max_frame_size >= 1024);
    CHECK(w->max_concurrent_calls > 0);
    CHECK(w->connection_id > 0);
    sb_close(c);
}

static void test_unsupported_version(void) {
    sb_options o;
    sb_options_init(&o);
    o.min_version = 2;
    o.max_version = 3;
    sb_error err;
    sb_client *c = sb_connect(fast.socket_path, &o, &err);
    CHECK(c == NULL);
    CHECK_CODE(err.code, SB_FAILED_PRECONDITION, err);
    CHECK(strstr(err.message, "version") != NULL);
    sb_close(c);
}

static void test_no_server(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/nothing.sock", dir);
    sb_error err;
    CHECK(sb_connect(path, NULL, &err) == NULL);
    CHECK_CODE(err.code, SB_UNAVAILABLE, err);
    char long_path[200];
    memset(long_path, 'x', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    CHECK(sb_connect(long_path, NULL, &err) == NULL);
    CHECK_CODE(err.code, SB_INVALID_ARGUMENT, err);
}

static void test_default_socket_path(void) {
    char buf[256];
    char *saved_sock = getenv("SWITCHBOARD_SOCKET") ? strdup(getenv("SWITCHBOARD_SOCKET")) : NULL;
    char *saved_xdg = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
    setenv("SWITCHBOARD_SOCKET", "/tmp/a.sock", 1);
    CHECK(sb_default_socket_path(buf, sizeof buf) == 0 && strcmp(buf, "/tmp/a.sock") == 0);
    unsetenv("SWITCHBOARD_SOCKET");
    setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
    CHECK(sb_default_socket_path(buf, sizeof buf) == 0 && strcmp(buf, "/run/user/7/switchboard.sock") == 0);
    unsetenv("XDG_RUNTIME_DIR");
    CHECK(sb_default_socket_path(buf, sizeof buf) == 0 && strcmp(buf, "/run/switchboard/switchboard.sock") == 0);
    CHECK(sb_default_socket_path(buf, 4) == -1);
    if (saved_sock) setenv("SWITCHBOARD_SOCKET", saved_sock, 1);
    if (saved_xdg) setenv("XDG_RUNTIME_DIR", saved_xdg, 1);
    free(saved_sock);
    free(saved_xdg);
}

static void test_health_and_ping(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    sb_error err;
    int status = -1;
    CHECK_CODE(sb_health(c, &status, &err), SB_OK, err);
    CHECK(status == SB_SERVING);
    CHECK_CODE(sb_ping(c, &err), SB_OK, err);
    CHECK_CODE(sb_ping(c, &err), SB_OK, err);
    sb_close(c);
}

static void test_sessions(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    sb_error err;
    const char *id = sid("sessions");
    sb_kv labels[] = { { "team", "docs" }, { "run", id } };
    sb_create_request req = { .session_id = id, .labels = labels, .n_labels = 2, .backend = "echo",
                              .idle_timeout_ms = 60000 };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    CHECK(strcmp(s.id, id) == 0);
    CHECK(s.n_labels == 2);
    CHECK(strcmp(s.settings.backend, "echo") == 0);
    CHECK(s.settings.idle_timeout_ms == 60000);
    CHECK(s.settings.turn_deadline_ms > 0);  /* effective defaults are filled in */
    CHECK(s.state == SB_SESSION_IDLE);
    CHECK(s.created_at_ms > 0);
    CHECK(strcmp(s.current_turn_id, "") == 0);
    sb_session_clear(&s);

    CHECK_CODE(sb_create_session(c, &req, &s, &err), SB_ALREADY_EXISTS, err);

    sb_session got;
    REQUIRE(sb_get_session(c, id, &got, &err) == SB_OK);
    CHECK(strcmp(got.id, id) == 0);
    int found = 0;
    for (size_t i = 0; i < got.n_labels; i++) {
        if (strcmp(got.labels[i].key, "team") == 0 && strcmp(got.labels[i].value, "docs") == 0) found = 1;
    }
    CHECK(found);
    sb_session_clear(&got);

    /* Server-chosen id. */
    sb_session anon;
    REQUIRE(sb_create_session(c, NULL, &anon, &err) == SB_OK);
    CHECK(strncmp(anon.id, "s-", 2) == 0 && strlen(anon.id) == 14);

    /* List with a selector, then pages of one. */
    const char *id2 = sid("sessions-2");
    sb_create_request req2 = { .session_id = id2, .labels = labels + 1, .n_labels = 1 };
    REQUIRE(sb_create_session(c, &req2, &s, &err) == SB_OK);
    sb_session_clear(&s);
    sb_kv selector[] = { { "run", id } };
    sb_list_request lr = { .label_selector = selector, .n_label_selector = 1 };
    sb_session_list list;
    REQUIRE(sb_list_sessions(c, &lr, &list, &err) == SB_OK);
    CHECK(list.n_sessions == 2);
    if (list.n_sessions == 2) {
        CHECK(strcmp(list.sessions[0].id, id) == 0);  /* sorted by id */
        CHECK(strcmp(list.sessions[1].id, id2) == 0);
    }
    CHECK(strcmp(list.next_page_token, "") == 0);
    sb_session_list_clear(&list);
    lr.page_size = 1;
    REQUIRE(sb_list_sessions(c, &lr, &list, &err) == SB_OK);
    CHECK(list.n_sessions == 1);
    CHECK(list.next_page_token[0] != '\0');
    sb_session_list page2;
    lr.page_token = list.next_page_token;
    REQUIRE(sb_list_sessions(c, &lr, &page2, &err) == SB_OK);
    CHECK(page2.n_sessions == 1);
    if (page2.n_sessions == 1 && list.n_sessions == 1) CHECK(strcmp(page2.sessions[0].id, list.sessions[0].id) != 0);
    sb_session_list_clear(&page2);
    sb_session_list_clear(&list);

    /* Close: gone afterwards. */
    sb_close_result closed;
    REQUIRE(sb_close_session(c, id, "test over", &closed, &err) == SB_OK);
    CHECK(strcmp(closed.session.id, id) == 0);
    CHECK(closed.cancelled_turns == 0);
    sb_close_result_clear(&closed);
    CHECK_CODE(sb_get_session(c, id, &got, &err), SB_NOT_FOUND, err);
    CHECK_CODE(sb_close_session(c, id, NULL, NULL, &err), SB_NOT_FOUND, err);
    CHECK(sb_close_session(c, id2, NULL, NULL, &err) == SB_OK);
    CHECK(sb_close_session(c, anon.id, NULL, NULL, &err) == SB_OK);
    sb_session_clear(&anon);
    sb_close(c);
}

static void test_invalid_arguments(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    sb_error err;
    sb_session s;
    sb_create_request bad_id = { .session_id = "bad id!" };
    CHECK_CODE(sb_create_session(c, &bad_id, &s, &err), SB_INVALID_ARGUMENT, err);
    sb_create_request bad_backend = { .session_id = sid("bad-backend"), .backend = "nope" };
    CHECK_CODE(sb_create_session(c, &bad_backend, &s, &err), SB_INVALID_ARGUMENT, err);
    sb_create_request null_labels = { .n_labels = 3 };
    CHECK_CODE(sb_create_session(c, &null_labels, &s, &err), SB_INVALID_ARGUMENT, err);
    sb_prompt_request no_prompt = { .session_id = "x" };
    CHECK(sb_prompt_start(c, &no_prompt, &err) == NULL);
    CHECK_CODE(err.code, SB_INVALID_ARGUMENT, err);
    sb_close(c);
}

/* Strings: NUL bytes and invalid UTF-8 are refused with INVALID_ARGUMENT naming
 * the field, before anything is sent; nothing is created. */
static void test_strings(void) {
    sb_error err;
    CHECK_CODE(sb_check_string("first part\0second part", 23, "prompt", &err), SB_INVALID_ARGUMENT, err);
    CHECK(strcmp(err.message, "prompt contains a NUL byte") == 0);
    CHECK_CODE(sb_check_string("caf\xc3", 4, "prompt", &err), SB_INVALID_ARGUMENT, err);
    CHECK(strcmp(err.message, "prompt is not valid UTF-8") == 0);
    CHECK_CODE(sb_check_string("\xed\xa0\x80", 3, "label", &err), SB_INVALID_ARGUMENT, err);  /* a surrogate */
    CHECK_CODE(sb_check_string("\xc0\xaf", 2, "label", &err), SB_INVALID_ARGUMENT, err);      /* overlong '/' */
    CHECK_CODE(sb_check_string("\xf4\x90\x80\x80", 4, "label", &err), SB_INVALID_ARGUMENT, err);  /* > U+10FFFF */
    const char *fine = "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac";
    CHECK_CODE(sb_check_string(fine, strlen(fine), "prompt", &err), SB_OK, err);

    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    const char *id = sid("strings");
    sb_kv bad_label[] = { { "team", "ok" }, { "owner", "\xff\xfe" } };
    sb_create_request bad = { .session_id = id, .labels = bad_label, .n_labels = 2 };
    sb_session s;
    CHECK_CODE(sb_create_session(c, &bad, &s, &err), SB_INVALID_ARGUMENT, err);
    CHECK(strcmp(err.message, "labels[1].value is not valid UTF-8") == 0);
    CHECK_CODE(sb_get_session(c, id, &s, &err), SB_NOT_FOUND, err);

    sb_create_request good = { .session_id = id };
    REQUIRE(sb_create_session(c, &good, &s, &err) == SB_OK);
    sb_session_clear(&s);
    sb_prompt_request bad_prompt = { .session_id = id, .prompt = "half a character: \xe2\x82" };
    CHECK(sb_prompt_start(c, &bad_prompt, &err) == NULL);
    CHECK_CODE(err.code, SB_INVALID_ARGUMENT, err);
    CHECK(strcmp(err.message, "prompt is not valid UTF-8") == 0);
    sb_session_status ss;
    REQUIRE(sb_get_session_status(c, id, &ss, &err) == SB_OK);
    CHECK(ss.n_turns == 0);
    sb_session_status_clear(&ss);
    CHECK_CODE(sb_get_session(c, "bad\x80id", &s, &err), SB_INVALID_ARGUMENT, err);
    CHECK(strcmp(err.message, "session_id is not valid UTF-8") == 0);
    sb_close_session(c, id, NULL, NULL, NULL);
    sb_close(c);

    sb_options o;
    sb_options_init(&o);
    o.client_name = "client\xff";
    CHECK(sb_connect(fast.socket_path, &o, &err) == NULL);
    CHECK_CODE(err.code, SB_INVALID_ARGUMENT, err);
    CHECK(strcmp(err.message, "client_name is not valid UTF-8") == 0);
}

typedef struct collected {
    char text[4096];
    size_t len;
    uint64_t next_sequence;
    int accepted, started, finished, order_ok;
    uint64_t finished_chunks, finished_bytes;
    int cancel_after;  /* cancel at this output chunk (0 = never) */
} collected;

static int collect(const sb_prompt_event *e, void *user) {
    collected *col = user;
    switch (e->kind) {
    case SB_EVENT_ACCEPTED:
        col->accepted++;
        if (col->started || col->next_sequence > 1) col->order_ok = 0;
        break;
    case SB_EVENT_STARTED:
        col->started++;
        if (!col->accepted) col->order_ok = 0;
        break;
    case SB_EVENT_OUTPUT:
        if (!col->started || e->sequence != col->next_sequence) col->order_ok = 0;
        col->next_sequence++;
        if (col->len + e->len < sizeof col->text) {
            memcpy(col->text + col->len, e->data, e->len);
            col->len += e->len;
            col->text[col->len] = '\0';
        }
        if (col->cancel_after && e->sequence == (uint64_t)col->cancel_after) return 1;
        break;
    case SB_EVENT_FINISHED:
        col->finished++;
        col->finished_chunks = e->chunks;
        col->finished_bytes = e->bytes;
        break;
    }
    return 0;
}

static void collected_init(collected *col) {
    memset(col, 0, sizeof *col);
    col->next_sequence = 1;
    col->order_ok = 1;
}

static void test_prompt_callback(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    sb_error err;
    const char *id = sid("prompt");
    sb_create_request req = { .session_id = id };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    sb_session_clear(&s);
    const char *text = "the quick brown fox jumps over the lazy dog";
    collected col;
    collected_init(&col);
    sb_prompt_request pr = { .session_id = id, .prompt = text };
    CHECK_CODE(sb_prompt(c, &pr, collect, &col, &err), SB_OK, err);
    CHECK(strcmp(col.text, text) == 0);
    CHECK(col.accepted == 1 && col.started == 1 && col.finished == 1 && col.order_ok);
    CHECK(col.next_sequence > 2);
    CHECK(col.finished_chunks == col.next_sequence - 1);
    CHECK(col.finished_bytes == strlen(text));

    /* Session status shows the finished turn. */
    sb_session_status ss;
    REQUIRE(sb_get_session_status(c, id, &ss, &err) == SB_OK);
    CHECK(ss.session.turns_completed == 1);
    CHECK(ss.n_turns == 1);
    if (ss.n_turns == 1) {
        CHECK(ss.turns[0].state == SB_TURN_FINISHED);
        CHECK(ss.turns[0].code == SB_OK);
        CHECK(ss.turns[0].bytes == strlen(text));
        CHECK(strcmp(ss.turns[0].prompt_preview, text) == 0);
    }
    sb_session_status_clear(&ss);
    CHECK_CODE(sb_get_session_status(c, "no-such-session", &ss, &err), SB_NOT_FOUND, err);

    sb_prompt_request missing = { .session_id = "no-such-session", .prompt = "hi" };
    CHECK_CODE(sb_prompt(c, &missing, collect, &col, &err), SB_NOT_FOUND, err);
    sb_close_session(c, id, NULL, NULL, NULL);
    sb_close(c);
}

static void test_prompt_iterator_and_large_output(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    sb_error err;
    const char *id = sid("iter");
    sb_create_request req = { .session_id = id };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    sb_session_clear(&s);
    char *text = words(2000);
    sb_prompt_request pr = { .session_id = id, .prompt = text };
    sb_call *call = sb_prompt_start(c, &pr, &err);
    REQUIRE(call);
    CHECK(sb_call_id(call) >= 1);
    size_t total = 0;
    uint64_t seq = 0;
    int r;
    char *got = calloc(1, strlen(text) + 1);
    sb_prompt_event e;
    while ((r = sb_call_next(call, &e, &err)) == 1) {
        if (e.kind == SB_EVENT_OUTPUT) {
            CHECK(e.sequence == seq + 1);
            seq = e.sequence;
            if (total + e.len <= strlen(text)) memcpy(got + total, e.data, e.len);
            total += e.len;
        }
    }
    CHECK(r == 0);
    CHECK(total == strlen(text));
    CHECK(strcmp(got, text) == 0);
    CHECK(sb_call_next(call, &e, &err) == 0);  /* an ended call stays ended */
    sb_call_free(call);
    free(got);
    free(text);
    sb_close_session(c, id, NULL, NULL, NULL);
    sb_close(c);
}

static void test_cancel_from_callback(void) {
    sb_client *c = connect_to(&slow);
    REQUIRE(c);
    sb_error err;
    const char *id = sid("cancel-cb");
    sb_create_request req = { .session_id = id };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    sb_session_clear(&s);
    char *text = words(50);
    collected col;
    collected_init(&col);
    col.cancel_after = 2;
    sb_prompt_request pr = { .session_id = id, .prompt = text };
    CHECK_CODE(sb_prompt(c, &pr, collect, &col, &err), SB_CANCELLED, err);
    CHECK(col.next_sequence >= 3);
    /* The session stays usable. */
    collected_init(&col);
    pr.prompt = "again";
    CHECK_CODE(sb_prompt(c, &pr, collect, &col, &err), SB_OK, err);
    CHECK(strcmp(col.text, "again") == 0);
    sb_session_status ss;
    REQUIRE(sb_get_session_status(c, id, &ss, &err) == SB_OK);
    int cancelled = 0;
    for (size_t i = 0; i < ss.n_turns; i++) {
        if (ss.turns[i].code == SB_CANCELLED) cancelled++;
    }
    CHECK(cancelled == 1);
    sb_session_status_clear(&ss);
    free(text);
    sb_close_session(c, id, NULL, NULL, NULL);
    sb_close(c);
}

typedef struct canceller {
    sb_call *call;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;
} canceller;

static void *cancel_thread(void *arg) {
    canceller *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->go) pthread_cond_wait(&k->cv, &k->mu);
    pthread_mutex_unlock(&k->mu);
    sb_call_cancel(k->call);
    return NULL;
}

static void test_cancel_from_other_thread(void) {
    sb_client *c = connect_to(&slow);
    REQUIRE(c);
    sb_error err;
    const char *id = sid("cancel-thread");
    sb_create_request req = { .session_id = id };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    sb_session_clear(&s);
    char *text = words(100);
    sb_prompt_request pr = { .session_id = id, .prompt = text };
    canceller k = { .go = 0 };
    pthread_mutex_init(&k.mu, NULL);
    pthread_cond_init(&k.cv, NULL);
    k.call = sb_prompt_start(c, &pr, &err);
    REQUIRE(k.call);
    pthread_t t;
    pthread_create(&t, NULL, cancel_thread, &k);
    sb_prompt_event e;
    int r, outputs = 0;
    while ((r = sb_call_next(k.call, &e, &err)) == 1) {
        if (e.kind == SB_EVENT_OUTPUT && ++outputs == 1) {
            pthread_mutex_lock(&k.mu);
            k.go = 1;
            pthread_cond_signal(&k.cv);
            pthread_mutex_unlock(&k.mu);
        }
    }
    pthread_join(t, NULL);
    CHECK(r == -1);
    CHECK_CODE(err.code, SB_CANCELLED, err);
    CHECK(outputs < 100);
    sb_call_free(k.call);
    pthread_mutex_destroy(&k.mu);
    pthread_cond_destroy(&k.cv);
    free(text);
    sb_close_session(c, id, NULL, NULL, NULL);
    sb_close(c);
}

static void test_deadlines(void) {
    sb_client *c = connect_to(&slow);
    REQUIRE(c);
    sb_error err;
    const char *id = sid("deadline");
    sb_create_request req = { .session_id = id };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    sb_session_clear(&s);
    char *text = words(100);  /* ~4 s at 40 ms per word */
    collected col;
    collected_init(&col);
    sb_prompt_request pr = { .session_id = id, .prompt = text, .timeout_ms = 200 };
    CHECK_CODE(sb_prompt(c, &pr, collect, &col, &err), SB_DEADLINE_EXCEEDED, err);

    /* The client's receive timeout: no frame of the call within 1 ms of waiting. */
    sb_set_timeouts(c, 0, 1);
    collected_init(&col);
    pr.timeout_ms = 0;
    int code = sb_prompt(c, &pr, collect, &col, &err);
    CHECK_CODE(code, SB_DEADLINE_EXCEEDED, err);
    sb_set_timeouts(c, 0, 0);
    /* The connection and the session are still usable afterwards. */
    collected_init(&col);
    pr.prompt = "still here";
    CHECK_CODE(sb_prompt(c, &pr, collect, &col, &err), SB_OK, err);
    CHECK(strcmp(col.text, "still here") == 0);
    free(text);
    sb_close_session(c, id, NULL, NULL, NULL);
    sb_close(c);
}

static void test_busy_and_close_while_streaming(void) {
    sb_client *c = connect_to(&slow);
    REQUIRE(c);
    sb_error err;
    const char *id = sid("busy");
    sb_create_request req = { .session_id = id };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    sb_session_clear(&s);
    char *text = words(100);
    sb_prompt_request pr = { .session_id = id, .prompt = text };
    sb_call *first = sb_prompt_start(c, &pr, &err);
    REQUIRE(first);
    sb_prompt_event e;
    REQUIRE(sb_call_next(first, &e, &err) == 1);
    CHECK(e.kind == SB_EVENT_ACCEPTED && e.queue_position == 0);

    /* Busy + reject: FAILED_PRECONDITION at once. */
    sb_prompt_request reject = { .session_id = id, .prompt = "x", .reject_if_busy = 1 };
    collected col;
    collected_init(&col);
    CHECK_CODE(sb_prompt(c, &reject, collect, &col, &err), SB_FAILED_PRECONDITION, err);

    /* Busy + wait: queued behind the running turn. */
    sb_prompt_request wait = { .session_id = id, .prompt = "queued" };
    sb_call *second = sb_prompt_start(c, &wait, &err);
    REQUIRE(second);
    REQUIRE(sb_call_next(second, &e, &err) == 1);
    CHECK(e.kind == SB_EVENT_ACCEPTED && e.queue_position == 1);

    /* Closing the session cancels the running turn and fails the queued prompt. */
    sb_close_result closed;
    REQUIRE(sb_close_session(c, id, "closing", &closed, &err) == SB_OK);
    CHECK(closed.cancelled_turns == 1);
    CHECK(closed.rejected_prompts == 1);
    sb_close_result_clear(&closed);
    int r;
    while ((r = sb_call_next(first, &e, &err)) == 1) {
    }
    CHECK(r == -1);
    CHECK_CODE(err.code, SB_CANCELLED, err);
    while ((r = sb_call_next(second, &e, &err)) == 1) {
    }
    CHECK(r == -1);
    CHECK_CODE(err.code, SB_CANCELLED, err);
    sb_call_free(first);
    sb_call_free(second);
    free(text);
    sb_close(c);
}

/* Two prompts interleaved on one connection in one thread, a status call in between. */
static void test_concurrent_single_thread(void) {
    sb_client *c = connect_to(&slow);
    REQUIRE(c);
    sb_error err;
    const char *ids[2] = { sid("conc-a"), sid("conc-b") };
    const char *texts[2] = { "alpha beta gamma delta epsilon", "one two three four five six" };
    sb_call *calls[2];
    for (int i = 0; i < 2; i++) {
        sb_create_request req = { .session_id = ids[i] };
        sb_session s;
        REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
        sb_session_clear(&s);
    }
    for (int i = 0; i < 2; i++) {
        sb_prompt_request pr = { .session_id = ids[i], .prompt = texts[i] };
        calls[i] = sb_prompt_start(c, &pr, &err);
        REQUIRE(calls[i]);
    }
    CHECK(sb_call_id(calls[1]) > sb_call_id(calls[0]));
    sb_server_status st;
    REQUIRE(sb_get_server_status(c, 1, &st, &err) == SB_OK);
    CHECK(st.n_sessions >= 2);
    sb_server_status_clear(&st);
    char got[2][256] = { "", "" };
    int done[2] = { 0, 0 };
    while (!done[0] || !done[1]) {
        for (int i = 0; i < 2; i++) {
            if (done[i]) continue;
            sb_prompt_event e;
            int r = sb_call_next(calls[i], &e, &err);
            if (r == 1 && e.kind == SB_EVENT_OUTPUT) strncat(got[i], (const char *)e.data, e.len);
            if (r != 1) {
                CHECK(r == 0);
                done[i] = 1;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        CHECK(strcmp(got[i], texts[i]) == 0);
        sb_call_free(calls[i]);
        sb_close_session(c, ids[i], NULL, NULL, NULL);
    }
    sb_close(c);
}

typedef struct worker_arg {
    sb_client *client;
    int index;
    int ok;
} worker_arg;

static void *prompt_worker(void *p) {
    worker_arg *a = p;
    char id[128];
    snprintf(id, sizeof id, "c-%ld-thread-%d", (long)getpid(), a->index);
    sb_error err;
    sb_create_request req = { .session_id = id };
    sb_session s;
    if (sb_create_session(a->client, &req, &s, &err) != SB_OK) return NULL;
    sb_session_clear(&s);
    char text[128];
    snprintf(text, sizeof text, "thread %d says hello to the broker", a->index);
    int ok = 1;
    for (int round = 0; round < 3; round++) {
        collected col;
        collected_init(&col);
        sb_prompt_request pr = { .session_id = id, .prompt = text };
        if (sb_prompt(a->client, &pr, collect, &col, &err) != SB_OK || strcmp(col.text, text) != 0 || !col.order_ok) ok = 0;
        int health;
        if (sb_health(a->client, &health, &err) != SB_OK) ok = 0;
    }
    sb_close_session(a->client, id, NULL, NULL, NULL);
    a->ok = ok;
    return NULL;
}

/* Eight threads share one connection. */
static void test_concurrent_threads(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    pthread_t threads[8];
    worker_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (worker_arg){ .client = c, .index = i, .ok = 0 };
        pthread_create(&threads[i], NULL, prompt_worker, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        CHECK(args[i].ok);
    }
    sb_close(c);
}

static void test_request_too_large(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    sb_error err;
    size_t n = sb_client_welcome(c)->max_frame_size + 10;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    sb_prompt_request pr = { .session_id = "whatever", .prompt = big };
    CHECK(sb_prompt_start(c, &pr, &err) == NULL);
    CHECK_CODE(err.code, SB_RESOURCE_EXHAUSTED, err);
    int health;
    CHECK_CODE(sb_health(c, &health, &err), SB_OK, err);  /* nothing was sent */
    free(big);
    sb_close(c);
}

/* A response above the client's maximum frame size (Hello.max_frame_size): the
 * server ends the call with RESOURCE_EXHAUSTED instead; the connection stays usable. */
static void test_response_too_large(void) {
    sb_options o;
    sb_options_init(&o);
    o.max_frame_size = 1024;
    sb_error err;
    sb_client *c = sb_connect(fast.socket_path, &o, &err);
    REQUIRE(c);
    /* 20 labels within the label rules: the created session is about 2 KiB. */
    char value[64];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    char keys[20][16];
    sb_kv labels[20];
    for (int i = 0; i < 20; i++) {
        snprintf(keys[i], sizeof keys[i], "big-%d", i);
        labels[i].key = keys[i];
        labels[i].value = value;
    }
    const char *id = sid("too-large");
    sb_create_request req = { .session_id = id, .labels = labels, .n_labels = 20 };
    sb_session s;
    CHECK_CODE(sb_create_session(c, &req, &s, &err), SB_RESOURCE_EXHAUSTED, err);
    int health;
    CHECK_CODE(sb_health(c, &health, &err), SB_OK, err);
    sb_close_session(c, id, NULL, NULL, NULL);
    sb_close(c);
}

/* Labels that break the label rules are refused before sending (nothing is
 * created); a reader with a 1 KiB frame still gets its status (trimmed, with
 * the count of the others) and every session by paging. */
static void test_labels(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    sb_error err;
    char huge[100001];
    memset(huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    sb_kv bad_value = { "team", huge };
    sb_kv bad_key = { "Example.com/team", "docs" };
    sb_kv twice[] = { { "team", "a" }, { "team", "b" } };
    sb_session s;
    sb_create_request req = { .session_id = sid("bad-labels"), .labels = &bad_value, .n_labels = 1 };
    CHECK_CODE(sb_create_session(c, &req, &s, &err), SB_INVALID_ARGUMENT, err);
    CHECK(strstr(err.message, "of label \"team\" (labels[0]): a value must be empty or at most 63") != NULL);
    req.labels = &bad_key;
    CHECK_CODE(sb_create_session(c, &req, &s, &err), SB_INVALID_ARGUMENT, err);
    CHECK(strstr(err.message, "invalid label key \"Example.com/team\" (labels[0]): a key's prefix") != NULL);
    req.labels = twice;
    req.n_labels = 2;
    CHECK_CODE(sb_create_session(c, &req, &s, &err), SB_INVALID_ARGUMENT, err);
    CHECK(strstr(err.message, "appears more than once") != NULL);
    CHECK_CODE(sb_get_session(c, sid("bad-labels"), &s, &err), SB_NOT_FOUND, err);

    /* Three sessions of 64 labels at the longest key and value (about 25 KB each). */
    static char keys[64][320];
    sb_kv labels[64];
    char value[64];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    for (int i = 0; i < 64; i++) {
        memset(keys[i], 'p', 253);
        for (int dot = 62; dot < 253; dot += 63) keys[i][dot] = '.';
        keys[i][253] = '/';
        /* name: "n" + two digits + 59 "n" + "z" = 63 characters */
        char *name = keys[i] + 254;
        memset(name, 'n', 62);
        name[1] = (char)('0' + i / 10);
        name[2] = (char)('0' + i % 10);
        name[62] = 'z';
        name[63] = '\0';
        labels[i].key = keys[i];
        labels[i].value = value;
    }
    const char *ids[3] = { sid("big-labels-0"), sid("big-labels-1"), sid("big-labels-2") };
    for (int i = 0; i < 3; i++) {
        sb_create_request big = { .session_id = ids[i], .labels = labels, .n_labels = 64 };
        CHECK_CODE(sb_create_session(c, &big, &s, &err), SB_OK, err);
        if (err.code == SB_OK) sb_session_clear(&s);
    }
    sb_options o;
    sb_options_init(&o);
    o.max_frame_size = 1024;
    sb_client *small = sb_connect(fast.socket_path, &o, &err);
    REQUIRE(small);
    sb_server_status status;
    CHECK_CODE(sb_get_server_status(small, 1, &status, &err), SB_OK, err);
    if (err.code == SB_OK) {
        CHECK(status.sessions_omitted > 0);
        CHECK(status.n_sessions + status.sessions_omitted <= status.sessions_total);
        sb_server_status_clear(&status);
    }
    int found = 0;
    char token[256] = "";
    for (int pages = 0; pages < 10000; pages++) {
        sb_list_request lr = { .page_size = 1000, .page_token = token };
        sb_session_list page;
        CHECK_CODE(sb_list_sessions(small, &lr, &page, &err), SB_OK, err);
        if (err.code != SB_OK) break;
        for (size_t i = 0; i < page.n_sessions; i++) {
            for (int k = 0; k < 3; k++) {
                if (strcmp(page.sessions[i].id, ids[k]) == 0) {
                    found++;
                    CHECK(page.sessions[i].labels_omitted == 1 && page.sessions[i].n_labels == 0);
                }
            }
        }
        snprintf(token, sizeof token, "%s", page.next_page_token);
        sb_session_list_clear(&page);
        if (token[0] == '\0') break;
    }
    CHECK(found == 3);
    sb_close(small);
    for (int i = 0; i < 3; i++) sb_close_session(c, ids[i], NULL, NULL, NULL);
    sb_close(c);
}

/* Bad bytes from the client: the server's GoAway becomes the next call's error. */
static void test_bad_frames(void) {
    static const uint8_t oversized[] = { 0xff, 0xff, 0xff, 0xff };
    static const uint8_t garbage[] = { 0x00, 0x00, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t empty[] = { 0x00, 0x00, 0x00, 0x00 };
    struct { const uint8_t *bytes; size_t len; int want; } cases[] = {
        { oversized, sizeof oversized, SB_RESOURCE_EXHAUSTED },
        { garbage, sizeof garbage, SB_INVALID_ARGUMENT },
        { empty, sizeof empty, SB_INVALID_ARGUMENT },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_client *c = connect_to(&fast);
        REQUIRE(c);
        sb_error err;
        CHECK_CODE(sb__write_raw(c, cases[i].bytes, cases[i].len, &err), SB_OK, err);
        int health;
        CHECK_CODE(sb_health(c, &health, &err), cases[i].want, err);
        sb_close(c);
    }
    /* The server is fine. */
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    sb_error err;
    int health;
    CHECK_CODE(sb_health(c, &health, &err), SB_OK, err);
    sb_close(c);
}

/* ------------------------------------------------------------------------- */
/* A hostile fake server: answers the Hello with scripted bytes.             */

typedef struct fake {
    int listen_fd;
    char path[108];
    const uint8_t *script;   /* sent after reading the client's first frame */
    size_t script_len;
    int byte_by_byte;
    int hold_open_ms;        /* before closing */
} fake;

static void read_one_frame_raw(int fd) {
    uint8_t header[4];
    size_t have = 0;
    while (have < 4) {
        ssize_t n = read(fd, header + have, 4 - have);
        if (n <= 0) return;
        have += (size_t)n;
    }
    uint32_t len = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
    uint8_t buf[512];
    while (len > 0) {
        ssize_t n = read(fd, buf, len < sizeof buf ? len : sizeof buf);
        if (n <= 0) return;
        len -= (uint32_t)n;
    }
}

static void *fake_serve(void *arg) {
    fake *f = arg;
    int fd = accept(f->listen_fd, NULL, NULL);
    if (fd < 0) return NULL;
    read_one_frame_raw(fd);
    if (f->byte_by_byte) {
        for (size_t i = 0; i < f->script_len; i++) {
            if (write(fd, f->script + i, 1) != 1) break;
            sleep_ms(1);
        }
    } else if (f->script_len > 0 && write(fd, f->script, f->script_len) < 0) {
        perror("fake write");
    }
    if (f->hold_open_ms) sleep_ms(f->hold_open_ms);
    close(fd);
    return NULL;
}

static int fake_start(fake *f, pthread_t *t, const char *name) {
    snprintf(f->path, sizeof f->path, "%s/%s.sock", dir, name);
    unlink(f->path);
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", f->path);
    if (bind(f->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(f->listen_fd, 4) != 0) return -1;
    return pthread_create(t, NULL, fake_serve, f);
}

static void fake_stop(fake *f, pthread_t t) {
    pthread_join(t, NULL);
    close(f->listen_fd);
    unlink(f->path);
}

/* A Welcome frame, packed. */
static uint8_t *welcome_bytes(size_t *len) {
    Switchboard__V1__Welcome w = SWITCHBOARD__V1__WELCOME__INIT;
    w.version = 1;
    w.server_name = "fake";
    w.max_frame_size = 4096;
    w.max_concurrent_calls = 4;
    Switchboard__V1__Frame f = SWITCHBOARD__V1__FRAME__INIT;
    f.kind_case = SWITCHBOARD__V1__FRAME__KIND_WELCOME;
    f.welcome = &w;
    return sb__pack_frame(&f, len);
}

static void test_hostile_server(void) {
    sb_error err;
    pthread_t t;

    /* A 4 GiB length prefix: refused before any allocation. */
    static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xf0, 1, 2, 3 };
    fake f1 = { .script = huge, .script_len = sizeof huge };
    REQUIRE(fake_start(&f1, &t, "fake-huge") == 0);
    CHECK(sb_connect(f1.path, NULL, &err) == NULL);
    CHECK_CODE(err.code, SB_RESOURCE_EXHAUSTED, err);
    fake_stop(&f1, t);

    /* Bytes that do not decode. */
    static const uint8_t junk[] = { 0, 0, 0, 3, 0xff, 0xff, 0xff };
    fake f2 = { .script = junk, .script_len = sizeof junk };
    REQUIRE(fake_start(&f2, &t, "fake-junk") == 0);
    CHECK(sb_connect(f2.path, NULL, &err) == NULL);
    CHECK_CODE(err.code, SB_INTERNAL, err);
    fake_stop(&f2, t);

    /* A truncated frame, then EOF. */
    static const uint8_t cut[] = { 0, 0, 0, 50, 0x1a, 0x02 };
    fake f3 = { .script = cut, .script_len = sizeof cut };
    REQUIRE(fake_start(&f3, &t, "fake-cut") == 0);
    CHECK(sb_connect(f3.path, NULL, &err) == NULL);
    CHECK_CODE(err.code, SB_UNAVAILABLE, err);
    fake_stop(&f3, t);

    /* Silence: the handshake times out. */
    fake f4 = { .hold_open_ms = 1500 };
    REQUIRE(fake_start(&f4, &t, "fake-silent") == 0);
    sb_options o;
    sb_options_init(&o);
    o.connect_timeout_ms = 200;
    CHECK(sb_connect(f4.path, &o, &err) == NULL);
    CHECK_CODE(err.code, SB_UNAVAILABLE, err);
    fake_stop(&f4, t);

    /* A Welcome dribbled one byte at a time (short reads), then EOF under a call. */
    size_t wlen;
    uint8_t *w = welcome_bytes(&wlen);
    fake f5 = { .script = w, .script_len = wlen, .byte_by_byte = 1, .hold_open_ms = 100 };
    REQUIRE(fake_start(&f5, &t, "fake-slow") == 0);
    sb_client *c = sb_connect(f5.path, NULL, &err);
    CHECK(c != NULL);
    if (c) {
        CHECK(strcmp(sb_client_welcome(c)->server_name, "fake") == 0);
        CHECK(sb_client_welcome(c)->max_frame_size == 4096);
        int health;
        CHECK_CODE(sb_health(c, &health, &err), SB_UNAVAILABLE, err);
        sb_close(c);
    }
    fake_stop(&f5, t);
    free(w);
}

/* ------------------------------------------------------------------------- */
/* Ownership, turn history and attach                                        */

static void test_welcome_peer(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    const sb_welcome *w = sb_client_welcome(c);
    CHECK(w->peer_uid == (uint32_t)getuid());
    sb_error err;
    sb_create_request req = { .session_id = sid("owner") };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    CHECK(s.owner_uid == (uint32_t)getuid());
    sb_session_clear(&s);
    sb_close_session(c, req.session_id, NULL, NULL, NULL);
    sb_close(c);
}

/* Runs one prompt to its end with the iterator; copies its turn id into
 * `turn_id`. Returns the call's code. */
static int run_turn(sb_client *c, const char *session_id, const char *text, char *turn_id, size_t size) {
    sb_prompt_request pr = { .session_id = session_id, .prompt = text };
    sb_error err;
    sb_call *call = sb_prompt_start(c, &pr, &err);
    if (!call) return err.code;
    sb_prompt_event e;
    int r;
    while ((r = sb_call_next(call, &e, &err)) == 1) {
        if (e.kind == SB_EVENT_ACCEPTED) snprintf(turn_id, size, "%s", e.turn_id);
    }
    sb_call_free(call);
    return r == 0 ? SB_OK : err.code;
}

static void test_list_turns(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    sb_error err;
    const char *id = sid("history");
    sb_create_request req = { .session_id = id };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    sb_session_clear(&s);

    /* A session without turns lists nothing. */
    sb_list_turns_request lr = { .session_id = id };
    sb_turn_list list;
    REQUIRE(sb_list_turns(c, &lr, &list, &err) == SB_OK);
    CHECK(list.n_turns == 0 && list.turns == NULL && strcmp(list.next_page_token, "") == 0);
    sb_turn_list_clear(&list);

    const char *prompts[3] = { "first turn", "the second turn", "and the third turn here" };
    char ids[3][128];
    for (int i = 0; i < 3; i++) REQUIRE(run_turn(c, id, prompts[i], ids[i], sizeof ids[i]) == SB_OK);

    lr.page_size = 2;
    REQUIRE(sb_list_turns(c, &lr, &list, &err) == SB_OK);
    CHECK(list.n_turns == 2);
    CHECK(strcmp(list.next_page_token, "") != 0);
    for (size_t i = 0; i < list.n_turns && i < 2; i++) {
        CHECK(strcmp(list.turns[i].summary.turn_id, ids[i]) == 0);
        CHECK(list.turns[i].summary.state == SB_TURN_FINISHED && list.turns[i].summary.code == SB_OK);
        CHECK(strcmp(list.turns[i].summary.prompt_preview, prompts[i]) == 0);
        /* Without include_output: no prompt, no output, but never NULL. */
        CHECK(strcmp(list.turns[i].prompt, "") == 0);
        CHECK(list.turns[i].output != NULL && list.turns[i].output_len == 0);
    }
    char token[256];
    snprintf(token, sizeof token, "%s", list.next_page_token);
    sb_turn_list_clear(&list);
    CHECK(list.turns == NULL && list.next_page_token == NULL);

    lr.page_token = token;
    REQUIRE(sb_list_turns(c, &lr, &list, &err) == SB_OK);
    CHECK(list.n_turns == 1 && strcmp(list.next_page_token, "") == 0);
    if (list.n_turns == 1) CHECK(strcmp(list.turns[0].summary.turn_id, ids[2]) == 0);
    sb_turn_list_clear(&list);

    sb_list_turns_request full = { .session_id = id, .include_output = 1 };
    REQUIRE(sb_list_turns(c, &full, &list, &err) == SB_OK);
    CHECK(list.n_turns == 3);
    for (size_t i = 0; i < list.n_turns && i < 3; i++) {
        const sb_turn_record *t = &list.turns[i];
        CHECK(strcmp(t->summary.turn_id, ids[i]) == 0);
        CHECK(strcmp(t->prompt, prompts[i]) == 0);
        CHECK(t->output_len == strlen(prompts[i]) && memcmp(t->output, prompts[i], t->output_len) == 0);
        CHECK(t->output[t->output_len] == '\0');
        CHECK(!t->output_dropped);
        CHECK(t->summary.bytes == strlen(prompts[i]));
        CHECK(t->accepted_at_ms > 0 && t->accepted_at_ms <= t->summary.started_at_ms);
    }
    sb_turn_list_clear(&list);
    sb_turn_list_clear(NULL);

    sb_list_turns_request missing = { .session_id = "no-such-session" };
    CHECK_CODE(sb_list_turns(c, &missing, &list, &err), SB_NOT_FOUND, err);
    sb_list_turns_request bad_token = { .session_id = id, .page_token = "not-a-token" };
    CHECK_CODE(sb_list_turns(c, &bad_token, &list, &err), SB_INVALID_ARGUMENT, err);
    CHECK_CODE(sb_list_turns(c, NULL, &list, &err), SB_INVALID_ARGUMENT, err);
    sb_close_session(c, id, NULL, NULL, NULL);
    sb_close(c);
}

/* What an attach delivered. */
typedef struct attached {
    int attached, finished, order_ok;
    char turn_id[128];
    int turn_state;
    uint64_t last_sequence, first_sequence, next_sequence, finished_chunks;
    char text[4096];
    size_t len;
    int cancel_after_outputs;  /* 0 = never */
    int outputs;
} attached;

static int collect_attach(const sb_prompt_event *e, void *user) {
    attached *a = user;
    switch (e->kind) {
    case SB_EVENT_ATTACHED:
        if (a->attached++ || a->outputs || a->finished) a->order_ok = 0;
        snprintf(a->turn_id, sizeof a->turn_id, "%s", e->turn_id);
        a->turn_state = e->turn_state;
        a->last_sequence = e->last_sequence;
        break;
    case SB_EVENT_OUTPUT:
        if (!a->attached || a->finished) a->order_ok = 0;
        if (a->outputs == 0) a->first_sequence = e->sequence;
        else if (e->sequence != a->next_sequence) a->order_ok = 0;
        a->next_sequence = e->sequence + 1;
        a->outputs++;
        if (a->len + e->len < sizeof a->text) {
            memcpy(a->text + a->len, e->data, e->len);
            a->len += e->len;
            a->text[a->len] = '\0';
        }
        if (a->cancel_after_outputs && a->outputs == a->cancel_after_outputs) return 1;
        break;
    case SB_EVENT_FINISHED:
        if (!a->attached || a->finished++) a->order_ok = 0;
        a->finished_chunks = e->chunks;
        break;
    default:
        a->order_ok = 0;  /* accepted/started never come on an attach */
    }
    return 0;
}

static void attached_init(attached *a) {
    memset(a, 0, sizeof *a);
    a->order_ok = 1;
}

static void test_attach(void) {
    sb_client *c = connect_to(&fast);
    REQUIRE(c);
    sb_error err;
    const char *id = sid("attach");
    sb_create_request req = { .session_id = id };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    sb_session_clear(&s);

    /* No turns yet: NOT_FOUND. */
    sb_attach_request none = { .session_id = id };
    CHECK_CODE(sb_attach(c, &none, NULL, NULL, &err), SB_NOT_FOUND, err);

    /* The turn, remembering what its chunks after the 10th said. */
    char *text = words(30);
    char turn[128] = "";
    char want[512] = "";
    size_t want_len = 0;
    sb_prompt_request pr = { .session_id = id, .prompt = text };
    sb_call *call = sb_prompt_start(c, &pr, &err);
    REQUIRE(call);
    sb_prompt_event e;
    int r;
    while ((r = sb_call_next(call, &e, &err)) == 1) {
        if (e.kind == SB_EVENT_ACCEPTED) snprintf(turn, sizeof turn, "%s", e.turn_id);
        if (e.kind == SB_EVENT_OUTPUT && e.sequence > 10 && want_len + e.len < sizeof want) {
            memcpy(want + want_len, e.data, e.len);
            want_len += e.len;
            want[want_len] = '\0';
        }
    }
    REQUIRE(r == 0);
    sb_call_free(call);

    /* After chunk 10 with the iterator: attached, exactly 11..30, finished, OK. */
    sb_attach_request ar = { .session_id = id, .turn_id = turn, .after_sequence = 10 };
    call = sb_attach_start(c, &ar, &err);
    REQUIRE(call);
    attached a;
    attached_init(&a);
    while ((r = sb_call_next(call, &e, &err)) == 1) collect_attach(&e, &a);
    CHECK(r == 0);
    sb_call_free(call);
    CHECK(a.attached == 1 && a.finished == 1 && a.order_ok);
    CHECK(strcmp(a.turn_id, turn) == 0);
    CHECK(a.turn_state == SB_TURN_FINISHED && a.last_sequence == 30);
    CHECK(a.outputs == 20 && a.first_sequence == 11 && a.next_sequence == 31);
    CHECK(strcmp(a.text, want) == 0);
    CHECK(a.finished_chunks == 30);

    /* Without a turn id: the most recent turn, from the start, with the callback. */
    attached_init(&a);
    sb_attach_request latest = { .session_id = id };
    CHECK_CODE(sb_attach(c, &latest, collect_attach, &a, &err), SB_OK, err);
    CHECK(strcmp(a.turn_id, turn) == 0 && a.outputs == 30 && strcmp(a.text, text) == 0 && a.order_ok);

    /* After the last chunk: nothing to replay, still attached + finished. */
    attached_init(&a);
    ar.after_sequence = 30;
    CHECK_CODE(sb_attach(c, &ar, collect_attach, &a, &err), SB_OK, err);
    CHECK(a.attached == 1 && a.outputs == 0 && a.finished == 1);

    sb_attach_request bad_turn = { .session_id = id, .turn_id = "t-no-such-turn" };
    CHECK_CODE(sb_attach(c, &bad_turn, NULL, NULL, &err), SB_NOT_FOUND, err);
    sb_attach_request bad_session = { .session_id = "no-such-session" };
    CHECK_CODE(sb_attach(c, &bad_session, NULL, NULL, &err), SB_NOT_FOUND, err);
    CHECK_CODE(sb_attach(c, NULL, NULL, NULL, &err), SB_INVALID_ARGUMENT, err);
    CHECK(sb_attach_start(c, NULL, &err) == NULL);
    free(text);
    sb_close_session(c, id, NULL, NULL, NULL);
    sb_close(c);
}

/* The attach ends with the turn's status; cancelling an attach leaves the turn alone. */
static void test_attach_status_and_cancel(void) {
    sb_client *c = connect_to(&slow);
    sb_client *watcher = connect_to(&slow);
    REQUIRE(c && watcher);
    sb_error err;
    const char *id = sid("attach-slow");
    sb_create_request req = { .session_id = id };
    sb_session s;
    REQUIRE(sb_create_session(c, &req, &s, &err) == SB_OK);
    sb_session_clear(&s);

    /* A cancelled turn: attaching to it ends CANCELLED. */
    char *text = words(50);
    collected col;
    collected_init(&col);
    col.cancel_after = 2;
    sb_prompt_request pr = { .session_id = id, .prompt = text };
    CHECK_CODE(sb_prompt(c, &pr, collect, &col, &err), SB_CANCELLED, err);
    attached a;
    attached_init(&a);
    sb_attach_request latest = { .session_id = id };
    CHECK_CODE(sb_attach(watcher, &latest, collect_attach, &a, &err), SB_CANCELLED, err);
    CHECK(a.attached == 1 && a.finished == 1 && a.turn_state == SB_TURN_FINISHED);

    /* A running turn followed by a second connection that gives up after one chunk. */
    char *twenty = words(20);
    pr.prompt = twenty;
    sb_call *prompt = sb_prompt_start(c, &pr, &err);
    REQUIRE(prompt);
    sb_prompt_event e;
    char turn[128] = "";
    int r;
    while ((r = sb_call_next(prompt, &e, &err)) == 1 && e.kind != SB_EVENT_ACCEPTED) {
    }
    REQUIRE(r == 1);
    snprintf(turn, sizeof turn, "%s", e.turn_id);
    attached_init(&a);
    a.cancel_after_outputs = 1;
    sb_attach_request follow = { .session_id = id, .turn_id = turn };
    CHECK_CODE(sb_attach(watcher, &follow, collect_attach, &a, &err), SB_CANCELLED, err);
    CHECK(a.attached == 1 && a.outputs >= 1 && strcmp(a.turn_id, turn) == 0);
    /* The prompt goes on to its end with all its output. */
    size_t total = 0;
    while ((r = sb_call_next(prompt, &e, &err)) == 1) {
        if (e.kind == SB_EVENT_OUTPUT) total += e.len;
    }
    CHECK(r == 0);
    CHECK(total == strlen(twenty));
    sb_call_free(prompt);
    free(twenty);
    free(text);
    sb_close_session(c, id, NULL, NULL, NULL);
    sb_close(watcher);
    sb_close(c);
}

/* A client that vanishes mid-turn: by default the turn runs on and a new
 * connection attaches after the last chunk it had; with cancel_on_disconnect
 * the turn is cancelled. */
static void test_detached_turns(void) {
    for (int cancel_on_disconnect = 0; cancel_on_disconnect <= 1; cancel_on_disconnect++) {
        sb_client *gone = connect_to(&slow);
        REQUIRE(gone);
        sb_error err;
        const char *id = sid(cancel_on_disconnect ? "detached-cod" : "detached");
        sb_create_request req = { .session_id = id };
        sb_session s;
        REQUIRE(sb_create_session(gone, &req, &s, &err) == SB_OK);
        sb_session_clear(&s);
        char *text = words(25);
        sb_prompt_request pr = { .session_id = id, .prompt = text, .cancel_on_disconnect = cancel_on_disconnect };
        sb_call *call = sb_prompt_start(gone, &pr, &err);
        REQUIRE(call);
        char turn[128] = "";
        char got[512] = "";
        size_t len = 0;
        uint64_t last = 0;
        sb_prompt_event e;
        int r;
        while ((r = sb_call_next(call, &e, &err)) == 1) {
            if (e.kind == SB_EVENT_ACCEPTED) snprintf(turn, sizeof turn, "%s", e.turn_id);
            if (e.kind == SB_EVENT_OUTPUT) {
                memcpy(got + len, e.data, e.len);
                len += e.len;
                got[len] = '\0';
                last = e.sequence;
                if (last == 3) break;
            }
        }
        REQUIRE(r == 1 && last == 3);
        sb__drop_connection(gone);
        while ((r = sb_call_next(call, &e, &err)) == 1) {
        }
        CHECK(r == -1);
        CHECK_CODE(err.code, SB_UNAVAILABLE, err);
        sb_call_free(call);
        sb_close(gone);

        sb_client *c = connect_to(&slow);
        REQUIRE(c);
        attached a;
        attached_init(&a);
        sb_attach_request ar = { .session_id = id, .turn_id = turn, .after_sequence = last };
        if (cancel_on_disconnect) {
            CHECK_CODE(sb_attach(c, &ar, collect_attach, &a, &err), SB_CANCELLED, err);
            CHECK(a.finished_chunks < 25);
        } else {
            CHECK_CODE(sb_attach(c, &ar, collect_attach, &a, &err), SB_OK, err);
            CHECK(a.order_ok && a.first_sequence == 4 && a.next_sequence == 26 && a.finished_chunks == 25);
            CHECK(len + a.len < sizeof got);
            if (len + a.len < sizeof got) memcpy(got + len, a.text, a.len + 1);
            CHECK(strcmp(got, text) == 0);
        }
        free(text);
        sb_close_session(c, id, NULL, NULL, NULL);
        sb_close(c);
    }
}

/* ------------------------------------------------------------------------- */

typedef struct test {
    const char *name;
    void (*run)(void);
} test;

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/sbc-test-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    static const char *const slow_flags[] = { "--echo-delay", "40ms", NULL };
    if (server_start(&fast, dir, "fast", NULL) != 0 || server_start(&slow, dir, "slow", slow_flags) != 0) {
        server_stop(&fast);
        server_stop(&slow);
        return 1;
    }
    static const test tests[] = {
        { "handshake", test_handshake },
        { "unsupported_version", test_unsupported_version },
        { "no_server", test_no_server },
        { "default_socket_path", test_default_socket_path },
        { "health_and_ping", test_health_and_ping },
        { "sessions", test_sessions },
        { "invalid_arguments", test_invalid_arguments },
        { "strings", test_strings },
        { "prompt_callback", test_prompt_callback },
        { "prompt_iterator_and_large_output", test_prompt_iterator_and_large_output },
        { "cancel_from_callback", test_cancel_from_callback },
        { "cancel_from_other_thread", test_cancel_from_other_thread },
        { "deadlines", test_deadlines },
        { "busy_and_close_while_streaming", test_busy_and_close_while_streaming },
        { "concurrent_single_thread", test_concurrent_single_thread },
        { "concurrent_threads", test_concurrent_threads },
        { "request_too_large", test_request_too_large },
        { "response_too_large", test_response_too_large },
        { "labels", test_labels },
        { "bad_frames", test_bad_frames },
        { "hostile_server", test_hostile_server },
        { "welcome_peer", test_welcome_peer },
        { "list_turns", test_list_turns },
        { "attach", test_attach },
        { "attach_status_and_cancel", test_attach_status_and_cancel },
        { "detached_turns", test_detached_turns },
    };
    size_t n = sizeof tests / sizeof tests[0];
    size_t failed_tests = 0;
    for (size_t i = 0; i < n; i++) {
        current_test = tests[i].name;
        int before = failures;
        tests[i].run();
        int ok = failures == before;
        if (!ok) failed_tests++;
        printf("%s %s\n", ok ? "ok  " : "FAIL", tests[i].name);
        fflush(stdout);
    }
    server_stop(&fast);
    server_stop(&slow);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (failed_tests == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    printf("%zu passed, %zu failed\n", n - failed_tests, failed_tests);
    return failed_tests == 0 ? 0 : 1;
}
