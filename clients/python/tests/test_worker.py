"""The worker helper against a real server, with turns sent by the Swift CLI
(`switchboard session create --backend worker:Q`, `switchboard prompt`) and by
the Python client."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Iterator

import pytest

from switchboard_client import (
    Assignment,
    Cancellation,
    StatusCode,
    SwitchboardError,
    Worker,
    register,
)

from conftest import Server, server_binary

#: The server drops a worker it has not heard from for this long.
HEARTBEAT_TIMEOUT = 0.6


@pytest.fixture(scope="module")
def worker_server(tmp_socket_dir: str) -> Iterator[Server]:
    """Heartbeats every 100 ms, a worker is dead after 600 ms of silence."""
    s = Server(tmp_socket_dir, "workers", ["--worker-heartbeat-interval", "100ms",
                                           "--worker-heartbeat-timeout", f"{int(HEARTBEAT_TIMEOUT * 1000)}ms"])
    yield s
    s.stop()


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> str:
    return f"py-{os.getpid()}-{request.node.name}"[:128].replace("[", "-").replace("]", "")


def cli(server: Server, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([server_binary(), *args, "--socket", server.socket_path],
                          capture_output=True, text=True, timeout=timeout)


def cli_session(server: Server, queue: str) -> str:
    done = cli(server, "session", "create", "--backend", f"worker:{queue}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def cli_prompt(server: Server, session_id: str, prompt: str, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([server_binary(), "prompt", "--socket", server.socket_path, "--session", session_id,
                             *flags, prompt],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def next_event(worker: Worker, timeout: float = 10) -> object:
    event = worker.next_event(timeout)
    assert event is not None, f"no worker event within {timeout} s"
    return event


def serve_upper(worker: Worker, turns: int, delay: float = 0.0) -> threading.Thread:
    """Serves `turns` assignments in a thread: the prompt uppercased, word by word."""
    def run() -> None:
        served = 0
        while served < turns:
            event = next_event(worker, 30)
            if isinstance(event, Assignment):
                for i, word in enumerate(event.prompt.upper().split(" ")):
                    worker.output(event.turn_id, (" " if i else "") + word)
                    time.sleep(delay)
                worker.finish(event.turn_id, "upper")
                served += 1
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_worker_serves_turns_from_the_cli(worker_server: Server, queue_name: str) -> None:
    with register(queue_name, capacity=1, labels={"lang": "python"}, display_name="py-upper",
                  socket_path=worker_server.socket_path) as worker:
        assert worker.worker_id.startswith("w-")
        assert worker.registered.heartbeat_interval_ms == 100
        assert worker.registered.heartbeat_timeout_ms == 600
        with worker_server.connect() as client:
            info = [w for w in client.server_status().workers if w.worker_id == worker.worker_id]
            assert len(info) == 1
            assert info[0].task_queue == queue_name and info[0].display_name == "py-upper"
            assert {x.key: x.value for x in info[0].labels} == {"lang": "python"}
            assert info[0].capacity == 1

        thread = serve_upper(worker, 2)
        session_id = cli_session(worker_server, queue_name)
        for prompt in ("hello from the cli", "second turn"):
            done = cli(worker_server, "prompt", "--session", session_id, prompt)
            assert done.returncode == 0, done.stderr
            assert done.stdout == prompt.upper()
        thread.join(10)
        with worker_server.connect() as client:
            info = [w for w in client.server_status().workers if w.worker_id == worker.worker_id]
            assert info[0].turns_served == 2 and info[0].in_flight == 0
            turn = client.session_status(session_id).turns[0]
            assert turn.stop_reason == "upper" and turn.code == StatusCode.OK


def test_assignment_fields_and_python_client(worker_server: Server, queue_name: str) -> None:
    with register(queue_name, socket_path=worker_server.socket_path) as worker, worker_server.connect() as client:
        session = client.create_session(labels={"team": "docs"}, backend=f"worker:{queue_name}",
                                        turn_deadline_ms=30000)
        stream = client.prompt(session.id, "abc def")
        event = next_event(worker)
        assert isinstance(event, Assignment)
        assert event.session_id == session.id and event.prompt == "abc def"
        assert event.session_labels == {"team": "docs"}
        assert 0 < event.deadline_ms <= 30000
        worker.output(event.turn_id, b"raw ")
        worker.output(event.turn_id, "")  # not sent
        worker.output(event.turn_id, "text \u00e9")
        worker.finish(event.turn_id)
        assert "".join(stream.text()) == "raw text \u00e9"
        assert stream.finished is not None and stream.finished.stop_reason == "end_turn"


def test_busy_worker_is_not_dropped(worker_server: Server, queue_name: str) -> None:
    """The iterating thread blocks for several heartbeat timeouts inside a turn;
    the reader thread keeps answering heartbeats."""
    with register(queue_name, socket_path=worker_server.socket_path) as worker:
        session_id = cli_session(worker_server, queue_name)
        prompt = cli_prompt(worker_server, session_id, "slow work")
        event = next_event(worker)
        assert isinstance(event, Assignment)
        time.sleep(HEARTBEAT_TIMEOUT * 4)  # busy, not iterating
        worker.output(event.turn_id, "done")
        worker.finish(event.turn_id)
        out, err = prompt.communicate(timeout=10)
        assert prompt.returncode == 0, err
        assert out == "done"
        with worker_server.connect() as client:
            assert worker.worker_id in [w.worker_id for w in client.server_status().workers]


def test_cancellation_reaches_the_worker(worker_server: Server, queue_name: str) -> None:
    with register(queue_name, socket_path=worker_server.socket_path) as worker:
        session_id = cli_session(worker_server, queue_name)
        # A turn outlives its client by default; this one asks to be cancelled.
        prompt = cli_prompt(worker_server, session_id, "never finishes", "--cancel-on-disconnect")
        event = next_event(worker)
        assert isinstance(event, Assignment)
        worker.output(event.turn_id, "partial")
        assert not worker.is_cancelled(event.turn_id)
        prompt.send_signal(signal.SIGKILL)  # the prompting client goes away mid-turn
        prompt.wait(10)
        cancel = next_event(worker)
        assert isinstance(cancel, Cancellation)
        assert cancel.turn_id == event.turn_id and cancel.reason
        assert worker.is_cancelled(event.turn_id)
        worker.output(event.turn_id, "ignored")  # the server ignores a cancelled turn's messages
        worker.finish(event.turn_id)
        # The worker is still registered and serves the session's next turn.
        thread = serve_upper(worker, 1)
        done = cli(worker_server, "prompt", "--session", session_id, "after cancel")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "AFTER CANCEL"
        thread.join(10)
        with worker_server.connect() as client:
            codes = [t.code for t in client.session_status(session_id).turns]
            assert StatusCode.CANCELLED in codes


def test_cli_interrupt_cancels(worker_server: Server, queue_name: str) -> None:
    """Ctrl-C of `switchboard prompt` (SIGINT) cancels the turn: the worker hears it."""
    with register(queue_name, socket_path=worker_server.socket_path) as worker:
        session_id = cli_session(worker_server, queue_name)
        prompt = cli_prompt(worker_server, session_id, "interrupt me")
        event = next_event(worker)
        assert isinstance(event, Assignment)
        prompt.send_signal(signal.SIGINT)
        _, err = prompt.communicate(timeout=10)
        assert prompt.returncode == 10 + StatusCode.CANCELLED, err
        cancel = next_event(worker)
        assert isinstance(cancel, Cancellation) and cancel.turn_id == event.turn_id


@pytest.mark.parametrize("code", [StatusCode.FAILED_PRECONDITION, StatusCode.RESOURCE_EXHAUSTED, StatusCode.UNKNOWN])
def test_fail_maps_to_the_cli_exit_code(worker_server: Server, queue_name: str, code: StatusCode) -> None:
    with register(queue_name, socket_path=worker_server.socket_path) as worker:
        session_id = cli_session(worker_server, queue_name)
        prompt = cli_prompt(worker_server, session_id, "please fail")
        event = next_event(worker)
        assert isinstance(event, Assignment)
        worker.output(event.turn_id, "some ")
        worker.fail(event.turn_id, code, f"worker says no ({code.name})")
        out, err = prompt.communicate(timeout=10)
        assert prompt.returncode == 10 + code, err
        assert out == "some "
        assert code.name in err and f"worker says no ({code.name})" in err


def test_fail_reaches_the_python_client(worker_server: Server, queue_name: str) -> None:
    with register(queue_name, socket_path=worker_server.socket_path) as worker, worker_server.connect() as client:
        session = client.create_session(backend=f"worker:{queue_name}")
        stream = client.prompt(session.id, "x")
        event = next_event(worker)
        assert isinstance(event, Assignment)
        worker.fail(event.turn_id, StatusCode.PERMISSION_DENIED, "not allowed")
        with pytest.raises(SwitchboardError) as info:
            list(stream)
        assert info.value.code == StatusCode.PERMISSION_DENIED and info.value.message == "not allowed"


def test_register_errors(worker_server: Server, tmp_path: object) -> None:
    with pytest.raises(SwitchboardError) as info:
        register("q", capacity=0, socket_path=worker_server.socket_path)
    assert info.value.code == StatusCode.INVALID_ARGUMENT
    with pytest.raises(SwitchboardError) as info:
        register("bad queue!", socket_path=worker_server.socket_path)
    assert info.value.code == StatusCode.INVALID_ARGUMENT
    with pytest.raises(SwitchboardError) as info:
        register("q", socket_path=f"{tmp_path}/nothing.sock")
    assert info.value.code == StatusCode.UNAVAILABLE


def test_missed_heartbeats_end_the_worker(worker_server: Server, queue_name: str) -> None:
    worker = register(queue_name, socket_path=worker_server.socket_path)
    try:
        worker._answer_heartbeats = False  # behave like a hung worker
        start = time.monotonic()
        with pytest.raises(SwitchboardError) as info:
            next_event(worker, 10)
        assert info.value.code == StatusCode.UNAVAILABLE
        assert "heartbeat" in info.value.message
        assert time.monotonic() - start < 5
        with pytest.raises(SwitchboardError):
            worker.output("t-x", "late")
    finally:
        worker.close()


def test_protocol_error_ends_the_worker(worker_server: Server, queue_name: str) -> None:
    with register(queue_name, socket_path=worker_server.socket_path) as worker:
        worker.output("t-not-mine", "x")
        with pytest.raises(SwitchboardError) as info:
            next_event(worker)
        assert info.value.code == StatusCode.INVALID_ARGUMENT
        assert "not assigned" in info.value.message


def test_close_ends_iteration_and_in_flight_turns(worker_server: Server, queue_name: str) -> None:
    worker = register(queue_name, socket_path=worker_server.socket_path)
    with worker_server.connect() as client:
        session = client.create_session(backend=f"worker:{queue_name}")
        stream = client.prompt(session.id, "in flight")
        event = next_event(worker)
        assert isinstance(event, Assignment)
        worker.close()
        worker.close()  # idempotent
        with pytest.raises(StopIteration):
            next(worker)
        assert list(worker) == []
        with pytest.raises(SwitchboardError):
            worker.finish(event.turn_id)
        with pytest.raises(SwitchboardError) as info:
            list(stream)
        assert info.value.code == StatusCode.UNAVAILABLE
        assert worker.worker_id not in [w.worker_id for w in client.server_status().workers]


def test_example_worker_program(worker_server: Server, queue_name: str) -> None:
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "worker.py")
    with open(example) as f:
        assert len(f.read().splitlines()) < 15
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), ".."))
    proc = subprocess.Popen(["python3", example, "--socket", worker_server.socket_path, queue_name],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        assert "serving" in line
        session_id = cli_session(worker_server, queue_name)
        done = cli(worker_server, "prompt", "--session", session_id, "make me loud")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "MAKE ME LOUD"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
