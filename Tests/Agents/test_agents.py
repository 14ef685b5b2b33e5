"""Tests of the ACP test agents themselves, before Switchboard relies on them.

Each agent runs as a real process over stdio, driven by the official SDK's client
side (`acp.connect_to_agent`, a `ClientSideConnection`), so what is checked here is
what any ACP client sees. The garbage and huge-line agents are read with a raw
line reader instead: the SDK's reader skips a line that is not JSON and reads a
line of any length, so only raw bytes show what those agents really wrote.

Run: .venv-acp/bin/python -m pytest -q -p no:cacheprovider Tests/Agents
(scripts/bootstrap.sh makes .venv-acp). No test asserts a duration; the waits
are hang guards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tarfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from acp import PROTOCOL_VERSION, RequestError, connect_to_agent, text_block
from acp.connection import StreamDirection, StreamEvent
from acp.interfaces import Client
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    RequestPermissionResponse,
)

AGENTS = Path(__file__).resolve().parent
ROOT = AGENTS.parent.parent
VENV = ROOT / ".venv-acp"
ECHO_AGENT = VENV / "examples" / "echo_agent.py"
SDIST = VENV / "sdist" / "agent_client_protocol-0.12.1.tar.gz"

HANG_GUARD = 20.0  # seconds; only ever reached when an agent misbehaves
LINE_LIMIT = 96 * 1024 * 1024  # the huge-line agent writes a bit more than 64 MiB


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, HANG_GUARD))


async def eventually(condition: Callable[[], bool]) -> None:
    """Waits until `condition()` holds (the test's hang guard bounds the wait)."""
    while not condition():
        await asyncio.sleep(0.01)


class RecordingClient(Client):
    """An ACP client that records the typed updates and answers permission requests."""

    def __init__(self, permission: Callable[[list[Any]], Awaitable[RequestPermissionResponse]] | None = None):
        self.updates: list[tuple[str, Any]] = []
        self.permission_requests: list[Any] = []
        self._permission = permission

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append((session_id, update))

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any):
        self.permission_requests.append((session_id, tool_call, options))
        assert self._permission is not None, "unexpected permission request"
        return await self._permission(options)

    def texts(self, kind: str = "agent_message_chunk") -> list[str]:
        return [u.content.text for _, u in self.updates if u.session_update == kind]


class RunningAgent:
    """An agent process (in its own process group) and the SDK connection to it."""

    def __init__(self, process: asyncio.subprocess.Process, client: RecordingClient):
        self.process = process
        self.client = client
        self.messages: list[StreamEvent] = []  # every JSON-RPC message, both ways, in order
        self.stderr_lines: list[str] = []
        self.connection = connect_to_agent(client, process.stdin, process.stdout, observers=[self.messages.append])
        self._stderr_task = asyncio.create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.stderr_lines.append(line.decode(errors="replace").rstrip("\n"))

    async def handshake(self, **kwargs: Any) -> Any:
        return await self.connection.initialize(
            protocol_version=PROTOCOL_VERSION,
            client_capabilities=ClientCapabilities(
                fs=FileSystemCapabilities(read_text_file=False, write_text_file=False), terminal=False),
            **kwargs,
        )

    async def new_session(self, cwd: str = "/") -> str:
        return (await self.connection.new_session(cwd=cwd, mcp_servers=[])).session_id

    async def prompt(self, session_id: str, text: str) -> Any:
        return await self.connection.prompt(session_id=session_id, prompt=[text_block(text)])

    def incoming(self) -> list[dict[str, Any]]:
        return [e.message for e in self.messages if e.direction is StreamDirection.INCOMING]

    async def stop(self) -> None:
        await self.connection.close()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await self.process.wait()
        await self._stderr_task


async def spawn(script: Path | str, *arguments: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(script), *arguments,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True, limit=LINE_LIMIT, cwd=str(AGENTS),
    )


