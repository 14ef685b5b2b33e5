"""ACP test agent: streams every kind of turn event Switchboard must carry, in a fixed order.

For Switchboard's typed turn events (thoughts, tool calls, plans, usage, unknown
kinds) and their numbering in the output sequence, history and Attach. Each prompt
(turn number N of its session, text T) produces these `session/update`
notifications, in this order, then the prompt result:

  1. agent_thought_chunk   "thinking about: T"
  2. plan                  two entries ("read the prompt" completed, "answer it" in_progress)
  3. tool_call             toolCallId "call-N", kind read, status pending, rawInput {"query": T}
  4. tool_call_update      call-N in_progress
  5. tool_call_update      call-N completed, content text "found: T", rawOutput {"matches": 1}
  6. usage_update          used 100*N, size 200000, cost {amount 0.01*N, currency USD}
  7. a kind no ACP schema has: {"sessionUpdate": "switchboard_test_future_kind",
     "turn": N, "detail": {...}} (sent as raw JSON through the SDK's connection,
     since the SDK's typed API only knows the schema's kinds; Switchboard must keep
     it as the agent sent it)
  8. agent_message_chunk   "answer: "
  9. agent_message_chunk   T

The result's stopReason is `end_turn`, or the one given with `--stop-reason`
(max_tokens, max_turn_requests, refusal, cancelled) to test stop-reason mapping.

Usage: .venv-acp/bin/python Tests/Agents/events_agent.py [--stop-reason REASON]
"""

import argparse
from typing import Any
from uuid import uuid4

from acp import (
    NewSessionResponse,
    PromptResponse,
    plan_entry,
    start_tool_call,
    text_block,
    tool_content,
    update_agent_message,
    update_agent_thought,
    update_plan,
    update_tool_call,
)
from acp.schema import Cost, UsageUpdate

from agent_support import MinimalAgent, prompt_text, serve

UNKNOWN_KIND = "switchboard_test_future_kind"


class EventsAgent(MinimalAgent):
    def __init__(self, stop_reason: str) -> None:
        self._stop_reason = stop_reason
        self._turns: dict[str, int] = {}

    async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
        session_id = uuid4().hex
        self._turns[session_id] = 0
        return NewSessionResponse(session_id=session_id)

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        self._turns[session_id] = turn = self._turns.get(session_id, 0) + 1
        text = prompt_text(prompt)
        call = f"call-{turn}"

        async def send(update: Any) -> None:
            await self._conn.session_update(session_id=session_id, update=update)

        await send(update_agent_thought(text_block(f"thinking about: {text}")))
        await send(update_plan([
            plan_entry("read the prompt", priority="high", status="completed"),
            plan_entry("answer it", priority="medium", status="in_progress"),
        ]))
        await send(start_tool_call(call, f"Look up {text}", kind="read", status="pending", raw_input={"query": text}))
        await send(update_tool_call(call, status="in_progress"))
        await send(update_tool_call(call, status="completed", content=[tool_content(text_block(f"found: {text}"))],
                                    raw_output={"matches": 1}))
        await send(UsageUpdate(session_update="usage_update", used=100 * turn, size=200000,
                               cost=Cost(amount=0.01 * turn, currency="USD")))
        # The SDK's typed API accepts only the schema's update kinds; a new kind goes
        # out as raw JSON through the SDK's own JSON-RPC connection (same writer, same order).
        await self._conn._conn.send_notification("session/update", {
            "sessionId": session_id,
            "update": {"sessionUpdate": UNKNOWN_KIND, "turn": turn,
                       "detail": {"nested": [1, "two", None, {"three": 3.5}], "flag": True}},
        })
        await send(update_agent_message(text_block("answer: ")))
        await send(update_agent_message(text_block(text)))
        return PromptResponse(stop_reason=self._stop_reason)

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop-reason", default="end_turn",
                        choices=["end_turn", "max_tokens", "max_turn_requests", "refusal", "cancelled"])
    serve(EventsAgent(parser.parse_args().stop_reason))
