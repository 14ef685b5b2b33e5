/* Copies unpacked protobuf-c messages into the plain structs of switchboard.h. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Every converter returns SB_OK or SB_INTERNAL (out of memory) and leaves its
 * output fully cleared on failure. `ok` accumulates allocation failures. */

static char *dup_into(const char *s, int *ok) {
    char *copy = sb__strdup(s);
    if (!copy) *ok = 0;
    return copy;
}

void sb_session_clear(sb_session *s) {
    if (!s) return;
    free(s->id);
    for (size_t i = 0; i < s->n_labels; i++) {
        free(s->labels[i].key);
        free(s->labels[i].value);
    }
    free(s->labels);
    free(s->settings.backend);
    free(s->current_turn_id);
    memset(s, 0, sizeof *s);
}

int sb__session_from(const Switchboard__V1__Session *in, sb_session *out) {
    memset(out, 0, sizeof *out);
    int ok = 1;
    if (!in) {
        /* An absent message reads as all defaults. */
        static const Switchboard__V1__Session empty = SWITCHBOARD__V1__SESSION__INIT;
        in = &empty;
    }
    out->id = dup_into(in->id, &ok);
    if (in->n_labels > 0) {
        out->labels = calloc(in->n_labels, sizeof *out->labels);
        if (!out->labels) {
            ok = 0;
        } else {
            out->n_labels = in->n_labels;
            for (size_t i = 0; i < in->n_labels; i++) {
                const Switchboard__V1__Label *l = in->labels[i];
                out->labels[i].key = dup_into(l ? l->key : "", &ok);
                out->labels[i].value = dup_into(l ? l->value : "", &ok);
            }
        }
    }
    const Switchboard__V1__SessionSettings *st = in->settings;
    out->settings.backend = dup_into(st ? st->backend : "", &ok);
    if (st) {
        out->settings.idle_timeout_ms = st->idle_timeout_ms;
        out->settings.turn_deadline_ms = st->turn_deadline_ms;
        out->settings.stall_timeout_ms = st->stall_timeout_ms;
        out->settings.max_queued_prompts = st->max_queued_prompts;
    }
    out->state = (int)in->state;
    out->created_at_ms = in->created_at_ms;
    out->last_activity_ms = in->last_activity_ms;
    out->queued_prompts = in->queued_prompts;
    out->current_turn_id = dup_into(in->current_turn_id, &ok);
    out->turns_completed = in->turns_completed;
    out->owner_uid = in->owner_uid;
    out->labels_omitted = in->labels_omitted ? 1 : 0;
    if (!ok) {
        sb_session_clear(out);
        return SB_INTERNAL;
    }
    return SB_OK;
}

/* Copies `n` sessions into a new array (NULL when n == 0). */
static int sessions_from(Switchboard__V1__Session *const *in, size_t n, sb_session **out, size_t *out_n) {
    *out = NULL;
    *out_n = 0;
    if (n == 0) return SB_OK;
    sb_session *array = calloc(n, sizeof *array);
    if (!array) return SB_INTERNAL;
    for (size_t i = 0; i < n; i++) {
        if (sb__session_from(in[i], &array[i]) != SB_OK) {
            for (size_t j = 0; j < i; j++) sb_session_clear(&array[j]);
            free(array);
            return SB_INTERNAL;
        }
    }
    *out = array;
    *out_n = n;
    return SB_OK;
}

static void sessions_free(sb_session *array, size_t n) {
    for (size_t i = 0; i < n; i++) sb_session_clear(&array[i]);
    free(array);
}

void sb_session_list_clear(sb_session_list *list) {
    if (!list) return;
    sessions_free(list->sessions, list->n_sessions);
    free(list->next_page_token);
    memset(list, 0, sizeof *list);
}

int sb__session_list_from(const Switchboard__V1__ListSessionsResponse *in, sb_session_list *out) {
    memset(out, 0, sizeof *out);
    if (sessions_from(in->sessions, in->n_sessions, &out->sessions, &out->n_sessions) != SB_OK) return SB_INTERNAL;
    out->next_page_token = sb__strdup(in->next_page_token);
    if (!out->next_page_token) {
        sb_session_list_clear(out);
        return SB_INTERNAL;
    }
    return SB_OK;
}

void sb_close_result_clear(sb_close_result *r) {
    if (!r) return;
    sb_session_clear(&r->session);
    memset(r, 0, sizeof *r);
}

int sb__close_result_from(const Switchboard__V1__CloseSessionResponse *in, sb_close_result *out) {
    memset(out, 0, sizeof *out);
    if (sb__session_from(in->session, &out->session) != SB_OK) return SB_INTERNAL;
    out->cancelled_turns = in->cancelled_turns;
    out->rejected_prompts = in->rejected_prompts;
    return SB_OK;
}

void sb_server_status_clear(sb_server_status *s) {
    if (!s) return;
    free(s->server_version);
    sessions_free(s->sessions, s->n_sessions);
    memset(s, 0, sizeof *s);
}

