"""A blocking client of the Switchboard broker (docs/PROTOCOL.md).

One :class:`Client` is one Unix-socket connection. Calls block until the
server answers. Any number of calls may be open at once on one connection,
from one thread (several prompt streams) or from several threads: frames are
multiplexed by call id. The client starts no threads: a thread waiting for a
frame of its call reads from the socket when no other thread does, and hands
frames of other calls to their queues.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from . import switchboard_pb2 as pb
from .errors import StatusCode, SwitchboardError
from .labels import validate_labels

if TYPE_CHECKING:  # pragma: no cover
    from .resume import ResumePolicy, _PromptResumer

PROTOCOL_VERSION = 1
DEFAULT_MAX_FRAME_SIZE = 4 * 1024 * 1024
#: Frames held for a call that nobody reads before that call is failed.
DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024
#: The server ends a call at its timeout; the client gives it this long to say so.
_DEADLINE_GRACE = 1.0

_CREATE = "/switchboard.v1.Sessions/CreateSession"
_GET = "/switchboard.v1.Sessions/GetSession"
_LIST = "/switchboard.v1.Sessions/ListSessions"
_CLOSE = "/switchboard.v1.Sessions/CloseSession"
_PROMPT = "/switchboard.v1.Prompts/Prompt"
_ATTACH = "/switchboard.v1.Prompts/Attach"
_LIST_TURNS = "/switchboard.v1.Sessions/ListTurns"
_SERVER_STATUS = "/switchboard.v1.Status/GetServerStatus"
_SESSION_STATUS = "/switchboard.v1.Status/GetSessionStatus"
_HEALTH = "/switchboard.v1.Health/Check"


def _is_connection_loss(error: SwitchboardError) -> bool:
    """The reader's own "connection closed ..." / "connection lost: ...", not a status from the server."""
    return error.code == StatusCode.UNAVAILABLE and error.message.startswith(("connection closed", "connection lost"))


def _text(value: str, field: str) -> str:
    """``value`` as the string field ``field``; raises INVALID_ARGUMENT for a NUL
    byte (libprotobuf-c would cut the string there) or a string that is not
    valid UTF-8 (lone surrogates, as ``surrogateescape`` makes), as the server
    would (docs/PROTOCOL.md, "Strings")."""
    if "\0" in value:
        raise SwitchboardError(StatusCode.INVALID_ARGUMENT, f"{field} contains a NUL byte")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SwitchboardError(StatusCode.INVALID_ARGUMENT, f"{field} is not valid UTF-8") from None
    return value


def _labels(target: Any, labels: Optional[Mapping[str, str]], field: str) -> None:
    for index, (key, value) in enumerate((labels or {}).items()):
        target.add(key=_text(key, f"{field}[{index}].key"), value=_text(value, f"{field}[{index}].value"))


def _check_strings(message: Any, path: str = "") -> None:
    """Raises INVALID_ARGUMENT naming the first string field of ``message`` that
    holds a NUL byte (field paths as the server names them: ``session_id``,
    ``labels[1].key``). Every string field is covered, whichever way it was set."""
    for field, value in message.ListFields():
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        values = list(value) if repeated else [value]
        for index, item in enumerate(values):
            name = f"{path}{field.name}[{index}]" if repeated else f"{path}{field.name}"
            if field.type == field.TYPE_STRING and "\0" in item:
                raise SwitchboardError(StatusCode.INVALID_ARGUMENT, f"{name} contains a NUL byte")
            if field.type == field.TYPE_MESSAGE:
                _check_strings(item, f"{name}.")


def _check_payload(payload: pb.Payload) -> None:
    body = payload.WhichOneof("body")
    if body is not None:
        _check_strings(getattr(payload, body))


def default_socket_path() -> str:
    """The CLI's rule: ``$SWITCHBOARD_SOCKET``, else
    ``$XDG_RUNTIME_DIR/switchboard.sock``, else ``/run/switchboard/switchboard.sock``."""
    explicit = os.environ.get("SWITCHBOARD_SOCKET")
    if explicit:
        return explicit
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "switchboard.sock")
    return "/run/switchboard/switchboard.sock"


# ---------------------------------------------------------------------------
# Prompt events


@dataclass(frozen=True)
class Accepted:
    """The turn is accepted; ``queue_position`` 0 runs now, N waits behind N turns."""

    turn_id: str
    queue_position: int


@dataclass(frozen=True)
class Started:
    """The turn began running."""

    turn_id: str


@dataclass(frozen=True)
class Output:
    """One chunk of output; sequence numbers are 1, 2, 3, ... without gaps."""

    sequence: int
    data: bytes


