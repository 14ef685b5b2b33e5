"""ACP test agent: sends session/update notifications after its session/prompt result.

Real agents do this (opencode #17505 and #25421, claude-agent-acp #824: tool-call
updates and the tail of a message arrive after the prompt result), so Switchboard
needs a documented rule for such late updates: not lost silently, and never
attached to the wrong turn. Each prompt (turn N of its session) streams
`agent_message_chunk` "answer N" and a `tool_call` "late-call-N" (pending), and
returns `end_turn`. Once that result has been written to stdout (the agent
watches its own outgoing messages, so this is an ordering, not a race), and after
`--delay` seconds (default 0), it sends:

  agent_message_chunk  "late N"
  tool_call_update     late-call-N completed

With a delay longer than the gap between two prompts, the late updates of turn N
arrive while turn N+1 runs, which is the case where they must not be attached to
turn N+1.

Usage: .venv-acp/bin/python Tests/Agents/late_updates_agent.py [--delay SECONDS]
"""

import argparse
import asyncio
from typing import Any
from uuid import uuid4

from acp import (
    NewSessionResponse,
    PromptResponse,
    run_agent,
    start_tool_call,
    text_block,
    update_agent_message,
    update_tool_call,
)
from acp.connection import StreamDirection, StreamEvent

from agent_support import MinimalAgent, log


class LateUpdatesAgent(MinimalAgent):
    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._turns: dict[str, int] = {}
        # JSON-RPC id of a running session/prompt -> (session id, turn number)
        self._prompts: dict[Any, tuple[str, int]] = {}

    async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
        session_id = uuid4().hex
        self._turns[session_id] = 0
        return NewSessionResponse(session_id=session_id)

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        turn = self._turns[session_id]
        await self._conn.session_update(session_id=session_id, update=update_agent_message(text_block(f"answer {turn}")))
        await self._conn.session_update(session_id=session_id,
                                        update=start_tool_call(f"late-call-{turn}", "Slow tool", kind="other", status="pending"))
        return PromptResponse(stop_reason="end_turn")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        return None

    def observe(self, event: StreamEvent) -> Any:
        """Connection observer: sees every message in and out, in order."""
        message = event.message
        if event.direction is StreamDirection.INCOMING and message.get("method") == "session/prompt":
            session_id = (message.get("params") or {}).get("sessionId")
            if session_id in self._turns:
                self._turns[session_id] += 1
                self._prompts[message.get("id")] = (session_id, self._turns[session_id])
            return None
        if event.direction is StreamDirection.OUTGOING and "method" not in message:
            prompt = self._prompts.pop(message.get("id"), None)
            if prompt is not None and "result" in message:
                return self._send_late(*prompt)  # the SDK runs the returned coroutine as a task
        return None

    async def _send_late(self, session_id: str, turn: int) -> None:
        if self._delay > 0:
            await asyncio.sleep(self._delay)
        log(f"sending the late updates of turn {turn}")
        await self._conn.session_update(session_id=session_id, update=update_agent_message(text_block(f"late {turn}")))
        await self._conn.session_update(session_id=session_id,
                                        update=update_tool_call(f"late-call-{turn}", status="completed"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.0)
    agent = LateUpdatesAgent(parser.parse_args().delay)
    asyncio.run(run_agent(agent, observers=[agent.observe]))