int sb__server_status_from(const Switchboard__V1__ServerStatus *in, sb_server_status *out) {
    memset(out, 0, sizeof *out);
    out->server_version = sb__strdup(in->server_version);
    if (!out->server_version) return SB_INTERNAL;
    if (sessions_from(in->sessions, in->n_sessions, &out->sessions, &out->n_sessions) != SB_OK) {
        sb_server_status_clear(out);
        return SB_INTERNAL;
    }
    out->protocol_version = in->protocol_version;
    out->uptime_ms = in->uptime_ms;
    out->connections = in->connections;
    out->sessions_total = in->sessions_total;
    out->sessions_idle = in->sessions_idle;
    out->sessions_busy = in->sessions_busy;
    out->turns_in_flight = in->turns_in_flight;
    out->queued_prompts = in->queued_prompts;
    out->max_queue_depth = in->max_queue_depth;
    out->turns_completed = in->turns_completed;
    out->draining = in->draining ? 1 : 0;
    out->pid = in->pid;
    out->sessions_omitted = in->sessions_omitted;
    return SB_OK;
}

static void turn_clear(sb_turn_summary *t) {
    free(t->turn_id);
    free(t->message);
    free(t->stop_reason);
    free(t->prompt_preview);
}

/* Copies one summary (NULL reads as all defaults); clears `ok` when out of memory. */
static void turn_from(const Switchboard__V1__TurnSummary *t, sb_turn_summary *o, int *ok) {
    static const Switchboard__V1__TurnSummary empty = SWITCHBOARD__V1__TURN_SUMMARY__INIT;
    if (!t) t = &empty;
    o->turn_id = dup_into(t->turn_id, ok);
    o->state = (int)t->state;
    o->code = t->code;
    o->message = dup_into(t->message, ok);
    o->stop_reason = dup_into(t->stop_reason, ok);
    o->chunks = t->chunks;
    o->bytes = t->bytes;
    o->started_at_ms = t->started_at_ms;
    o->ended_at_ms = t->ended_at_ms;
    o->prompt_preview = dup_into(t->prompt_preview, ok);
}

void sb_session_status_clear(sb_session_status *s) {
    if (!s) return;
    sb_session_clear(&s->session);
    for (size_t i = 0; i < s->n_turns; i++) turn_clear(&s->turns[i]);
    free(s->turns);
    memset(s, 0, sizeof *s);
}

int sb__session_status_from(const Switchboard__V1__SessionStatus *in, sb_session_status *out) {
    memset(out, 0, sizeof *out);
    if (sb__session_from(in->session, &out->session) != SB_OK) return SB_INTERNAL;
    if (in->n_turns == 0) return SB_OK;
    out->turns = calloc(in->n_turns, sizeof *out->turns);
    if (!out->turns) {
        sb_session_status_clear(out);
        return SB_INTERNAL;
    }
    out->n_turns = in->n_turns;
    int ok = 1;
    for (size_t i = 0; i < in->n_turns; i++) turn_from(in->turns[i], &out->turns[i], &ok);
    if (!ok) {
        sb_session_status_clear(out);
        return SB_INTERNAL;
    }
    return SB_OK;
}

void sb_turn_list_clear(sb_turn_list *list) {
    if (!list) return;
    for (size_t i = 0; i < list->n_turns; i++) {
        turn_clear(&list->turns[i].summary);
        free(list->turns[i].prompt);
        free(list->turns[i].output);
    }
    free(list->turns);
    free(list->next_page_token);
    memset(list, 0, sizeof *list);
}

int sb__turn_list_from(const Switchboard__V1__ListTurnsResponse *in, sb_turn_list *out) {
    memset(out, 0, sizeof *out);
    int ok = 1;
    out->next_page_token = dup_into(in->next_page_token, &ok);
    if (ok && in->n_turns > 0) {
        out->turns = calloc(in->n_turns, sizeof *out->turns);
        if (!out->turns) ok = 0;
    }
    if (ok && out->turns) {
        out->n_turns = in->n_turns;
        for (size_t i = 0; i < in->n_turns; i++) {
            static const Switchboard__V1__TurnRecord empty = SWITCHBOARD__V1__TURN_RECORD__INIT;
            const Switchboard__V1__TurnRecord *r = in->turns[i] ? in->turns[i] : &empty;
            sb_turn_record *o = &out->turns[i];
            turn_from(r->summary, &o->summary, &ok);
            o->accepted_at_ms = r->summary ? r->summary->accepted_at_ms : 0;
            o->prompt = dup_into(r->prompt, &ok);
            /* One byte more than the data: output is never NULL and reads as a C string. */
            o->output = malloc(r->output.len + 1);
            if (!o->output) {
                ok = 0;
            } else {
                if (r->output.len > 0) memcpy(o->output, r->output.data, r->output.len);
                o->output[r->output.len] = '\0';
                o->output_len = r->output.len;
            }
            o->output_dropped = r->output_dropped ? 1 : 0;
            o->output_omitted = r->output_omitted ? 1 : 0;
        }
    }
    if (!ok) {
        sb_turn_list_clear(out);
        return SB_INTERNAL;
    }
    return SB_OK;
}
