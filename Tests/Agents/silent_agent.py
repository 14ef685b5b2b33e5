"""ACP test agent: handshakes normally, then never answers session/prompt and ignores session/cancel.

For Switchboard's hung-agent handling: deadline and stall must end such a turn
within the cancel grace plus a margin by killing the agent's process group, and a
hung agent must hold only its own session (openab #997 and #1300: hung turns held
pool slots for 30 minutes). It writes nothing to stdout once a prompt arrives,
so the stall timeout applies too.

  --ignore-sigterm  the agent ignores SIGTERM, so only the SIGKILL escalation ends it
  --spawn-child     each prompt starts a child (`sleep 3600`) in the agent's process
                    group and logs "child pid N" on stderr, so a test can check that
                    no process of the group survives the kill

Usage: .venv-acp/bin/python Tests/Agents/silent_agent.py [--ignore-sigterm] [--spawn-child]
"""

import argparse
import asyncio
import signal
import subprocess
from typing import Any

from acp import PromptResponse

from agent_support import MinimalAgent, log, serve


class SilentAgent(MinimalAgent):
    def __init__(self, spawn_child: bool) -> None:
        self._spawn_child = spawn_child
        self._children: list[subprocess.Popen[bytes]] = []

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        if self._spawn_child:
            child = subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._children.append(child)
            log(f"child pid {child.pid}")
        log("prompt received; never answering")
        await asyncio.Event().wait()  # never set
        raise AssertionError("unreachable")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        log("session/cancel received; ignoring it")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--spawn-child", action="store_true")
    arguments = parser.parse_args()
    if arguments.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(SilentAgent(arguments.spawn_child))
