"""Attach and turn history (ListTurns) against real servers (see conftest.py)."""
from __future__ import annotations

import socket
import time
from typing import List

import pytest

from switchboard_client import (
    Accepted,
    Attached,
    Client,
    Finished,
    Output,
    StatusCode,
    SwitchboardError,
    switchboard_pb2 as pb,
)

from conftest import Server


def words(n: int, prefix: str = "w") -> str:
    return " ".join(f"{prefix}{i}" for i in range(1, n + 1))


def run_turn(client: Client, session_id: str, prompt: str) -> str:
    turn_id = ""
    for event in client.prompt(session_id, prompt):
        if isinstance(event, Accepted):
            turn_id = event.turn_id
    return turn_id


def test_list_turns_pages_oldest_first(client: Client, session_id: str) -> None:
    client.create_session(session_id)
    prompts = [f"turn {i} " + words(i + 1) for i in range(5)]
    ids = [run_turn(client, session_id, p) for p in prompts]

    first = client.list_turns(session_id, page_size=2)
    assert [t.summary.turn_id for t in first.turns] == ids[:2]
    assert first.next_page_token
    assert first.turns[0].prompt == ""  # without include_output
    second = client.list_turns(session_id, page_size=2, page_token=first.next_page_token)
    assert [t.summary.turn_id for t in second.turns] == ids[2:4]
    third = client.list_turns(session_id, page_size=2, page_token=second.next_page_token)
    assert [t.summary.turn_id for t in third.turns] == ids[4:]
    assert third.next_page_token == ""

    turns = list(client.iter_turns(session_id, include_output=True, page_size=2))
    assert [t.summary.turn_id for t in turns] == ids
    assert [t.prompt for t in turns] == prompts
    assert [t.output.decode() for t in turns] == prompts
    assert all(t.summary.state == pb.TURN_STATE_FINISHED and t.summary.code == StatusCode.OK for t in turns)
    assert not any(t.output_dropped for t in turns)


def test_list_turns_unknown_session(client: Client) -> None:
    with pytest.raises(SwitchboardError) as info:
        client.list_turns("py-no-such-session")
    assert info.value.code == StatusCode.NOT_FOUND


def test_attach_replays_a_finished_turn(client: Client, session_id: str) -> None:
    client.create_session(session_id)
    prompt = words(30)
    turn_id = run_turn(client, session_id, prompt)

    events = list(client.attach(session_id, turn_id))
    assert events[0] == Attached(turn_id, pb.TURN_STATE_FINISHED, 30)
    chunks = [e for e in events if isinstance(e, Output)]
    assert [c.sequence for c in chunks] == list(range(1, 31))
    assert b"".join(c.data for c in chunks).decode() == prompt
    assert isinstance(events[-1], Finished) and events[-1].turn_id == turn_id

    # After chunk 10: only 11...30. An empty turn id is the most recent turn.
    events = list(client.attach(session_id, after_sequence=10))
    assert isinstance(events[0], Attached) and events[0].turn_id == turn_id
    chunks = [e for e in events if isinstance(e, Output)]
    assert [c.sequence for c in chunks] == list(range(11, 31))
    assert b"".join(c.data for c in chunks).decode() == prompt[len(" ".join(prompt.split(" ")[:10])) + 1:]


def test_attach_unknown_turn_and_session(client: Client, session_id: str) -> None:
    client.create_session(session_id)
    with pytest.raises(SwitchboardError) as info:
        list(client.attach(session_id, "t-000000000000"))
    assert info.value.code == StatusCode.NOT_FOUND
    with pytest.raises(SwitchboardError) as info:
        list(client.attach("py-no-such-session"))
    assert info.value.code == StatusCode.NOT_FOUND


def test_resume_after_a_lost_connection(slow_server: Server, session_id: str) -> None:
    """A client that loses its connection mid-turn attaches after the last chunk
    it has, on a new connection, and ends with exactly the turn's output."""
    prompt = words(25)
    with slow_server.connect() as first:
        first.create_session(session_id)
        stream = first.prompt(session_id, prompt)
        received: List[Output] = []
        turn_id = ""
        for event in stream:
            if isinstance(event, Accepted):
                turn_id = event.turn_id
            if isinstance(event, Output):
                received.append(event)
                if len(received) == 5:
                    break
        # The connection dies under the running turn.
        first._sock.shutdown(socket.SHUT_RDWR)
    with slow_server.connect() as second:
        events = list(second.attach(session_id, turn_id, after_sequence=received[-1].sequence))
    assert isinstance(events[0], Attached)
    assert events[0].turn_id == turn_id
    received += [e for e in events if isinstance(e, Output)]
    assert [c.sequence for c in received] == list(range(1, 26))
    assert b"".join(c.data for c in received).decode() == prompt
    assert isinstance(events[-1], Finished)


def test_cancel_on_disconnect(slow_server: Server, session_id: str) -> None:
    with slow_server.connect() as first:
        first.create_session(session_id)
        for event in first.prompt(session_id, words(50), cancel_on_disconnect=True):
            if isinstance(event, Output):
                break
        first._sock.shutdown(socket.SHUT_RDWR)
    with slow_server.connect() as second:
        deadline = time.monotonic() + 10
        while True:
            turns = list(second.iter_turns(session_id))
            if turns and turns[0].summary.state == pb.TURN_STATE_FINISHED:
                break
            assert time.monotonic() < deadline, "the turn never ended"
            time.sleep(0.05)
        assert turns[0].summary.code == StatusCode.CANCELLED
