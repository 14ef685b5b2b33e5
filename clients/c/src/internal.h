/* Internal declarations shared by the library's source files and its tests. */
#ifndef SWITCHBOARD_INTERNAL_H
#define SWITCHBOARD_INTERNAL_H

#include "switchboard.h"
#include "switchboard/v1/switchboard.pb-c.h"

#include <stdarg.h>

#define SB_DEFAULT_MAX_FRAME (4u * 1024u * 1024u)
#define SB_PROTOCOL_VERSION 1u

/* Fills `err` (when not NULL) and returns `code`. */
int sb__fail(sb_error *err, int code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void sb__ok(sb_error *err);

/* String copy that never returns a NULL string for a NULL source ("" instead);
 * returns NULL only when out of memory. */
char *sb__strdup(const char *s);

/* INVALID_ARGUMENT "FIELD is not valid UTF-8" for the first string field of a
 * frame about to be sent that is not (strings.c); else SB_OK, `err` untouched. */
int sb__check_frame_strings(const Switchboard__V1__Frame *frame, sb_error *err);

/* Conversions from unpacked protobuf-c messages (messages.c). Return SB_OK or
 * SB_INTERNAL (out of memory); on failure `out` is left cleared. */
int sb__session_from(const Switchboard__V1__Session *in, sb_session *out);
int sb__session_list_from(const Switchboard__V1__ListSessionsResponse *in, sb_session_list *out);
int sb__close_result_from(const Switchboard__V1__CloseSessionResponse *in, sb_close_result *out);
int sb__server_status_from(const Switchboard__V1__ServerStatus *in, sb_server_status *out);
int sb__session_status_from(const Switchboard__V1__SessionStatus *in, sb_session_status *out);
int sb__turn_list_from(const Switchboard__V1__ListTurnsResponse *in, sb_turn_list *out);

/* The label rules (docs/PROTOCOL.md, "Labels"; labels.c): SB_OK, or
 * SB_INVALID_ARGUMENT naming the first label at fault and the rule, as the
 * server would answer. */
int sb__check_labels(const sb_kv *labels, size_t n, sb_error *err);

/* Testing hooks (used by the tests and the conformance runner, not part of
 * the public API). */

/* Writes `len` raw bytes on the connection as they are (no framing). */
int sb__write_raw(sb_client *client, const void *bytes, size_t len, sb_error *err);

/* Cuts the connection (shutdown of the socket) without telling the server
 * anything: open calls end UNAVAILABLE and no Cancel is sent, as when the
 * client process dies. */
void sb__drop_connection(sb_client *client);

/* Packs `frame` with its 4-byte big-endian length prefix into a malloc'ed
 * buffer; returns NULL when out of memory. */
uint8_t *sb__pack_frame(const Switchboard__V1__Frame *frame, size_t *out_len);

#endif