@dataclass(frozen=True)
class Finished:
    """The turn is over (the call's status follows)."""

    turn_id: str
    stop_reason: str
    chunks: int
    bytes: int
    duration_ms: int


@dataclass(frozen=True)
class Attached:
    """An attach call's first event: the turn it follows, its state
    (``pb.TURN_STATE_RUNNING``, ``pb.TURN_STATE_FINISHED``, ...) and the highest
    output sequence number produced so far."""

    turn_id: str
    state: int
    last_sequence: int


PromptEvent = Union[Accepted, Started, Output, Finished, Attached]


def _event_from(message: pb.PromptEvent) -> Optional[PromptEvent]:
    kind = message.WhichOneof("event")
    if kind == "accepted":
        return Accepted(message.accepted.turn_id, message.accepted.queue_position)
    if kind == "started":
        return Started(message.started.turn_id)
    if kind == "output":
        return Output(message.output.sequence, message.output.data)
    if kind == "finished":
        f = message.finished
        return Finished(f.turn_id, f.stop_reason, f.chunks, f.bytes, f.duration_ms)
    if kind == "attached":
        a = message.attached
        return Attached(a.turn_id, a.state, a.last_sequence)
    return None  # an event kind from a newer server


def _next_event(client: "Client", call: "_Call") -> Optional[PromptEvent]:
    """The call's next prompt event; None when it ended OK; raises its status otherwise."""
    while True:
        frame = client._next_message(call)
        if frame is None:
            return None
        payload = frame.message.payload
        if payload.WhichOneof("body") != "prompt_event":
            continue  # not ours to interpret (forward compatible)
        event = _event_from(payload.prompt_event)
        if event is not None:
            return event


# ---------------------------------------------------------------------------
# Calls


class _Call:
    """One open call's state; guarded by the client's lock."""

    __slots__ = ("id", "streaming", "nonce", "queue", "queued_bytes", "ended", "code", "message",
                 "end", "deadline", "cancel_sent", "cancel_wanted", "lost")

    def __init__(self, call_id: int, streaming: bool, deadline: Optional[float], nonce: int = 0) -> None:
        self.id = call_id
        self.streaming = streaming
        self.nonce = nonce
        self.queue: Deque[Tuple[pb.Frame, int]] = deque()
        self.queued_bytes = 0
        self.ended = False
        self.code = StatusCode.OK.value
        self.message = ""
        self.end: Optional[pb.CallEnd] = None
        self.deadline = deadline
        self.cancel_sent = False
        self.cancel_wanted = False
        #: Ended because the connection was lost (closed or reset), not by a status.
        self.lost = False

    def end_locally(self, code: int, message: str, owe_cancel: bool = True) -> None:
        if self.ended:
            return
        self.ended = True
        self.code = code
        self.message = message
        if owe_cancel and self.id > 0 and not self.cancel_sent:
            self.cancel_wanted = True


