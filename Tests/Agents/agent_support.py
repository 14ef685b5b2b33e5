"""Shared pieces of the project's ACP test agents (not an agent itself).

The agents in this directory are real ACP agents built on the official Python SDK
(`agent-client-protocol`, its `acp` module), run by Switchboard's tests as
`.venv-acp/bin/python Tests/Agents/NAME.py [options]` (scripts/bootstrap.sh makes
that virtual environment). This module holds what several of them share: reading
a prompt's text, and `CountingAgent`, the agent that answers with the number of
prompts its ACP session has seen and restores that count with `session/load`
after a respawn. The misbehaving agents (crash, garbage, huge line) extend it so
a test can check that the conversation survives the fault.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

from acp import (
    Agent,
    InitializeResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PromptResponse,
    RequestError,
    run_agent,
    text_block,
    update_agent_message,
    update_user_message,
)
from acp.interfaces import Client
from acp.schema import AgentCapabilities, Implementation

# The environment variable naming the counting agents' state directory, when
# `--state-dir` is not given.
STATE_DIR_ENV = "ACP_TEST_AGENT_STATE_DIR"

_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


def prompt_text(prompt: list[Any]) -> str:
    """The concatenated text of a prompt's text blocks (other blocks are ignored)."""
    parts = []
    for block in prompt:
        text = block.get("text") if isinstance(block, dict) else getattr(block, "text", None)
        if isinstance(text, str):
            parts.append(text)
    return "".join(parts)


def log(message: str) -> None:
    """One line on stderr: the agent's log, which Switchboard keeps in its stderr ring."""
    print(f"{Path(sys.argv[0]).stem}: {message}", file=sys.stderr, flush=True)


def base_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--state-dir",
        default=os.environ.get(STATE_DIR_ENV),
        help=f"directory keeping each ACP session's count and history (default: ${STATE_DIR_ENV}; "
        "without either, sessions live in memory only and session/load cannot restore them)",
    )
    parser.add_argument(
        "--no-load-session",
        action="store_true",
        help="advertise loadSession: false (a respawn then starts a new conversation)",
    )
    return parser


class MinimalAgent(Agent):
    """What every test agent does the same way: keeps its connection to the
    client, answers `initialize` with the client's protocol version, and gives
    each `session/new` a fresh id. Subclasses add their prompt behaviour."""

    _conn: Client

    def on_connect(self, conn: Client) -> None:
        self._conn = conn

    async def initialize(self, protocol_version: int, **kwargs: Any) -> InitializeResponse:
        return InitializeResponse(protocol_version=protocol_version)

    async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
        return NewSessionResponse(session_id=uuid4().hex)


class CountingAgent(Agent):
    """Answers each prompt with the number of prompts its ACP session has seen: 1, 2, 3...

    The count and the conversation (prompt text and answer per turn) are kept per
    ACP session id, in `state_dir` when one is given (one JSON file per session,
    replaced atomically after each turn), so a respawned process restores them with
    `session/load`, which first replays the conversation as `user_message_chunk` and
    `agent_message_chunk` notifications, as the spec asks, then answers.
    """

    _conn: Client

    def __init__(self, state_dir: str | None, load_session: bool = True) -> None:
        self._state_dir = Path(state_dir) if state_dir else None
        if self._state_dir is not None:
            self._state_dir.mkdir(parents=True, exist_ok=True)
        self._load_session = load_session
        self._sessions: dict[str, dict[str, Any]] = {}

    def on_connect(self, conn: Client) -> None:
        self._conn = conn

    async def initialize(self, protocol_version: int, client_capabilities: Any = None,
                         client_info: Any = None, **kwargs: Any) -> InitializeResponse:
        return InitializeResponse(
            protocol_version=protocol_version,
            agent_capabilities=AgentCapabilities(load_session=self._load_session),
            agent_info=Implementation(name=Path(sys.argv[0]).stem, version="1"),
        )

    async def new_session(self, cwd: str, additional_directories: Any = None,
                          mcp_servers: Any = None, **kwargs: Any) -> NewSessionResponse:
        session_id = uuid4().hex
        self._sessions[session_id] = {"count": 0, "history": [], "cwd": cwd}
        self._save(session_id)
        log(f"new session {session_id} in {cwd} (pid {os.getpid()})")
        return NewSessionResponse(session_id=session_id)

    async def load_session(self, cwd: str, session_id: str, mcp_servers: Any = None,
                           additional_directories: Any = None, **kwargs: Any) -> LoadSessionResponse:
        if not self._load_session:
            raise RequestError.method_not_found("session/load")
        state = self._sessions.get(session_id) or self._read(session_id)
        if state is None:
            raise RequestError.resource_not_found(session_id)
        self._sessions[session_id] = state
        for turn in state["history"]:
            await self._conn.session_update(session_id=session_id, update=update_user_message(text_block(turn["user"])))
            await self._conn.session_update(session_id=session_id, update=update_agent_message(text_block(turn["agent"])))
        log(f"loaded session {session_id} at count {state['count']} (pid {os.getpid()})")
        return LoadSessionResponse()

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        state = self._session(session_id)
        text = prompt_text(prompt)
        await self.before_answer(session_id, text)
        answer = str(state["count"] + 1)
        await self._conn.session_update(session_id=session_id, update=update_agent_message(text_block(answer)))
        state["count"] += 1
        state["history"].append({"user": text, "agent": answer})
        self._save(session_id)
        return PromptResponse(stop_reason="end_turn")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        # A counting turn finishes at once: nothing to stop.
        return None

    async def before_answer(self, session_id: str, text: str) -> None:
        """Hook for the misbehaving agents: runs before the answer is sent and counted."""

    def _session(self, session_id: str) -> dict[str, Any]:
        state = self._sessions.get(session_id)
        if state is None:
            raise RequestError.invalid_params({"sessionId": session_id, "reason": "unknown session"})
        return state

    def _path(self, session_id: str) -> Path | None:
        if self._state_dir is None or not _SESSION_ID.match(session_id):
            return None
        return self._state_dir / f"{session_id}.json"

    def _read(self, session_id: str) -> dict[str, Any] | None:
        path = self._path(session_id)
        if path is None or not path.exists():
            return None
        return json.loads(path.read_text())

    def _save(self, session_id: str) -> None:
        path = self._path(session_id)
        if path is None:
            return
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._sessions[session_id]))
        os.replace(temporary, path)


def serve(agent: Agent) -> None:
    """Runs `agent` over stdin/stdout until the client closes stdin."""
    asyncio.run(run_agent(agent))