@asynccontextmanager
async def agent(script: str | Path, *arguments: str, client: RecordingClient | None = None) -> AsyncIterator[RunningAgent]:
    path = script if isinstance(script, Path) else AGENTS / script
    running = RunningAgent(await spawn(path, *arguments), client or RecordingClient())
    try:
        yield running
    finally:
        await running.stop()


def update_kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["params"]["update"]["sessionUpdate"] for m in messages if m.get("method") == "session/update"]


# --- the SDK's echo agent --------------------------------------------------------


def test_echo_agent_is_the_sdks_example_unchanged():
    with tarfile.open(SDIST) as sdist:
        member = sdist.extractfile("agent_client_protocol-0.12.1/examples/echo_agent.py")
        assert member is not None
        assert ECHO_AGENT.read_bytes() == member.read()


def test_echo_agent_echoes_the_prompt():
    async def main():
        async with agent(ECHO_AGENT) as echo:
            initialized = await echo.handshake()
            assert initialized.protocol_version == 1
            assert not initialized.agent_capabilities.load_session
            session = await echo.new_session()
            result = await echo.prompt(session, "hello, switchboard")
            assert result.stop_reason == "end_turn"
            assert echo.client.texts() == ["hello, switchboard"]
    run(main())


# --- the counting agent --------------------------------------------------------


def test_counting_agent_counts_per_session(tmp_path: Path):
    async def main():
        async with agent("counting_agent.py", "--state-dir", str(tmp_path)) as counting:
            initialized = await counting.handshake()
            assert initialized.agent_capabilities.load_session
            first, second = await counting.new_session(), await counting.new_session()
            for _ in range(3):
                assert (await counting.prompt(first, "next")).stop_reason == "end_turn"
            await counting.prompt(second, "next")
            assert [(s == first, t) for s, t in ((s, u.content.text) for s, u in counting.client.updates)] == [
                (True, "1"), (True, "2"), (True, "3"), (False, "1")]
            with pytest.raises(RequestError):  # a session it never saw cannot be loaded
                await counting.connection.load_session(cwd="/", session_id="0" * 32, mcp_servers=[])
    run(main())


def test_counting_agent_restores_the_count_with_session_load_in_a_new_process(tmp_path: Path):
    async def main():
        async with agent("counting_agent.py", "--state-dir", str(tmp_path)) as first_process:
            await first_process.handshake()
            session = await first_process.new_session("/tmp")
            await first_process.prompt(session, "alpha")
            await first_process.prompt(session, "beta")
            assert first_process.client.texts() == ["1", "2"]

        async with agent("counting_agent.py", "--state-dir", str(tmp_path)) as second_process:
            await second_process.handshake()
            await second_process.connection.load_session(cwd="/tmp", session_id=session, mcp_servers=[])
            # The conversation is replayed before the session/load result, as the spec asks.
            incoming = second_process.incoming()
            load_result = next(i for i, m in enumerate(incoming) if "result" in m and m.get("id") == 1)
            assert [m["params"]["update"]["content"]["text"] for m in incoming[1:load_result]] == [
                "alpha", "1", "beta", "2"]
            assert update_kinds(incoming[1:load_result]) == [
                "user_message_chunk", "agent_message_chunk"] * 2
            await second_process.prompt(session, "gamma")
            assert second_process.client.texts()[-1] == "3"
    run(main())


def test_counting_agent_without_load_session_says_so_and_refuses_load(tmp_path: Path):
    async def main():
        async with agent("counting_agent.py", "--state-dir", str(tmp_path), "--no-load-session") as counting:
            initialized = await counting.handshake()
            assert not initialized.agent_capabilities.load_session
            session = await counting.new_session()
            await counting.prompt(session, "one")
            with pytest.raises(RequestError):
                await counting.connection.load_session(cwd="/", session_id=session, mcp_servers=[])
    run(main())


# --- typed events --------------------------------------------------------------


