"""The label rules (docs/PROTOCOL.md, "Labels"), checked before a request is sent.

The server enforces the same rules (it is the authority); checking here gives
the same INVALID_ARGUMENT without a round trip. Kubernetes' label rules: a key
is ``[prefix/]name``, the name 1-63 characters of ``[A-Za-z0-9-_.]`` beginning
and ending with a letter or digit, the optional prefix a DNS subdomain of at
most 253 characters; a value is empty or follows the name's rule; at most 64
labels.
"""

from __future__ import annotations

import re
from typing import Mapping

from .errors import StatusCode, SwitchboardError

MAX_LABELS = 64
MAX_NAME_LENGTH = 63
MAX_PREFIX_LENGTH = 253
MAX_VALUE_LENGTH = 63
MAX_KEY_LENGTH = MAX_PREFIX_LENGTH + 1 + MAX_NAME_LENGTH

NAME_RULE = ('a key\'s name (after an optional "prefix/") must be 1-63 characters of [A-Za-z0-9-_.], '
             "beginning and ending with a letter or digit")
PREFIX_RULE = ('a key\'s prefix (before "/") must be a DNS subdomain of at most 253 characters: '
               'lowercase [a-z0-9-] parts separated by ".", each beginning and ending with a letter or digit')
VALUE_RULE = ("a value must be empty or at most 63 characters of [A-Za-z0-9-_.], "
              "beginning and ending with a letter or digit")

_NAME = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z", re.ASCII)
_DNS_PART = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?\Z", re.ASCII)


def _is_name(text: str, max_length: int) -> bool:
    return 0 < len(text) <= max_length and _NAME.match(text) is not None


def key_violation(key: str) -> str | None:
    """The rule ``key`` breaks, or None."""
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_LENGTH:
        return (f"a key must be at most {MAX_KEY_LENGTH} characters ({MAX_PREFIX_LENGTH} of prefix, "
                f'"/", {MAX_NAME_LENGTH} of name), this one has {size} bytes')
    prefix, slash, name = key.partition("/")
    if not slash:
        return None if _is_name(key, MAX_NAME_LENGTH) else NAME_RULE
    if not prefix or len(prefix) > MAX_PREFIX_LENGTH or not all(_DNS_PART.match(p) for p in prefix.split(".")):
        return PREFIX_RULE
    return None if _is_name(name, MAX_NAME_LENGTH) else NAME_RULE


def is_valid_value(value: str) -> bool:
    return value == "" or _is_name(value, MAX_VALUE_LENGTH)


def _escaped(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    return char if char.isprintable() else repr(char)[1:-1]


def _quoted(text: str) -> str:
    """A key or value for an error message: at most 64 characters (the rest
    elided with its size), control characters escaped."""
    shown = "".join(_escaped(char) for char in text[:64])
    if len(text) > 64:
        return f'"{shown}"… ({len(text.encode("utf-8", "surrogatepass"))} bytes)'
    return f'"{shown}"'


def validate_labels(labels: Mapping[str, str], field: str = "labels") -> None:
    """Raises :class:`SwitchboardError` ``INVALID_ARGUMENT`` naming the first
    label that breaks a rule, and the rule."""
    if len(labels) > MAX_LABELS:
        raise SwitchboardError(StatusCode.INVALID_ARGUMENT,
                               f"too many {field}: {len(labels)} (at most {MAX_LABELS})")
    for index, (key, value) in enumerate(labels.items()):
        if not isinstance(key, str) or not isinstance(value, str):
            raise SwitchboardError(StatusCode.INVALID_ARGUMENT,
                                   f"{field}[{index}]: label keys and values must be str")
        rule = key_violation(key)
        if rule is not None:
            raise SwitchboardError(StatusCode.INVALID_ARGUMENT,
                                   f"invalid label key {_quoted(key)} ({field}[{index}]): {rule}")
        if not is_valid_value(value):
            raise SwitchboardError(
                StatusCode.INVALID_ARGUMENT,
                f"invalid value {_quoted(value)} of label {_quoted(key)} ({field}[{index}]): {VALUE_RULE}")
