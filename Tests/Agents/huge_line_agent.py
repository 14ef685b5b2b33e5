"""ACP test agent: the counting agent, except that a prompt "huge" makes it write one 64 MiB line.

For Switchboard's line-length limit: a line from the agent longer than the
configured largest line must end the running turn UNAVAILABLE ("line longer than
N bytes") without buffering it whole, so memory stays bounded; the process is
dropped and the next prompt respawns it. On a prompt whose text is exactly "huge"
the agent sends one well-formed `session/update` (an `agent_message_chunk` whose
text is LINE_BYTES letters "x", so the line is slightly longer than LINE_BYTES),
then answers like counting_agent.py. Every other prompt is answered like
counting_agent.py (same options and state).

Usage: .venv-acp/bin/python Tests/Agents/huge_line_agent.py [--line-bytes 67108864] [--state-dir DIR]
"""

from acp import text_block, update_agent_message

from agent_support import CountingAgent, base_arguments, log, serve

DEFAULT_LINE_BYTES = 64 * 1024 * 1024


class HugeLineAgent(CountingAgent):
    def __init__(self, state_dir: str | None, load_session: bool, line_bytes: int) -> None:
        super().__init__(state_dir, load_session)
        self._line_bytes = line_bytes

    async def before_answer(self, session_id: str, text: str) -> None:
        if text != "huge":
            return
        log(f"writing a line of more than {self._line_bytes} bytes")
        await self._conn.session_update(session_id=session_id,
                                        update=update_agent_message(text_block("x" * self._line_bytes)))


if __name__ == "__main__":
    parser = base_arguments(__doc__.splitlines()[0])
    parser.add_argument("--line-bytes", type=int, default=DEFAULT_LINE_BYTES)
    arguments = parser.parse_args()
    serve(HugeLineAgent(arguments.state_dir, not arguments.no_load_session, arguments.line_bytes))
