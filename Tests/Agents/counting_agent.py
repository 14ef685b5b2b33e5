"""ACP test agent: answers each prompt with the number of prompts its ACP session has seen.

For Switchboard's tests of one live agent per session: ten prompts to one session
must be answered 1, 2, ..., 10 by one process, and after hibernation, a crash or a
server restart the respawned process must continue the count (N+1) because
Switchboard restored the conversation with `session/load`. The agent advertises
`loadSession: true`; on `session/load` it replays the conversation (each prompt as
a `user_message_chunk`, each answer as an `agent_message_chunk`) before answering,
as the spec asks, so a test can check the replay is not streamed again as output.

State: one JSON file per ACP session in `--state-dir` (or $ACP_TEST_AGENT_STATE_DIR),
which is what lets a fresh process load a session. With `--no-load-session` it
advertises `loadSession: false`, so a respawn starts a new conversation (count 1)
and Switchboard must say "conversation reset".

Usage: .venv-acp/bin/python Tests/Agents/counting_agent.py [--state-dir DIR] [--no-load-session]
"""

from agent_support import CountingAgent, base_arguments, serve

if __name__ == "__main__":
    arguments = base_arguments(__doc__.splitlines()[0]).parse_args()
    serve(CountingAgent(arguments.state_dir, load_session=not arguments.no_load_session))
