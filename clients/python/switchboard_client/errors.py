"""Status codes and the one exception type of the client."""

from __future__ import annotations

import enum


class StatusCode(enum.IntEnum):
    """gRPC's canonical status codes, same names and numbers."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


def code_name(code: int) -> str:
    """``"NOT_FOUND"`` for 5; ``"CODE_99"`` for a code outside the table."""
    try:
        return StatusCode(code).name
    except ValueError:
        return f"CODE_{code}"


class SwitchboardError(Exception):
    """A call (or the connection) ended with a status other than OK.

    ``code`` is the gRPC status code (an ``int``, comparable with
    :class:`StatusCode`), ``code_name`` its name, ``message`` the server's (or
    the client's) explanation. Codes raised by the client itself:
    ``UNAVAILABLE`` (no server, connection lost), ``DEADLINE_EXCEEDED`` (a
    timeout passed), ``RESOURCE_EXHAUSTED`` (a frame above a limit),
    ``INVALID_ARGUMENT`` (bad arguments), ``INTERNAL`` (a reply the client does
    not understand).
    """

    def __init__(self, code: int, message: str) -> None:
        self.code: int = int(code)
        self.code_name: str = code_name(self.code)
        self.message: str = message
        super().__init__(f"{self.code_name}: {message}" if message else self.code_name)