def test_events_agent_streams_every_kind_in_order_before_its_result():
    async def main():
        async with agent("events_agent.py") as events:
            await events.handshake()
            session = await events.new_session()
            for turn in (1, 2):
                start = len(events.incoming())
                result = await events.prompt(session, "weather")
                assert result.stop_reason == "end_turn"
                turn_messages = events.incoming()[start:]
                assert "result" in turn_messages[-1]  # every update came before the result
                turn_messages = turn_messages[:-1]
                assert update_kinds(turn_messages) == [
                    "agent_thought_chunk", "plan", "tool_call", "tool_call_update", "tool_call_update",
                    "usage_update", "switchboard_test_future_kind", "agent_message_chunk", "agent_message_chunk"]
                updates = [m["params"]["update"] for m in turn_messages]
                assert updates[2]["toolCallId"] == updates[3]["toolCallId"] == updates[4]["toolCallId"] == f"call-{turn}"
                assert [u["status"] for u in updates[2:5]] == ["pending", "in_progress", "completed"]
                assert updates[5]["used"] == 100 * turn
                assert updates[6] == {"sessionUpdate": "switchboard_test_future_kind", "turn": turn,
                                      "detail": {"nested": [1, "two", None, {"three": 3.5}], "flag": True}}
                assert [u["content"]["text"] for u in updates[7:]] == ["answer: ", "weather"]
            # The SDK's typed client knows every kind but the new one.
            assert events.client.texts("agent_thought_chunk") == ["thinking about: weather"] * 2
    run(main())


def test_events_agent_returns_the_stop_reason_it_is_given():
    async def main():
        async with agent("events_agent.py", "--stop-reason", "max_tokens") as events:
            await events.handshake()
            result = await events.prompt(await events.new_session(), "long")
            assert result.stop_reason == "max_tokens"
    run(main())


# --- slow, silent and cancelled turns --------------------------------------------


def test_sleepy_agent_streams_ticks_until_done():
    async def main():
        async with agent("sleepy_agent.py", "--interval", "0.05") as sleepy:
            await sleepy.handshake()
            result = await sleepy.prompt(await sleepy.new_session(), "0.3")
            texts = sleepy.client.texts()
            assert result.stop_reason == "end_turn"
            assert texts == [f"tick {k} " for k in range(1, 7)] + ["done"]
    run(main())


def test_sleepy_agent_ends_its_turn_cancelled_on_session_cancel():
    async def main():
        async with agent("sleepy_agent.py", "--seconds", "600") as sleepy:
            await sleepy.handshake()
            session = await sleepy.new_session()
            turn = asyncio.create_task(sleepy.prompt(session, "long"))
            await eventually(lambda: len(sleepy.client.updates) >= 1)
            await sleepy.connection.cancel(session_id=session)
            result = await turn
            assert result.stop_reason == "cancelled"
            assert sleepy.client.texts()[-1] == "cancelled"
    run(main())


def test_silent_agent_never_answers_ignores_cancel_and_sigterm_and_dies_with_its_group():
    async def main():
        async with agent("silent_agent.py", "--ignore-sigterm", "--spawn-child") as silent:
            await silent.handshake()
            session = await silent.new_session()
            turn = asyncio.create_task(silent.prompt(session, "anything"))
            await eventually(lambda: any("child pid" in line for line in silent.stderr_lines))
            child = int(next(line for line in silent.stderr_lines if "child pid" in line).rsplit(" ", 1)[1])
            assert os.getpgid(child) == silent.process.pid  # the child is in the agent's group
            await silent.connection.cancel(session_id=session)
            await eventually(lambda: any("ignoring it" in line for line in silent.stderr_lines))
            os.killpg(silent.process.pid, signal.SIGTERM)
            await asyncio.sleep(0.3)
            assert not turn.done() and silent.process.returncode is None  # no answer; SIGTERM ignored
            assert not any(m for m in silent.incoming() if "result" in m and m.get("id") == 2)
            os.killpg(silent.process.pid, signal.SIGKILL)
            assert await silent.process.wait() == -signal.SIGKILL
            with pytest.raises(ConnectionError):
                await turn  # the SDK fails the pending prompt when stdout closes
            await eventually(lambda: not _alive(child))
    run(main())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# --- crash, garbage, huge line ---------------------------------------------------------


