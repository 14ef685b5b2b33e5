"""Python client of the Switchboard broker.

    from switchboard_client import Client

    with Client.connect() as client:              # $SWITCHBOARD_SOCKET, ...
        session = client.create_session()
        for text in client.prompt(session.id, "hello there").text():
            print(text, end="", flush=True)

Messages (``Session``, ``ServerStatus``, ...) are the generated protobuf
classes in :mod:`switchboard_client.switchboard_pb2`; errors are
:class:`SwitchboardError` with ``.code``, ``.code_name`` and ``.message``.

A prompt survives a lost connection with ``client.prompt(..., resume=ResumePolicy())``
(or ``Client.connect(..., resume=ResumePolicy())``): it re-attaches by itself and
yields the turn once; see :mod:`switchboard_client.resume`.

Workers (sessions with backend ``worker:QUEUE``): :func:`register` returns a
:class:`Worker` that yields :class:`Assignment` / :class:`Cancellation` events
and answers heartbeats on a background thread; see :mod:`switchboard_client.worker`.
"""

from . import switchboard_pb2
from .client import (
    DEFAULT_MAX_FRAME_SIZE,
    PROTOCOL_VERSION,
    Accepted,
    Attached,
    Client,
    Finished,
    Output,
    PromptEvent,
    PromptStream,
    Started,
    default_socket_path,
)
from .errors import StatusCode, SwitchboardError, code_name
from .resume import ResumePolicy
from .worker import Assignment, Cancellation, Worker, WorkerEvent, register

__all__ = [
    "Accepted",
    "Assignment",
    "Attached",
    "Cancellation",
    "Client",
    "DEFAULT_MAX_FRAME_SIZE",
    "Finished",
    "Output",
    "PROTOCOL_VERSION",
    "PromptEvent",
    "PromptStream",
    "ResumePolicy",
    "Started",
    "StatusCode",
    "SwitchboardError",
    "code_name",
    "default_socket_path",
    "register",
    "switchboard_pb2",
    "Worker",
    "WorkerEvent",
]
__version__ = "0.1.0"
