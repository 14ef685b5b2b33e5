/* A tiny test harness: checks that record failures, and a real server process. */
#ifndef SWITCHBOARD_TEST_HARNESS_H
#define SWITCHBOARD_TEST_HARNESS_H

#include "switchboard.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
static const char *current_test = "";

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "  FAIL %s (%s:%d): %s\n", current_test, __FILE__, __LINE__, #cond); \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

/* A check on a call's status code; prints the error on mismatch. */
#define CHECK_CODE(got, want, err)                                                           \
    do {                                                                                     \
        int got_ = (got);                                                                    \
        if (got_ != (want)) {                                                                \
            fprintf(stderr, "  FAIL %s (%s:%d): got %s (%s), want %s\n", current_test, __FILE__, \
                    __LINE__, sb_code_name(got_), (err).message, sb_code_name(want));        \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

/* Stops the current test function when `cond` does not hold. */
#define REQUIRE(cond)                                                                        \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "  FAIL %s (%s:%d): required %s\n", current_test, __FILE__, __LINE__, #cond); \
            failures++;                                                                      \
            return;                                                                          \
        }                                                                                    \
    } while (0)

typedef struct server {
    pid_t pid;
    char socket_path[108];
    char log_path[256];
} server;

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Starts `$SWITCHBOARD_BIN serve --socket DIR/NAME.sock EXTRA...` and waits until it
 * answers a handshake (at most 30 s). `extra` ends with NULL. Returns 0 or -1. */
static int server_start(server *s, const char *dir, const char *name, const char *const *extra) {
    const char *bin = getenv("SWITCHBOARD_BIN");
    if (!bin || !*bin) {
        fprintf(stderr, "SWITCHBOARD_BIN is not set (path of the built switchboard binary)\n");
        return -1;
    }
    snprintf(s->socket_path, sizeof s->socket_path, "%s/%s.sock", dir, name);
    snprintf(s->log_path, sizeof s->log_path, "%s/%s.log", dir, name);
    const char *argv[32];
    int argc = 0;
    argv[argc++] = bin;
    argv[argc++] = "serve";
    argv[argc++] = "--socket";
    argv[argc++] = s->socket_path;
    argv[argc++] = "--log-level";
    argv[argc++] = "warning";
    /* Memory-only sessions: tests never touch the user's state directory. */
    argv[argc++] = "--state-dir";
    argv[argc++] = "none";
    for (int i = 0; extra && extra[i] && argc < 31; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        int log = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (log >= 0) {
            dup2(log, 2);
            dup2(log, 1);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            fprintf(stderr, "server %s exited early; log: %s\n", name, s->log_path);
            s->pid = 0;
            return -1;
        }
        sb_options o;
        sb_options_init(&o);
        o.connect_timeout_ms = 1000;
        sb_client *c = sb_connect(s->socket_path, &o, NULL);
        if (c) {
            sb_close(c);
            return 0;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "server %s did not come up; log: %s\n", name, s->log_path);
    return -1;
}

/* SIGTERM (the server drains), SIGKILL after 10 s. */
static void server_stop(server *s) {
    if (s->pid <= 0) return;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        sleep_ms(50);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

#endif
