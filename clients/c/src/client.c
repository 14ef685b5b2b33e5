/*
 * The connection: socket, framing, handshake, call multiplexing.
 *
 * Concurrency model: no library threads. A thread that waits for a frame of
 * its call takes the "reader" role when nobody holds it, reads one frame from
 * the socket (without the lock), then dispatches it under the lock to the call
 * it belongs to and wakes the other waiters. Frames of calls nobody reads are
 * queued per call, bounded by max_buffered_bytes. Writes are serialised by
 * `write_mu`; a new call takes its id and writes its start frame under
 * `write_mu`, so ids reach the server in strictly increasing order.
 * Lock order: write_mu, then mu.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SB_DEFAULT_MAX_BUFFERED (16u * 1024u * 1024u)
/* The server ends a call at its timeout; the client gives it this long to say so. */
#define SB_DEADLINE_GRACE_MS 1000

enum call_kind { CALL_UNARY, CALL_STREAM, CALL_PING };

typedef struct queued_frame {
    struct queued_frame *next;
    Switchboard__V1__Frame *frame;
    size_t size;
} queued_frame;

struct sb_call {
    sb_client *client;
    uint64_t id;
    int kind;
    uint64_t nonce;                 /* CALL_PING */
    queued_frame *head, *tail;      /* received messages not yet consumed */
    size_t queued_bytes;
    int ended;
    int end_code;
    char end_message[512];
    Switchboard__V1__Frame *end_frame;  /* the CallEnd frame (unary response inside) */
    int cancel_sent;
    int cancel_wanted;              /* ended locally: tell the server */
    int64_t deadline;               /* monotonic ms; 0 = none */
    Switchboard__V1__Frame *current;    /* frame of the event last returned */
    int registered;
    struct sb_call *prev, *next;    /* open calls of the client */
};

struct sb_client {
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t write_mu;

    /* under mu */
    int reading;
    uint64_t last_call_id;
    uint64_t last_nonce;
    sb_call *calls;
    int dead;
    int dead_code;
    char dead_message[512];
    int draining;
    uint64_t call_timeout_ms;
    int recv_timeout_ms;

    /* reader state, only touched by the reader-role holder */
    uint8_t header[4];
    size_t header_have;
    uint8_t *body;
    size_t body_len;
    size_t body_have;

    /* constant after connect */
    uint32_t max_frame_size;        /* ours */
    uint32_t server_max_frame_size;
    size_t max_buffered_bytes;
    sb_welcome welcome;
};

/* ------------------------------------------------------------------------- */
/* Errors and small helpers                                                  */

static const char *const code_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

const char *sb_code_name(int code) {
    if (code >= 0 && (size_t)code < sizeof code_names / sizeof code_names[0]) {
        return code_names[code];
    }
    return "UNKNOWN_CODE";
}

int sb__fail(sb_error *err, int code, const char *format, ...) {
    if (err) {
        err->code = code;
        va_list args;
        va_start(args, format);
        vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
    }
    return code;
}

void sb__ok(sb_error *err) {
    if (err) {
        err->code = SB_OK;
        err->message[0] = '\0';
    }
}

char *sb__strdup(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy) memcpy(copy, s, n);
    return copy;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds until `deadline` for poll(): -1 = forever, 0 = passed. */
static int poll_timeout(int64_t deadline) {
    if (deadline == 0) return -1;
    int64_t left = deadline - now_ms();
    if (left <= 0) return 0;
    return left > 60000 ? 60000 : (int)left;
}

/* The earlier of two deadlines, 0 meaning none. */
static int64_t earliest(int64_t a, int64_t b) {
    if (a == 0) return b;
    if (b == 0) return a;
    return a < b ? a : b;
}

void sb_options_init(sb_options *options) {
    memset(options, 0, sizeof *options);
    options->client_name = "switchboard-c";
    options->max_frame_size = SB_DEFAULT_MAX_FRAME;
    options->min_version = SB_PROTOCOL_VERSION;
    options->max_version = SB_PROTOCOL_VERSION;
    options->connect_timeout_ms = 5000;
    options->max_buffered_bytes = SB_DEFAULT_MAX_BUFFERED;
}

