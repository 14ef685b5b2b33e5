#!/usr/bin/env python3
"""Python runner of the conformance suite (conformance/scenarios.json).

    runner.py --socket PATH --scenario NAME [key=value ...]

Runs one scenario with the switchboard_client package against the server at
PATH. Exit 0 = pass, 1 = fail (reason on stderr), 2 = unknown scenario.
"""
from __future__ import annotations

import os
import re
import socket
import struct
import sys
import threading
from pathlib import Path
from typing import Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

from switchboard_client import (  # noqa: E402
    Accepted,
    Assignment,
    Attached,
    Cancellation,
    Client,
    Finished,
    Output,
    PromptStream,
    Started,
    StatusCode,
    SwitchboardError,
    Worker,
    register,
    switchboard_pb2 as pb,
)


class Failure(Exception):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise Failure(what)


def expect_code(call: Callable[[], object], code_name: str, what: str) -> SwitchboardError:
    try:
        call()
    except SwitchboardError as error:
        check(error.code_name == code_name, f"{what}: got {error}, want {code_name}")
        return error
    raise Failure(f"{what}: succeeded, want {code_name}")


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(1, n + 1))


class Runner:
    def __init__(self, socket_path: str, args: Dict[str, str]) -> None:
        self.path = socket_path
        self.args = args
        self.prefix = args.get("prefix", "py")

    def p(self, key: str) -> str:
        return self.args[key]

    def e(self, key: str) -> str:
        return self.args["expect." + key]

    def sid(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def connect(self) -> Client:
        return Client.connect(self.path, client_name="conformance-python", recv_timeout=30)

    # --- handshake -------------------------------------------------------------

    def handshake(self) -> None:
        with self.connect() as c:
            check(c.welcome.version == int(self.e("version")), f"version {c.welcome.version}")
            check(c.welcome.server_name == self.e("server_name"), f"server_name {c.welcome.server_name!r}")
            check(c.welcome.max_frame_size > 0 and c.welcome.max_concurrent_calls > 0, "limits are zero")

    def handshake_unsupported_version(self) -> None:
        versions = (int(self.p("min_version")), int(self.p("max_version")))
        error = expect_code(lambda: Client.connect(self.path, versions=versions), self.e("code"), "connect")
        check(self.e("message_contains") in error.message, f"message {error.message!r}")

    def handshake_hello_first(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.path)
            frame = pb.Frame()
            frame.ping.nonce = 1
            send_frame(s, frame)
            answer = read_frame(s)
            check(answer is not None and answer.WhichOneof("kind") == "go_away", f"got {answer}")
            assert answer is not None
            check(StatusCode(answer.go_away.code).name == self.e("code"), f"GoAway {answer.go_away}")
            check(read_frame(s) is None, "connection still open after GoAway")

    def health(self) -> None:
        with self.connect() as c:
            check(pb.ServingStatus.Name(c.health()) == "SERVING_STATUS_" + self.e("status"), "not serving")

    def ping(self) -> None:
        with self.connect() as c:
            c.ping()
            c.ping()

    # --- sessions ----------------------------------------------------------------

    def sessions_create_get_close(self) -> None:
        sid = self.sid("s")
        label = {self.p("label_key"): self.p("label_value")}
        with self.connect() as c:
            s = c.create_session(sid, labels=label, backend=self.p("backend"))
            check(s.id == sid, f"id {s.id}")
            check({x.key: x.value for x in s.labels} == label, f"labels {s.labels}")
            check(s.settings.backend == self.p("backend"), "backend")
            check(s.settings.idle_timeout_ms > 0 and s.settings.turn_deadline_ms > 0, "effective settings not filled in")
            check(pb.SessionState.Name(s.state) == "SESSION_STATE_" + self.e("state"), f"state {s.state}")
            got = c.get_session(sid)
            check(got.id == sid and {x.key: x.value for x in got.labels} == label, "get")
            closed = c.close_session(sid, "conformance")
            check(closed.session.id == sid, "close")
            expect_code(lambda: c.get_session(sid), self.e("after_close"), "get after close")
            expect_code(lambda: c.close_session(sid), self.e("after_close"), "close after close")

    def sessions_server_chosen_id(self) -> None:
        with self.connect() as c:
            s = c.create_session()
            check(re.fullmatch(self.e("id_pattern"), s.id) is not None, f"id {s.id!r}")
            c.close_session(s.id)

    def sessions_list(self) -> None:
        count, size = int(self.p("count")), int(self.p("page_size"))
        selector = {"conformance": self.prefix}
        with self.connect() as c:
            ids = [self.sid(f"l{i}") for i in range(count)]
            for sid in ids:
                c.create_session(sid, labels=selector)
            c.create_session(self.sid("unlabelled"))
            everything = c.list_sessions(labels=selector)
            check([s.id for s in everything.sessions] == sorted(ids), f"list {[s.id for s in everything.sessions]}")
            check(everything.next_page_token == "", "token on the only page")
            first = c.list_sessions(labels=selector, page_size=size)
            check(len(first.sessions) == int(self.e("first_page")) and first.next_page_token != "", "first page")
            second = c.list_sessions(labels=selector, page_size=size, page_token=first.next_page_token)
            check(len(second.sessions) == int(self.e("second_page")) and second.next_page_token == "", "second page")
            check([s.id for s in first.sessions] + [s.id for s in second.sessions] == sorted(ids), "pages")
            for sid in ids + [self.sid("unlabelled")]:
                c.close_session(sid)

    def server_status(self) -> None:
        with self.connect() as c:
            sid = self.sid("st")
            c.create_session(sid)
            st = c.server_status(include_sessions=True)
            check(st.protocol_version == int(self.e("protocol_version")), f"protocol {st.protocol_version}")
            check(st.server_version != "" and st.pid > 0 and st.connections >= 1, f"status {st}")
            check(st.sessions_total >= 1, "sessions_total")
            check(sid in [s.id for s in st.sessions], "new session missing")
            check(len(c.server_status().sessions) == 0, "sessions without include_sessions")
            c.close_session(sid)

    def session_status(self) -> None:
        prompt = self.p("prompt")
        with self.connect() as c:
            sid = self.sid("ss")
            c.create_session(sid)
            list(c.prompt(sid, prompt))
            st = c.session_status(sid)
            check(st.session.id == sid and st.session.turns_completed == 1, f"session {st.session}")
            check(len(st.turns) == 1, f"turns {st.turns}")
            t = st.turns[0]
            check(pb.TurnState.Name(t.state) == "TURN_STATE_" + self.e("turn_state"), f"state {t.state}")
            check(StatusCode(t.code).name == self.e("turn_code"), f"code {t.code}")
            check(t.bytes == len(prompt.encode()) and t.prompt_preview == prompt, f"turn {t}")
            c.close_session(sid)

    # --- prompts -----------------------------------------------------------------

    def prompt_stream(self) -> None:
        prompt = self.p("prompt")
        with self.connect() as c:
            sid = self.sid("p")
            c.create_session(sid)
            events = list(c.prompt(sid, prompt))  # raises unless the call ends OK
            check(isinstance(events[0], Accepted), f"first event {events[0]}")
            check(str(events[0].queue_position) == self.e("queue_position"), "queue position")  # type: ignore[union-attr]
            check(isinstance(events[1], Started), f"second event {events[1]}")
            outputs = [e for e in events[2:-1] if isinstance(e, Output)]
            check(len(outputs) == len(events) - 3, "events between started and finished are not all output")
            check([o.sequence for o in outputs] == list(range(1, len(outputs) + 1)), "sequence numbers")
            check(b"".join(o.data for o in outputs) == prompt.encode(), "output != prompt")
            last = events[-1]
            check(isinstance(last, Finished), f"last event {last}")
            assert isinstance(last, Finished)
            check(last.chunks == len(outputs) and last.bytes == len(prompt.encode()), f"finished {last}")
            check(last.turn_id == events[0].turn_id, "turn ids differ")  # type: ignore[union-attr]
            c.close_session(sid)

    def prompt_wait_when_busy(self) -> None:
        first_prompt = words(int(self.p("first_words")))
        second_prompt = self.p("second_prompt")
        with self.connect() as c:
            sid = self.sid("q")
            c.create_session(sid)
            first = c.prompt(sid, first_prompt)
            check(isinstance(next(first), Accepted), "first not accepted")
            second = c.prompt(sid, second_prompt)
            accepted = next(second)
            check(isinstance(accepted, Accepted), f"second: {accepted}")
            assert isinstance(accepted, Accepted)
            check(str(accepted.queue_position) == self.e("queue_position"), f"queue position {accepted.queue_position}")
            first_text = b"".join(first.output())
            second_text = b"".join(second.output())
            check(first_text == first_prompt.encode() and second_text == second_prompt.encode(), "outputs")
            turns = c.session_status(sid).turns
            check(len(turns) == 2 and turns[1].ended_at_ms <= turns[0].started_at_ms, "turns overlapped")
            c.close_session(sid)

    def cancel_mid_stream(self) -> None:
        n, after = int(self.p("words")), int(self.p("cancel_after_chunks"))
        with self.connect() as c:
            sid = self.sid("c")
            c.create_session(sid)
            stream = c.prompt(sid, words(n))
            chunks = 0

            def consume() -> None:
                nonlocal chunks
                for event in stream:
                    if isinstance(event, Output):
                        chunks += 1
                        if chunks == after:
                            stream.cancel()

            expect_code(consume, self.e("code"), "prompt")
            check(after <= chunks < n, f"{chunks} chunks")
            turns = c.session_status(sid).turns
            check([StatusCode(t.code).name for t in turns] == [self.e("code")], f"turns {turns}")
            check(b"".join(c.prompt(sid, "after").output()) == b"after", "next prompt")
            c.close_session(sid)

    def deadline(self) -> None:
        with self.connect() as c:
            sid = self.sid("d")
            c.create_session(sid)
            timeout = int(self.p("timeout_ms")) / 1000
            expect_code(lambda: list(c.prompt(sid, words(int(self.p("words"))), timeout=timeout)),
                        self.e("code"), "prompt")
            turns = c.session_status(sid).turns
            check(len(turns) == 1 and turns[0].stop_reason == self.e("stop_reason"), f"turns {turns}")
            c.close_session(sid)

    # --- workers -----------------------------------------------------------------

    def register(self, queue: str, capacity: int = 1, **options: object) -> Worker:
        return register(queue, capacity, socket_path=self.path, client_name="conformance-python-worker",
                        **options)  # type: ignore[arg-type]

    def next_worker_event(self, worker: Worker) -> object:
        event = worker.next_event(30)
        check(event is not None, "no worker event within 30 s")
        return event

    def worker_register(self) -> None:
        queue = self.sid("wq")
        labels = {self.p("label_key"): self.p("label_value")}
        capacity = int(self.p("capacity"))
        with self.register(queue, capacity, labels=labels, display_name=self.p("display_name")) as worker:
            r = worker.registered
            check(re.fullmatch(self.e("worker_id_pattern"), r.worker_id) is not None, f"worker id {r.worker_id!r}")
            check(r.heartbeat_interval_ms > 0 and r.heartbeat_timeout_ms > 0, f"registered {r}")
            with self.connect() as c:
                info = [w for w in c.server_status().workers if w.worker_id == r.worker_id]
                check(len(info) == 1, f"worker {r.worker_id} not in status")
                w = info[0]
                check(w.task_queue == queue and w.capacity == capacity and w.display_name == self.p("display_name")
                      and {x.key: x.value for x in w.labels} == labels, f"worker info {w}")
                queues = [q for q in c.server_status().worker_queues if q.task_queue == queue]
                check(len(queues) == 1 and queues[0].workers == 1, f"queues {queues}")
        expect_code(lambda: self.register(self.sid("wq0"), 0), self.e("bad_capacity"), "register capacity 0")

    def worker_serves_turn(self) -> None:
        queue, prompt = self.sid("wq"), self.p("prompt")
        labels = {self.p("label_key"): self.p("label_value")}
        with self.register(queue) as worker, self.connect() as c:
            sid = self.sid("w")
            c.create_session(sid, labels=labels, backend=f"worker:{queue}")
            stream = c.prompt(sid, prompt)
            seen: List[Assignment] = []

            def serve() -> None:
                event = self.next_worker_event(worker)
                assert isinstance(event, Assignment), f"got {event}"
                seen.append(event)
                for i, word in enumerate(event.prompt.split(" ")):
                    worker.output(event.turn_id, (" " if i else "") + word)
                worker.finish(event.turn_id, self.p("stop_reason"))

            thread = threading.Thread(target=serve, daemon=True)
            thread.start()
            events = list(stream)  # raises unless the call ends OK
            thread.join(10)
            check(len(seen) == 1, "the worker got no assignment")
            a = seen[0]
            check(a.session_id == sid and a.prompt == prompt and a.session_labels == labels and a.deadline_ms > 0,
                  f"assignment {a}")
            check(isinstance(events[0], Accepted) and events[0].turn_id == a.turn_id, f"first event {events[0]}")
            check(isinstance(events[1], Started) and isinstance(events[-1], Finished), f"events {events}")
            outputs = [e for e in events[2:-1] if isinstance(e, Output)]
            check(len(outputs) == len(events) - 3, f"events {events}")
            check([o.sequence for o in outputs] == list(range(1, len(outputs) + 1)), "sequence numbers")
            check(b"".join(o.data for o in outputs) == prompt.encode(), "output != prompt")
            f = events[-1]
            assert isinstance(f, Finished)
            check(f.turn_id == a.turn_id and f.stop_reason == self.p("stop_reason") and f.chunks == len(outputs)
                  and f.bytes == len(prompt.encode()), f"finished {f}")
            check(StatusCode(c.session_status(sid).turns[0].code).name == self.e("code"), "turn code")
            c.close_session(sid)

    def worker_fail(self) -> None:
        queue = self.sid("wq")
        with self.register(queue) as worker, self.connect() as c:
            sid = self.sid("w")
            c.create_session(sid, backend=f"worker:{queue}")
            stream = c.prompt(sid, "fail this")
            event = self.next_worker_event(worker)
            check(isinstance(event, Assignment), f"got {event}")
            assert isinstance(event, Assignment)
            worker.fail(event.turn_id, StatusCode[self.p("code")], self.p("message"))
            error = expect_code(lambda: list(stream), self.e("code"), "prompt")
            check(error.message == self.p("message"), f"message {error.message!r}")
            c.close_session(sid)

    def worker_cancellation(self) -> None:
        queue = self.sid("wq")
        with self.register(queue) as worker, self.connect() as c:
            sid = self.sid("w")
            c.create_session(sid, backend=f"worker:{queue}")
            stream = c.prompt(sid, self.p("prompt"))
            event = self.next_worker_event(worker)
            check(isinstance(event, Assignment), f"got {event}")
            assert isinstance(event, Assignment)
            worker.output(event.turn_id, "partial")
            for e in stream:
                if isinstance(e, Output):
                    stream.cancel()
                    break
            expect_code(lambda: list(stream), self.e("code"), "prompt after cancel")
            cancel = self.next_worker_event(worker)
            check(isinstance(cancel, Cancellation) and cancel.turn_id == event.turn_id, f"got {cancel}")
            check(worker.is_cancelled(event.turn_id), "is_cancelled")
            # The worker serves the next turn.
            stream = c.prompt(sid, "next")
            event = self.next_worker_event(worker)
            check(isinstance(event, Assignment) and event.prompt == "next", f"got {event}")
            assert isinstance(event, Assignment)
            worker.output(event.turn_id, "next")
            worker.finish(event.turn_id)
            check(b"".join(stream.output()) == b"next", "next turn output")
            c.close_session(sid)

    # --- errors ------------------------------------------------------------------

    def error_not_found(self) -> None:
        sid = self.sid("missing")
        code = self.e("code")
        with self.connect() as c:
            expect_code(lambda: c.get_session(sid), code, "get")
            expect_code(lambda: c.close_session(sid), code, "close")
            expect_code(lambda: c.session_status(sid), code, "session status")
            expect_code(lambda: list(c.prompt(sid, "hi")), code, "prompt")

    def error_already_exists(self) -> None:
        sid = self.sid("dup")
        with self.connect() as c:
            c.create_session(sid)
            expect_code(lambda: c.create_session(sid), self.e("code"), "second create")
            c.close_session(sid)

    def error_invalid_argument(self) -> None:
        with self.connect() as c:
            expect_code(lambda: c.create_session(self.p("bad_id")), self.e("code"), "bad id")
            expect_code(lambda: c.create_session(self.sid("b"), backend=self.p("bad_backend")), self.e("code"),
                        "bad backend")

    def error_reject_when_busy(self) -> None:
        prompt = words(int(self.p("words")))
        with self.connect() as c:
            sid = self.sid("r")
            c.create_session(sid)
            first = c.prompt(sid, prompt)
            check(isinstance(next(first), Accepted), "not accepted")
            expect_code(lambda: list(c.prompt(sid, "x", reject_if_busy=True)), self.e("code"), "rejected prompt")
            check(b"".join(first.output()) == prompt.encode(), "first turn output")
            c.close_session(sid)

    def close_cancels_turns(self) -> None:
        with self.connect() as c:
            sid = self.sid("x")
            c.create_session(sid)
            running = c.prompt(sid, words(int(self.p("words"))))
            check(isinstance(next(running), Accepted), "running not accepted")
            queued = c.prompt(sid, "queued")
            check(isinstance(next(queued), Accepted), "queued not accepted")
            closed = c.close_session(sid, "conformance")
            check(str(closed.cancelled_turns) == self.e("cancelled_turns"), f"cancelled_turns {closed.cancelled_turns}")
            check(str(closed.rejected_prompts) == self.e("rejected_prompts"), f"rejected {closed.rejected_prompts}")
            expect_code(lambda: list(running), self.e("code"), "running prompt")
            expect_code(lambda: list(queued), self.e("code"), "queued prompt")

    def concurrent_calls(self) -> None:
        texts = [self.p("prompt_a"), self.p("prompt_b")]
        with self.connect() as c:
            ids = [self.sid("ca"), self.sid("cb")]
            for sid in ids:
                c.create_session(sid)
            streams = [c.prompt(sid, t) for sid, t in zip(ids, texts)]
            check(streams[0].call_id < streams[1].call_id, "call ids do not increase")
            for s in streams:
                check(isinstance(next(s), Accepted), "not accepted")
            status = c.server_status(include_sessions=True)
            check({*ids} <= {s.id for s in status.sessions}, "status misses the sessions")
            got: List[List[bytes]] = [[], []]
            live = [0, 1]
            while live:  # interleave the two streams
                for i in list(live):
                    try:
                        event = next(streams[i])
                    except StopIteration:
                        live.remove(i)
                        continue
                    if isinstance(event, Output):
                        got[i].append(event.data)
            check([b"".join(g).decode() for g in got] == texts, f"outputs {got}")
            for sid in ids:
                c.close_session(sid)

    # --- ownership, turn history, attach -------------------------------------------

    def ownership_peer(self) -> None:
        uid = os.getuid()
        with self.connect() as c:
            check(c.welcome.peer_uid == uid, f"Welcome peer_uid {c.welcome.peer_uid}, this process is uid {uid}")
            sid = self.sid("own")
            check(c.create_session(sid).owner_uid == uid, "owner_uid on create")
            check(c.get_session(sid).owner_uid == uid, "owner_uid on get")
            c.session_status(sid)
            c.close_session(sid)

    def list_turns_paging(self) -> None:
        prompts = self.p("prompts").split("|")
        size = int(self.p("page_size"))
        first_n, second_n = int(self.e("first_page")), int(self.e("second_page"))
        check(first_n + second_n == len(prompts), "expectations do not add up to the prompts")
        with self.connect() as c:
            sid = self.sid("lt")
            c.create_session(sid)
            empty = c.list_turns(sid)
            check(len(empty.turns) == 0 and empty.next_page_token == "", f"session without turns: {empty}")
            ids = []
            for prompt in prompts:
                events = list(c.prompt(sid, prompt))
                check(isinstance(events[0], Accepted), f"first event {events[0]}")
                ids.append(events[0].turn_id)  # type: ignore[union-attr]
            first = c.list_turns(sid, page_size=size)
            check(len(first.turns) == first_n and first.next_page_token != "", f"first page {first}")
            for i, t in enumerate(first.turns):
                check(t.summary.turn_id == ids[i], f"turn {i} is {t.summary.turn_id}, want {ids[i]}")
                check(t.summary.state == pb.TURN_STATE_FINISHED and t.summary.code == 0, f"turn {i} {t.summary}")
                check(t.summary.prompt_preview == prompts[i], f"preview {t.summary.prompt_preview!r}")
                check(t.prompt == "" and t.output == b"", "prompt/output without include_output")
            second = c.list_turns(sid, page_size=size, page_token=first.next_page_token)
            check(len(second.turns) == second_n and second.next_page_token == "", f"second page {second}")
            check([t.summary.turn_id for t in second.turns] == ids[first_n:], "second page turns")
            full = c.list_turns(sid, page_size=len(prompts), include_output=True)
            check([t.summary.turn_id for t in full.turns] == ids, "include_output turns")
            for t, prompt in zip(full.turns, prompts):
                check(t.prompt == prompt and t.output == prompt.encode(), f"record {t}")
                check(not t.output_dropped, "output_dropped")
            expect_code(lambda: c.list_turns(self.sid("lt-missing")), self.e("unknown_session"), "unknown session")
            c.close_session(sid)

    def attach_after_sequence(self) -> None:
        n, after = int(self.p("words")), int(self.p("after_sequence"))
        text = words(n)
        with self.connect() as c:
            sid = self.sid("att")
            c.create_session(sid)
            events = list(c.prompt(sid, text))
            turn_id = events[0].turn_id  # type: ignore[union-attr]
            chunks = [e for e in events if isinstance(e, Output)]
            total = len(chunks)
            check(total > after, f"the prompt gave only {total} chunks")
            got = collect_attach(c.attach(sid, turn_id, after), self.e("code"))
            attached, outputs, finished = got
            check(attached.turn_id == turn_id, f"attached to {attached.turn_id}")
            check(pb.TurnState.Name(attached.state) == "TURN_STATE_" + self.e("state"), f"state {attached.state}")
            check(attached.last_sequence == total, f"last_sequence {attached.last_sequence}, want {total}")
            check([o.sequence for o in outputs] == list(range(after + 1, total + 1)), f"sequences {[o.sequence for o in outputs]}")
            check([o.data for o in outputs] == [o.data for o in chunks[after:]], "chunks differ from the prompt's")
            check(finished.turn_id == turn_id and finished.chunks == total, f"finished {finished}")
            attached, outputs, _ = collect_attach(c.attach(sid), "OK")
            check(attached.turn_id == turn_id, "empty turn id: not the most recent turn")
            check([o.sequence for o in outputs] == list(range(1, total + 1)), "from 0: sequences")
            check(b"".join(o.data for o in outputs) == text.encode(), "from 0: output != prompt")
            _, outputs, _ = collect_attach(c.attach(sid, turn_id, total), "OK")
            check(outputs == [], f"after the last chunk: {outputs}")
            c.close_session(sid)

    def attach_cancelled_turn(self) -> None:
        n, after = int(self.p("words")), int(self.p("cancel_after_chunks"))
        with self.connect() as c, self.connect() as other:
            sid = self.sid("attc")
            c.create_session(sid)
            stream = c.prompt(sid, words(n))
            turn_id = ""
            count = 0

            def run() -> None:
                nonlocal turn_id, count
                for event in stream:
                    if isinstance(event, Accepted):
                        turn_id = event.turn_id
                    if isinstance(event, Output):
                        count += 1
                        if count == after:
                            stream.cancel()

            expect_code(run, self.e("code"), "cancelled prompt")
            attached, outputs, finished = collect_attach(other.attach(sid, turn_id), self.e("code"))
            check(attached.state == pb.TURN_STATE_FINISHED, f"state {attached.state}")
            check(after <= len(outputs) < n, f"{len(outputs)} chunks kept")
            check([o.sequence for o in outputs] == list(range(1, len(outputs) + 1)), "sequences")
            check(finished.chunks == len(outputs), f"finished {finished}")
            c.close_session(sid)

    def attach_not_found(self) -> None:
        code = self.e("code")
        with self.connect() as c:
            sid = self.sid("atnf")
            c.create_session(sid)
            expect_code(lambda: list(c.attach(sid)), code, "session without turns")
            list(c.prompt(sid, "one turn"))
            expect_code(lambda: list(c.attach(sid, self.p("bad_turn_id"))), code, "unknown turn")
            expect_code(lambda: list(c.attach(self.sid("atnf-missing"))), code, "unknown session")
            c.close_session(sid)

    def attach_after_disconnect(self) -> None:
        n, cut = int(self.p("words")), int(self.p("disconnect_after_chunks"))
        text = words(n)
        for cancel_on_disconnect in (False, True):
            sid = self.sid("atd-cod" if cancel_on_disconnect else "atd")
            gone = self.connect()
            gone.create_session(sid)
            stream = gone.prompt(sid, text, cancel_on_disconnect=cancel_on_disconnect)
            turn_id = ""
            first: List[Output] = []
            for event in stream:
                if isinstance(event, Accepted):
                    turn_id = event.turn_id
                if isinstance(event, Output):
                    first.append(event)
                    if len(first) == cut:
                        break
            check(len(first) == cut, f"prompt ended after {len(first)} chunks")
            # The connection goes away without a Cancel, as when the process dies.
            gone._sock.shutdown(socket.SHUT_RDWR)
            gone.close()
            with self.connect() as c:
                if cancel_on_disconnect:
                    _, _, finished = collect_attach(c.attach(sid, turn_id, cut), self.e("cancel_on_disconnect_code"))
                    check(finished.chunks < n, f"the turn ran to its end: {finished}")
                else:
                    attached, rest, finished = collect_attach(c.attach(sid, turn_id, cut), self.e("code"))
                    check(attached.turn_id == turn_id, "attached to another turn")
                    check([o.sequence for o in first + rest] == list(range(1, n + 1)), "sequences")
                    check(b"".join(o.data for o in first + rest) == text.encode(), "the two parts are not the prompt")
                    check(finished.chunks == n, f"finished {finished}")
                c.close_session(sid)

    # --- bad frames --------------------------------------------------------------

    def _bad_frame(self) -> None:
        with self.connect() as c:
            c._send_raw(bytes.fromhex(self.p("bytes_hex")))
            expect_code(c.health, self.e("code"), "call after the bad frame")
            try:
                c.health()
                raise Failure("connection still usable after GoAway")
            except SwitchboardError:
                pass

    bad_frame_oversized = _bad_frame
    bad_frame_garbage = _bad_frame
    bad_frame_empty = _bad_frame


def collect_attach(stream: PromptStream, code_name: str) -> "tuple[Attached, List[Output], Finished]":
    """Runs an attach stream to its end, which must be `code_name`; checks the
    order attached, output..., finished and returns the three parts."""
    events: list = []

    def run() -> None:
        for event in stream:
            events.append(event)

    if code_name == "OK":
        run()
    else:
        expect_code(run, code_name, "attach")
    check(len(events) >= 2 and isinstance(events[0], Attached) and isinstance(events[-1], Finished), f"events {events}")
    outputs = events[1:-1]
    check(all(isinstance(e, Output) for e in outputs), f"not all output between attached and finished: {events}")
    return events[0], outputs, events[-1]


def send_frame(s: socket.socket, frame: pb.Frame) -> None:
    body = frame.SerializeToString()
    s.sendall(struct.pack(">I", len(body)) + body)


def read_frame(s: socket.socket) -> "pb.Frame | None":
    header = s.recv(4, socket.MSG_WAITALL)
    if len(header) < 4:
        return None
    (n,) = struct.unpack(">I", header)
    if n > 4 * 1024 * 1024:
        raise Failure(f"frame of {n} bytes")
    body = s.recv(n, socket.MSG_WAITALL)
    frame = pb.Frame()
    frame.ParseFromString(body)
    return frame


def main(argv: List[str]) -> int:
    socket_path = scenario = ""
    args: Dict[str, str] = {}
    i = 0
    while i < len(argv):
        if argv[i] in ("--socket", "--scenario") and i + 1 < len(argv):
            if argv[i] == "--socket":
                socket_path = argv[i + 1]
            else:
                scenario = argv[i + 1]
            i += 2
            continue
        key, _, value = argv[i].partition("=")
        args[key] = value
        i += 1
    if not socket_path or not scenario:
        print("usage: runner.py --socket PATH --scenario NAME [key=value ...]", file=sys.stderr)
        return 2
    runner = Runner(socket_path, args)
    method = getattr(runner, scenario, None)
    if method is None or scenario.startswith("_"):
        print(f"unknown scenario {scenario}", file=sys.stderr)
        return 2
    try:
        method()
    except (Failure, SwitchboardError, KeyError, AssertionError, StopIteration) as error:
        print(f"{scenario}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
