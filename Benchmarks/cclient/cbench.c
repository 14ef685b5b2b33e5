/*
 * cbench: Switchboard through the C client library (clients/c), the same exchanges
 * as switchboard-bench: GetServerStatus round trips (sequential or N threads on one
 * connection) and one prompt streaming 32-byte chunks from the echo backend.
 *
 *   cbench unary  SOCK [calls] [samples-file|-] [threads]
 *   cbench stream SOCK [chunks]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "switchboard.h"

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void check(int code, const sb_error *err, const char *what) {
    if (code != SB_OK) {
        fprintf(stderr, "cbench: %s: %s: %s\n", what, sb_code_name(code), err->message);
        exit(1);
    }
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double rank_us(const uint64_t *sorted, size_t n, double p) {
    size_t i = (size_t)(p / 100.0 * (double)n + 0.999999999);
    if (i < 1) i = 1;
    if (i > n) i = n;
    return (double)sorted[i - 1] / 1000.0;
}

typedef struct worker {
    sb_client *client;
    uint64_t *samples;
    size_t calls;
    pthread_t thread;
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    sb_error err;
    for (size_t i = 0; i < w->calls; i++) {
        sb_server_status status;
        uint64_t t0 = now_ns();
        int code = sb_get_server_status(w->client, 0, &status, &err);
        w->samples[i] = now_ns() - t0;
        check(code, &err, "status");
        sb_server_status_clear(&status);
    }
    return NULL;
}

static int unary(const char *path, size_t calls, const char *samples_path, int threads) {
    sb_error err;
    sb_client *client = sb_connect(path, NULL, &err);
    if (!client) check(err.code, &err, "connect");
    for (int i = 0; i < 2000; i++) {
        sb_server_status status;
        check(sb_get_server_status(client, 0, &status, &err), &err, "status");
        sb_server_status_clear(&status);
    }
    if (threads < 1) threads = 1;
    size_t per = calls / (size_t)threads, total = per * (size_t)threads;
    uint64_t *samples = malloc(total * sizeof *samples);
    worker *workers = calloc((size_t)threads, sizeof *workers);
    uint64_t begin = now_ns();
    for (int t = 0; t < threads; t++) {
        workers[t] = (worker){client, samples + (size_t)t * per, per, 0};
        if (threads == 1) run_worker(&workers[t]);
        else pthread_create(&workers[t].thread, NULL, run_worker, &workers[t]);
    }
    if (threads > 1) for (int t = 0; t < threads; t++) pthread_join(workers[t].thread, NULL);
    double seconds = (double)(now_ns() - begin) / 1e9;
    if (samples_path && strcmp(samples_path, "-")) {
        FILE *f = fopen(samples_path, "w");
        if (f) { for (size_t i = 0; i < total; i++) fprintf(f, "%.3f\n", samples[i] / 1000.0); fclose(f); }
    }
    qsort(samples, total, sizeof *samples, compare_u64);
    printf("{\"bench\":\"unary\",\"calls\":%zu,\"calls_per_s\":%.1f,\"concurrency\":%d,\"min_us\":%.3f,"
           "\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"max_us\":%.3f}\n",
           total, (double)total / seconds, threads, samples[0] / 1000.0, rank_us(samples, total, 50),
           rank_us(samples, total, 90), rank_us(samples, total, 99), rank_us(samples, total, 99.9),
           samples[total - 1] / 1000.0);
    sb_close(client);
    return 0;
}

static char *prompt_of_words(size_t n) {
    char *text = malloc(n * 32 + 1), *p = text;
    for (size_t i = 0; i < n; i++) {
        int head = sprintf(p, "w%zu", i);
        memset(p + head, 'x', (size_t)(31 - head));
        p[31] = ' ';
        p += 32;
    }
    *p = 0;
    return text;
}

static size_t run_prompt(sb_client *client, const char *session, const char *text, size_t *bytes, uint64_t *first) {
    sb_error err;
    sb_prompt_request request = {session, text, 0, 0};
    sb_call *call = sb_prompt_start(client, &request, &err);
    if (!call) check(err.code, &err, "prompt");
    sb_prompt_event event;
    size_t chunks = 0;
    int r;
    while ((r = sb_call_next(call, &event, &err)) == 1) {
        if (event.kind == SB_EVENT_OUTPUT) {
            if (!chunks && first) *first = now_ns();
            chunks++;
            *bytes += event.len;
        }
    }
    if (r < 0) check(err.code, &err, "prompt stream");
    sb_call_free(call);
    return chunks;
}

static int stream(const char *path, size_t chunks) {
    sb_error err;
    sb_client *client = sb_connect(path, NULL, &err);
    if (!client) check(err.code, &err, "connect");
    sb_create_request create = {0};
    create.backend = "echo";
    sb_session session;
    check(sb_create_session(client, &create, &session, &err), &err, "create session");
    char *warm = prompt_of_words(1000), *text = prompt_of_words(chunks);
    size_t bytes = 0;
    run_prompt(client, session.id, warm, &bytes, NULL);
    bytes = 0;
    uint64_t first = 0, begin = now_ns();
    size_t got = run_prompt(client, session.id, text, &bytes, &first);
    uint64_t end = now_ns();
    if (got != chunks || bytes != chunks * 32) {
        fprintf(stderr, "cbench: expected %zu chunks of 32 bytes, got %zu chunks, %zu bytes\n", chunks, got, bytes);
        return 1;
    }
    double seconds = (double)(end - begin) / 1e9;
    printf("{\"bench\":\"stream\",\"chunks\":%zu,\"chunks_per_s\":%.1f,\"mb_per_s\":%.3f,\"first_chunk_ms\":%.3f,"
           "\"steady_chunks_per_s\":%.1f}\n",
           got, (double)got / seconds, (double)bytes / seconds / 1e6, (double)(first - begin) / 1e6,
           (double)(got - 1) / ((double)(end - first) / 1e9));
    sb_session_clear(&session);
    sb_close(client);
    free(warm);
    free(text);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: cbench unary|stream SOCK ...\n");
        return 64;
    }
    if (!strcmp(argv[1], "unary"))
        return unary(argv[2], argc > 3 ? strtoul(argv[3], 0, 10) : 20000, argc > 4 ? argv[4] : NULL,
                     argc > 5 ? atoi(argv[5]) : 1);
    if (!strcmp(argv[1], "stream")) return stream(argv[2], argc > 3 ? strtoul(argv[3], 0, 10) : 100000);
    fprintf(stderr, "cbench: unknown command %s\n", argv[1]);
    return 64;
}
