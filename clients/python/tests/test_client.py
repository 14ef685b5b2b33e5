"""Tests of the Python client against real servers (see conftest.py)."""
from __future__ import annotations

import gc
import re
import socket
import struct
import threading
from typing import List

import pytest

from switchboard_client import (
    Accepted,
    Client,
    Finished,
    Output,
    Started,
    StatusCode,
    SwitchboardError,
    default_socket_path,
    switchboard_pb2 as pb,
)

from conftest import Server


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(1, n + 1))


def test_handshake(client: Client) -> None:
    assert client.welcome.version == 1
    assert client.welcome.server_name == "switchboard"
    assert client.welcome.max_frame_size >= 1024
    assert client.welcome.max_concurrent_calls > 0


def test_unsupported_version(server: Server) -> None:
    with pytest.raises(SwitchboardError) as info:
        Client.connect(server.socket_path, versions=(2, 3))
    assert info.value.code == StatusCode.FAILED_PRECONDITION
    assert info.value.code_name == "FAILED_PRECONDITION"
    assert "version" in info.value.message


def test_no_server(tmp_path: object) -> None:
    with pytest.raises(SwitchboardError) as info:
        Client.connect(f"{tmp_path}/nothing.sock")
    assert info.value.code == StatusCode.UNAVAILABLE
    assert str(info.value).startswith("UNAVAILABLE: no server at")


def test_default_socket_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_SOCKET", "/tmp/a.sock")
    assert default_socket_path() == "/tmp/a.sock"
    monkeypatch.delenv("SWITCHBOARD_SOCKET")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/7")
    assert default_socket_path() == "/run/user/7/switchboard.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_socket_path() == "/run/switchboard/switchboard.sock"


def test_health_and_ping(client: Client) -> None:
    assert client.health() == pb.SERVING_STATUS_SERVING
    client.ping()
    client.ping()


def test_sessions(client: Client, session_id: str) -> None:
    s = client.create_session(session_id, labels={"team": "docs", "run": session_id}, backend="echo",
                              idle_timeout_ms=60000)
    assert s.id == session_id
    assert {label.key: label.value for label in s.labels} == {"team": "docs", "run": session_id}
    assert s.settings.backend == "echo"
    assert s.settings.idle_timeout_ms == 60000
    assert s.settings.turn_deadline_ms > 0
    assert s.state == pb.SESSION_STATE_IDLE

    with pytest.raises(SwitchboardError) as info:
        client.create_session(session_id)
    assert info.value.code == StatusCode.ALREADY_EXISTS

    assert client.get_session(session_id).id == session_id

    anonymous = client.create_session()
    assert re.fullmatch(r"s-[0-9a-f]{12}", anonymous.id)

    second = client.create_session(session_id + "-2", labels={"run": session_id})
    listed = client.list_sessions(labels={"run": session_id})
    assert [x.id for x in listed.sessions] == [session_id, second.id]
    assert listed.next_page_token == ""
    page = client.list_sessions(labels={"run": session_id}, page_size=1)
    assert len(page.sessions) == 1 and page.next_page_token
    assert [x.id for x in client.iter_sessions(labels={"run": session_id}, page_size=1)] == [session_id, second.id]

    closed = client.close_session(session_id, "test over")
    assert closed.session.id == session_id
    assert closed.cancelled_turns == 0
    for call in (lambda: client.get_session(session_id), lambda: client.close_session(session_id)):
        with pytest.raises(SwitchboardError) as info:
            call()
        assert info.value.code == StatusCode.NOT_FOUND
    client.close_session(second.id)
    client.close_session(anonymous.id)


def test_invalid_arguments(client: Client, session_id: str) -> None:
    for kwargs in ({"session_id": "bad id!"}, {"session_id": session_id, "backend": "nope"}):
        with pytest.raises(SwitchboardError) as info:
            client.create_session(**kwargs)  # type: ignore[arg-type]
        assert info.value.code == StatusCode.INVALID_ARGUMENT


def test_prompt_events(client: Client, session_id: str) -> None:
    client.create_session(session_id)
    text = "the quick brown fox jumps over the lazy dog"
    events = list(client.prompt(session_id, text))
    assert isinstance(events[0], Accepted) and events[0].queue_position == 0
    assert isinstance(events[1], Started) and events[1].turn_id == events[0].turn_id
    outputs = [e for e in events if isinstance(e, Output)]
    assert [o.sequence for o in outputs] == list(range(1, len(outputs) + 1))
    assert b"".join(o.data for o in outputs).decode() == text
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.chunks == len(outputs) and finished.bytes == len(text)

    status = client.session_status(session_id)
    assert status.session.turns_completed == 1
    assert status.turns[0].state == pb.TURN_STATE_FINISHED
    assert status.turns[0].code == StatusCode.OK
    assert status.turns[0].prompt_preview == text

    with pytest.raises(SwitchboardError) as info:
        list(client.prompt("no-such-session", "hi"))
    assert info.value.code == StatusCode.NOT_FOUND
    with pytest.raises(SwitchboardError) as info:
        client.session_status("no-such-session")
    assert info.value.code == StatusCode.NOT_FOUND
    client.close_session(session_id)