class PromptStream:
    """The events of one prompt call: :class:`Accepted`, :class:`Started`,
    :class:`Output`..., :class:`Finished`; or of one attach call:
    :class:`Attached`, :class:`Output`..., :class:`Finished`.

    Iteration ends normally when the turn ends OK and raises
    :class:`SwitchboardError` with the call's status otherwise (``CANCELLED``,
    ``DEADLINE_EXCEEDED``, ``FAILED_PRECONDITION`` for a busy session with
    ``reject_if_busy``, ``NOT_FOUND``, ...). :meth:`cancel` may be called from
    any thread. Use it as a context manager (or call :meth:`close`) so an
    abandoned stream cancels its turn.

    A prompt stream with a :class:`~switchboard_client.resume.ResumePolicy`
    re-attaches by itself after a lost connection and still yields the turn
    once: every chunk exactly once, in order (see :mod:`switchboard_client.resume`).
    """

    def __init__(self, client: "Client", call: _Call, resumer: Optional["_PromptResumer"] = None) -> None:
        # The current call and its connection: the prompt's, then a re-attach's.
        self._client = client
        self._call = call
        self._resumer = resumer
        self.finished: Optional[Finished] = None
        self._closed = False

    @property
    def call_id(self) -> int:
        return self._call.id

    def __iter__(self) -> Iterator[PromptEvent]:
        return self

    def __next__(self) -> PromptEvent:
        event = self._next_resumed() if self._resumer is not None else self._next_raw()
        if isinstance(event, Finished):
            self.finished = event
        return event

    def _next_raw(self) -> PromptEvent:
        """The current call's next event, as the server sent it."""
        try:
            event = _next_event(self._client, self._call)
        except SwitchboardError:
            self._done()
            raise
        if event is None:
            self._done()
            raise StopIteration
        return event

    def _next_resumed(self) -> PromptEvent:
        """The next event of the turn, across re-attaches, filtered against what
        was delivered (duplicates dropped, a gap is DATA_LOSS)."""
        resumer = self._resumer
        assert resumer is not None
        while True:
            if resumer.pending:
                return resumer.pending.popleft()
            if self._closed:
                raise StopIteration
            try:
                event = self._next_raw()
            except StopIteration:
                resumer.close_connection()
                raise
            except SwitchboardError as error:
                try:
                    self._client, self._call = resumer.reattach(error, self._call.lost)
                except SwitchboardError:
                    resumer.close_connection()
                    raise
                self._closed = False
                if resumer.cancelled.is_set():
                    self._client._cancel(self._call)  # cancel() raced the re-attach
                continue
            try:
                delivered = resumer.filter(event)
            except SwitchboardError:
                self.close()
                raise
            if delivered is not None:
                return delivered

    def output(self) -> Iterator[bytes]:
        """Only the output chunks' bytes."""
        for event in self:
            if isinstance(event, Output):
                yield event.data

    def text(self, encoding: str = "utf-8") -> Iterator[str]:
        """The output chunks decoded incrementally (a character split across chunks is kept whole)."""
        import codecs

        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        for data in self.output():
            piece = decoder.decode(data)
            if piece:
                yield piece
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def cancel(self) -> None:
        """Asks the server to cancel the turn; iteration then ends with CANCELLED.
        After a re-attach it cancels only the attach (the turn runs on)."""
        if self._resumer is not None:
            self._resumer.cancelled.set()
        self._client._cancel(self._call)

    def close(self) -> None:
        """Cancels the call when still open and forgets it (and closes the
        connection of a re-attach)."""
        if not self._closed:
            self._closed = True
            self._client._cancel(self._call)
            self._client._forget(self._call)
        if self._resumer is not None:
            self._resumer.close_connection()

    def _done(self) -> None:
        """The call ended: nothing more will arrive."""
        if not self._closed:
            self._closed = True
            self._client._forget(self._call)

    def __enter__(self) -> "PromptStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Never take locks here (the garbage collector may run inside a locked
        # region of this very thread): the client cancels it at its next call.
        if not getattr(self, "_closed", True):
            self._client._abandoned.append(self._call)


# ---------------------------------------------------------------------------
# The client


