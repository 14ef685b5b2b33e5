"""Prompt streams that re-attach by themselves after a lost connection
(``resume=ResumePolicy(...)``): a real server behind a cutting proxy, and a
scripted fake server for what a correct server rarely does (duplicates, gaps,
"turn is ending", a server that keeps dropping the stream)."""
from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time
from collections import Counter
from typing import Callable, Iterator, List, Optional, Tuple, Union

import pytest

from switchboard_client import (
    Accepted,
    Attached,
    Client,
    Finished,
    Output,
    PromptEvent,
    ResumePolicy,
    Started,
    StatusCode,
    SwitchboardError,
    switchboard_pb2 as pb,
)

from conftest import Server
from cutting_proxy import CutPoint, CuttingProxy, complete_frames

TOKENS = 50
#: Short backoffs: a cut test re-attaches at once.
POLICY = ResumePolicy(initial_backoff=0.005, max_backoff=0.05, total_budget=10.0)


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(1, n + 1))


@pytest.fixture(scope="module")
def paced_server(tmp_socket_dir: str) -> Iterator[Server]:
    """Echo backend, 1 ms between tokens: most cut turns are still running when the
    client re-attaches, some have finished (both paths are taken)."""
    s = Server(tmp_socket_dir, "paced", ["--echo-delay", "1ms"])
    yield s
    s.stop()


def event_kind(body: bytes) -> Optional[str]:
    frame = pb.Frame()
    frame.ParseFromString(body)
    if frame.WhichOneof("kind") != "message" or frame.message.payload.WhichOneof("body") != "prompt_event":
        return None
    return frame.message.payload.prompt_event.WhichOneof("event")


def prompt_through(proxy: CuttingProxy, session_id: str, prompt: str,
                   attached: List[Attached]) -> Tuple[str, Union[SwitchboardError, None], List[PromptEvent]]:
    """Sends ``prompt`` through ``proxy`` with re-attach; ("connect" | "stream" | "ok", error, events)."""
    try:
        client = Client.connect(proxy.socket_path, client_name="python-tests-resume", resume=POLICY)
    except SwitchboardError as error:
        return "connect", error, []
    events: List[PromptEvent] = []
    try:
        with client:
            with client.prompt(session_id, prompt, on_reattach=attached.append) as stream:
                for event in stream:
                    events.append(event)
    except SwitchboardError as error:
        return "stream", error, events
    return "ok", None, events


