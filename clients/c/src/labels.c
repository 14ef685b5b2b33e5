/* The label rules, checked before a CreateSession is sent (the server checks
 * the same; it is the authority): Kubernetes' label rules plus a count. A key
 * is [prefix/]name, the name 1-63 characters of [A-Za-z0-9-_.] beginning and
 * ending with a letter or digit, the optional prefix a DNS subdomain of at most
 * 253 characters; a value is empty or follows the name's rule; at most 64
 * labels, keys unique. See docs/PROTOCOL.md, "Labels". */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define MAX_LABELS 64
#define MAX_NAME 63
#define MAX_PREFIX 253
#define MAX_VALUE 63
#define MAX_KEY (MAX_PREFIX + 1 + MAX_NAME)

static const char name_rule[] = "a key's name (after an optional \"prefix/\") must be 1-63 characters of "
                                "[A-Za-z0-9-_.], beginning and ending with a letter or digit";
static const char prefix_rule[] = "a key's prefix (before \"/\") must be a DNS subdomain of at most 253 characters: "
                                  "lowercase [a-z0-9-] parts separated by \".\", each beginning and ending with a "
                                  "letter or digit";
static const char value_rule[] = "a value must be empty or at most 63 characters of [A-Za-z0-9-_.], "
                                 "beginning and ending with a letter or digit";

static int is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static int is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], 1..max bytes. */
static int is_name(const char *s, size_t len, size_t max) {
    if (len == 0 || len > max || !is_alnum(s[0]) || !is_alnum(s[len - 1])) return 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') return 0;
    }
    return 1;
}

/* Lowercase RFC 1123 subdomain: [a-z0-9]([-a-z0-9]*[a-z0-9])? parts joined by dots. */
static int is_subdomain(const char *s, size_t len) {
    if (len == 0 || len > MAX_PREFIX) return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            if (!is_lower_alnum(s[i]) && s[i] != '-') return 0;
            continue;
        }
        if (i == start || !is_lower_alnum(s[start]) || !is_lower_alnum(s[i - 1])) return 0;
        start = i + 1;
    }
    return 1;
}

/* The rule `key` breaks, or NULL. */
static const char *key_violation(const char *key, size_t len) {
    if (len > MAX_KEY) return "a key must be at most 317 characters (253 of prefix, \"/\", 63 of name)";
    const char *slash = memchr(key, '/', len);
    if (!slash) return is_name(key, len, MAX_NAME) ? NULL : name_rule;
    size_t prefix = (size_t)(slash - key);
    if (!is_subdomain(key, prefix)) return prefix_rule;
    return is_name(slash + 1, len - prefix - 1, MAX_NAME) ? NULL : name_rule;
}

/* At most 64 bytes of `s`, for a message (the rules make longer ones invalid anyway). */
static int shown(size_t len) { return len > 64 ? 64 : (int)len; }

int sb__check_labels(const sb_kv *labels, size_t n, sb_error *err) {
    if (n > MAX_LABELS) return sb__fail(err, SB_INVALID_ARGUMENT, "too many labels: %zu (at most %d)", n, MAX_LABELS);
    for (size_t i = 0; i < n; i++) {
        const char *key = labels[i].key ? labels[i].key : "";
        const char *value = labels[i].value ? labels[i].value : "";
        size_t key_len = strlen(key), value_len = strlen(value);
        /* Encoding first, as the server does (it checks strings when it decodes). */
        char field[48];
        snprintf(field, sizeof field, "labels[%zu].key", i);
        int rc = sb_check_string(key, key_len, field, err);
        if (rc != SB_OK) return rc;
        snprintf(field, sizeof field, "labels[%zu].value", i);
        rc = sb_check_string(value, value_len, field, err);
        if (rc != SB_OK) return rc;
        const char *rule = key_violation(key, key_len);
        if (rule) {
            return sb__fail(err, SB_INVALID_ARGUMENT, "invalid label key \"%.*s\"%s (labels[%zu]): %s",
                            shown(key_len), key, key_len > 64 ? "…" : "", i, rule);
        }
        if (value_len > 0 && !is_name(value, value_len, MAX_VALUE)) {
            return sb__fail(err, SB_INVALID_ARGUMENT, "invalid value \"%.*s\"%s of label \"%s\" (labels[%zu]): %s",
                            shown(value_len), value, value_len > 64 ? "…" : "", key, i, value_rule);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(key, labels[j].key ? labels[j].key : "") == 0) {
                return sb__fail(err, SB_INVALID_ARGUMENT,
                                "label key \"%s\" appears more than once in labels (keys must be unique)", key);
            }
        }
    }
    return SB_OK;
}
