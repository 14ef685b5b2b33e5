/*
 * switchboard-c: creates a session, streams a prompt's answer to stdout as it
 * arrives, then prints the session's and the server's status on stderr.
 *
 *   switchboard-c [--socket PATH] PROMPT...
 *
 * Socket: --socket, else $SWITCHBOARD_SOCKET, else
 * $XDG_RUNTIME_DIR/switchboard.sock, else /run/switchboard/switchboard.sock.
 * Exit status: 0, or 10 + the status code of a failed call (like the CLI),
 * 64 for bad usage.
 */
#define _POSIX_C_SOURCE 200809L

#include "switchboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int on_event(const sb_prompt_event *event, void *user) {
    (void)user;
    if (event->kind == SB_EVENT_OUTPUT) {
        fwrite(event->data, 1, event->len, stdout);
        fflush(stdout);
    }
    return 0; /* non-zero would cancel the turn */
}

static int fail(const char *what, const sb_error *err) {
    fprintf(stderr, "switchboard-c: %s: %s: %s\n", what, sb_code_name(err->code), err->message);
    return 10 + err->code;
}

int main(int argc, char **argv) {
    const char *socket_path = NULL;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--socket") == 0) {
        socket_path = argv[2];
        first = 3;
    }
    if (first >= argc || strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0) {
        fprintf(stderr, "usage: switchboard-c [--socket PATH] PROMPT...\n");
        return 64;
    }
    /* The prompt: the remaining arguments joined by spaces. */
    size_t len = 0;
    for (int i = first; i < argc; i++) len += strlen(argv[i]) + 1;
    char *prompt = malloc(len + 1);
    if (!prompt) return 1;
    prompt[0] = '\0';
    for (int i = first; i < argc; i++) {
        if (i > first) strcat(prompt, " ");
        strcat(prompt, argv[i]);
    }

    sb_error err;
    int status = 0;
    sb_client *client = sb_connect(socket_path, NULL, &err);
    if (!client) {
        free(prompt);
        return fail("connect", &err);
    }

    sb_session session;
    if (sb_create_session(client, NULL, &session, &err) != SB_OK) {
        status = fail("create session", &err);
        goto done;
    }
    fprintf(stderr, "session: %s\n", session.id);

    sb_prompt_request request = { .session_id = session.id, .prompt = prompt };
    if (sb_prompt(client, &request, on_event, NULL, &err) != SB_OK) {
        status = fail("prompt", &err);
    } else {
        fputc('\n', stdout);
    }

    sb_session_status ss;
    if (sb_get_session_status(client, session.id, &ss, &err) == SB_OK) {
        fprintf(stderr, "session %s: %llu turn(s) completed\n", ss.session.id,
                (unsigned long long)ss.session.turns_completed);
        for (size_t i = 0; i < ss.n_turns; i++) {
            const sb_turn_summary *t = &ss.turns[i];
            fprintf(stderr, "  turn %s: %s, %llu chunks, %llu bytes, stop reason %s\n", t->turn_id,
                    sb_code_name((int)t->code), (unsigned long long)t->chunks, (unsigned long long)t->bytes,
                    t->stop_reason);
        }
        sb_session_status_clear(&ss);
    } else if (status == 0) {
        status = fail("session status", &err);
    }

    sb_server_status st;
    if (sb_get_server_status(client, 0, &st, &err) == SB_OK) {
        fprintf(stderr, "server %s (protocol %u, pid %u): %u connection(s), %u session(s) (%u idle, %u busy), "
                        "%u turn(s) in flight, %llu completed, up %llu ms\n",
                st.server_version, st.protocol_version, st.pid, st.connections, st.sessions_total, st.sessions_idle,
                st.sessions_busy, st.turns_in_flight, (unsigned long long)st.turns_completed,
                (unsigned long long)st.uptime_ms);
        sb_server_status_clear(&st);
    } else if (status == 0) {
        status = fail("server status", &err);
    }
    sb_session_clear(&session);
done:
    sb_close(client);
    free(prompt);
    return status;
}
