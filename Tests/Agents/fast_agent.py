"""ACP test agent for the benchmark: a prompt "N" streams N small chunks as fast as it can.

For docs/BENCHMARKS.md: the broker's overhead on an agent turn (time to first chunk
and chunks/s through Switchboard against the same agent driven directly over its
stdio). Each chunk is an `agent_message_chunk` whose text is the chunk's index
and a space ("0 ", "1 ", ...), so a reader can check order and count; the result
is `end_turn`. A prompt that is not a number streams one chunk. Per chunk it does
the least the SDK allows: the notification's params are built as plain JSON and
sent through the SDK's JSON-RPC connection, skipping the typed model's validation.

Usage: .venv-acp/bin/python Tests/Agents/fast_agent.py
"""

from typing import Any

from acp import PromptResponse

from agent_support import MinimalAgent, prompt_text, serve


class FastAgent(MinimalAgent):
    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        try:
            count = max(0, int(prompt_text(prompt).strip()))
        except ValueError:
            count = 1
        send = self._conn._conn.send_notification  # the SDK's JSON-RPC connection
        for index in range(count):
            await send("session/update", {
                "sessionId": session_id,
                "update": {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": f"{index} "}},
            })
        return PromptResponse(stop_reason="end_turn")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        return None


if __name__ == "__main__":
    serve(FastAgent())
