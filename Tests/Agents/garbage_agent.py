"""ACP test agent: the counting agent, except that some prompts make it write a line that is not JSON-RPC.

For Switchboard's protocol-violation handling: a line from the agent that is not
JSON-RPC must end the running turn UNAVAILABLE with a message naming the cause
(and the stderr tail), the process is dropped, and the next prompt respawns it and
restores the conversation with `session/load`. On these prompt texts the agent
first streams a chunk ("garbage follows"), then writes the line straight to its
stdout, then carries on and answers like counting_agent.py (the turn is counted,
so a test sees whether Switchboard stopped reading or not):

  "garbage"         a line that is not JSON at all: `this line is not JSON-RPC: {oops`
  "garbage-json"    valid JSON that is no JSON-RPC message: `{"hello":"world"}`
  "garbage-binary"  bytes that are not UTF-8: 0xff 0xfe 0x00 0x80 "\\n"

Every other prompt is answered like counting_agent.py (same options and state).

Usage: .venv-acp/bin/python Tests/Agents/garbage_agent.py [--state-dir DIR] [--no-load-session]
"""

import os

from acp import text_block, update_agent_message

from agent_support import CountingAgent, base_arguments, log, serve

GARBAGE = {
    "garbage": b"this line is not JSON-RPC: {oops\n",
    "garbage-json": b'{"hello":"world"}\n',
    "garbage-binary": b"\xff\xfe\x00\x80\n",
}


class GarbageAgent(CountingAgent):
    async def before_answer(self, session_id: str, text: str) -> None:
        line = GARBAGE.get(text)
        if line is None:
            return
        await self._conn.session_update(session_id=session_id, update=update_agent_message(text_block("garbage follows")))
        # The SDK has written its last message when session_update returns (its writer
        # is idle), so a direct write to fd 1 lands after it and before the answer.
        os.write(1, line)
        log(f"wrote {len(line)} bytes of garbage ({text})")


if __name__ == "__main__":
    arguments = base_arguments(__doc__.splitlines()[0]).parse_args()
    serve(GarbageAgent(arguments.state_dir, load_session=not arguments.no_load_session))