def test_crashing_agent_exits_mid_turn_with_a_stderr_line_and_the_count_survives(tmp_path: Path):
    async def main():
        async with agent("crashing_agent.py", "--state-dir", str(tmp_path)) as crashing:
            await crashing.handshake()
            session = await crashing.new_session()
            await crashing.prompt(session, "one")
            with pytest.raises(ConnectionError):
                await crashing.prompt(session, "crash")
            assert await crashing.process.wait() == 3
            await eventually(lambda: any("simulated crash mid-turn" in line for line in crashing.stderr_lines))
            assert crashing.client.texts() == ["1", "about to crash"]

        async with agent("crashing_agent.py", "--state-dir", str(tmp_path)) as respawned:
            await respawned.handshake()
            await respawned.connection.load_session(cwd="/", session_id=session, mcp_servers=[])
            await respawned.prompt(session, "two")
            assert respawned.client.texts()[-1] == "2"  # the crashed prompt did not count
    run(main())


class RawAgent:
    """A minimal JSON-RPC line client: sends requests, returns the raw lines read."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self._next_id = 0

    async def request(self, method: str, params: dict[str, Any]) -> list[bytes]:
        """Sends a request; returns every line read up to and including its response."""
        request_id = self._next_id
        self._next_id += 1
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                                             "params": params}).encode() + b"\n")
        await self.process.stdin.drain()
        lines = []
        while True:
            line = await self.process.stdout.readline()
            assert line, "the agent closed stdout"
            lines.append(line)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("id") == request_id and "method" not in message:
                return lines

    async def open_session(self) -> str:
        await self.request("initialize", {"protocolVersion": 1, "clientCapabilities": {}})
        response = await self.request("session/new", {"cwd": "/", "mcpServers": []})
        return json.loads(response[-1])["result"]["sessionId"]

    async def prompt(self, session_id: str, text: str) -> list[bytes]:
        return await self.request("session/prompt", {"sessionId": session_id,
                                                      "prompt": [{"type": "text", "text": text}]})


@asynccontextmanager
async def raw_agent(script: str, *arguments: str) -> AsyncIterator[RawAgent]:
    process = await spawn(AGENTS / script, *arguments)
    try:
        yield RawAgent(process)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await process.communicate()


def chunk_text(line: bytes) -> str:
    message = json.loads(line)
    assert message["method"] == "session/update"
    return message["params"]["update"]["content"]["text"]


def test_garbage_agent_writes_each_kind_of_garbage_between_two_messages(tmp_path: Path):
    async def main():
        async with raw_agent("garbage_agent.py", "--state-dir", str(tmp_path)) as garbage:
            session = await garbage.open_session()
            assert [chunk_text(line) for line in (await garbage.prompt(session, "fine"))[:-1]] == ["1"]
            for count, (trigger, expected) in enumerate([
                ("garbage", b"this line is not JSON-RPC: {oops\n"),
                ("garbage-json", b'{"hello":"world"}\n'),
                ("garbage-binary", b"\xff\xfe\x00\x80\n"),
            ], start=2):
                lines = await garbage.prompt(session, trigger)
                assert len(lines) == 4
                assert chunk_text(lines[0]) == "garbage follows"
                assert lines[1] == expected
                assert chunk_text(lines[2]) == str(count)
                assert json.loads(lines[3])["result"] == {"stopReason": "end_turn"}
    run(main())


def test_huge_line_agent_writes_one_well_formed_line_longer_than_64_MiB(tmp_path: Path):
    async def main():
        async with raw_agent("huge_line_agent.py", "--state-dir", str(tmp_path)) as huge:
            session = await huge.open_session()
            lines = await huge.prompt(session, "huge")
            assert len(lines) == 3
            assert len(lines[0]) > 64 * 1024 * 1024
            assert chunk_text(lines[0]) == "x" * (64 * 1024 * 1024)
            assert chunk_text(lines[1]) == "1"
            del lines
            assert [chunk_text(line) for line in (await huge.prompt(session, "small"))[:-1]] == ["2"]
    run(main())


# --- late updates, permission, fast ------------------------------------------------------


def test_late_updates_agent_sends_updates_after_its_prompt_result():
    async def main():
        async with agent("late_updates_agent.py") as late:
            await late.handshake()
            session = await late.new_session()
            for turn in (1, 2):
                result = await late.prompt(session, "go")
                assert result.stop_reason == "end_turn"
                await eventually(lambda: f"late {turn}" in late.client.texts())
            incoming = late.incoming()
            summary = []
            for message in incoming[2:]:  # after initialize and session/new
                if "result" in message:
                    summary.append(("result", message["result"]["stopReason"]))
                else:
                    update = message["params"]["update"]
                    summary.append((update["sessionUpdate"], update.get("content", {}).get("text")
                                    or f'{update["toolCallId"]} {update["status"]}'))
            assert summary == [
                ("agent_message_chunk", "answer 1"), ("tool_call", "late-call-1 pending"), ("result", "end_turn"),
                ("agent_message_chunk", "late 1"), ("tool_call_update", "late-call-1 completed"),
                ("agent_message_chunk", "answer 2"), ("tool_call", "late-call-2 pending"), ("result", "end_turn"),
                ("agent_message_chunk", "late 2"), ("tool_call_update", "late-call-2 completed"),
            ]
    run(main())


def test_permission_agent_acts_on_the_option_selected():
    choices = [("allow-once", True), ("allow-always", True), ("reject-once", False), ("reject-always", False)]
    answers = iter(choices)

    async def answer(options: list[Any]) -> RequestPermissionResponse:
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=next(answers)[0]))

    async def main():
        async with agent("permission_agent.py", client=RecordingClient(answer)) as asking:
            await asking.handshake()
            for option, granted in choices:
                asking.client.updates.clear()
                asking.client.permission_requests.clear()
                session = await asking.new_session()
                result = await asking.prompt(session, "edit notes.txt")
                assert result.stop_reason == "end_turn"
                (_, tool_call, options), = asking.client.permission_requests
                assert tool_call.tool_call_id == "edit-1"
                assert [(o.option_id, o.kind) for o in options] == [
                    ("allow-once", "allow_once"), ("allow-always", "allow_always"),
                    ("reject-once", "reject_once"), ("reject-always", "reject_always")]
                statuses = [u.status for _, u in asking.client.updates if u.session_update == "tool_call_update"]
                assert statuses == (["in_progress", "completed"] if granted else ["failed"])
                verdict = "granted" if granted else "denied"
                assert asking.client.texts() == [f"permission {verdict}: {option}"]
    run(main())


def test_permission_agent_ends_cancelled_when_cancel_answers_the_pending_request_cancelled():
    state: dict[str, asyncio.Event] = {}

    async def answer(options: list[Any]) -> RequestPermissionResponse:
        state["asked"].set()
        await state["cancel_sent"].wait()
        return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))

    async def main():
        state["asked"], state["cancel_sent"] = asyncio.Event(), asyncio.Event()
        async with agent("permission_agent.py", client=RecordingClient(answer)) as asking:
            await asking.handshake()
            session = await asking.new_session()
            turn = asyncio.create_task(asking.prompt(session, "edit"))
            await state["asked"].wait()
            await asking.connection.cancel(session_id=session)
            state["cancel_sent"].set()
            assert (await turn).stop_reason == "cancelled"
            assert [u.status for _, u in asking.client.updates if u.session_update == "tool_call_update"] == ["failed"]
    run(main())


def test_fast_agent_streams_n_chunks_in_order():
    async def main():
        async with agent("fast_agent.py") as fast:
            await fast.handshake()
            session = await fast.new_session()
            result = await fast.prompt(session, "1000")
            assert result.stop_reason == "end_turn"
            assert fast.client.texts() == [f"{i} " for i in range(1000)]
            await fast.prompt(session, "not a number")
            assert fast.client.texts()[-1] == "0 "
    run(main())
