"""ACP test agent: the counting agent, except that a prompt "crash" kills it mid-turn.

For Switchboard's crash handling: the running turn must end UNAVAILABLE with the
agent's stderr tail, and the next prompt must run on a new process with the
conversation restored by `session/load`. On a prompt whose text is exactly
"crash", the agent streams one chunk ("about to crash"), writes the stderr line
"crashing_agent: simulated crash mid-turn (exit 3)" and exits with status 3 at
once (os._exit: no cleanup, no prompt result). The crashed prompt is not counted.
Every other prompt is answered like counting_agent.py (same options, same state
files), so the count continues after the crash: 1, 2, crash, 3.

Usage: .venv-acp/bin/python Tests/Agents/crashing_agent.py [--state-dir DIR] [--no-load-session]
"""

import os

from acp import text_block, update_agent_message

from agent_support import CountingAgent, base_arguments, log, serve

EXIT_STATUS = 3


class CrashingAgent(CountingAgent):
    async def before_answer(self, session_id: str, text: str) -> None:
        if text != "crash":
            return
        # The SDK has written the chunk to the pipe when this returns (one small write).
        await self._conn.session_update(session_id=session_id, update=update_agent_message(text_block("about to crash")))
        log(f"simulated crash mid-turn (exit {EXIT_STATUS})")
        os._exit(EXIT_STATUS)


if __name__ == "__main__":
    arguments = base_arguments(__doc__.splitlines()[0]).parse_args()
    serve(CrashingAgent(arguments.state_dir, load_session=not arguments.no_load_session))
