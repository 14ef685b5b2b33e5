"""Re-attaching a prompt stream after a lost connection (the Swift client's
``ResumePolicy`` and ``Internal/PromptResumer.swift``, in Python).

The server keeps a turn running when its caller's connection goes away (unless
the prompt asked for ``cancel_on_disconnect``) and keeps its output, so a stream
can pick the turn up again with ``/switchboard.v1.Prompts/Attach``. With
``Client.prompt(..., resume=ResumePolicy())`` the stream does that by itself:
it connects again, attaches after the last chunk it delivered, and carries on.
The caller sees one seamless turn: ``Accepted``, ``Started``, every ``Output``
exactly once in sequence order, ``Finished``, then the turn's status. The
``Attached`` events of re-attaches are not part of the turn and are not yielded
(pass ``on_reattach`` to hear about them).

A prompt is never sent twice (it is not idempotent): when the connection is lost
before the server's ``Accepted`` arrived, the stream fails with ``UNAVAILABLE``
even with a policy.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Optional, Tuple

from . import switchboard_pb2 as pb
from .client import _ATTACH, Accepted, Attached, Finished, Output, Started, _next_event
from .errors import StatusCode, SwitchboardError

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client, PromptEvent, _Call


@dataclass(frozen=True)
class ResumePolicy:
    """How a prompt stream re-attaches after its connection was lost while the
    turn runs (``Client.prompt(..., resume=ResumePolicy())``; off by default).

    Per loss, it reconnects with exponential backoff (``initial_backoff``,
    doubling up to ``max_backoff``, with up to 20% jitter) and gives up after
    ``max_attempts`` attempts without progress or when no attempt can start
    within ``total_budget`` seconds. The budget starts again with each attach
    that got through (so a turn may stay silent for any time between two
    losses); the attempt count only when the re-attached stream delivers
    something new (so a turn survives any number of separate losses, but a
    server that keeps dropping the stream cannot loop it forever).

    Once re-attached, the stream follows the turn on a connection of its own
    (the client's connection stays lost for its other calls). Cancelling or
    closing the stream then ends only the attach: the server does not cancel a
    turn for an attacher.
    """

    #: Attempts per loss (counted until something new is delivered); at least 1.
    max_attempts: int = 10
    #: Seconds before the second attempt; each later wait doubles, up to ``max_backoff``.
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    #: No attempt starts this many seconds after the loss (or the last attach that got through).
    total_budget: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise SwitchboardError(StatusCode.INVALID_ARGUMENT, "ResumePolicy.max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.total_budget <= 0:
            raise SwitchboardError(StatusCode.INVALID_ARGUMENT,
                                   "ResumePolicy backoffs must not be negative and total_budget must be positive")

    def backoff(self, before_retry: int) -> float:
        """The wait (seconds) before retry number ``before_retry`` (1-based), with up to 20% jitter."""
        wait = self.initial_backoff
        for _ in range(1, max(before_retry, 1)):
            wait = min(wait * 2, self.max_backoff)
        return min(wait, self.max_backoff) * random.uniform(0.8, 1.0)


def is_turn_ending(error: SwitchboardError) -> bool:
    """The server's "turn T is ending; attach again": the attach came while the turn
    was passing from memory to the store; the next attach finds it finished."""
    return (error.code == StatusCode.UNAVAILABLE and error.message.startswith("turn ")
            and error.message.endswith(" is ending; attach again"))


def is_refused_before_processing(error: SwitchboardError) -> bool:
    """Whether ``error`` says the server never processed the call (no server, a
    refused or cut connection, a draining server), so trying again is safe."""
    if error.code != StatusCode.UNAVAILABLE:
        return False
    m = error.message
    return (m.startswith(("no server at ", "handshake with ", "server is going away", "server is shutting down",
                          "server is draining", "connection closed", "connection lost"))
            or (m.startswith("cannot connect to ") and "path too long" not in m))


class _PromptResumer:
    """The bookkeeping of a prompt stream with a :class:`ResumePolicy`: what the
    caller has been given so far, and the re-attach after a lost connection.

    Why it filters what it delivers: a re-attach replays from the last chunk
    *delivered*, and the server may still send a chunk twice (an attach that raced
    the cut) or a second ``Finished`` (the cut came after ``Finished`` but before
    the call's end). Every event is checked against the count, so the caller gets
    each chunk exactly once and in order whatever the server does, and a gap is an
    error (``DATA_LOSS``) rather than silently missing output.
    """

    def __init__(self, client: "Client", session_id: str, policy: ResumePolicy, deadline: Optional[float],
                 on_reattach: Optional[Callable[["Attached"], None]]) -> None:
        self.client = client
        self.session_id = session_id
        self.policy = policy
        #: The whole stream's deadline (time.monotonic()), re-attaches included.
        self.deadline = deadline
        self.on_reattach = on_reattach
        #: From ``Accepted``; None until then (and then nothing may be re-sent).
        self.turn_id: Optional[str] = None
        #: The sequence number of the last chunk delivered to the caller.
        self.last_sequence = 0
        self.started_delivered = False
        self.finished_delivered = False
        #: Events to deliver before reading on (a made-up ``Started``, then the event that revealed it).
        self.pending: Deque["PromptEvent"] = deque()
        #: The connection of the current re-attach; owned by the stream.
        self.connection: Optional["Client"] = None
        #: Re-attach attempts since something new was delivered (only progress resets it).
        self.attempts_without_progress = 0
        #: When the current loss began, for ``total_budget``: reset by progress and
        #: by an attach that got its ``Attached``.
        self.loss_started: Optional[float] = None
        #: Set by ``PromptStream.cancel()`` from any thread; wakes a backoff wait.
        self.cancelled = threading.Event()

    # -- filtering ---------------------------------------------------------------

    def filter(self, event: "PromptEvent") -> Optional["PromptEvent"]:
        """The event to hand to the caller for ``event``, or None to skip it.
        Raises ``DATA_LOSS`` for a gap in the sequence numbers."""

        if isinstance(event, Accepted):
            self.turn_id = event.turn_id
            return event
        if isinstance(event, Started):
            if self.started_delivered:
                return None
            self.started_delivered = True
            return event
        if isinstance(event, Attached):
            if self.turn_id is not None and event.turn_id != self.turn_id:
                raise SwitchboardError(StatusCode.INTERNAL,
                                       f"re-attach to turn {self.turn_id} followed turn {event.turn_id} instead")
            if self.on_reattach is not None:
                self.on_reattach(event)
            if event.state in (pb.TURN_STATE_RUNNING, pb.TURN_STATE_FINISHED):
                return self._made_up_started()
            return None
        if isinstance(event, Output):
            if event.sequence <= self.last_sequence:
                return None
            if event.sequence != self.last_sequence + 1:
                raise SwitchboardError(
                    StatusCode.DATA_LOSS,
                    f"output gap in turn {self.turn_id or '?'}: expected chunk {self.last_sequence + 1}, "
                    f"got {event.sequence}",
                )
            self.last_sequence = event.sequence
            self._made_progress()
            return self._after_started(event)
        if isinstance(event, Finished):
            if self.finished_delivered:
                return None
            self.finished_delivered = True
            self._made_progress()
            return self._after_started(event)
        return event

    def _after_started(self, event: "PromptEvent") -> "PromptEvent":
        started = self._made_up_started()
        if started is None:
            return event
        self.pending.append(event)
        return started

    def _made_up_started(self) -> Optional["PromptEvent"]:

        if self.started_delivered or self.turn_id is None:
            return None
        self.started_delivered = True
        return Started(self.turn_id)

    def _made_progress(self) -> None:
        self.attempts_without_progress = 0
        self.loss_started = None

    # -- re-attaching ------------------------------------------------------------

    def reattach(self, error: SwitchboardError, lost: bool) -> Tuple["Client", "_Call"]:
        """After the current call failed with ``error`` (``lost``: because its
        connection went away): connects again and attaches after the last
        delivered chunk, returning the new connection and its call (its
        ``Attached`` already consumed). Raises ``error`` itself when it is not a
        lost connection, ``UNAVAILABLE`` when the turn was never accepted (the
        prompt is not re-sent), and the last failure when the policy's attempts
        or budget run out."""
        if not lost:
            raise error
        turn_id = self.turn_id
        if turn_id is None:
            raise SwitchboardError(
                StatusCode.UNAVAILABLE,
                f"{error.message} before the server accepted the prompt; it was not sent again "
                "(a prompt is not safe to repeat): the session's turn history shows whether it ran",
            )
        last_error = error
        started = self.loss_started if self.loss_started is not None else time.monotonic()
        self.loss_started = started
        while True:
            self.attempts_without_progress += 1
            attempt = self.attempts_without_progress
            if attempt > self.policy.max_attempts:
                raise self._gave_up(last_error, turn_id, attempt - 1)
            if attempt > 1:
                wait = self.policy.backoff(attempt - 1)
                if time.monotonic() - started + wait >= self.policy.total_budget:
                    raise self._gave_up(last_error, turn_id, attempt - 1)
                if self.cancelled.wait(wait):
                    raise SwitchboardError(StatusCode.CANCELLED, f"cancelled while re-attaching to turn {turn_id}")
            if self.cancelled.is_set():
                raise SwitchboardError(StatusCode.CANCELLED, f"cancelled while re-attaching to turn {turn_id}")
            self.close_connection()
            try:
                return self._attach_once(turn_id)
            except SwitchboardError as failure:
                if not (is_refused_before_processing(failure) or is_turn_ending(failure)):
                    raise
                last_error = failure

    @staticmethod
    def _gave_up(error: SwitchboardError, turn_id: str, attempts: int) -> SwitchboardError:
        plural = "" if attempts == 1 else "s"
        return SwitchboardError(
            StatusCode.UNAVAILABLE,
            f"{error.message} (gave up re-attaching to turn {turn_id} after {attempts} attempt{plural})",
        )

    def _attach_once(self, turn_id: str) -> Tuple["Client", "_Call"]:
        """One attempt: a new connection, an Attach call, and its first event."""

        timeout: Optional[float] = None
        if self.deadline is not None:
            timeout = self.deadline - time.monotonic()
            if timeout <= 0:
                raise SwitchboardError(StatusCode.DEADLINE_EXCEEDED,
                                       f"deadline exceeded while re-attaching to turn {turn_id}")
        options: Dict[str, Any] = dict(self.client._connect_options)
        if timeout is not None and (options.get("connect_timeout") is None or options["connect_timeout"] > timeout):
            options["connect_timeout"] = timeout
        connection = type(self.client).connect(**options)
        self.connection = connection
        request = pb.Payload()
        request.attach_request.session_id = self.session_id
        request.attach_request.turn_id = turn_id
        request.attach_request.after_sequence = self.last_sequence
        call = connection._start(_ATTACH, request, timeout, streaming=True)
        try:
            first = _next_event(connection, call)
        except SwitchboardError:
            connection._forget(call)
            raise
        if not isinstance(first, Attached):
            connection._forget(call)
            described = "its end" if first is None else type(first).__name__
            raise SwitchboardError(StatusCode.INTERNAL,
                                   f"protocol error: an attach call began with {described} instead of Attached")
        started = self.filter(first)
        if started is not None:
            self.pending.append(started)
        # Connected again: the next loss gets the whole time budget (the attempt
        # count still runs until something new is delivered).
        self.loss_started = None
        return connection, call

    def close_connection(self) -> None:
        """Closes the connection of the current re-attach, if any."""
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close()
