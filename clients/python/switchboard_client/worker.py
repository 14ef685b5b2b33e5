"""A blocking worker of the Switchboard broker (docs/PROTOCOL.md, "Workers").

    from switchboard_client import Assignment, register

    with register("upper", capacity=1) as worker:
        for event in worker:
            if isinstance(event, Assignment):
                worker.output(event.turn_id, event.prompt.upper())
                worker.finish(event.turn_id)

Threading model: a worker is one ``/switchboard.v1.Workers/Connect`` call on a
connection of its own. A **background reader thread** (a daemon) owns every
read from that connection: it answers the server's heartbeats and connection
pings at once, and queues assignments and cancellations for the iterator. So a
worker that spends a long time on a turn in the thread that iterates is not
dropped for missed heartbeats, as long as the interpreter gets to run the reader
(ordinary Python code, ``time.sleep`` and I/O do; a C extension that holds the
GIL for longer than the heartbeat timeout does not). ``output``, ``finish`` and
``fail`` may be called from any thread (writes are serialized), so turns may
also be served by a thread pool when ``capacity`` > 1.
"""

from __future__ import annotations

import queue
import socket
import threading
from dataclasses import dataclass, field
from typing import Dict, Iterator, Mapping, Optional, Set, Union

from . import switchboard_pb2 as pb
from .client import Client, _check_strings, _labels, _text, default_socket_path
from .errors import StatusCode, SwitchboardError
from .labels import validate_labels

_CONNECT = "/switchboard.v1.Workers/Connect"
_CALL_ID = 1


@dataclass(frozen=True)
class Assignment:
    """Run this turn: stream :meth:`Worker.output`, then :meth:`Worker.finish`
    or :meth:`Worker.fail`. ``deadline_ms`` is the time left when it was sent."""

    turn_id: str
    session_id: str
    prompt: str
    deadline_ms: int
    session_labels: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cancellation:
    """The turn is over on the server's side (client cancelled or gone, session
    closed, deadline); stop working on it. Its slot is already free."""

    turn_id: str
    reason: str


WorkerEvent = Union[Assignment, Cancellation]

_END = object()  # queue sentinel: the call is over


