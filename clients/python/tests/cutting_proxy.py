"""A Unix-socket proxy that cuts its first connection at a chosen byte of the
server's frames (the Python twin of the Swift tests' ``CuttingProxy``).

It accepts client connections and connects each to ``target``, forwarding bytes
both ways on two threads per connection. On the first connection it follows the
server -> client bytes as frames (4-byte big-endian length, then the body) and, at
the cut point, forwards exactly the bytes before it and then shuts both sockets
down: the server sees its client vanish, the client sees the connection close
mid-stream. Later connections pass through untouched, so a client can reconnect
through it.
"""
from __future__ import annotations

import os
import socket
import struct
import threading
from dataclasses import dataclass
from typing import List, Optional, Tuple


@dataclass(frozen=True)
class CutPoint:
    """After ``offset_selector % size`` bytes of the server's frame number ``frame``
    (0 = Welcome; the 4-byte length prefix counts as part of the frame, so offset 0
    is the boundary just before it)."""

    frame: int
    offset_selector: int = 0

    def __str__(self) -> str:
        return f"frame {self.frame}, selector {self.offset_selector}"


@dataclass
class CutReport:
    """What happened on the proxy's first connection."""

    #: False when the connection ended before the cut point was reached.
    cut: bool = False
    #: The exact server -> client bytes the client was given.
    delivered: bytes = b""
    #: Size of the frame the cut fell in (prefix included) and the offset in it.
    frame_size: int = 0
    offset: int = 0


class FrameCutter:
    """Follows the server's frames and says how many of the bytes read so far may
    be forwarded before the cut point."""

    def __init__(self, cut: CutPoint) -> None:
        self.cut = cut
        self.data = bytearray()
        self.forwarded = 0
        self.next_frame_start = 0
        self.next_frame_index = 0
        self.cut_at: Optional[int] = None
        self.cut_frame_size = 0
        self.cut_offset = 0

    def accept(self, chunk: bytes) -> Tuple[bytes, bool]:
        """The bytes of ``chunk`` to forward, and whether to cut after them."""
        self.data += chunk
        while self.cut_at is None and self.next_frame_start + 4 <= len(self.data):
            (length,) = struct.unpack_from(">I", self.data, self.next_frame_start)
            size = 4 + length
            if self.next_frame_index == self.cut.frame:
                self.cut_frame_size = size
                self.cut_offset = self.cut.offset_selector % size
                self.cut_at = self.next_frame_start + self.cut_offset
            self.next_frame_start += size
            self.next_frame_index += 1
        if self.cut_at is not None:
            safe = min(len(self.data), self.cut_at)
        elif self.next_frame_index == self.cut.frame:
            safe = min(len(self.data), self.next_frame_start)  # the cut frame's header is incomplete
        else:
            safe = len(self.data)
        forward = bytes(self.data[self.forwarded:safe]) if safe > self.forwarded else b""
        self.forwarded = max(self.forwarded, safe)
        return forward, self.cut_at is not None and self.cut_at == self.forwarded


class CuttingProxy:
    _counter = 0
    _counter_lock = threading.Lock()

    def __init__(self, target: str, directory: str, cut: Optional[CutPoint]) -> None:
        with CuttingProxy._counter_lock:
            CuttingProxy._counter += 1
            number = CuttingProxy._counter
        self.socket_path = os.path.join(directory, f"proxy-{os.getpid()}-{number}.sock")
        self._target = target
        self._cut = cut
        self._lock = threading.Lock()
        self._connections = 0
        self._sockets: List[socket.socket] = []
        self._report = CutReport()
        self._report_done = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        self._listener.listen(16)
        self._accepting = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)
        self._accepting.start()

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._connections

    def first_connection_report(self, timeout: float = 30.0) -> CutReport:
        """The first connection's report, once its server -> client side has ended."""
        if not self._report_done.wait(timeout):
            raise AssertionError("the proxy's first connection never ended")
        return self._report

    def stop(self) -> None:
        """Stops accepting and closes every proxied connection."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._accepting.join(10)
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass

    # -- forwarding -----------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections += 1
                first = self._connections == 1
            threading.Thread(target=self._serve, args=(client, first), name="proxy-conn", daemon=True).start()

    def _serve(self, client: socket.socket, first: bool) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.connect(self._target)
        except OSError:
            client.close()
            server.close()
            if first:
                self._report_done.set()
            return
        with self._lock:
            self._sockets += [client, server]
        remaining = [2]
        remaining_lock = threading.Lock()

        def finish() -> None:
            # Each socket is closed once both pumps are done with it.
            with remaining_lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                client.close()
                server.close()

        def upstream() -> None:
            self._pump(client, server)
            try:
                server.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            finish()

        threading.Thread(target=upstream, name="proxy-up", daemon=True).start()
        cutter = FrameCutter(self._cut) if first and self._cut is not None else None
        delivered = bytearray()
        while True:
            try:
                chunk = server.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if cutter is None:
                if first:
                    delivered += chunk
                if not self._send_all(client, chunk):
                    break
                continue
            forward, cut_now = cutter.accept(chunk)
            delivered += forward
            if forward and not self._send_all(client, forward):
                break
            if cut_now:
                self._report = CutReport(True, bytes(delivered), cutter.cut_frame_size, cutter.cut_offset)
                self._report_done.set()
                for s in (client, server):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                finish()
                return
        if first:
            self._report = CutReport(False, bytes(delivered))
            self._report_done.set()
        try:
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finish()

    @staticmethod
    def _pump(source: socket.socket, destination: socket.socket) -> None:
        while True:
            try:
                chunk = source.recv(65536)
            except OSError:
                return
            if not chunk or not CuttingProxy._send_all(destination, chunk):
                return

    @staticmethod
    def _send_all(destination: socket.socket, data: bytes) -> bool:
        try:
            destination.sendall(data)
            return True
        except OSError:
            return False


def complete_frames(data: bytes) -> List[bytes]:
    """The bodies of the complete frames in ``data``, ignoring a partial last one."""
    bodies: List[bytes] = []
    position = 0
    while position + 4 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        if position + 4 + length > len(data):
            break
        bodies.append(data[position + 4:position + 4 + length])
        position += 4 + length
    return bodies


__all__ = ["CutPoint", "CutReport", "CuttingProxy", "FrameCutter", "complete_frames"]
