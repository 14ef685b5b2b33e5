"""ACP test agent: asks permission (session/request_permission) before each tool call.

For Switchboard's permission policy (`allow` or `deny` in the agent's
configuration now; a later issue lets a person answer) and for cancel, which must
answer a pending permission request `cancelled`. Each prompt (turn N) announces a
`tool_call` "edit-N" (kind edit, pending), then asks permission for it with four
options, one of each kind:

  optionId "allow-once"  kind allow_once      optionId "reject-once"  kind reject_once
  optionId "allow-always" kind allow_always   optionId "reject-always" kind reject_always

and acts on the outcome:

  selected allow-*   tool_call_update edit-N in_progress, then completed;
                     agent_message_chunk "permission granted: OPTION_ID"; end_turn
  selected reject-*  tool_call_update edit-N failed;
                     agent_message_chunk "permission denied: OPTION_ID"; end_turn
  cancelled          tool_call_update edit-N failed; stopReason cancelled

Usage: .venv-acp/bin/python Tests/Agents/permission_agent.py
"""

from typing import Any
from uuid import uuid4

from acp import (
    NewSessionResponse,
    PromptResponse,
    start_tool_call,
    text_block,
    update_agent_message,
    update_tool_call,
)
from acp.schema import AllowedOutcome, PermissionOption, ToolCallUpdate

from agent_support import MinimalAgent, serve

OPTIONS = [
    PermissionOption(option_id="allow-once", name="Allow once", kind="allow_once"),
    PermissionOption(option_id="allow-always", name="Always allow", kind="allow_always"),
    PermissionOption(option_id="reject-once", name="Reject", kind="reject_once"),
    PermissionOption(option_id="reject-always", name="Always reject", kind="reject_always"),
]


class PermissionAgent(MinimalAgent):
    def __init__(self) -> None:
        self._turns: dict[str, int] = {}

    async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
        session_id = uuid4().hex
        self._turns[session_id] = 0
        return NewSessionResponse(session_id=session_id)

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        self._turns[session_id] = turn = self._turns.get(session_id, 0) + 1
        call = f"edit-{turn}"

        async def send(update: Any) -> None:
            await self._conn.session_update(session_id=session_id, update=update)

        await send(start_tool_call(call, "Edit a file", kind="edit", status="pending", raw_input={"path": "notes.txt"}))
        response = await self._conn.request_permission(
            session_id=session_id,
            tool_call=ToolCallUpdate(tool_call_id=call, title="Edit a file", kind="edit", status="pending"),
            options=OPTIONS,
        )
        outcome = response.outcome
        if not isinstance(outcome, AllowedOutcome):
            await send(update_tool_call(call, status="failed"))
            return PromptResponse(stop_reason="cancelled")
        if outcome.option_id.startswith("allow"):
            await send(update_tool_call(call, status="in_progress"))
            await send(update_tool_call(call, status="completed"))
            await send(update_agent_message(text_block(f"permission granted: {outcome.option_id}")))
        else:
            await send(update_tool_call(call, status="failed"))
            await send(update_agent_message(text_block(f"permission denied: {outcome.option_id}")))
        return PromptResponse(stop_reason="end_turn")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        # The client answers the pending permission request `cancelled`; that ends the turn.
        return None


if __name__ == "__main__":
    serve(PermissionAgent())