class Worker:
    """A registered worker. Create it with :func:`register` (or :meth:`Worker.register`).

    Iterating yields :class:`Assignment` and :class:`Cancellation` events. The
    iteration ends normally after :meth:`close` (the call ended OK) and raises
    :class:`SwitchboardError` when the call or the connection fails
    (``UNAVAILABLE`` "worker missed its heartbeats", connection lost, ...).
    """

    def __init__(self, client: Client, heartbeats: bool = True) -> None:
        self._client = client
        self._events: "queue.Queue[object]" = queue.Queue()
        self._lock = threading.Lock()
        self._registered = threading.Event()
        self._ended = threading.Event()
        self._error: Optional[SwitchboardError] = None
        self._closing = False
        self._closed = False
        self._cancelled: Set[str] = set()
        self._answer_heartbeats = heartbeats  # tests turn it off to be dropped
        self.registered: pb.WorkerRegistered = pb.WorkerRegistered()
        self._reader = threading.Thread(target=self._read_loop, name="switchboard-worker-reader", daemon=True)

    # -- registering ------------------------------------------------------------

    @classmethod
    def register(
        cls,
        task_queue: str,
        capacity: int = 1,
        labels: Optional[Mapping[str, str]] = None,
        display_name: str = "",
        *,
        socket_path: Optional[str] = None,
        client_name: str = "switchboard-python-worker",
        connect_timeout: Optional[float] = 5.0,
    ) -> "Worker":
        """Connects (a connection of its own), says Hello and registers with
        ``task_queue``; returns once the server answered ``registered``.

        Raises :class:`SwitchboardError`: ``UNAVAILABLE`` (no server),
        ``INVALID_ARGUMENT`` (bad queue name, capacity 0, labels that break the
        label rules: checked before connecting), ``DEADLINE_EXCEEDED`` (no
        answer within ``connect_timeout``)."""
        # Strings are checked before connecting: INVALID_ARGUMENT naming the field.
        frame = pb.Frame()
        frame.call_id = _CALL_ID
        frame.start.method = _CONNECT
        reg = frame.start.payload.worker_message.register
        reg.task_queue = _text(task_queue, "register.task_queue")
        reg.capacity = capacity
        reg.display_name = _text(display_name, "register.display_name")
        _labels(reg.labels, labels, "register.labels")
        validate_labels(labels or {}, "register.labels")
        client = Client.connect(socket_path or default_socket_path(), client_name=client_name,
                                connect_timeout=connect_timeout)
        worker = cls(client)
        try:
            with client._lock:
                client._last_call_id = _CALL_ID
            worker._send(frame)
            worker._reader.start()
            if not worker._registered.wait(connect_timeout):
                raise SwitchboardError(StatusCode.DEADLINE_EXCEEDED, "no answer to the worker registration")
            if not worker.registered.worker_id:
                raise worker._error or SwitchboardError(StatusCode.UNAVAILABLE,
                                                        "the worker call ended before registration")
            return worker
        except BaseException:
            worker._shutdown()
            raise

    @property
    def worker_id(self) -> str:
        """``w-N``, chosen by the server."""
        return self.registered.worker_id

    # -- events -------------------------------------------------------------------

    def __iter__(self) -> Iterator[WorkerEvent]:
        return self

    def __next__(self) -> WorkerEvent:
        return self._next(None)

    def next_event(self, timeout: Optional[float] = None) -> Optional[WorkerEvent]:
        """The next event, or None when none arrives within ``timeout`` seconds.
        Raises StopIteration / SwitchboardError like iteration."""
        return self._next(timeout)

    def _next(self, timeout: Optional[float]) -> Optional[WorkerEvent]:
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _END:
            self._events.put(_END)  # every later call ends the same way
            if self._error is not None:
                raise SwitchboardError(self._error.code, self._error.message)
            raise StopIteration
        return item  # type: ignore[return-value]

    def is_cancelled(self, turn_id: str) -> bool:
        """True once the server cancelled ``turn_id`` (checked by the reader
        thread, so a long turn can poll it without iterating)."""
        with self._lock:
            return turn_id in self._cancelled

    # -- answering turns ----------------------------------------------------------

    def output(self, turn_id: str, data: Union[bytes, str]) -> None:
        """Streams one chunk of the turn's output (str is sent as UTF-8; empty data is not sent)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not data:
            return
        message = pb.WorkerMessage()
        message.output.turn_id = _text(turn_id, "output.turn_id")
        message.output.data = data
        self._send_message(message)

    def finish(self, turn_id: str, stop_reason: str = "end_turn") -> None:
        """The turn is done; its prompt ends OK."""
        message = pb.WorkerMessage()
        message.finished.turn_id = _text(turn_id, "finished.turn_id")
        message.finished.stop_reason = _text(stop_reason, "finished.stop_reason")
        self._send_message(message)

    def fail(self, turn_id: str, code: int, message: str = "") -> None:
        """The turn failed: its prompt ends with ``code`` (a :class:`StatusCode`;
        OK is taken as UNKNOWN by the server) and ``message``."""
        m = pb.WorkerMessage()
        m.failed.turn_id = _text(turn_id, "failed.turn_id")
        m.failed.code = int(code)
        m.failed.message = _text(message, "failed.message")
        self._send_message(m)

    # -- leaving ------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Leaves the pool (half-close), waits up to ``timeout`` s for the
        server's end of the call, and closes the connection. Turns still in
        flight end UNAVAILABLE at their clients. Iteration then stops."""
        with self._lock:
            if self._closed:
                return
            self._closing = True
        if not self._ended.is_set():
            frame = pb.Frame()
            frame.call_id = _CALL_ID
            frame.half_close.SetInParent()
            try:
                self._send(frame)
            except SwitchboardError:
                pass
            self._ended.wait(timeout)
        self._shutdown()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------

    def _shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._client._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader
        except OSError:
            pass
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(5)
        self._finish(SwitchboardError(StatusCode.CANCELLED, "worker closed") if not self._ended.is_set() else None)
        self._client.close()

    def _send_message(self, message: pb.WorkerMessage) -> None:
        if self._error is not None:
            raise SwitchboardError(self._error.code, self._error.message)
        if self._ended.is_set():
            raise SwitchboardError(StatusCode.FAILED_PRECONDITION, "the worker call is over")
        _check_strings(message)
        frame = pb.Frame()
        frame.call_id = _CALL_ID
        frame.message.payload.worker_message.CopyFrom(message)
        self._send(frame)

    def _send(self, frame: pb.Frame) -> None:
        try:
            self._client._write(frame)
        except SwitchboardError as error:
            raise SwitchboardError(StatusCode.UNAVAILABLE, f"worker connection lost: {error.message}") from None

    def _finish(self, error: Optional[SwitchboardError]) -> None:
        """The call is over (once): wake the registration and the iterator."""
        with self._lock:
            if self._ended.is_set():
                return
            if error is not None and not (self._closing and error.code in (StatusCode.CANCELLED, StatusCode.UNAVAILABLE)):
                self._error = error
            self._ended.set()
        self._registered.set()
        self._events.put(_END)

    def _read_loop(self) -> None:
        try:
            while not self._ended.is_set():
                result = self._client._read_frame(None)
                if result is None:
                    continue
                self._handle(result[0])
        except SwitchboardError as error:
            self._finish(error)
        except Exception as error:  # never die silently
            self._finish(SwitchboardError(StatusCode.INTERNAL, f"worker reader failed: {error!r}"))

    def _handle(self, frame: pb.Frame) -> None:
        kind = frame.WhichOneof("kind")
        if frame.call_id == 0:
            if kind == "ping":
                pong = pb.Frame()
                pong.pong.nonce = frame.ping.nonce
                self._send(pong)
            elif kind == "go_away" and frame.go_away.code != StatusCode.OK:
                self._finish(SwitchboardError(frame.go_away.code, frame.go_away.message))
            return
        if frame.call_id != _CALL_ID:
            return
        if kind == "end":
            self._finish(None if frame.end.code == StatusCode.OK
                         else SwitchboardError(frame.end.code, frame.end.message))
            return
        if kind != "message":
            return
        payload = frame.message.payload
        if payload.WhichOneof("body") != "worker_command":
            raise SwitchboardError(StatusCode.INTERNAL,
                                   f"server sent {payload.WhichOneof('body')} on the worker call")
        command = payload.worker_command
        which = command.WhichOneof("kind")
        if which == "heartbeat":
            if self._answer_heartbeats:
                ack = pb.Frame()
                ack.call_id = _CALL_ID
                ack.message.payload.worker_message.heartbeat_ack.nonce = command.heartbeat.nonce
                self._send(ack)
        elif which == "registered":
            self.registered = command.registered
            self._registered.set()
        elif which == "assignment":
            a = command.assignment
            self._events.put(Assignment(a.turn_id, a.session_id, a.prompt, a.deadline_ms,
                                        {label.key: label.value for label in a.session_labels}))
        elif which == "cancellation":
            c = command.cancellation
            with self._lock:
                self._cancelled.add(c.turn_id)
                if len(self._cancelled) > 1024:
                    self._cancelled.pop()
            self._events.put(Cancellation(c.turn_id, c.reason))
        # other kinds: from a newer server; ignored


def register(
    task_queue: str,
    capacity: int = 1,
    labels: Optional[Mapping[str, str]] = None,
    display_name: str = "",
    *,
    socket_path: Optional[str] = None,
    client_name: str = "switchboard-python-worker",
    connect_timeout: Optional[float] = 5.0,
) -> Worker:
    """Registers a worker with ``task_queue`` on a connection of its own; see :class:`Worker`."""
    return Worker.register(task_queue, capacity, labels, display_name, socket_path=socket_path,
                           client_name=client_name, connect_timeout=connect_timeout)