def eventually(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# Frames from the server on the prompt's connection: Welcome (0), accepted (1),
# started (2), one per token (3 ... TOKENS + 2), finished (TOKENS + 3), CallEnd (TOKENS + 4).
LAST_FRAME = TOKENS + 4
FORCED = [
    CutPoint(0, 0),  # nothing at all: the handshake fails
    CutPoint(0, 7),  # inside Welcome
    CutPoint(1, 0),  # after Welcome, before accepted
    CutPoint(1, 5),  # inside accepted
    CutPoint(2, 0),  # right after accepted
    CutPoint(2, 3),  # inside started
    CutPoint(3, 2),  # inside the first chunk's length prefix
    CutPoint(TOKENS + 2, 9),  # inside the last chunk
    CutPoint(TOKENS + 3, 0),  # after the last chunk, before finished
    CutPoint(TOKENS + 4, 0),  # after finished, before the CallEnd
    CutPoint(TOKENS + 4, 3),  # inside the CallEnd
]
ITERATIONS = 30


def test_cut_points_reattach_and_assemble_the_whole_turn(paced_server: Server, tmp_socket_dir: str,
                                                         session_id: str) -> None:
    """30 cut points (the forced ones, then seeded random ones, at frame boundaries
    and inside frames): a cut after accepted re-attaches and the caller gets exactly
    the turn (accepted, started, chunks 1...N once each, finished, OK); a cut before
    accepted fails without sending the prompt again; a cut handshake fails the connect."""
    seed = int(os.environ.get("SWITCHBOARD_CUT_SEED") or random.randrange(2**63))
    print(f"test_resume: cut-point seed {seed} (SWITCHBOARD_CUT_SEED={seed} replays this run)")
    rng = random.Random(seed)
    prompt = words(TOKENS)
    tally: Counter = Counter()
    with paced_server.connect() as direct:
        for iteration in range(ITERATIONS):
            if iteration < len(FORCED):
                cut = FORCED[iteration]
            else:
                cut = CutPoint(rng.randrange(LAST_FRAME + 1), 0 if rng.randrange(4) == 0 else rng.randrange(2**64))
            session = f"{session_id}-{iteration}"[:128]
            direct.create_session(session)
            proxy = CuttingProxy(paced_server.socket_path, tmp_socket_dir, cut)
            try:
                attached: List[Attached] = []
                outcome, error, events = prompt_through(proxy, session, prompt, attached)
                report = proxy.first_connection_report()
                connections = proxy.connections
            finally:
                proxy.stop()
            context = f"iteration {iteration}, seed {seed}, {cut}, offset {report.offset} of {report.frame_size}"
            assert report.cut, f"the cut point was never reached: {context}"
            tally["at a frame boundary" if report.offset == 0 else "inside a frame"] += 1
            kinds = [event_kind(body) for body in complete_frames(report.delivered)]

            if not kinds:
                tally["during the handshake"] += 1
                assert outcome == "connect", f"a cut handshake must fail the connect: {outcome} {error}, {context}"
                assert error is not None and error.code == StatusCode.UNAVAILABLE, context
                assert list(direct.session_status(session).turns) == [], f"no prompt may be sent: {context}"
            elif "accepted" not in kinds:
                tally["before accepted arrived"] += 1
                assert outcome == "stream", f"a prompt cut before accepted must fail: {outcome}, {context}"
                assert error is not None and error.code == StatusCode.UNAVAILABLE, f"{error}, {context}"
                assert "not sent again" in error.message, f"{error}, {context}"
                assert events == [], context
                assert connections == 1, f"nothing may be re-sent, not even a connection: {context}"
                assert attached == [], context

                def one_finished_turn() -> bool:
                    turns = direct.session_status(session).turns
                    return len(turns) == 1 and turns[0].state == pb.TURN_STATE_FINISHED

                # The server got the prompt once and runs it to its end.
                assert eventually(one_finished_turn), f"the session must hold exactly the one turn: {context}"
            else:
                if kinds.count("output") == TOKENS:
                    tally["after the last chunk"] += 1
                assert outcome == "ok", f"a prompt cut after accepted must re-attach and complete: {error}, {context}"
                assert len(events) == TOKENS + 3, f"{[type(e).__name__ for e in events]}, {context}"
                accepted, started, *chunks, finished = events
                assert isinstance(accepted, Accepted), context
                assert started == Started(accepted.turn_id), context
                assert all(isinstance(c, Output) for c in chunks), context
                assert [c.sequence for c in chunks] == list(range(1, TOKENS + 1)), context  # type: ignore[union-attr]
                assert b"".join(c.data for c in chunks).decode() == prompt, context  # type: ignore[union-attr]
                assert isinstance(finished, Finished) and finished.turn_id == accepted.turn_id, context
                assert finished.chunks == TOKENS, context
                assert attached, f"the stream must have re-attached: {context}"
                assert all(a.turn_id == accepted.turn_id for a in attached), context
                assert connections >= 2, context
                for a in attached:
                    tally["re-attached to a finished turn" if a.state == pb.TURN_STATE_FINISHED
                          else "re-attached to a live turn"] += 1
                turns = direct.session_status(session).turns
                assert len(turns) == 1, f"the prompt must not be re-sent: {context}"
            direct.close_session(session)
    print(f"test_resume: cut points covered: {sorted(tally.items())}")
    for category in ("during the handshake", "before accepted arrived", "after the last chunk",
                     "at a frame boundary", "inside a frame"):
        assert tally[category] > 0, f"no cut point {category} (seed {seed})"


def test_resume_is_off_by_default(paced_server: Server, tmp_socket_dir: str, session_id: str) -> None:
    with paced_server.connect() as direct:
        direct.create_session(session_id)
        proxy = CuttingProxy(paced_server.socket_path, tmp_socket_dir, CutPoint(10, 0))
        try:
            with Client.connect(proxy.socket_path) as client:
                events: List[PromptEvent] = []
                with pytest.raises(SwitchboardError) as info:
                    for event in client.prompt(session_id, words(TOKENS)):
                        events.append(event)
            assert info.value.code == StatusCode.UNAVAILABLE
            assert info.value.message.startswith("connection closed")
            assert [e.sequence for e in events if isinstance(e, Output)] == list(range(1, 8))
            assert proxy.connections == 1
        finally:
            proxy.stop()


# --- a scripted fake server ------------------------------------------------------

TURN = "t-000000000001"


def framed(frame: pb.Frame) -> bytes:
    body = frame.SerializeToString()
    return struct.pack(">I", len(body)) + body


def event(call_id: int, kind: str, **fields: object) -> bytes:
    frame = pb.Frame()
    frame.call_id = call_id
    target = getattr(frame.message.payload.prompt_event, kind)
    target.SetInParent()
    for key, value in fields.items():
        setattr(target, key, value)
    return framed(frame)


def output(call_id: int, sequence: int) -> bytes:
    return event(call_id, "output", sequence=sequence, data=f"c{sequence} ".encode())


def end(call_id: int, code: int = 0, message: str = "") -> bytes:
    frame = pb.Frame()
    frame.call_id = call_id
    frame.end.code = code
    frame.end.message = message
    return framed(frame)


def finished(call_id: int, chunks: int) -> bytes:
    return event(call_id, "finished", turn_id=TURN, stop_reason="end_turn", chunks=chunks)


def attached(call_id: int, state: int, last: int) -> bytes:
    return event(call_id, "attached", turn_id=TURN, state=state, last_sequence=last)


#: A connection's script: given the CallStart, the bytes to send, and whether to
#: cut the connection after them (optionally after a silence of a few seconds, a
#: third element) or keep it until the client closes it (a Cancel frame is
#: answered with CANCELLED).
Script = Callable[[pb.Frame], Tuple]


class ScriptedServer:
    """Serves one script per connection, in order; records each CallStart."""

    def __init__(self, path: str, scripts: List[Script]) -> None:
        self.starts: List[pb.Frame] = []
        self._scripts = scripts
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @staticmethod
    def _read_frame(conn: socket.socket) -> pb.Frame:
        header = conn.recv(4, socket.MSG_WAITALL)
        if len(header) < 4:
            raise EOFError
        body = conn.recv(struct.unpack(">I", header)[0], socket.MSG_WAITALL)
        frame = pb.Frame()
        frame.ParseFromString(body)
        return frame

    def _serve(self) -> None:
        for script in self._scripts:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                try:
                    self._read_frame(conn)  # Hello
                    welcome = pb.Frame()
                    welcome.welcome.version = 1
                    welcome.welcome.server_name = "scripted"
                    welcome.welcome.max_frame_size = 65536
                    welcome.welcome.max_concurrent_calls = 8
                    conn.sendall(framed(welcome))
                    start = self._read_frame(conn)
                    self.starts.append(start)
                    data, cut, *silence = script(start)
                    conn.sendall(data)
                    if cut:
                        if silence:
                            time.sleep(silence[0])
                        conn.shutdown(socket.SHUT_RDWR)
                        continue
                    while True:  # until the client closes
                        frame = self._read_frame(conn)
                        if frame.WhichOneof("kind") == "cancel":
                            conn.sendall(end(frame.call_id, StatusCode.CANCELLED, "cancelled by the client"))
                except (OSError, EOFError):
                    pass
        self._listener.close()

    def join(self) -> None:
        self._thread.join(30)
        assert not self._thread.is_alive(), "the scripted server did not finish its scripts"

    def stop(self) -> None:
        """Stops waiting for connections the scripts did not get."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(30)

    def attach_requests(self) -> List[Tuple[str, int]]:
        return [(s.start.payload.attach_request.turn_id, s.start.payload.attach_request.after_sequence)
                for s in self.starts if s.start.method.endswith("/Attach")]


def run(path: str, policy: ResumePolicy = POLICY) -> Tuple[List[PromptEvent], List[Attached], Optional[SwitchboardError]]:
    seen: List[Attached] = []
    events: List[PromptEvent] = []
    try:
        with Client.connect(path) as client:
            for e in client.prompt("s", "p", resume=policy, on_reattach=seen.append):
                events.append(e)
    except SwitchboardError as error:
        return events, seen, error
    return events, seen, None


def test_duplicates_and_a_second_finished_are_dropped(tmp_path: object) -> None:
    path = f"{tmp_path}/scripted.sock"
    server = ScriptedServer(path, [
        lambda s: (event(s.call_id, "accepted", turn_id=TURN) + event(s.call_id, "started", turn_id=TURN)
                   + output(s.call_id, 1) + output(s.call_id, 2) + output(s.call_id, 3), True),
        # A re-attach that repeats chunks 2 and 3, then is cut after finished.
        lambda s: (attached(s.call_id, pb.TURN_STATE_RUNNING, 3) + output(s.call_id, 2) + output(s.call_id, 3)
                   + output(s.call_id, 4) + finished(s.call_id, 4), True),
        # The next one brings finished again, then the turn's status.
        lambda s: (attached(s.call_id, pb.TURN_STATE_FINISHED, 4) + finished(s.call_id, 4) + end(s.call_id), False),
    ])
    events, seen, error = run(path)
    server.join()
    assert error is None
    assert events == [Accepted(TURN, 0), Started(TURN), *[Output(i, f"c{i} ".encode()) for i in range(1, 5)],
                      Finished(TURN, "end_turn", 4, 0, 0)]
    assert [(a.state, a.last_sequence) for a in seen] == [(pb.TURN_STATE_RUNNING, 3), (pb.TURN_STATE_FINISHED, 4)]
    assert server.attach_requests() == [(TURN, 3), (TURN, 4)]
    assert all(s.start.payload.attach_request.session_id == "s" for s in server.starts[1:])


def test_a_gap_is_data_loss(tmp_path: object) -> None:
    path = f"{tmp_path}/scripted.sock"
    server = ScriptedServer(path, [
        lambda s: (event(s.call_id, "accepted", turn_id=TURN) + event(s.call_id, "started", turn_id=TURN)
                   + output(s.call_id, 1), True),
        lambda s: (attached(s.call_id, pb.TURN_STATE_RUNNING, 3) + output(s.call_id, 3), False),
    ])
    events, _, error = run(path)
    server.join()
    assert error is not None and error.code == StatusCode.DATA_LOSS, error
    assert "expected chunk 2, got 3" in error.message
    assert [e.sequence for e in events if isinstance(e, Output)] == [1]


def test_turn_ending_is_retried_and_a_missing_started_is_supplied(tmp_path: object) -> None:
    path = f"{tmp_path}/scripted.sock"
    server = ScriptedServer(path, [
        lambda s: (event(s.call_id, "accepted", turn_id=TURN), True),  # cut before started
        lambda s: (end(s.call_id, StatusCode.UNAVAILABLE, f"turn {TURN} is ending; attach again"), False),
        lambda s: (attached(s.call_id, pb.TURN_STATE_FINISHED, 1) + output(s.call_id, 1)
                   + finished(s.call_id, 1) + end(s.call_id), False),
    ])
    events, seen, error = run(path)
    server.join()
    assert error is None, error
    assert events == [Accepted(TURN, 0), Started(TURN), Output(1, b"c1 "), Finished(TURN, "end_turn", 1, 0, 0)]
    assert len(seen) == 1  # the refused attach had no Attached
    assert server.attach_requests() == [(TURN, 0), (TURN, 0)]


def test_a_server_status_is_not_retried(tmp_path: object) -> None:
    path = f"{tmp_path}/scripted.sock"
    server = ScriptedServer(path, [
        lambda s: (event(s.call_id, "accepted", turn_id=TURN) + output(s.call_id, 1), True),
        lambda s: (end(s.call_id, StatusCode.OUT_OF_RANGE, "output dropped by retention"), False),
    ])
    events, _, error = run(path)
    server.join()
    assert error is not None and error.code == StatusCode.OUT_OF_RANGE
    assert error.message == "output dropped by retention"
    assert events == [Accepted(TURN, 0), Started(TURN), Output(1, b"c1 ")]
    assert len(server.starts) == 2


def test_attempts_without_progress_are_bounded(tmp_path: object) -> None:
    """A server that accepts every attach and drops it before anything new: the
    stream gives up after max_attempts, although each attach got through."""
    path = f"{tmp_path}/scripted.sock"
    drop = lambda s: (attached(s.call_id, pb.TURN_STATE_RUNNING, 1), True)  # noqa: E731
    server = ScriptedServer(path, [
        lambda s: (event(s.call_id, "accepted", turn_id=TURN) + output(s.call_id, 1), True),
        drop, drop, drop,
        lambda s: (attached(s.call_id, pb.TURN_STATE_FINISHED, 1) + finished(s.call_id, 1) + end(s.call_id), False),
    ])
    policy = ResumePolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01, total_budget=60.0)
    events, seen, error = run(path, policy)
    server.stop()
    assert error is not None and error.code == StatusCode.UNAVAILABLE, error
    assert "gave up re-attaching to turn" in error.message and "after 3 attempts" in error.message, error
    assert len(seen) == 3
    assert len(server.starts) == 4  # the prompt and three attaches; the fifth script never ran
    assert [e.sequence for e in events if isinstance(e, Output)] == [1]


def test_time_budget_restarts_after_an_attach_that_got_through(tmp_path: object) -> None:
    """A re-attached turn that stays silent for twice the whole budget and is then
    cut again still gets a full budget for the new loss (measured from the loss,
    it would have run out)."""
    path = f"{tmp_path}/scripted.sock"
    server = ScriptedServer(path, [
        lambda s: (event(s.call_id, "accepted", turn_id=TURN) + output(s.call_id, 1), True),
        lambda s: (attached(s.call_id, pb.TURN_STATE_RUNNING, 1), True, 2.0),  # silent 2 s, then cut
        lambda s: (attached(s.call_id, pb.TURN_STATE_FINISHED, 1) + output(s.call_id, 2)
                   + finished(s.call_id, 2) + end(s.call_id), False),
    ])
    policy = ResumePolicy(initial_backoff=0.001, max_backoff=0.01, total_budget=1.0)
    events, seen, error = run(path, policy)
    server.join()
    assert error is None, error
    assert [e.sequence for e in events if isinstance(e, Output)] == [1, 2]
    assert len(seen) == 2
    assert isinstance(events[-1], Finished)


def test_cancel_while_following_ends_only_the_attach(tmp_path: object) -> None:
    """After a re-attach, cancel() cancels the attach call (the server then ends it
    with CANCELLED; it does not cancel a turn for an attacher) and is not retried."""
    path = f"{tmp_path}/scripted.sock"
    server = ScriptedServer(path, [
        lambda s: (event(s.call_id, "accepted", turn_id=TURN) + output(s.call_id, 1), True),
        lambda s: (attached(s.call_id, pb.TURN_STATE_RUNNING, 1), False),
    ])
    with Client.connect(path) as client:
        stream = client.prompt("s", "p", resume=POLICY)
        assert next(stream) == Accepted(TURN, 0)
        assert next(stream) == Started(TURN)
        assert next(stream) == Output(1, b"c1 ")
        # The next call sees the cut, re-attaches and waits for more: cancel it
        # from another thread (before, during or after the re-attach).
        timer = threading.Timer(0.2, stream.cancel)
        timer.start()
        with pytest.raises(SwitchboardError) as info:
            next(stream)
        timer.join()
        stream.close()
    server.stop()
    assert info.value.code == StatusCode.CANCELLED, info.value
    assert len(server.starts) <= 2
