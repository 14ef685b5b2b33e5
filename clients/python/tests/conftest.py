"""Fixtures: real servers (the built `switchboard` binary) on temporary sockets.

The binary is $SWITCHBOARD_BIN, else <repo>/.build/debug/switchboard.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the package from this checkout, installed or not

from switchboard_client import Client, SwitchboardError  # noqa: E402

REPO = HERE.parents[2]


def server_binary() -> str:
    path = os.environ.get("SWITCHBOARD_BIN") or str(REPO / ".build" / "debug" / "switchboard")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no switchboard binary at {path}: build it (swift build) or set SWITCHBOARD_BIN")
    return path


class Server:
    def __init__(self, directory: str, name: str, flags: List[str]) -> None:
        self.socket_path = os.path.join(directory, f"{name}.sock")
        self.log_path = os.path.join(directory, f"{name}.log")
        self._log = open(self.log_path, "wb")
        # Each server keeps its sessions in its own directory (never the user's).
        state = [] if "--state-dir" in flags else ["--state-dir", os.path.join(directory, f"{name}.state")]
        self.process = subprocess.Popen(
            [server_binary(), "serve", "--socket", self.socket_path, "--log-level", "warning", *state, *flags],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; log: {self.log_path}")
            try:
                Client.connect(self.socket_path, connect_timeout=1).close()
                return
            except SwitchboardError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"server did not come up; log: {self.log_path}")
                time.sleep(0.05)

    def connect(self, **options: object) -> Client:
        return Client.connect(self.socket_path, **options)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def tmp_socket_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="sb-py-") as directory:
        yield directory


@pytest.fixture(scope="session")
def server(tmp_socket_dir: str) -> Iterator[Server]:
    """Echo backend without delay."""
    s = Server(tmp_socket_dir, "fast", [])
    yield s
    s.stop()


@pytest.fixture(scope="session")
def slow_server(tmp_socket_dir: str) -> Iterator[Server]:
    """Echo backend, 40 ms between words: turns that last long enough to cancel."""
    s = Server(tmp_socket_dir, "slow", ["--echo-delay", "40ms"])
    yield s
    s.stop()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with server.connect() as c:
        yield c


@pytest.fixture
def slow_client(slow_server: Server) -> Iterator[Client]:
    with slow_server.connect() as c:
        yield c


@pytest.fixture
def session_id(request: pytest.FixtureRequest) -> str:
    return f"py-{os.getpid()}-{request.node.name}"[:128].replace("[", "-").replace("]", "")
