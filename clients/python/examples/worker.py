"""Serves task queue Q by uppercasing prompts word by word: python3 worker.py [--socket PATH] [Q]"""
import sys

from switchboard_client import Assignment, register

args = sys.argv[1:]
path = args[1] if args[:1] == ["--socket"] else None  # default: $SWITCHBOARD_SOCKET, ...
with register((args[2 if path else 0:] or ["upper"])[0], capacity=1, socket_path=path) as worker:
    print(f"worker {worker.worker_id} serving", file=sys.stderr)
    for event in worker:  # assignments and cancellations; heartbeats are answered for us
        if isinstance(event, Assignment):
            for i, word in enumerate(event.prompt.upper().split(" ")):
                worker.output(event.turn_id, (" " if i else "") + word)
            worker.finish(event.turn_id)