def test_large_output_and_text(client: Client, session_id: str) -> None:
    client.create_session(session_id)
    text = words(3000) + " ünïcödé"
    assert "".join(client.prompt(session_id, text).text()) == text
    client.close_session(session_id)


def test_cancel_mid_stream(slow_client: Client, session_id: str) -> None:
    slow_client.create_session(session_id)
    stream = slow_client.prompt(session_id, words(100))
    seen = 0
    with pytest.raises(SwitchboardError) as info:
        for event in stream:
            if isinstance(event, Output):
                seen += 1
                if seen == 2:
                    stream.cancel()
    assert info.value.code == StatusCode.CANCELLED
    assert seen < 100
    # The session stays usable; the cancelled turn is in its history.
    assert "".join(slow_client.prompt(session_id, "again").text()) == "again"
    codes = [t.code for t in slow_client.session_status(session_id).turns]
    assert codes.count(StatusCode.CANCELLED) == 1
    slow_client.close_session(session_id)


def test_cancel_from_another_thread(slow_client: Client, session_id: str) -> None:
    slow_client.create_session(session_id)
    stream = slow_client.prompt(session_id, words(100))
    first_output = threading.Event()
    canceller = threading.Thread(target=lambda: (first_output.wait(10), stream.cancel()))
    canceller.start()
    with pytest.raises(SwitchboardError) as info:
        for event in stream:
            if isinstance(event, Output):
                first_output.set()
    canceller.join()
    assert info.value.code == StatusCode.CANCELLED
    slow_client.close_session(session_id)


def test_abandoned_stream_is_cancelled(slow_client: Client, session_id: str) -> None:
    slow_client.create_session(session_id)
    stream = slow_client.prompt(session_id, words(100))
    assert isinstance(next(stream), Accepted)
    del stream
    gc.collect()
    # The next call sends the Cancel; the session becomes free for a prompt that rejects when busy.
    slow_client.health()
    for _ in range(100):
        if slow_client.get_session(session_id).state == pb.SESSION_STATE_IDLE:
            break
        threading.Event().wait(0.05)
    assert "".join(slow_client.prompt(session_id, "free", reject_if_busy=True).text()) == "free"
    slow_client.close_session(session_id)


def test_deadline(slow_client: Client, session_id: str) -> None:
    slow_client.create_session(session_id)
    with pytest.raises(SwitchboardError) as info:
        list(slow_client.prompt(session_id, words(100), timeout=0.2))
    assert info.value.code == StatusCode.DEADLINE_EXCEEDED
    # The client's receive timeout: no frame of the call within 1 ms.
    slow_client.recv_timeout = 0.001
    with pytest.raises(SwitchboardError) as info:
        list(slow_client.prompt(session_id, words(100)))
    assert info.value.code == StatusCode.DEADLINE_EXCEEDED
    slow_client.recv_timeout = None
    assert "".join(slow_client.prompt(session_id, "still here").text()) == "still here"
    slow_client.close_session(session_id)


def test_busy_reject_wait_and_close(slow_client: Client, session_id: str) -> None:
    slow_client.create_session(session_id)
    first = slow_client.prompt(session_id, words(100))
    accepted = next(first)
    assert isinstance(accepted, Accepted) and accepted.queue_position == 0
    with pytest.raises(SwitchboardError) as info:
        list(slow_client.prompt(session_id, "x", reject_if_busy=True))
    assert info.value.code == StatusCode.FAILED_PRECONDITION
    second = slow_client.prompt(session_id, "queued")
    queued = next(second)
    assert isinstance(queued, Accepted) and queued.queue_position == 1
    closed = slow_client.close_session(session_id, "closing")
    assert closed.cancelled_turns == 1 and closed.rejected_prompts == 1
    for stream in (first, second):
        with pytest.raises(SwitchboardError) as info:
            list(stream)
        assert info.value.code == StatusCode.CANCELLED


def test_concurrent_streams_one_thread(slow_client: Client, session_id: str) -> None:
    texts = ["alpha beta gamma delta epsilon", "one two three four five six"]
    ids = [f"{session_id}-{i}" for i in range(2)]
    for i in ids:
        slow_client.create_session(i)
    streams = [slow_client.prompt(i, t) for i, t in zip(ids, texts)]
    assert streams[1].call_id > streams[0].call_id
    assert len(slow_client.server_status(include_sessions=True).sessions) >= 2
    got: List[List[bytes]] = [[], []]
    open_streams = {0, 1}
    while open_streams:
        for index in sorted(open_streams):
            try:
                event = next(streams[index])
            except StopIteration:
                open_streams.discard(index)
                continue
            if isinstance(event, Output):
                got[index].append(event.data)
    assert [b"".join(g).decode() for g in got] == texts
    for i in ids:
        slow_client.close_session(i)


