/*
 * The protocol's rule for string fields (docs/PROTOCOL.md, "Strings"): valid
 * UTF-8 without a NUL byte, else INVALID_ARGUMENT naming the field. A C string
 * cannot hold a NUL (it ends there), so requests are checked for UTF-8; callers
 * with bytes of a known length (a prompt read from a file) check them with
 * sb_check_string() first, so that a NUL is refused instead of silently ending
 * the string.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* 1 when the bytes are valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c == 0xE0) {
            len = 3; lo = 0xA0;
        } else if (c == 0xED) {
            len = 3; hi = 0x9F;
        } else if (c >= 0xE1 && c <= 0xEF) {
            len = 3;
        } else if (c == 0xF0) {
            len = 4; lo = 0x90;
        } else if (c == 0xF4) {
            len = 4; hi = 0x8F;
        } else if (c >= 0xF1 && c <= 0xF3) {
            len = 4;
        } else {
            return 0;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k < len; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        }
        i += len;
    }
    return 1;
}

int sb_check_string(const void *bytes, size_t len, const char *field, sb_error *err) {
    if (len > 0 && memchr(bytes, 0, len)) {
        return sb__fail(err, SB_INVALID_ARGUMENT, "%s contains a NUL byte", field);
    }
    if (!utf8_valid(bytes, len)) {
        return sb__fail(err, SB_INVALID_ARGUMENT, "%s is not valid UTF-8", field);
    }
    sb__ok(err);
    return SB_OK;
}

/* The envelope adds no path component: the fields of Frame and Payload, and a
 * field holding a Payload (paths are relative to the request message). */
static int is_envelope(const ProtobufCMessageDescriptor *d) {
    return strcmp(d->short_name, "Frame") == 0 || strcmp(d->short_name, "Payload") == 0;
}

/* `path` = `head` "." `tail` (or `tail` alone when `head` is NULL), cut to `size`. */
static void join_path(char *path, size_t size, const char *head, const char *tail) {
    size_t used = 0;
    const char *parts[3] = { head, head ? "." : NULL, tail };
    for (int k = 0; k < 3; k++) {
        if (!parts[k]) continue;
        size_t n = strlen(parts[k]);
        if (n > size - 1 - used) n = size - 1 - used;
        memcpy(path + used, parts[k], n);
        used += n;
    }
    path[used] = '\0';
}

/* Walks `m` with its descriptor; on the first string field that is not valid
 * UTF-8 writes its path (`labels[1].key`) to `path` and returns 1. */
static int find_invalid(const ProtobufCMessage *m, char *path, size_t size) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id) {
            continue;
        }
        int repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
        size_t count = repeated ? *(const size_t *)(base + f->quantifier_offset) : 1;
        void *const *values = repeated ? *(void *const *const *)(base + f->offset) : (void *const *)(base + f->offset);
        for (size_t j = 0; j < count && values; j++) {
            const void *value = values[j];
            if (!value) continue;
            char name[128], index[24] = "";
            if (repeated) snprintf(index, sizeof index, "[%zu]", j);
            join_path(name, sizeof name, NULL, f->name);
            join_path(name + strlen(name), sizeof name - strlen(name), NULL, index);
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                if (!utf8_valid(value, strlen(value))) {
                    join_path(path, size, NULL, name);
                    return 1;
                }
                continue;
            }
            char inner[256];
            if (find_invalid(value, inner, sizeof inner)) {
                int envelope = is_envelope(d) || is_envelope(f->descriptor);
                join_path(path, size, envelope ? NULL : name, inner);
                return 1;
            }
        }
    }
    return 0;
}

int sb__check_frame_strings(const Switchboard__V1__Frame *frame, sb_error *err) {
    char path[256];
    if (find_invalid(&frame->base, path, sizeof path)) {
        return sb__fail(err, SB_INVALID_ARGUMENT, "%s is not valid UTF-8", path);
    }
    return SB_OK;
}
