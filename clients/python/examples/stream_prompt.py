"""Streams a prompt's answer: python3 stream_prompt.py [--socket PATH] WORDS..."""
import sys

from switchboard_client import Client, SwitchboardError

args = sys.argv[1:]
path = args[1] if args[:1] == ["--socket"] else None  # default: $SWITCHBOARD_SOCKET, ...
try:
    with Client.connect(path) as client:
        for text in client.prompt(client.create_session().id, " ".join(args[2 if path else 0:]) or "hello").text():
            print(text, end="", flush=True)
        print()
except SwitchboardError as error:
    sys.exit(f"stream_prompt: {error}")