def test_concurrent_threads_share_a_connection(client: Client, session_id: str) -> None:
    failures: List[str] = []

    def work(index: int) -> None:
        sid = f"{session_id}-{index}"
        text = f"thread {index} says hello to the broker"
        try:
            client.create_session(sid)
            for _ in range(3):
                got = "".join(client.prompt(sid, text).text())
                if got != text:
                    failures.append(f"{sid}: {got!r}")
                client.health()
            client.close_session(sid)
        except SwitchboardError as error:
            failures.append(f"{sid}: {error}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []


def test_request_too_large(client: Client) -> None:
    with pytest.raises(SwitchboardError) as info:
        client.prompt("whatever", "a" * (client.welcome.max_frame_size + 10))
    assert info.value.code == StatusCode.RESOURCE_EXHAUSTED
    assert client.health() == pb.SERVING_STATUS_SERVING  # nothing was sent


def test_response_above_client_maximum(server: Server, session_id: str) -> None:
    # The server ends the call with RESOURCE_EXHAUSTED instead of sending a frame
    # above Hello.max_frame_size; the connection stays usable.
    with server.connect(max_frame_size=1024) as c:
        with pytest.raises(SwitchboardError) as info:
            # Labels within the rules (at most 63 bytes a value), 2 KiB in all.
            c.create_session(session_id, labels={f"big{i}": "v" * 63 for i in range(32)})
        assert info.value.code == StatusCode.RESOURCE_EXHAUSTED
        assert c.health() == pb.SERVING_STATUS_SERVING


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"\xff\xff\xff\xff", StatusCode.RESOURCE_EXHAUSTED),
        (b"\x00\x00\x00\x05\xff\xff\xff\xff\xff", StatusCode.INVALID_ARGUMENT),
        (b"\x00\x00\x00\x00", StatusCode.INVALID_ARGUMENT),
    ],
)
def test_bad_frames_get_go_away(server: Server, raw: bytes, code: int) -> None:
    with server.connect() as c:
        c._send_raw(raw)
        with pytest.raises(SwitchboardError) as info:
            c.health()
        assert info.value.code == code
        with pytest.raises(SwitchboardError):
            c.health()  # the connection is gone for good
    with server.connect() as c:
        assert c.health() == pb.SERVING_STATUS_SERVING


# --- a hostile fake server ----------------------------------------------------


def fake_server(path: str, script: bytes, hold: float = 0.0) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            header = conn.recv(4, socket.MSG_WAITALL)
            conn.recv(struct.unpack(">I", header)[0], socket.MSG_WAITALL)
            try:
                for i in range(len(script)):
                    conn.sendall(script[i:i + 1])  # one byte at a time: short reads
            except OSError:
                pass  # the client gave up first (as it should for a bad frame)
            threading.Event().wait(hold)
        listener.close()

    thread = threading.Thread(target=serve)
    thread.start()
    return thread


def welcome_frame() -> bytes:
    frame = pb.Frame()
    frame.welcome.version = 1
    frame.welcome.server_name = "fake"
    frame.welcome.max_frame_size = 4096
    body = frame.SerializeToString()
    return struct.pack(">I", len(body)) + body


@pytest.mark.parametrize(
    "script, code",
    [
        (b"\xff\xff\xff\xf0\x01\x02", StatusCode.RESOURCE_EXHAUSTED),  # 4 GiB prefix: refused, nothing allocated
        (b"\x00\x00\x00\x03\xff\xff\xff", StatusCode.INTERNAL),         # does not decode
        (b"\x00\x00\x00\x32\x1a\x02", StatusCode.UNAVAILABLE),          # truncated, then EOF
    ],
)
def test_hostile_server_handshake(tmp_path: object, script: bytes, code: int) -> None:
    path = f"{tmp_path}/fake.sock"
    thread = fake_server(path, script)
    with pytest.raises(SwitchboardError) as info:
        Client.connect(path)
    assert info.value.code == code
    thread.join(10)


def test_hostile_server_welcome_then_eof(tmp_path: object) -> None:
    path = f"{tmp_path}/fake.sock"
    thread = fake_server(path, welcome_frame(), hold=0.1)
    with Client.connect(path) as c:
        assert c.welcome.server_name == "fake"
        with pytest.raises(SwitchboardError) as info:
            c.health()
        assert info.value.code == StatusCode.UNAVAILABLE
    thread.join(10)


def test_silent_server_times_out(tmp_path: object) -> None:
    path = f"{tmp_path}/fake.sock"
    thread = fake_server(path, b"", hold=1.0)
    with pytest.raises(SwitchboardError) as info:
        Client.connect(path, connect_timeout=0.2)
    assert info.value.code == StatusCode.UNAVAILABLE
    thread.join(10)
