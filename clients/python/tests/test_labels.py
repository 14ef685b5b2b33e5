"""Issue 12, item 4: labels are bounded (checked here before sending, and by the
server), and listings fit the reader's frame whatever the sessions hold."""
from __future__ import annotations

from typing import Dict, Iterator

import pytest

from switchboard_client import Client, StatusCode, SwitchboardError, register
from switchboard_client import switchboard_pb2 as pb
from switchboard_client.client import _CREATE
from switchboard_client.labels import MAX_LABELS, NAME_RULE, VALUE_RULE, validate_labels

from conftest import Server


def largest_labels(tag: int) -> Dict[str, str]:
    """64 labels at the longest key (317 bytes) and value (63 bytes)."""
    prefix = ".".join(["p" * 62] * 4) + ".a"
    labels = {}
    for index in range(MAX_LABELS):
        name = f"n{tag}-{index}-{'n' * 63}"[:62] + "z"
        labels[f"{prefix}/{name}"] = "v" * 63
    return labels


@pytest.fixture(scope="module")
def label_server(tmp_socket_dir: str) -> Iterator[Server]:
    """A server of its own: these sessions are large on purpose."""
    s = Server(tmp_socket_dir, "labels", [])
    yield s
    s.stop()


@pytest.mark.parametrize(
    "labels, naming, rule",
    [
        ({"team": "x" * 100_000}, 'of label "team" (labels[0])', VALUE_RULE),
        ({"ok": "fine", "bad key": "v"}, 'invalid label key "bad key" (labels[1])', NAME_RULE),
        ({"team": "Zürich"}, 'invalid value "Zürich"', VALUE_RULE),
        ({f"k{i}": "" for i in range(65)}, "too many labels: 65 (at most 64)", ""),
    ],
)
def test_labels_checked_before_sending(client: Client, monkeypatch: pytest.MonkeyPatch,
                                       labels: Dict[str, str], naming: str, rule: str) -> None:
    def no_call(*args: object, **kwargs: object) -> None:
        raise AssertionError("a call was sent")

    monkeypatch.setattr(client, "_unary", no_call)
    with pytest.raises(SwitchboardError) as info:
        client.create_session("never", labels=labels)
    assert info.value.code == StatusCode.INVALID_ARGUMENT
    assert naming in info.value.message and rule in info.value.message, info.value.message


def test_largest_labels_accepted(label_server: Server) -> None:
    validate_labels(largest_labels(0))
    with label_server.connect() as c:
        s = c.create_session("largest", labels=largest_labels(0))
        assert {label.key: label.value for label in s.labels} == largest_labels(0)
        c.close_session("largest")


def test_server_refuses_the_attack(label_server: Server) -> None:
    """The issue's attack, sent past the client's own check: 14 labels of 100,000 bytes."""
    with label_server.connect() as c:
        payload = pb.Payload()
        for index in range(14):
            payload.create_session_request.labels.add(key=f"k{index}", value="x" * 100_000)
        payload.create_session_request.session_id = "attack"
        with pytest.raises(SwitchboardError) as info:
            c._unary(_CREATE, payload, "session", None)
        assert info.value.code == StatusCode.INVALID_ARGUMENT
        assert f'of label "k0" (labels[0]): {VALUE_RULE}' in info.value.message
        assert len(info.value.message) < 1024
        assert c.server_status().sessions_total == 0


def test_worker_labels_checked_before_connecting() -> None:
    with pytest.raises(SwitchboardError) as info:
        register("q", labels={"gpu": "a100 rocket"}, socket_path="/nonexistent/switchboard.sock")
    assert info.value.code == StatusCode.INVALID_ARGUMENT
    assert f"(register.labels[0]): {VALUE_RULE}" in info.value.message


def test_small_frame_reader_lists_every_session(label_server: Server) -> None:
    ids = [f"big-{100 + i}" for i in range(12)]
    with label_server.connect() as c:
        for index, sid in enumerate(ids):
            c.create_session(sid, labels=largest_labels(index))
    try:
        with label_server.connect(max_frame_size=16 * 1024) as small:
            status = small.server_status(include_sessions=True)
            assert status.sessions_total == 12
            assert len(status.sessions) + status.sessions_omitted == 12
            assert status.sessions_omitted >= 11
            listed = list(small.iter_sessions(page_size=1000))
            assert [s.id for s in listed] == ids
            assert all(s.labels_omitted and not s.labels for s in listed)
            assert small.get_session(ids[0]).labels_omitted
        with label_server.connect() as c:
            whole = c.get_session(ids[0])
            assert not whole.labels_omitted and len(whole.labels) == MAX_LABELS
    finally:
        with label_server.connect() as c:
            for sid in ids:
                c.close_session(sid)