int sb_default_socket_path(char *buffer, size_t size) {
    const char *explicit_path = getenv("SWITCHBOARD_SOCKET");
    const char *runtime = getenv("XDG_RUNTIME_DIR");
    int n;
    if (explicit_path && *explicit_path) {
        n = snprintf(buffer, size, "%s", explicit_path);
    } else if (runtime && *runtime) {
        size_t len = strlen(runtime);
        n = snprintf(buffer, size, "%s%sswitchboard.sock", runtime, runtime[len - 1] == '/' ? "" : "/");
    } else {
        n = snprintf(buffer, size, "/run/switchboard/switchboard.sock");
    }
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

/* ------------------------------------------------------------------------- */
/* Framing                                                                   */

uint8_t *sb__pack_frame(const Switchboard__V1__Frame *frame, size_t *out_len) {
    size_t n = switchboard__v1__frame__get_packed_size(frame);
    uint8_t *buf = malloc(4 + n);
    if (!buf) return NULL;
    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    switchboard__v1__frame__pack(frame, buf + 4);
    *out_len = 4 + n;
    return buf;
}

/* Writes all of `buf`. Returns 0, or -1 with errno set (ETIMEDOUT at the
 * deadline). `*written` tells how far it got. Handles EINTR and short writes. */
static int write_all(int fd, const uint8_t *buf, size_t len, int64_t deadline, size_t *written) {
    *written = 0;
    while (*written < len) {
        ssize_t n = send(fd, buf + *written, len - *written, MSG_NOSIGNAL);
        if (n > 0) {
            *written += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            int timeout = poll_timeout(deadline);
            if (timeout == 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            if (poll(&p, 1, timeout) < 0 && errno != EINTR) return -1;
            continue;
        }
        if (n == 0) errno = EPIPE;
        return -1;
    }
    return 0;
}

/* Marks the connection dead (with mu held): every open call ends with `code`. */
static void mark_dead(sb_client *c, int code, const char *message) {
    if (!c->dead) {
        c->dead = 1;
        c->dead_code = code;
        snprintf(c->dead_message, sizeof c->dead_message, "%s", message);
        shutdown(c->fd, SHUT_RDWR);
    }
    for (sb_call *call = c->calls; call; call = call->next) {
        if (!call->ended) {
            call->ended = 1;
            call->end_code = c->dead_code;
            snprintf(call->end_message, sizeof call->end_message, "%s", c->dead_message);
        }
    }
    pthread_cond_broadcast(&c->cv);
}

/*
 * Writes one packed frame under write_mu (the caller holds it). A failed write
 * does not end anything by itself: the server's GoAway (or EOF) that explains
 * it is still readable, and the reader turns it into the calls' status. Only a
 * frame cut in the middle kills the connection here.
 */
static int write_locked(sb_client *c, const uint8_t *buf, size_t len, int64_t deadline, sb_error *err) {
    size_t written = 0;
    if (write_all(c->fd, buf, len, deadline, &written) == 0) return SB_OK;
    int e = errno;
    if (e == ETIMEDOUT && written == 0) {
        return sb__fail(err, SB_DEADLINE_EXCEEDED, "deadline exceeded while sending");
    }
    if (written > 0 && e == ETIMEDOUT) {
        pthread_mutex_lock(&c->mu);
        mark_dead(c, SB_UNAVAILABLE, "connection unusable: a frame write timed out half-way");
        pthread_mutex_unlock(&c->mu);
    }
    return sb__fail(err, SB_UNAVAILABLE, "cannot send: %s", strerror(e));
}

static int write_frame(sb_client *c, const Switchboard__V1__Frame *frame, int64_t deadline, sb_error *err) {
    size_t len;
    uint8_t *buf = sb__pack_frame(frame, &len);
    if (!buf) return sb__fail(err, SB_INTERNAL, "out of memory");
    pthread_mutex_lock(&c->write_mu);
    int rc = write_locked(c, buf, len, deadline, err);
    pthread_mutex_unlock(&c->write_mu);
    free(buf);
    return rc;
}

int sb__write_raw(sb_client *c, const void *bytes, size_t len, sb_error *err) {
    pthread_mutex_lock(&c->write_mu);
    int rc = write_locked(c, bytes, len, now_ms() + 5000, err);
    pthread_mutex_unlock(&c->write_mu);
    if (rc == SB_OK) sb__ok(err);
    return rc;
}

enum read_result { READ_FRAME = 1, READ_TIMEOUT = 0, READ_FATAL = -1 };

/*
 * Reads one frame (reader role, no lock held). Keeps partial progress in the
 * client, so a timeout in the middle of a frame loses nothing. The length is
 * checked against our maximum before anything is allocated.
 */
static int read_frame(sb_client *c, int64_t deadline, Switchboard__V1__Frame **out, size_t *out_size,
                      int *fatal_code, char *fatal_message, size_t fatal_size) {
    for (;;) {
        uint8_t *dst;
        size_t want;
        if (c->header_have < 4) {
            dst = c->header + c->header_have;
            want = 4 - c->header_have;
        } else {
            dst = c->body + c->body_have;
            want = c->body_len - c->body_have;
        }
        if (want > 0) {
            ssize_t n = recv(c->fd, dst, want, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                int timeout = poll_timeout(deadline);
                if (timeout == 0) return READ_TIMEOUT;
                if (poll(&p, 1, timeout) < 0 && errno != EINTR) {
                    *fatal_code = SB_UNAVAILABLE;
                    snprintf(fatal_message, fatal_size, "poll: %s", strerror(errno));
                    return READ_FATAL;
                }
                continue;
            }
            if (n <= 0) {
                /* EOF, or ECONNRESET once the peer is gone: the connection is over. */
                *fatal_code = SB_UNAVAILABLE;
                if (n == 0 || errno == ECONNRESET) {
                    snprintf(fatal_message, fatal_size, "connection closed by the server");
                } else {
                    snprintf(fatal_message, fatal_size, "connection lost: %s", strerror(errno));
                }
                return READ_FATAL;
            }
            if (c->header_have < 4) {
                c->header_have += (size_t)n;
                if (c->header_have < 4) continue;
                uint32_t len = (uint32_t)c->header[0] << 24 | (uint32_t)c->header[1] << 16 |
                               (uint32_t)c->header[2] << 8 | (uint32_t)c->header[3];
                if (len > c->max_frame_size) {
                    *fatal_code = SB_RESOURCE_EXHAUSTED;
                    snprintf(fatal_message, fatal_size, "server sent a frame of %u bytes, above this client's maximum of %u",
                             len, c->max_frame_size);
                    return READ_FATAL;
                }
                c->body_len = len;
                c->body_have = 0;
                c->body = malloc(len ? len : 1);
                if (!c->body) {
                    *fatal_code = SB_INTERNAL;
                    snprintf(fatal_message, fatal_size, "out of memory for a frame of %u bytes", len);
                    return READ_FATAL;
                }
                continue;
            }
            c->body_have += (size_t)n;
            if (c->body_have < c->body_len) continue;
        }
        /* A whole frame. */
        Switchboard__V1__Frame *frame = switchboard__v1__frame__unpack(NULL, c->body_len, c->body);
        size_t size = c->body_len;
        free(c->body);
        c->body = NULL;
        c->body_len = c->body_have = c->header_have = 0;
        if (!frame || frame->kind_case == SWITCHBOARD__V1__FRAME__KIND__NOT_SET) {
            if (frame) switchboard__v1__frame__free_unpacked(frame, NULL);
            *fatal_code = SB_INTERNAL;
            snprintf(fatal_message, fatal_size, "server sent a frame that does not decode (%zu bytes)", size);
            return READ_FATAL;
        }
        *out = frame;
        *out_size = size;
        return READ_FRAME;
    }
}

/* ------------------------------------------------------------------------- */
/* Calls                                                                     */

static void free_frame(Switchboard__V1__Frame *frame) {
    if (frame) switchboard__v1__frame__free_unpacked(frame, NULL);
}

static sb_call *find_call(sb_client *c, uint64_t id) {
    for (sb_call *call = c->calls; call; call = call->next) {
        if (call->id == id) return call;
    }
    return NULL;
}

/* Ends a call on this side (mu held). */
static void end_locally(sb_call *call, int code, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void end_locally(sb_call *call, int code, const char *format, ...) {
    if (call->ended) return;
    call->ended = 1;
    call->end_code = code;
    va_list args;
    va_start(args, format);
    vsnprintf(call->end_message, sizeof call->end_message, format, args);
    va_end(args);
    if (call->kind != CALL_PING && !call->cancel_sent) call->cancel_wanted = 1;
}

static void drop_queue(sb_call *call) {
    while (call->head) {
        queued_frame *q = call->head;
        call->head = q->next;
        free_frame(q->frame);
        free(q);
    }
    call->tail = NULL;
    call->queued_bytes = 0;
}

/* Hands a received frame to whoever it belongs to (mu held). Takes ownership. */
static void dispatch(sb_client *c, Switchboard__V1__Frame *frame, size_t size) {
    if (frame->call_id == 0) {
        if (frame->kind_case == SWITCHBOARD__V1__FRAME__KIND_GO_AWAY) {
            const Switchboard__V1__GoAway *g = frame->go_away;
            if (g->code == SB_OK) {
                /* Drain: calls after last_call_id were not taken. */
                c->draining = 1;
                for (sb_call *call = c->calls; call; call = call->next) {
                    if (call->kind != CALL_PING && call->id > g->last_call_id) {
                        end_locally(call, SB_UNAVAILABLE, "server is draining; the call was not taken");
                        call->cancel_wanted = 0;
                    }
                }
            } else {
                mark_dead(c, (int)g->code, g->message ? g->message : "");
            }
        } else if (frame->kind_case == SWITCHBOARD__V1__FRAME__KIND_PONG) {
            for (sb_call *call = c->calls; call; call = call->next) {
                if (call->kind == CALL_PING && call->nonce == frame->pong->nonce && !call->ended) {
                    call->ended = 1;
                    call->end_code = SB_OK;
                    break;
                }
            }
        }
        free_frame(frame);
        return;
    }
    sb_call *call = find_call(c, frame->call_id);
    if (!call || call->ended || call->kind == CALL_PING) {
        free_frame(frame);
        return;
    }
    if (frame->kind_case == SWITCHBOARD__V1__FRAME__KIND_END) {
        call->ended = 1;
        call->end_code = (int)frame->end->code;
        snprintf(call->end_message, sizeof call->end_message, "%s", frame->end->message ? frame->end->message : "");
        call->end_frame = frame;
        return;
    }
    if (frame->kind_case != SWITCHBOARD__V1__FRAME__KIND_MESSAGE || call->kind != CALL_STREAM) {
        free_frame(frame);
        return;
    }
    if (call->queued_bytes + size > c->max_buffered_bytes) {
        free_frame(frame);
        drop_queue(call);
        end_locally(call, SB_RESOURCE_EXHAUSTED,
                    "more than %zu bytes of this call's messages were waiting to be read", c->max_buffered_bytes);
        return;
    }
    queued_frame *q = malloc(sizeof *q);
    if (!q) {
        free_frame(frame);
        end_locally(call, SB_INTERNAL, "out of memory");
        return;
    }
    q->next = NULL;
    q->frame = frame;
    q->size = size;
    if (call->tail) call->tail->next = q; else call->head = q;
    call->tail = q;
    call->queued_bytes += size;
}

static void send_cancel(sb_client *c, uint64_t id, const char *reason) {
    Switchboard__V1__Cancel cancel = SWITCHBOARD__V1__CANCEL__INIT;
    cancel.reason = (char *)reason;
    Switchboard__V1__Frame frame = SWITCHBOARD__V1__FRAME__INIT;
    frame.call_id = id;
    frame.kind_case = SWITCHBOARD__V1__FRAME__KIND_CANCEL;
    frame.cancel = &cancel;
    write_frame(c, &frame, now_ms() + 5000, NULL);
}

/* Sends the Cancel frames that calls ended locally still owe the server. Called with
 * mu held; drops it while writing (write_mu comes before mu). */
static void flush_cancels(sb_client *c) {
    for (;;) {
        sb_call *owed = NULL;
        for (sb_call *call = c->calls; call; call = call->next) {
            if (call->cancel_wanted && !call->cancel_sent) {
                owed = call;
                break;
            }
        }
        if (!owed || c->dead) return;
        owed->cancel_sent = 1;
        owed->cancel_wanted = 0;
        uint64_t id = owed->id;
        pthread_mutex_unlock(&c->mu);
        send_cancel(c, id, "cancelled by the client");
        pthread_mutex_lock(&c->mu);
    }
}

/*
 * Waits (mu held) until `call` has a queued message or has ended, reading from
 * the socket when no other thread does. `recv_deadline` bounds the wait for the
 * next frame (0 = none); the call's own deadline applies too.
 */
static void wait_for(sb_call *call) {
    sb_client *c = call->client;
    int64_t recv_deadline = c->recv_timeout_ms > 0 ? now_ms() + c->recv_timeout_ms : 0;
    for (;;) {
        if (call->head || call->ended) return;
        if (c->dead) {
            end_locally(call, c->dead_code, "%s", c->dead_message);
            return;
        }
        int64_t limit = earliest(call->deadline, recv_deadline);
        if (limit != 0 && now_ms() >= limit) {
            if (limit == call->deadline) {
                end_locally(call, SB_DEADLINE_EXCEEDED, "deadline exceeded: no end from the server in time");
            } else {
                end_locally(call, SB_DEADLINE_EXCEEDED, "no answer from the server within %d ms", c->recv_timeout_ms);
            }
            return;
        }
        if (!c->reading) {
            c->reading = 1;
            pthread_mutex_unlock(&c->mu);
            Switchboard__V1__Frame *frame = NULL;
            size_t size = 0;
            int fatal_code = 0;
            char fatal_message[512];
            int r = read_frame(c, limit, &frame, &size, &fatal_code, fatal_message, sizeof fatal_message);
            if (r == READ_FRAME && frame->call_id == 0 && frame->kind_case == SWITCHBOARD__V1__FRAME__KIND_PING) {
                Switchboard__V1__Pong pong = SWITCHBOARD__V1__PONG__INIT;
                pong.nonce = frame->ping->nonce;
                Switchboard__V1__Frame answer = SWITCHBOARD__V1__FRAME__INIT;
                answer.kind_case = SWITCHBOARD__V1__FRAME__KIND_PONG;
                answer.pong = &pong;
                write_frame(c, &answer, now_ms() + 5000, NULL);
                free_frame(frame);
                frame = NULL;
            }
            pthread_mutex_lock(&c->mu);
            c->reading = 0;
            if (r == READ_FRAME && frame) dispatch(c, frame, size);
            if (r == READ_FATAL) mark_dead(c, fatal_code, fatal_message);
            pthread_cond_broadcast(&c->cv);
            flush_cancels(c);
        } else if (limit == 0) {
            pthread_cond_wait(&c->cv, &c->mu);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = limit - now_ms();
            if (wait < 0) wait = 0;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec += 1;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
    }
}

static sb_call *call_new(sb_client *c, int kind) {
    sb_call *call = calloc(1, sizeof *call);
    if (call) {
        call->client = c;
        call->kind = kind;
    }
    return call;
}

/* Unregisters and frees (mu not held). */
static void call_destroy(sb_call *call) {
    sb_client *c = call->client;
    pthread_mutex_lock(&c->mu);
    if (call->registered) {
        if (call->prev) call->prev->next = call->next; else c->calls = call->next;
        if (call->next) call->next->prev = call->prev;
        call->registered = 0;
    }
    drop_queue(call);
    pthread_mutex_unlock(&c->mu);
    free_frame(call->end_frame);
    free_frame(call->current);
    free(call);
}

static void register_call(sb_client *c, sb_call *call) {
    call->next = c->calls;
    call->prev = NULL;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    call->registered = 1;
}

/*
 * Opens a call: one CallStart with the request and half_close. On failure the
 * call is not registered and the error is returned.
 */
static int start_call(sb_call *call, const char *method, Switchboard__V1__Payload *payload, uint64_t timeout_ms,
                      sb_error *err) {
    sb_client *c = call->client;
    Switchboard__V1__CallStart start = SWITCHBOARD__V1__CALL_START__INIT;
    start.method = (char *)method;
    start.payload = payload;
    start.half_close = 1;
    Switchboard__V1__Frame frame = SWITCHBOARD__V1__FRAME__INIT;
    frame.call_id = UINT64_MAX;  /* largest encoding, for the size check */
    frame.kind_case = SWITCHBOARD__V1__FRAME__KIND_START;
    frame.start = &start;

    pthread_mutex_lock(&c->mu);
    if (timeout_ms == 0) timeout_ms = c->call_timeout_ms;
    pthread_mutex_unlock(&c->mu);
    start.timeout_ms = timeout_ms;
    int invalid = sb__check_frame_strings(&frame, err);
    if (invalid != SB_OK) return invalid;
    size_t size = switchboard__v1__frame__get_packed_size(&frame);
    if (size > c->server_max_frame_size) {
        return sb__fail(err, SB_RESOURCE_EXHAUSTED, "request too large: its frame is %zu bytes, the server accepts at most %u",
                        size, c->server_max_frame_size);
    }

    pthread_mutex_lock(&c->write_mu);
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        int code = sb__fail(err, c->dead_code, "%s", c->dead_message);
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->write_mu);
        return code;
    }
    if (c->draining) {
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->write_mu);
        return sb__fail(err, SB_UNAVAILABLE, "server is draining; connect again to make new calls");
    }
    call->id = ++c->last_call_id;
    if (timeout_ms > 0) call->deadline = now_ms() + (int64_t)timeout_ms + SB_DEADLINE_GRACE_MS;
    register_call(c, call);
    pthread_mutex_unlock(&c->mu);

    frame.call_id = call->id;
    size_t len;
    uint8_t *buf = sb__pack_frame(&frame, &len);
    int rc = buf ? write_locked(c, buf, len, call->deadline, err) : sb__fail(err, SB_INTERNAL, "out of memory");
    pthread_mutex_unlock(&c->write_mu);
    free(buf);
    if (rc == SB_UNAVAILABLE) {
        /* The server may have said why (GoAway) before closing: the reader will find it. */
        return SB_OK;
    }
    if (rc != SB_OK) {
        pthread_mutex_lock(&c->mu);
        end_locally(call, rc, "%s", err ? err->message : "cannot send the call");
        call->cancel_wanted = 0;
        pthread_mutex_unlock(&c->mu);
    }
    return SB_OK;
}

/* Waits for a started call's end (mu not held). Returns its code, fills err. */
static int wait_end(sb_call *call, sb_error *err) {
    sb_client *c = call->client;
    pthread_mutex_lock(&c->mu);
    while (!call->ended) {
        wait_for(call);
        drop_queue(call);
    }
    flush_cancels(c);
    int code = call->end_code;
    if (code == SB_OK) sb__ok(err); else sb__fail(err, code, "%s", call->end_message);
    pthread_mutex_unlock(&c->mu);
    return code;
}

static int unary(sb_client *c, const char *method, Switchboard__V1__Payload *request,
                 Switchboard__V1__Payload__BodyCase response_case, Switchboard__V1__Frame **end_frame, sb_error *err) {
    *end_frame = NULL;
    sb_call *call = call_new(c, CALL_UNARY);
    if (!call) return sb__fail(err, SB_INTERNAL, "out of memory");
    int rc = start_call(call, method, request, 0, err);
    if (rc == SB_OK) rc = wait_end(call, err);
    if (rc == SB_OK) {
        Switchboard__V1__Frame *f = call->end_frame;
        if (!f || !f->end->payload || f->end->payload->body_case != response_case) {
            rc = sb__fail(err, SB_INTERNAL, "unexpected response to %s", method);
        } else {
            *end_frame = f;
            call->end_frame = NULL;
        }
    }
    call_destroy(call);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Connecting                                                                */

static void welcome_clear(sb_welcome *w) {
    free(w->server_name);
    free(w->server_version);
    memset(w, 0, sizeof *w);
}

static void client_free(sb_client *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->body);
    welcome_clear(&c->welcome);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->write_mu);
    free(c);
}

