/*
 * rawbench: the physical limit for Switchboard's exchanges on this machine.
 * Plain blocking Unix stream sockets, 4-byte big-endian length-prefixed frames,
 * no protocol, no encoding, no allocation per message.
 *
 *   rawbench serve     SOCK
 *   rawbench pingpong  SOCK [calls] [warmup] [samples-file]   one request, one response, repeat
 *   rawbench pipelined SOCK [calls] [window]                  `window` requests in flight (like 16 callers)
 *   rawbench stream    SOCK [frames] single|batched           one-way stream of 32-byte frames:
 *                                                            one write() per frame, or 64 KiB writes
 *
 * The client sends a 16-byte setup {mode, count, request bytes, response bytes}
 * (big-endian u32s); the server serves one connection at a time.
 * Each client command prints one JSON line, like the Swift load generators.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { MODE_PINGPONG = 1, MODE_PIPELINED = 2, MODE_STREAM_SINGLE = 3, MODE_STREAM_BATCHED = 4 };
enum { REQUEST_BYTES = 48, RESPONSE_BYTES = 48, CHUNK_BYTES = 32, BATCH_BYTES = 64 * 1024 };

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "rawbench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void write_all(int fd, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) { if (errno == EINTR) continue; die("write"); }
        p += n; len -= (size_t)n;
    }
}

static int read_all(int fd, void *buf, size_t len) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0) { if (errno == EINTR) continue; die("read"); }
        if (n == 0) return -1;
        p += n; len -= (size_t)n;
    }
    return 0;
}

static struct sockaddr_un address_of(const char *path) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    return a;
}

/* ---------------------------------------------------------------- server */

static void serve_connection(int fd) {
    uint8_t setup[16];
    if (read_all(fd, setup, sizeof setup) < 0) return;
    uint32_t mode = get_u32(setup), count = get_u32(setup + 4);
    uint32_t req = get_u32(setup + 8), resp = get_u32(setup + 12);
    static uint8_t in[BATCH_BYTES * 4], out[BATCH_BYTES * 4];

    if (mode == MODE_PINGPONG || mode == MODE_PIPELINED) {
        /* Read what is there, answer every complete request in one write. */
        size_t have = 0;
        uint8_t response[4 + 4096];
        put_u32(response, resp);
        memset(response + 4, 'r', resp);
        for (;;) {
            ssize_t n = read(fd, in + have, sizeof in - have);
            if (n <= 0) return;
            have += (size_t)n;
            size_t off = 0, answers = 0;
            while (have - off >= 4 && have - off >= 4 + get_u32(in + off)) {
                off += 4 + get_u32(in + off);
                answers++;
            }
            memmove(in, in + off, have - off);
            have -= off;
            size_t len = 0;
            for (size_t i = 0; i < answers; i++) {
                memcpy(out + len, response, 4 + resp);
                len += 4 + resp;
            }
            if (len) write_all(fd, out, len);
        }
    } else if (mode == MODE_STREAM_SINGLE || mode == MODE_STREAM_BATCHED) {
        uint8_t frame[4 + CHUNK_BYTES];
        put_u32(frame, CHUNK_BYTES);
        memset(frame + 4, 'c', CHUNK_BYTES);
        if (mode == MODE_STREAM_SINGLE) {
            for (uint32_t i = 0; i < count; i++) write_all(fd, frame, sizeof frame);
        } else {
            size_t len = 0;
            for (uint32_t i = 0; i < count; i++) {
                memcpy(out + len, frame, sizeof frame);
                len += sizeof frame;
                if (len + sizeof frame > BATCH_BYTES) { write_all(fd, out, len); len = 0; }
            }
            if (len) write_all(fd, out, len);
        }
        /* Wait for the client to close (it has read everything). */
        uint8_t byte;
        (void)read(fd, &byte, 1);
    }
    (void)req;
}

static int serve(const char *path) {
    unlink(path);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0) die("socket");
    struct sockaddr_un a = address_of(path);
    if (bind(listener, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(listener, 128) < 0) die("listen");
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) { if (errno == EINTR) continue; die("accept"); }
        serve_connection(fd);
        close(fd);
    }
    return 0;
}

/* ---------------------------------------------------------------- clients */

