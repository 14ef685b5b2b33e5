"""Strings with a NUL byte or that are not valid UTF-8 are refused with
INVALID_ARGUMENT naming the field (docs/PROTOCOL.md, "Strings"): by the client
before sending, and by the server when a client does not check."""
from __future__ import annotations

import pytest

import switchboard_client.client as client_module
from switchboard_client import Client, StatusCode, SwitchboardError, register

from conftest import Server


def refused(call: object) -> SwitchboardError:
    with pytest.raises(SwitchboardError) as info:
        call()  # type: ignore[operator]
    assert info.value.code == StatusCode.INVALID_ARGUMENT, info.value
    return info.value


def test_nul_and_invalid_utf8_refused_by_the_client(client: Client, session_id: str) -> None:
    assert refused(lambda: client.create_session("nulid\0/../../etc")).message == "session_id contains a NUL byte"
    assert refused(lambda: client.create_session(session_id, labels={"a": "b", "team\0": "x"})).message \
        == "labels[1].key contains a NUL byte"
    assert refused(lambda: client.create_session(session_id, labels={"team": "caf\udce9"})).message \
        == "labels[0].value is not valid UTF-8"
    with pytest.raises(SwitchboardError) as missing:
        client.get_session(session_id)
    assert missing.value.code == StatusCode.NOT_FOUND, "nothing was created"

    client.create_session(session_id)
    assert refused(lambda: client.get_session(session_id + "\0junk")).message == "session_id contains a NUL byte"
    assert refused(lambda: client.prompt(session_id, "first part\0second part")).message == "prompt contains a NUL byte"
    assert refused(lambda: client.prompt(session_id, "bad \udcff bytes")).message == "prompt is not valid UTF-8"
    assert refused(lambda: client.list_sessions(labels={"k": "v\0"})).message == "label_selector[0].value contains a NUL byte"
    assert refused(lambda: client.close_session(session_id, reason="bye\0")).message == "reason contains a NUL byte"
    assert refused(lambda: client.attach(session_id, "t\0")).message == "turn_id contains a NUL byte"
    status = client.session_status(session_id)
    assert len(status.turns) == 0, "no turn ran"
    assert client.get_session(session_id).id == session_id
    client.close_session(session_id)


def test_server_refuses_what_an_unchecked_client_sends(client: Client, session_id: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A client in another language sends a proto3 string with a NUL: the server
    refuses it (not a session named "nulid"), and the connection stays usable."""
    monkeypatch.setattr(client_module, "_text", lambda value, field: value)
    monkeypatch.setattr(client_module, "_check_payload", lambda payload: None)
    monkeypatch.setattr(client_module, "validate_labels", lambda labels, field="labels": None)
    assert refused(lambda: client.create_session(session_id + "\0/../../etc")).message == "session_id contains a NUL byte"
    with pytest.raises(SwitchboardError) as missing:
        client.get_session(session_id)
    assert missing.value.code == StatusCode.NOT_FOUND
    client.create_session(session_id)
    assert refused(lambda: client.get_session(session_id + "\0junk")).message == "session_id contains a NUL byte"
    assert refused(lambda: list(client.prompt(session_id, "first part\0second part"))).message \
        == "prompt contains a NUL byte"
    assert refused(lambda: client.create_session(labels={"k": "a\0b"})).message == "labels[0].value contains a NUL byte"
    assert len(client.session_status(session_id).turns) == 0
    client.close_session(session_id)


def test_worker_strings(server: Server) -> None:
    error = refused(lambda: register("q\0x", socket_path=server.socket_path))
    assert error.message == "register.task_queue contains a NUL byte"
    with register("py-strings", socket_path=server.socket_path) as worker:
        assert refused(lambda: worker.finish("t-1", "end\0turn")).message == "finished.stop_reason contains a NUL byte"
        assert refused(lambda: worker.fail("t-1", StatusCode.INTERNAL, "oops\udcff")).message \
            == "failed.message is not valid UTF-8"