static int open_socket(const char *path, int timeout_ms, sb_error *err) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr.sun_path) {
        sb__fail(err, SB_INVALID_ARGUMENT, "socket path too long (%zu bytes, at most %zu): %s", strlen(path),
                 sizeof addr.sun_path - 1, path);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        sb__fail(err, SB_UNAVAILABLE, "socket: %s", strerror(errno));
        return -1;
    }
    /* A blocking connect bounded by SO_SNDTIMEO (a full backlog waits), then non-blocking I/O. */
    if (timeout_ms > 0) {
        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int rc;
    do {
        rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED) {
            sb__fail(err, SB_UNAVAILABLE, "no server at %s (%s)", path, strerror(e));
        } else {
            sb__fail(err, SB_UNAVAILABLE, "cannot connect to %s: %s", path, strerror(e));
        }
        return -1;
    }
    struct timeval zero = { 0, 0 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        sb__fail(err, SB_UNAVAILABLE, "fcntl: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int handshake(sb_client *c, const sb_options *o, const char *path, int64_t deadline, sb_error *err) {
    Switchboard__V1__Hello hello = SWITCHBOARD__V1__HELLO__INIT;
    hello.min_version = o->min_version ? o->min_version : SB_PROTOCOL_VERSION;
    hello.max_version = o->max_version ? o->max_version : SB_PROTOCOL_VERSION;
    hello.client_name = (char *)(o->client_name ? o->client_name : "switchboard-c");
    hello.max_frame_size = c->max_frame_size;
    Switchboard__V1__Frame frame = SWITCHBOARD__V1__FRAME__INIT;
    frame.kind_case = SWITCHBOARD__V1__FRAME__KIND_HELLO;
    frame.hello = &hello;
    int invalid = sb__check_frame_strings(&frame, err);
    if (invalid != SB_OK) return invalid;
    int rc = write_frame(c, &frame, deadline, err);
    /* A refused write may still have a GoAway to read: fall through to the read. */
    if (rc != SB_OK && rc != SB_UNAVAILABLE) return rc;

    Switchboard__V1__Frame *answer = NULL;
    size_t size;
    int fatal_code = 0;
    char fatal_message[512];
    int r = read_frame(c, deadline, &answer, &size, &fatal_code, fatal_message, sizeof fatal_message);
    if (r == READ_TIMEOUT) {
        return sb__fail(err, SB_UNAVAILABLE, "cannot connect to %s: no Welcome within %d ms", path, o->connect_timeout_ms);
    }
    if (r == READ_FATAL) {
        return sb__fail(err, fatal_code, "handshake with %s failed: %s", path, fatal_message);
    }
    if (answer->call_id == 0 && answer->kind_case == SWITCHBOARD__V1__FRAME__KIND_WELCOME) {
        const Switchboard__V1__Welcome *w = answer->welcome;
        c->welcome.version = w->version;
        c->welcome.server_name = sb__strdup(w->server_name);
        c->welcome.server_version = sb__strdup(w->server_version);
        c->welcome.max_frame_size = w->max_frame_size ? w->max_frame_size : SB_DEFAULT_MAX_FRAME;
        c->welcome.max_concurrent_calls = w->max_concurrent_calls;
        c->welcome.connection_id = w->connection_id;
        c->welcome.max_queued_prompts = w->max_queued_prompts;
        c->welcome.max_connections = w->max_connections;
        c->welcome.max_connections_per_uid = w->max_connections_per_uid;
        c->welcome.max_sessions_per_uid = w->max_sessions_per_uid;
        c->welcome.handshake_timeout_ms = w->handshake_timeout_ms;
        c->welcome.idle_connection_timeout_ms = w->idle_connection_timeout_ms;
        c->welcome.max_buffered_output_bytes = w->max_buffered_output_bytes;
        c->welcome.peer_uid = w->peer_uid;
        c->welcome.peer_is_admin = w->peer_is_admin ? 1 : 0;
        c->welcome.peer_may_register_workers = w->peer_may_register_workers ? 1 : 0;
        c->server_max_frame_size = c->welcome.max_frame_size;
        free_frame(answer);
        if (!c->welcome.server_name || !c->welcome.server_version) return sb__fail(err, SB_INTERNAL, "out of memory");
        return SB_OK;
    }
    if (answer->kind_case == SWITCHBOARD__V1__FRAME__KIND_GO_AWAY) {
        int code = answer->go_away->code == SB_OK ? SB_UNAVAILABLE : (int)answer->go_away->code;
        rc = sb__fail(err, code, "%s", answer->go_away->message ? answer->go_away->message : "");
        free_frame(answer);
        return rc;
    }
    int kind = (int)answer->kind_case;
    free_frame(answer);
    return sb__fail(err, SB_INTERNAL, "handshake with %s: expected Welcome, got frame kind %d", path, kind);
}

sb_client *sb_connect(const char *socket_path, const sb_options *options, sb_error *err) {
    sb_options defaults;
    sb_options_init(&defaults);
    const sb_options *o = options ? options : &defaults;
    char default_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
    if (!socket_path) {
        if (sb_default_socket_path(default_path, sizeof default_path) != 0) {
            sb__fail(err, SB_INVALID_ARGUMENT, "default socket path too long");
            return NULL;
        }
        socket_path = default_path;
    }
    sb_client *c = calloc(1, sizeof *c);
    if (!c) {
        sb__fail(err, SB_INTERNAL, "out of memory");
        return NULL;
    }
    c->fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->write_mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    c->max_frame_size = o->max_frame_size ? o->max_frame_size : SB_DEFAULT_MAX_FRAME;
    c->server_max_frame_size = SB_DEFAULT_MAX_FRAME;
    c->max_buffered_bytes = o->max_buffered_bytes ? o->max_buffered_bytes : SB_DEFAULT_MAX_BUFFERED;
    c->call_timeout_ms = o->call_timeout_ms;
    c->recv_timeout_ms = o->recv_timeout_ms;

    int64_t deadline = o->connect_timeout_ms > 0 ? now_ms() + o->connect_timeout_ms : 0;
    c->fd = open_socket(socket_path, o->connect_timeout_ms, err);
    if (c->fd < 0 || handshake(c, o, socket_path, deadline, err) != SB_OK) {
        client_free(c);
        return NULL;
    }
    sb__ok(err);
    return c;
}

void sb_close(sb_client *c) {
    if (!c) return;
    /* Calls the caller forgot: detach them so nothing dangles (they stay allocated). */
    pthread_mutex_lock(&c->mu);
    while (c->calls) {
        sb_call *call = c->calls;
        c->calls = call->next;
        call->registered = 0;
        call->prev = call->next = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    client_free(c);
}

const sb_welcome *sb_client_welcome(const sb_client *c) {
    return &c->welcome;
}

void sb_set_timeouts(sb_client *c, uint64_t call_timeout_ms, int recv_timeout_ms) {
    pthread_mutex_lock(&c->mu);
    c->call_timeout_ms = call_timeout_ms;
    c->recv_timeout_ms = recv_timeout_ms;
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------------- */
/* Unary methods                                                             */

#define M_CREATE "/switchboard.v1.Sessions/CreateSession"
#define M_GET "/switchboard.v1.Sessions/GetSession"
#define M_LIST "/switchboard.v1.Sessions/ListSessions"
#define M_CLOSE "/switchboard.v1.Sessions/CloseSession"
#define M_PROMPT "/switchboard.v1.Prompts/Prompt"
#define M_ATTACH "/switchboard.v1.Prompts/Attach"
#define M_LIST_TURNS "/switchboard.v1.Sessions/ListTurns"
#define M_SERVER_STATUS "/switchboard.v1.Status/GetServerStatus"
#define M_SESSION_STATUS "/switchboard.v1.Status/GetSessionStatus"
#define M_HEALTH "/switchboard.v1.Health/Check"

/* Builds an array of Label messages from key/value pairs (NULL when n == 0). */
static int make_labels(const sb_kv *kv, size_t n, Switchboard__V1__Label **storage, Switchboard__V1__Label ***pointers) {
    *storage = NULL;
    *pointers = NULL;
    if (n == 0) return SB_OK;
    if (!kv) return SB_INVALID_ARGUMENT;
    *storage = calloc(n, sizeof **storage);
    *pointers = calloc(n, sizeof **pointers);
    if (!*storage || !*pointers) {
        free(*storage);
        free(*pointers);
        *storage = NULL;
        *pointers = NULL;
        return SB_INTERNAL;
    }
    for (size_t i = 0; i < n; i++) {
        switchboard__v1__label__init(&(*storage)[i]);
        (*storage)[i].key = (char *)(kv[i].key ? kv[i].key : "");
        (*storage)[i].value = (char *)(kv[i].value ? kv[i].value : "");
        (*pointers)[i] = &(*storage)[i];
    }
    return SB_OK;
}

static int label_error(int rc, sb_error *err) {
    return rc == SB_INVALID_ARGUMENT ? sb__fail(err, rc, "labels is NULL but its count is not 0")
                                     : sb__fail(err, rc, "out of memory");
}

int sb_create_session(sb_client *c, const sb_create_request *r, sb_session *out, sb_error *err) {
    sb_create_request none;
    memset(&none, 0, sizeof none);
    if (!r) r = &none;
    Switchboard__V1__SessionSettings settings = SWITCHBOARD__V1__SESSION_SETTINGS__INIT;
    settings.backend = (char *)(r->backend ? r->backend : "");
    settings.idle_timeout_ms = r->idle_timeout_ms;
    settings.turn_deadline_ms = r->turn_deadline_ms;
    settings.stall_timeout_ms = r->stall_timeout_ms;
    settings.max_queued_prompts = r->max_queued_prompts;
    Switchboard__V1__CreateSessionRequest req = SWITCHBOARD__V1__CREATE_SESSION_REQUEST__INIT;
    req.session_id = (char *)(r->session_id ? r->session_id : "");
    req.settings = &settings;
    Switchboard__V1__Label *storage;
    Switchboard__V1__Label **labels;
    int rc = make_labels(r->labels, r->n_labels, &storage, &labels);
    if (rc != SB_OK) return label_error(rc, err);
    rc = sb__check_labels(r->labels, r->n_labels, err);
    if (rc != SB_OK) {
        free(storage);
        free(labels);
        return rc;
    }
    req.n_labels = r->n_labels;
    req.labels = labels;
    Switchboard__V1__Payload payload = SWITCHBOARD__V1__PAYLOAD__INIT;
    payload.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_CREATE_SESSION_REQUEST;
    payload.create_session_request = &req;

    Switchboard__V1__Frame *end;
    rc = unary(c, M_CREATE, &payload, SWITCHBOARD__V1__PAYLOAD__BODY_SESSION, &end, err);
    free(storage);
    free(labels);
    if (rc != SB_OK) return rc;
    rc = sb__session_from(end->end->payload->session, out);
    free_frame(end);
    return rc == SB_OK ? rc : sb__fail(err, rc, "out of memory");
}

int sb_get_session(sb_client *c, const char *session_id, sb_session *out, sb_error *err) {
    Switchboard__V1__GetSessionRequest req = SWITCHBOARD__V1__GET_SESSION_REQUEST__INIT;
    req.session_id = (char *)(session_id ? session_id : "");
    Switchboard__V1__Payload payload = SWITCHBOARD__V1__PAYLOAD__INIT;
    payload.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_GET_SESSION_REQUEST;
    payload.get_session_request = &req;
    Switchboard__V1__Frame *end;
    int rc = unary(c, M_GET, &payload, SWITCHBOARD__V1__PAYLOAD__BODY_SESSION, &end, err);
    if (rc != SB_OK) return rc;
    rc = sb__session_from(end->end->payload->session, out);
    free_frame(end);
    return rc == SB_OK ? rc : sb__fail(err, rc, "out of memory");
}

int sb_list_sessions(sb_client *c, const sb_list_request *r, sb_session_list *out, sb_error *err) {
    sb_list_request none;
    memset(&none, 0, sizeof none);
    if (!r) r = &none;
    Switchboard__V1__ListSessionsRequest req = SWITCHBOARD__V1__LIST_SESSIONS_REQUEST__INIT;
    req.page_size = r->page_size;
    req.page_token = (char *)(r->page_token ? r->page_token : "");
    Switchboard__V1__Label *storage;
    Switchboard__V1__Label **labels;
    int rc = make_labels(r->label_selector, r->n_label_selector, &storage, &labels);
    if (rc != SB_OK) return label_error(rc, err);
    req.n_label_selector = r->n_label_selector;
    req.label_selector = labels;
    Switchboard__V1__Payload payload = SWITCHBOARD__V1__PAYLOAD__INIT;
    payload.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_LIST_SESSIONS_REQUEST;
    payload.list_sessions_request = &req;
    Switchboard__V1__Frame *end;
    rc = unary(c, M_LIST, &payload, SWITCHBOARD__V1__PAYLOAD__BODY_LIST_SESSIONS_RESPONSE, &end, err);
    free(storage);
    free(labels);
    if (rc != SB_OK) return rc;
    rc = sb__session_list_from(end->end->payload->list_sessions_response, out);
    free_frame(end);
    return rc == SB_OK ? rc : sb__fail(err, rc, "out of memory");
}

int sb_close_session(sb_client *c, const char *session_id, const char *reason, sb_close_result *out, sb_error *err) {
    Switchboard__V1__CloseSessionRequest req = SWITCHBOARD__V1__CLOSE_SESSION_REQUEST__INIT;
    req.session_id = (char *)(session_id ? session_id : "");
    req.reason = (char *)(reason ? reason : "");
    Switchboard__V1__Payload payload = SWITCHBOARD__V1__PAYLOAD__INIT;
    payload.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_CLOSE_SESSION_REQUEST;
    payload.close_session_request = &req;
    Switchboard__V1__Frame *end;
    int rc = unary(c, M_CLOSE, &payload, SWITCHBOARD__V1__PAYLOAD__BODY_CLOSE_SESSION_RESPONSE, &end, err);
    if (rc != SB_OK) return rc;
    if (out) rc = sb__close_result_from(end->end->payload->close_session_response, out);
    free_frame(end);
    return rc == SB_OK ? rc : sb__fail(err, rc, "out of memory");
}

int sb_get_server_status(sb_client *c, int include_sessions, sb_server_status *out, sb_error *err) {
    Switchboard__V1__ServerStatusRequest req = SWITCHBOARD__V1__SERVER_STATUS_REQUEST__INIT;
    req.include_sessions = include_sessions ? 1 : 0;
    Switchboard__V1__Payload payload = SWITCHBOARD__V1__PAYLOAD__INIT;
    payload.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_SERVER_STATUS_REQUEST;
    payload.server_status_request = &req;
    Switchboard__V1__Frame *end;
    int rc = unary(c, M_SERVER_STATUS, &payload, SWITCHBOARD__V1__PAYLOAD__BODY_SERVER_STATUS, &end, err);
    if (rc != SB_OK) return rc;
    rc = sb__server_status_from(end->end->payload->server_status, out);
    free_frame(end);
    return rc == SB_OK ? rc : sb__fail(err, rc, "out of memory");
}

int sb_get_session_status(sb_client *c, const char *session_id, sb_session_status *out, sb_error *err) {
    Switchboard__V1__SessionStatusRequest req = SWITCHBOARD__V1__SESSION_STATUS_REQUEST__INIT;
    req.session_id = (char *)(session_id ? session_id : "");
    Switchboard__V1__Payload payload = SWITCHBOARD__V1__PAYLOAD__INIT;
    payload.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_SESSION_STATUS_REQUEST;
    payload.session_status_request = &req;
    Switchboard__V1__Frame *end;
    int rc = unary(c, M_SESSION_STATUS, &payload, SWITCHBOARD__V1__PAYLOAD__BODY_SESSION_STATUS, &end, err);
    if (rc != SB_OK) return rc;
    rc = sb__session_status_from(end->end->payload->session_status, out);
    free_frame(end);
    return rc == SB_OK ? rc : sb__fail(err, rc, "out of memory");
}

int sb_health(sb_client *c, int *status, sb_error *err) {
    Switchboard__V1__HealthCheckRequest req = SWITCHBOARD__V1__HEALTH_CHECK_REQUEST__INIT;
    Switchboard__V1__Payload payload = SWITCHBOARD__V1__PAYLOAD__INIT;
    payload.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_HEALTH_CHECK_REQUEST;
    payload.health_check_request = &req;
    Switchboard__V1__Frame *end;
    int rc = unary(c, M_HEALTH, &payload, SWITCHBOARD__V1__PAYLOAD__BODY_HEALTH_CHECK_RESPONSE, &end, err);
    if (rc != SB_OK) return rc;
    if (status) *status = (int)end->end->payload->health_check_response->status;
    free_frame(end);
    return SB_OK;
}

int sb_ping(sb_client *c, sb_error *err) {
    sb_call *call = call_new(c, CALL_PING);
    if (!call) return sb__fail(err, SB_INTERNAL, "out of memory");
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        int code = sb__fail(err, c->dead_code, "%s", c->dead_message);
        pthread_mutex_unlock(&c->mu);
        free(call);
        return code;
    }
    call->nonce = ++c->last_nonce;
    int64_t timeout = c->call_timeout_ms ? (int64_t)c->call_timeout_ms : 0;
    if (timeout) call->deadline = now_ms() + timeout;
    register_call(c, call);
    pthread_mutex_unlock(&c->mu);

    Switchboard__V1__Ping ping = SWITCHBOARD__V1__PING__INIT;
    ping.nonce = call->nonce;
    Switchboard__V1__Frame frame = SWITCHBOARD__V1__FRAME__INIT;
    frame.kind_case = SWITCHBOARD__V1__FRAME__KIND_PING;
    frame.ping = &ping;
    int rc = write_frame(c, &frame, call->deadline, err);
    if (rc == SB_OK || rc == SB_UNAVAILABLE) rc = wait_end(call, err);
    call_destroy(call);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Prompts                                                                   */

sb_call *sb_prompt_start(sb_client *c, const sb_prompt_request *r, sb_error *err) {
    if (!r || !r->session_id || !r->prompt) {
        sb__fail(err, SB_INVALID_ARGUMENT, "a prompt request needs session_id and prompt");
        return NULL;
    }
    Switchboard__V1__PromptRequest req = SWITCHBOARD__V1__PROMPT_REQUEST__INIT;
    req.session_id = (char *)r->session_id;
    req.prompt = (char *)r->prompt;
    req.when_busy = r->reject_if_busy ? SWITCHBOARD__V1__BUSY_POLICY__BUSY_POLICY_REJECT
                                      : SWITCHBOARD__V1__BUSY_POLICY__BUSY_POLICY_WAIT;
    req.cancel_on_disconnect = r->cancel_on_disconnect ? 1 : 0;
    Switchboard__V1__Payload payload = SWITCHBOARD__V1__PAYLOAD__INIT;
    payload.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_PROMPT_REQUEST;
    payload.prompt_request = &req;
    sb_call *call = call_new(c, CALL_STREAM);
    if (!call) {
        sb__fail(err, SB_INTERNAL, "out of memory");
        return NULL;
    }
    if (start_call(call, M_PROMPT, &payload, r->timeout_ms, err) != SB_OK) {
        free(call);
        return NULL;
    }
    sb__ok(err);
    return call;
}

uint64_t sb_call_id(const sb_call *call) {
    return call->id;
}

int sb_call_next(sb_call *call, sb_prompt_event *event, sb_error *err) {
    sb_client *c = call->client;
    free_frame(call->current);
    call->current = NULL;
    memset(event, 0, sizeof *event);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        wait_for(call);
        if (call->head) {
            queued_frame *q = call->head;
            call->head = q->next;
            if (!call->head) call->tail = NULL;
            call->queued_bytes -= q->size;
            Switchboard__V1__Frame *frame = q->frame;
            free(q);
            const Switchboard__V1__Payload *p = frame->message->payload;
            if (!p || p->body_case != SWITCHBOARD__V1__PAYLOAD__BODY_PROMPT_EVENT) {
                free_frame(frame);  /* not ours to interpret: skip (forward compatible) */
                continue;
            }
            const Switchboard__V1__PromptEvent *e = p->prompt_event;
            switch (e->event_case) {
            case SWITCHBOARD__V1__PROMPT_EVENT__EVENT_ACCEPTED:
                event->kind = SB_EVENT_ACCEPTED;
                event->turn_id = e->accepted->turn_id;
                event->queue_position = e->accepted->queue_position;
                break;
            case SWITCHBOARD__V1__PROMPT_EVENT__EVENT_STARTED:
                event->kind = SB_EVENT_STARTED;
                event->turn_id = e->started->turn_id;
                break;
            case SWITCHBOARD__V1__PROMPT_EVENT__EVENT_OUTPUT:
                event->kind = SB_EVENT_OUTPUT;
                event->sequence = e->output->sequence;
                event->data = e->output->data.data;
                event->len = e->output->data.len;
                break;
            case SWITCHBOARD__V1__PROMPT_EVENT__EVENT_ATTACHED:
                event->kind = SB_EVENT_ATTACHED;
                event->turn_id = e->attached->turn_id;
                event->turn_state = (int)e->attached->state;
                event->last_sequence = e->attached->last_sequence;
                break;
            case SWITCHBOARD__V1__PROMPT_EVENT__EVENT_FINISHED:
                event->kind = SB_EVENT_FINISHED;
                event->turn_id = e->finished->turn_id;
                event->stop_reason = e->finished->stop_reason;
                event->chunks = e->finished->chunks;
                event->bytes = e->finished->bytes;
                event->duration_ms = e->finished->duration_ms;
                break;
            default:
                free_frame(frame);  /* an event kind from a newer server */
                continue;
            }
            call->current = frame;
            pthread_mutex_unlock(&c->mu);
            sb__ok(err);
            return 1;
        }
        /* ended */
        flush_cancels(c);
        int code = call->end_code;
        if (code == SB_OK) sb__ok(err); else sb__fail(err, code, "%s", call->end_message);
        pthread_mutex_unlock(&c->mu);
        return code == SB_OK ? 0 : -1;
    }
}

void sb_call_cancel(sb_call *call) {
    sb_client *c = call->client;
    pthread_mutex_lock(&c->mu);
    int send = !call->ended && !call->cancel_sent && call->registered;
    if (send) call->cancel_sent = 1;
    uint64_t id = call->id;
    pthread_mutex_unlock(&c->mu);
    if (send) send_cancel(c, id, "cancelled by the client");
}

void sb_call_free(sb_call *call) {
    if (!call) return;
    sb_call_cancel(call);
    sb_client *c = call->client;
    pthread_mutex_lock(&c->mu);
    flush_cancels(c);
    pthread_mutex_unlock(&c->mu);
    call_destroy(call);
}

/* Runs a started (or failed to start: NULL) streaming call to its end with a callback. */
static int run_with_callback(sb_call *call, const sb_error *start_error, sb_event_fn on_event, void *user, sb_error *err) {
    sb_error local = *start_error;
    if (!call) {
        if (err) *err = local;
        return local.code;
    }
    sb_prompt_event event;
    int r2;
    int cancelled = 0;
    while ((r2 = sb_call_next(call, &event, &local)) == 1) {
        if (!cancelled && on_event && on_event(&event, user) != 0) {
            cancelled = 1;
            sb_call_cancel(call);
        }
    }
    int code = local.code;
    if (err) *err = local;
    sb_call_free(call);
    return code;
}

int sb_prompt(sb_client *c, const sb_prompt_request *r, sb_event_fn on_event, void *user, sb_error *err) {
    sb_error local;
    sb_call *call = sb_prompt_start(c, r, &local);
    return run_with_callback(call, &local, on_event, user, err);
}

/* ------------------------------------------------------------------------- */
/* Attach and turn history                                                   */

sb_call *sb_attach_start(sb_client *c, const sb_attach_request *r, sb_error *err) {
    if (!r || !r->session_id) {
        sb__fail(err, SB_INVALID_ARGUMENT, "an attach request needs session_id");
        return NULL;
    }
    Switchboard__V1__AttachRequest req = SWITCHBOARD__V1__ATTACH_REQUEST__INIT;
    req.session_id = (char *)r->session_id;
    req.turn_id = (char *)(r->turn_id ? r->turn_id : "");
    req.after_sequence = r->after_sequence;
    Switchboard__V1__Payload payload = SWITCHBOARD__V1__PAYLOAD__INIT;
    payload.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_ATTACH_REQUEST;
    payload.attach_request = &req;
    sb_call *call = call_new(c, CALL_STREAM);
    if (!call) {
        sb__fail(err, SB_INTERNAL, "out of memory");
        return NULL;
    }
    if (start_call(call, M_ATTACH, &payload, r->timeout_ms, err) != SB_OK) {
        free(call);
        return NULL;
    }
    sb__ok(err);
    return call;
}

int sb_attach(sb_client *c, const sb_attach_request *r, sb_event_fn on_event, void *user, sb_error *err) {
    sb_error local;
    sb_call *call = sb_attach_start(c, r, &local);
    return run_with_callback(call, &local, on_event, user, err);
}

int sb_list_turns(sb_client *c, const sb_list_turns_request *r, sb_turn_list *out, sb_error *err) {
    if (!r || !r->session_id || !out) return sb__fail(err, SB_INVALID_ARGUMENT, "a list-turns request needs session_id and out");
    Switchboard__V1__ListTurnsRequest req = SWITCHBOARD__V1__LIST_TURNS_REQUEST__INIT;
    req.session_id = (char *)r->session_id;
    req.page_size = r->page_size;
    req.page_token = (char *)(r->page_token ? r->page_token : "");
    req.include_output = r->include_output ? 1 : 0;
    Switchboard__V1__Payload payload = SWITCHBOARD__V1__PAYLOAD__INIT;
    payload.body_case = SWITCHBOARD__V1__PAYLOAD__BODY_LIST_TURNS_REQUEST;
    payload.list_turns_request = &req;
    Switchboard__V1__Frame *end;
    int rc = unary(c, M_LIST_TURNS, &payload, SWITCHBOARD__V1__PAYLOAD__BODY_LIST_TURNS_RESPONSE, &end, err);
    if (rc != SB_OK) return rc;
    rc = sb__turn_list_from(end->end->payload->list_turns_response, out);
    free_frame(end);
    return rc == SB_OK ? rc : sb__fail(err, rc, "out of memory");
}

void sb__drop_connection(sb_client *c) {
    shutdown(c->fd, SHUT_RDWR);
}