static int connect_to(const char *path, uint32_t mode, uint32_t count) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_un a = address_of(path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    uint8_t setup[16];
    put_u32(setup, mode); put_u32(setup + 4, count);
    put_u32(setup + 8, REQUEST_BYTES); put_u32(setup + 12, RESPONSE_BYTES);
    write_all(fd, setup, sizeof setup);
    return fd;
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

static void print_latency(const char *bench, uint64_t *samples, size_t n, double seconds, int window) {
    qsort(samples, n, sizeof *samples, compare_u64);
    printf("{\"bench\":\"%s\",\"calls\":%zu,\"calls_per_s\":%.1f,\"concurrency\":%d,"
           "\"min_us\":%.3f,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"max_us\":%.3f}\n",
           bench, n, (double)n / seconds, window, (double)samples[0] / 1000.0, rank_us(samples, n, 50),
           rank_us(samples, n, 90), rank_us(samples, n, 99), rank_us(samples, n, 99.9),
           (double)samples[n - 1] / 1000.0);
}

static int pingpong(const char *path, size_t calls, size_t warmup, const char *samples_path) {
    int fd = connect_to(path, MODE_PINGPONG, 0);
    uint8_t request[4 + REQUEST_BYTES], response[4 + RESPONSE_BYTES];
    put_u32(request, REQUEST_BYTES);
    memset(request + 4, 'q', REQUEST_BYTES);
    uint64_t *samples = malloc(calls * sizeof *samples);
    for (size_t i = 0; i < warmup; i++) {
        write_all(fd, request, sizeof request);
        if (read_all(fd, response, sizeof response) < 0) die("short response");
    }
    uint64_t begin = now_ns();
    for (size_t i = 0; i < calls; i++) {
        uint64_t t0 = now_ns();
        write_all(fd, request, sizeof request);
        if (read_all(fd, response, sizeof response) < 0) die("short response");
        samples[i] = now_ns() - t0;
    }
    double seconds = (double)(now_ns() - begin) / 1e9;
    if (samples_path) {
        FILE *f = fopen(samples_path, "w");
        if (f) { for (size_t i = 0; i < calls; i++) fprintf(f, "%.3f\n", samples[i] / 1000.0); fclose(f); }
    }
    print_latency("unary", samples, calls, seconds, 1);
    close(fd);
    return 0;
}

/* `window` requests outstanding on one connection: send as many as have been answered. */
static int pipelined(const char *path, size_t calls, int window) {
    int fd = connect_to(path, MODE_PIPELINED, 0);
    uint8_t request[4 + REQUEST_BYTES];
    put_u32(request, REQUEST_BYTES);
    memset(request + 4, 'q', REQUEST_BYTES);
    static uint8_t out[(4 + REQUEST_BYTES) * 256], in[BATCH_BYTES];
    uint64_t *sent_at = malloc(calls * sizeof *sent_at), *samples = malloc(calls * sizeof *samples);
    size_t sent = 0, done = 0, have = 0;
    const size_t frame = 4 + RESPONSE_BYTES;
    uint64_t begin = now_ns();
    while (done < calls) {
        size_t len = 0;
        uint64_t t = now_ns();
        while (sent < calls && sent - done < (size_t)window) {
            memcpy(out + len, request, sizeof request);
            len += sizeof request;
            sent_at[sent++] = t;
        }
        if (len) write_all(fd, out, len);
        ssize_t n = read(fd, in + have, sizeof in - have);
        if (n <= 0) die("read");
        have += (size_t)n;
        t = now_ns();
        size_t off = 0;
        while (have - off >= frame) {
            samples[done] = t - sent_at[done];
            done++;
            off += frame;
        }
        memmove(in, in + off, have - off);
        have -= off;
    }
    double seconds = (double)(now_ns() - begin) / 1e9;
    print_latency("unary", samples, calls, seconds, window);
    close(fd);
    return 0;
}

static int stream(const char *path, size_t frames, int batched) {
    uint64_t begin = now_ns();
    int fd = connect_to(path, batched ? MODE_STREAM_BATCHED : MODE_STREAM_SINGLE, (uint32_t)frames);
    static uint8_t in[256 * 1024];
    size_t have = 0, got = 0, bytes = 0;
    uint64_t first = 0;
    while (got < frames) {
        ssize_t n = read(fd, in + have, sizeof in - have);
        if (n <= 0) die("read");
        if (!first) first = now_ns();
        have += (size_t)n;
        size_t off = 0;
        while (have - off >= 4 && have - off >= 4 + get_u32(in + off)) {
            bytes += get_u32(in + off);
            off += 4 + get_u32(in + off);
            got++;
        }
        memmove(in, in + off, have - off);
        have -= off;
    }
    uint64_t end = now_ns();
    double seconds = (double)(end - begin) / 1e9;
    printf("{\"bench\":\"stream\",\"mode\":\"%s\",\"chunks\":%zu,\"chunks_per_s\":%.1f,\"mb_per_s\":%.3f,"
           "\"first_chunk_ms\":%.3f,\"steady_chunks_per_s\":%.1f}\n",
           batched ? "batched" : "single", got, (double)got / seconds, (double)bytes / seconds / 1e6,
           (double)(first - begin) / 1e6, (double)(got - 1) / ((double)(end - first) / 1e9));
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: rawbench serve|pingpong|pipelined|stream SOCK ...\n");
        return 64;
    }
    const char *cmd = argv[1], *path = argv[2];
    if (!strcmp(cmd, "serve")) return serve(path);
    if (!strcmp(cmd, "pingpong"))
        return pingpong(path, argc > 3 ? strtoul(argv[3], 0, 10) : 100000, argc > 4 ? strtoul(argv[4], 0, 10) : 10000,
                        argc > 5 ? argv[5] : NULL);
    if (!strcmp(cmd, "pipelined"))
        return pipelined(path, argc > 3 ? strtoul(argv[3], 0, 10) : 200000, argc > 4 ? atoi(argv[4]) : 16);
    if (!strcmp(cmd, "stream"))
        return stream(path, argc > 3 ? strtoul(argv[3], 0, 10) : 1000000, argc > 4 && !strcmp(argv[4], "batched"));
    fprintf(stderr, "rawbench: unknown command %s\n", cmd);
    return 64;
}