class Client:
    """A connection to a Switchboard server. Create it with :meth:`connect`."""

    def __init__(self, sock: socket.socket, *, max_frame_size: int, call_timeout: Optional[float],
                 recv_timeout: Optional[float], max_buffered_bytes: int) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._write_lock = threading.Lock()
        self._reading = False
        self._last_call_id = 0
        self._last_nonce = 0
        self._calls: Dict[int, _Call] = {}
        self._pings: Dict[int, _Call] = {}
        self._dead: Optional[SwitchboardError] = None
        self._lost = False  # _dead is a lost connection
        self._draining = False
        self._closed = False
        self._buffer = bytearray()
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        # Ids of prompt streams dropped while open (appended from __del__ without the lock).
        self._abandoned: Deque[_Call] = deque()
        self._calls_owing_cancel: List[_Call] = []
        self._max_frame_size = max_frame_size
        self._max_buffered_bytes = max_buffered_bytes
        self.call_timeout = call_timeout
        self.recv_timeout = recv_timeout
        self.welcome: pb.Welcome = pb.Welcome()
        self._server_max_frame_size = DEFAULT_MAX_FRAME_SIZE
        #: The default of :meth:`prompt`'s ``resume`` (None: off).
        self.resume: Optional["ResumePolicy"] = None
        # What :meth:`connect` was given, for a prompt stream that connects again.
        self._connect_options: Dict[str, Any] = {}

    # -- connecting ---------------------------------------------------------

    @classmethod
    def connect(
        cls,
        socket_path: Optional[str] = None,
        *,
        client_name: str = "switchboard-python",
        connect_timeout: Optional[float] = 5.0,
        call_timeout: Optional[float] = None,
        recv_timeout: Optional[float] = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        versions: Tuple[int, int] = (PROTOCOL_VERSION, PROTOCOL_VERSION),
        resume: Optional["ResumePolicy"] = None,
    ) -> "Client":
        """Connects to ``socket_path`` (default: :func:`default_socket_path`) and
        performs the handshake.

        ``call_timeout`` (seconds) is the deadline of every call that does not
        pass its own; ``recv_timeout`` bounds each wait for a frame of a call.
        ``resume``: the default :class:`~switchboard_client.resume.ResumePolicy`
        of this client's prompts (None: a lost connection fails the stream).
        Raises :class:`SwitchboardError`: ``UNAVAILABLE`` when no server
        listens there, the server's GoAway code when it refuses the handshake
        (``FAILED_PRECONDITION`` for an unsupported version).
        """
        path = socket_path or default_socket_path()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(connect_timeout)
            try:
                sock.connect(path)
            except (FileNotFoundError, ConnectionRefusedError) as error:
                raise SwitchboardError(StatusCode.UNAVAILABLE, f"no server at {path} ({error.strerror})") from None
            except OSError as error:
                raise SwitchboardError(StatusCode.UNAVAILABLE, f"cannot connect to {path}: {error}") from None
            sock.settimeout(None)
            client = cls(sock, max_frame_size=max_frame_size, call_timeout=call_timeout,
                         recv_timeout=recv_timeout, max_buffered_bytes=max_buffered_bytes)
            client.resume = resume
            client._connect_options = dict(
                socket_path=path, client_name=client_name, connect_timeout=connect_timeout,
                call_timeout=call_timeout, recv_timeout=recv_timeout, max_frame_size=max_frame_size,
                max_buffered_bytes=max_buffered_bytes, versions=versions,
            )
            deadline = None if connect_timeout is None else time.monotonic() + connect_timeout
            client._handshake(path, client_name, versions, deadline)
            return client
        except BaseException:
            sock.close()
            raise

    def _handshake(self, path: str, client_name: str, versions: Tuple[int, int], deadline: Optional[float]) -> None:
        frame = pb.Frame()
        frame.hello.min_version, frame.hello.max_version = versions
        frame.hello.client_name = _text(client_name, "client_name")
        frame.hello.max_frame_size = self._max_frame_size
        try:
            self._write(frame)
        except SwitchboardError:
            pass  # a refusing server may already have said why: read it
        try:
            answer = self._read_frame(deadline)
        except SwitchboardError as error:
            raise SwitchboardError(error.code, f"handshake with {path} failed: {error.message}") from None
        if answer is None:
            raise SwitchboardError(StatusCode.UNAVAILABLE, f"cannot connect to {path}: no Welcome in time")
        kind = answer[0].WhichOneof("kind")
        if kind == "welcome":
            self.welcome = answer[0].welcome
            self._server_max_frame_size = self.welcome.max_frame_size or DEFAULT_MAX_FRAME_SIZE
            return
        if kind == "go_away":
            go_away = answer[0].go_away
            raise SwitchboardError(go_away.code or StatusCode.UNAVAILABLE, go_away.message)
        raise SwitchboardError(StatusCode.INTERNAL, f"handshake with {path}: expected Welcome, got {kind}")

    def close(self) -> None:
        """Closes the connection; open calls end with CANCELLED."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._mark_dead(SwitchboardError(StatusCode.CANCELLED, "client closed"))
        self._sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sessions -----------------------------------------------------------

    def create_session(
        self,
        session_id: str = "",
        *,
        labels: Optional[Mapping[str, str]] = None,
        backend: str = "",
        idle_timeout_ms: int = 0,
        turn_deadline_ms: int = 0,
        stall_timeout_ms: int = 0,
        max_queued_prompts: int = 0,
        timeout: Optional[float] = None,
    ) -> pb.Session:
        """Creates a session (empty ``session_id``: the server chooses one).
        Settings left at 0/"" take the server's defaults. ``labels`` that break
        the label rules (:mod:`switchboard_client.labels`) raise
        ``INVALID_ARGUMENT`` before anything is sent."""
        request = pb.Payload()
        r = request.create_session_request
        r.session_id = _text(session_id, "session_id")
        _labels(r.labels, labels, "labels")
        # Encoding first (as the server, which checks strings when it decodes), then the label rules.
        validate_labels(labels or {})
        if backend or idle_timeout_ms or turn_deadline_ms or stall_timeout_ms or max_queued_prompts:
            r.settings.backend = _text(backend, "settings.backend")
            r.settings.idle_timeout_ms = idle_timeout_ms
            r.settings.turn_deadline_ms = turn_deadline_ms
            r.settings.stall_timeout_ms = stall_timeout_ms
            r.settings.max_queued_prompts = max_queued_prompts
        return self._unary(_CREATE, request, "session", timeout).session

    def get_session(self, session_id: str, *, timeout: Optional[float] = None) -> pb.Session:
        request = pb.Payload()
        request.get_session_request.session_id = _text(session_id, "session_id")
        return self._unary(_GET, request, "session", timeout).session

    def list_sessions(
        self,
        *,
        labels: Optional[Mapping[str, str]] = None,
        page_size: int = 0,
        page_token: str = "",
        timeout: Optional[float] = None,
    ) -> pb.ListSessionsResponse:
        """One page of sessions carrying all ``labels``, sorted by id."""
        request = pb.Payload()
        r = request.list_sessions_request
        _labels(r.label_selector, labels, "label_selector")
        r.page_size = page_size
        r.page_token = _text(page_token, "page_token")
        return self._unary(_LIST, request, "list_sessions_response", timeout).list_sessions_response

    def list_turns(
        self,
        session_id: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        include_output: bool = False,
        timeout: Optional[float] = None,
    ) -> pb.ListTurnsResponse:
        """One page of a session's kept turns, oldest first (``page_size`` 0: the
        server's default, 20; at most 100). Pass ``next_page_token`` back as
        ``page_token`` for the next page. With ``include_output`` every turn
        carries its whole prompt and kept output."""
        request = pb.Payload()
        r = request.list_turns_request
        r.session_id = _text(session_id, "session_id")
        r.page_size = page_size
        r.page_token = _text(page_token, "page_token")
        r.include_output = include_output
        return self._unary(_LIST_TURNS, request, "list_turns_response", timeout).list_turns_response

    def iter_turns(self, session_id: str, *, include_output: bool = False,
                   page_size: int = 0) -> Iterator[pb.TurnRecord]:
        """Every kept turn of a session, oldest first, page after page."""
        token = ""
        while True:
            page = self.list_turns(session_id, page_size=page_size, page_token=token,
                                   include_output=include_output)
            yield from page.turns
            if page.next_page_token and page.next_page_token == token:
                raise SwitchboardError(StatusCode.INTERNAL, "ListTurns returned the same page token again")
            token = page.next_page_token
            if not token:
                return

    def iter_sessions(self, *, labels: Optional[Mapping[str, str]] = None,
                      page_size: int = 0) -> Iterator[pb.Session]:
        """Every session, page after page."""
        token = ""
        while True:
            page = self.list_sessions(labels=labels, page_size=page_size, page_token=token)
            yield from page.sessions
            token = page.next_page_token
            if not token:
                return

    def close_session(self, session_id: str, reason: str = "", *,
                      timeout: Optional[float] = None) -> pb.CloseSessionResponse:
        """Closes a session: its running turn is cancelled, its queued prompts fail."""
        request = pb.Payload()
        request.close_session_request.session_id = _text(session_id, "session_id")
        request.close_session_request.reason = _text(reason, "reason")
        return self._unary(_CLOSE, request, "close_session_response", timeout).close_session_response

    # -- status ---------------------------------------------------------------

    def server_status(self, include_sessions: bool = False, *, timeout: Optional[float] = None) -> pb.ServerStatus:
        request = pb.Payload()
        request.server_status_request.include_sessions = include_sessions
        return self._unary(_SERVER_STATUS, request, "server_status", timeout).server_status

    def session_status(self, session_id: str, *, timeout: Optional[float] = None) -> pb.SessionStatus:
        request = pb.Payload()
        request.session_status_request.session_id = _text(session_id, "session_id")
        return self._unary(_SESSION_STATUS, request, "session_status", timeout).session_status

    def health(self, *, timeout: Optional[float] = None) -> int:
        """``pb.SERVING_STATUS_SERVING``, or ``pb.SERVING_STATUS_NOT_SERVING`` while draining."""
        request = pb.Payload()
        request.health_check_request.SetInParent()
        return self._unary(_HEALTH, request, "health_check_response", timeout).health_check_response.status

    def ping(self, *, timeout: Optional[float] = None) -> None:
        """One Ping/Pong round trip."""
        with self._lock:
            self._check_usable()
            self._last_nonce += 1
            call = _Call(0, False, self._deadline(timeout, grace=0.0), nonce=self._last_nonce)
            self._pings[call.nonce] = call
        frame = pb.Frame()
        frame.ping.nonce = call.nonce
        try:
            self._write(frame)
        except SwitchboardError:
            pass  # the reader finds out why
        try:
            self._wait_end(call)
        finally:
            with self._lock:
                self._pings.pop(call.nonce, None)

    # -- prompts --------------------------------------------------------------

    def prompt(self, session_id: str, prompt: str, *, reject_if_busy: bool = False,
               timeout: Optional[float] = None, cancel_on_disconnect: bool = False,
               resume: Union["ResumePolicy", bool, None] = None,
               on_reattach: Optional[Callable[[Attached], None]] = None) -> PromptStream:
        """Sends a prompt and returns the stream of its events.

        ``reject_if_busy``: fail at once with FAILED_PRECONDITION when a turn is
        running or queued, instead of waiting in the session's queue.
        ``timeout`` (seconds, queueing included; default: the client's
        ``call_timeout``) is sent to the server as the call's deadline; with
        ``resume`` it bounds the whole stream, re-attaches included.
        ``cancel_on_disconnect``: cancel the turn when this connection is lost;
        by default it runs on and :meth:`attach` can follow it again.
        ``resume``: a :class:`~switchboard_client.resume.ResumePolicy` (``True``:
        the default policy; ``False``: off; None: the client's ``resume``). With
        a policy, a connection lost after :class:`Accepted` is survived: the
        stream connects again and attaches after the last chunk it delivered,
        and the caller sees the turn once (see :mod:`switchboard_client.resume`).
        A connection lost before :class:`Accepted` fails with UNAVAILABLE: the
        prompt is never sent twice. ``on_reattach`` is called (in the iterating
        thread) with the :class:`Attached` event of each re-attach (it is not
        yielded). With ``cancel_on_disconnect`` too, the loss cancels the turn
        and the re-attach ends with its CANCELLED.
        """
        from .resume import ResumePolicy, _PromptResumer

        policy: Optional[ResumePolicy]
        if resume is None:
            policy = self.resume
        elif resume is True:
            policy = ResumePolicy()
        elif resume is False:
            policy = None
        elif isinstance(resume, ResumePolicy):
            policy = resume
        else:
            raise SwitchboardError(StatusCode.INVALID_ARGUMENT,
                                   f"resume must be a ResumePolicy, a bool or None, not {type(resume).__name__}")
        request = pb.Payload()
        request.prompt_request.session_id = _text(session_id, "session_id")
        request.prompt_request.prompt = _text(prompt, "prompt")
        request.prompt_request.when_busy = pb.BUSY_POLICY_REJECT if reject_if_busy else pb.BUSY_POLICY_WAIT
        request.prompt_request.cancel_on_disconnect = cancel_on_disconnect
        call = self._start(_PROMPT, request, timeout, streaming=True)
        resumer = None
        if policy is not None:
            t = self.call_timeout if timeout is None else timeout
            deadline = None if t is None else time.monotonic() + t
            resumer = _PromptResumer(self, session_id, policy, deadline, on_reattach)
        return PromptStream(self, call, resumer)

    def attach(self, session_id: str, turn_id: str = "", after_sequence: int = 0, *,
               timeout: Optional[float] = None) -> PromptStream:
        """Follows a turn: replays its kept output after chunk ``after_sequence``,
        then streams it live to its end.

        Empty ``turn_id``: the session's running turn, else its most recent one.
        The stream yields :class:`Attached` first, then :class:`Output` with
        sequence numbers above ``after_sequence``, then :class:`Finished`;
        iteration then ends as the turn did (raising its status otherwise:
        ``ABORTED`` for a turn a server restart interrupted, ``OUT_OF_RANGE``
        when retention dropped the output, ``NOT_FOUND`` for an unknown session
        or turn). A client whose connection was lost resumes a prompt with
        ``attach(session_id, turn_id, last_sequence_it_has)``.
        """
        request = pb.Payload()
        r = request.attach_request
        r.session_id = _text(session_id, "session_id")
        r.turn_id = _text(turn_id, "turn_id")
        r.after_sequence = after_sequence
        return PromptStream(self, self._start(_ATTACH, request, timeout, streaming=True))

    # -- internals: calls -----------------------------------------------------

    def _deadline(self, timeout: Optional[float], grace: float = _DEADLINE_GRACE) -> Optional[float]:
        t = self.call_timeout if timeout is None else timeout
        return None if t is None else time.monotonic() + t + grace

    def _check_usable(self) -> None:
        if self._dead is not None:
            raise SwitchboardError(self._dead.code, self._dead.message)
        if self._draining:
            raise SwitchboardError(StatusCode.UNAVAILABLE, "server is draining; connect again to make new calls")

    def _start(self, method: str, payload: pb.Payload, timeout: Optional[float], streaming: bool) -> _Call:
        t = self.call_timeout if timeout is None else timeout
        if t is not None and t <= 0:
            raise SwitchboardError(StatusCode.DEADLINE_EXCEEDED, f"deadline exceeded (timeout {t} s)")
        _check_payload(payload)
        frame = pb.Frame()
        frame.call_id = 2**64 - 1  # largest encoding, for the size check
        frame.start.method = method
        frame.start.payload.CopyFrom(payload)
        frame.start.half_close = True
        frame.start.timeout_ms = 0 if t is None else max(1, int(t * 1000))
        size = frame.ByteSize()
        if size > self._server_max_frame_size:
            raise SwitchboardError(
                StatusCode.RESOURCE_EXHAUSTED,
                f"request too large: its frame is {size} bytes, the server accepts at most {self._server_max_frame_size}",
            )
        if self._abandoned:
            self._flush_cancels()
        # The id is taken and the frame written under the write lock, so ids reach
        # the server in increasing order.
        with self._write_lock:
            with self._lock:
                self._check_usable()
                self._last_call_id += 1
                call = _Call(self._last_call_id, streaming, self._deadline(timeout))
                self._calls[call.id] = call
            frame.call_id = call.id
            try:
                self._write_locked(frame)
            except SwitchboardError:
                pass  # the server may have said why before closing: the reader finds it
        return call

    def _unary(self, method: str, payload: pb.Payload, response_case: str, timeout: Optional[float]) -> pb.Payload:
        call = self._start(method, payload, timeout, streaming=False)
        try:
            end = self._wait_end(call)
        finally:
            self._forget(call)
        if end is None or end.payload.WhichOneof("body") != response_case:
            raise SwitchboardError(StatusCode.INTERNAL, f"unexpected response to {method}")
        return end.payload

    def _wait_end(self, call: _Call) -> Optional[pb.CallEnd]:
        with self._lock:
            while not call.ended:
                self._wait_for(call)
                call.queue.clear()
                call.queued_bytes = 0
        self._flush_cancels()
        if call.code != StatusCode.OK:
            raise SwitchboardError(call.code, call.message)
        return call.end

    def _next_message(self, call: _Call) -> Optional[pb.Frame]:
        """The call's next message frame; None when it ended OK; raises otherwise."""
        with self._lock:
            self._wait_for(call)
            if call.queue:
                frame, size = call.queue.popleft()
                call.queued_bytes -= size
                return frame
        self._flush_cancels()
        if call.code != StatusCode.OK:
            raise SwitchboardError(call.code, call.message)
        return None

    def _cancel(self, call: _Call) -> None:
        with self._lock:
            if call.ended or call.cancel_sent or self._dead is not None:
                return
            call.cancel_sent = True
        self._send_cancel(call.id)

    def _forget(self, call: _Call) -> None:
        self._flush_cancels()
        with self._lock:
            self._calls.pop(call.id, None)

    def _send_cancel(self, call_id: int) -> None:
        frame = pb.Frame()
        frame.call_id = call_id
        frame.cancel.reason = "cancelled by the client"
        try:
            self._write(frame)
        except SwitchboardError:
            pass

    def _flush_cancels(self) -> None:
        with self._lock:
            while self._abandoned:
                c = self._abandoned.popleft()
                self._calls.pop(c.id, None)
                if not c.ended and not c.cancel_sent:
                    c.cancel_wanted = True
                    self._calls_owing_cancel.append(c)
            owed = [c for c in list(self._calls.values()) + self._calls_owing_cancel
                    if c.cancel_wanted and not c.cancel_sent]
            self._calls_owing_cancel = []
            for c in owed:
                c.cancel_sent = True
                c.cancel_wanted = False
            if self._dead is not None:
                return
        for c in owed:
            self._send_cancel(c.id)

    def _wait_for(self, call: _Call) -> None:
        """Waits (lock held) until ``call`` has a queued message or has ended,
        reading from the socket when no other thread does."""
        recv_deadline = None if self.recv_timeout is None else time.monotonic() + self.recv_timeout
        while True:
            if call.queue or call.ended:
                return
            if self._dead is not None:
                if not call.ended:
                    call.lost = self._lost
                call.end_locally(self._dead.code, self._dead.message, owe_cancel=False)
                return
            limits = [d for d in (call.deadline, recv_deadline) if d is not None]
            limit = min(limits) if limits else None
            if limit is not None and time.monotonic() >= limit:
                if limit == call.deadline:
                    call.end_locally(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded: no end from the server in time")
                else:
                    call.end_locally(StatusCode.DEADLINE_EXCEEDED,
                                     f"no answer from the server within {self.recv_timeout} s")
                return
            if not self._reading:
                self._reading = True
                self._lock.release()
                try:
                    try:
                        result: Union[Tuple[pb.Frame, int], None, SwitchboardError] = self._read_frame(limit)
                    except SwitchboardError as error:
                        result = error
                    if isinstance(result, tuple) and result[0].call_id == 0 and result[0].WhichOneof("kind") == "ping":
                        pong = pb.Frame()
                        pong.pong.nonce = result[0].ping.nonce
                        try:
                            self._write(pong)
                        except SwitchboardError:
                            pass
                        result = None
                finally:
                    self._lock.acquire()
                    self._reading = False
                if isinstance(result, SwitchboardError):
                    self._mark_dead(result, lost=_is_connection_loss(result))
                elif result is not None:
                    self._dispatch(*result)
                self._cond.notify_all()
            else:
                self._cond.wait(None if limit is None else max(0.0, limit - time.monotonic()))

    def _dispatch(self, frame: pb.Frame, size: int) -> None:
        """Hands a frame to its call (lock held)."""
        kind = frame.WhichOneof("kind")
        if frame.call_id == 0:
            if kind == "go_away":
                if frame.go_away.code == StatusCode.OK:
                    self._draining = True
                    for c in self._calls.values():
                        if c.id > frame.go_away.last_call_id:
                            c.end_locally(StatusCode.UNAVAILABLE, "server is draining; the call was not taken",
                                          owe_cancel=False)
                else:
                    self._mark_dead(SwitchboardError(frame.go_away.code, frame.go_away.message))
            elif kind == "pong":
                ping = self._pings.get(frame.pong.nonce)
                if ping is not None:
                    ping.ended = True
            return
        call = self._calls.get(frame.call_id)
        if call is None or call.ended:
            return
        if kind == "end":
            call.ended = True
            call.code = frame.end.code
            call.message = frame.end.message
            call.end = frame.end
        elif kind == "message" and call.streaming:
            if call.queued_bytes + size > self._max_buffered_bytes:
                call.queue.clear()
                call.queued_bytes = 0
                call.end_locally(StatusCode.RESOURCE_EXHAUSTED,
                                 f"more than {self._max_buffered_bytes} bytes of this call's messages were waiting to be read")
            else:
                call.queue.append((frame, size))
                call.queued_bytes += size

    def _mark_dead(self, error: SwitchboardError, lost: bool = False) -> None:
        """The connection is over (lock held): every open call ends with ``error``
        (``lost``: the connection closed or failed, rather than a GoAway, a
        protocol error or :meth:`close`)."""
        if self._dead is None:
            self._dead = error
            self._lost = lost
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for c in list(self._calls.values()) + list(self._pings.values()):
            if not c.ended:
                c.lost = self._lost
            c.end_locally(self._dead.code, self._dead.message, owe_cancel=False)
        self._cond.notify_all()

    # -- internals: framing ---------------------------------------------------

    def _write(self, frame: pb.Frame) -> None:
        with self._write_lock:
            self._write_locked(frame)

    def _write_locked(self, frame: pb.Frame) -> None:
        body = frame.SerializeToString()
        self._send_bytes(struct.pack(">I", len(body)) + body)

    def _send_bytes(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as error:
            raise SwitchboardError(StatusCode.UNAVAILABLE, f"cannot send: {error}") from None

    def _send_raw(self, data: bytes) -> None:
        """Testing hook: writes bytes as they are, without framing."""
        with self._write_lock:
            self._send_bytes(data)

    def _read_frame(self, deadline: Optional[float]) -> Optional[Tuple[pb.Frame, int]]:
        """Reads one frame (reader role, lock not held); None at the deadline.

        Partial progress stays in the buffer, so a timeout loses nothing. The
        length is checked against our maximum before the body is read."""
        while True:
            if len(self._buffer) >= 4:
                (length,) = struct.unpack_from(">I", self._buffer)
                if length > self._max_frame_size:
                    raise SwitchboardError(
                        StatusCode.RESOURCE_EXHAUSTED,
                        f"server sent a frame of {length} bytes, above this client's maximum of {self._max_frame_size}",
                    )
                if len(self._buffer) >= 4 + length:
                    body = bytes(self._buffer[4:4 + length])
                    del self._buffer[:4 + length]
                    frame = pb.Frame()
                    try:
                        frame.ParseFromString(body)
                    except Exception:
                        raise SwitchboardError(StatusCode.INTERNAL,
                                               f"server sent a frame that does not decode ({length} bytes)") from None
                    if frame.WhichOneof("kind") is None:
                        raise SwitchboardError(StatusCode.INTERNAL, "server sent a frame without kind")
                    return frame, length
                want = 4 + length - len(self._buffer)
            else:
                want = 4 - len(self._buffer)
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return None
            try:
                ready = self._poller.poll(None if timeout is None else max(1, int(timeout * 1000)))
            except (OSError, ValueError) as error:
                raise SwitchboardError(StatusCode.UNAVAILABLE, f"connection lost: {error}") from None
            if not ready:
                continue  # re-checks the deadline
            try:
                chunk = self._sock.recv(min(want, 1 << 16))
            except ConnectionResetError:
                chunk = b""
            except OSError as error:
                raise SwitchboardError(StatusCode.UNAVAILABLE, f"connection lost: {error}") from None
            if not chunk:
                raise SwitchboardError(StatusCode.UNAVAILABLE, "connection closed by the server")
            self._buffer += chunk
