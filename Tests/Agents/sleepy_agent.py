"""ACP test agent: each turn takes SECONDS while it streams, and honours session/cancel.

For Switchboard's per-session locking (while session A's agent runs a 3 s turn,
status, create, get, list and a whole turn on session B finish first), for queued
prompts, deadlines and cancellation that the agent cooperates with. A turn streams
round(SECONDS / INTERVAL) chunks "tick K ", each followed by a pause of INTERVAL
seconds (so at least SECONDS in all), then "done"
and stopReason `end_turn`. A `session/cancel` for the session ends the running
turn at once with stopReason `cancelled` (after a last chunk "cancelled"), as the
spec asks. A prompt whose text is a number overrides SECONDS for that turn.

Usage: .venv-acp/bin/python Tests/Agents/sleepy_agent.py [--seconds 3] [--interval 0.1]
"""

import argparse
import asyncio
from typing import Any

from acp import PromptResponse, text_block, update_agent_message

from agent_support import MinimalAgent, prompt_text, serve


class SleepyAgent(MinimalAgent):
    def __init__(self, seconds: float, interval: float) -> None:
        self._seconds = seconds
        self._interval = interval
        self._cancels: dict[str, asyncio.Event] = {}

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        try:
            seconds = float(prompt_text(prompt).strip())
        except ValueError:
            seconds = self._seconds
        cancelled = self._cancels[session_id] = asyncio.Event()
        # A fixed number of ticks, each followed by a pause of INTERVAL: the turn
        # lasts at least SECONDS, and what it streams does not depend on how
        # loaded the machine is.
        ticks = max(1, round(seconds / self._interval))

        async def say(text: str) -> None:
            await self._conn.session_update(session_id=session_id, update=update_agent_message(text_block(text)))

        for tick in range(1, ticks + 1):
            await say(f"tick {tick} ")
            try:
                await asyncio.wait_for(cancelled.wait(), timeout=self._interval)
            except asyncio.TimeoutError:
                continue
            await say("cancelled")
            return PromptResponse(stop_reason="cancelled")
        await say("done")
        return PromptResponse(stop_reason="end_turn")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        event = self._cancels.get(session_id)
        if event is not None:
            event.set()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--interval", type=float, default=0.1)
    arguments = parser.parse_args()
    serve(SleepyAgent(arguments.seconds, arguments.interval))
