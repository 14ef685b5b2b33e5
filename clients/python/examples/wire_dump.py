"""Annotated hex dump of real Switchboard frames (the source of docs/PROTOCOL.md's dumps).

    python3 wire_dump.py --socket /tmp/switchboard.sock

Starts a recording proxy on a temporary socket in front of the server, runs the
Python client through it (handshake, CreateSession "demo", Prompt "hello world",
CloseSession) and prints every frame that crossed the proxy, byte by byte, each
field annotated with its name from the .proto.
"""
from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import tempfile
import threading
from typing import List, Tuple

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from switchboard_client import Client, switchboard_pb2 as pb

Record = Tuple[str, bytes]  # direction ("C→S" / "S→C"), frame bytes with prefix


def proxy(listener: socket.socket, server_path: str, records: List[Record], lock: threading.Lock) -> None:
    client, _ = listener.accept()
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    upstream.connect(server_path)

    def pump(src: socket.socket, dst: socket.socket, direction: str) -> None:
        buffer = b""
        while True:
            data = src.recv(65536)
            if not data:
                dst.shutdown(socket.SHUT_WR)
                return
            dst.sendall(data)
            buffer += data
            while len(buffer) >= 4 and len(buffer) >= 4 + struct.unpack(">I", buffer[:4])[0]:
                n = 4 + struct.unpack(">I", buffer[:4])[0]
                with lock:
                    records.append((direction, buffer[:n]))
                buffer = buffer[n:]

    threads = [threading.Thread(target=pump, args=(client, upstream, "C→S"), daemon=True),
               threading.Thread(target=pump, args=(upstream, client, "S→C"), daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def varint(data: bytes, i: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        b = data[i]
        value |= (b & 0x7F) << shift
        i += 1
        shift += 7
        if not b & 0x80:
            return value, i


def hexs(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


WIRE = {0: "varint", 1: "i64", 2: "len", 5: "i32"}


def annotate(data: bytes, descriptor: Descriptor, depth: int, out: List[str]) -> None:
    """One line per field: its bytes (tag, length, value), then what they mean."""
    i = 0
    pad = "  " * depth
    while i < len(data):
        start = i
        tag, i = varint(data, i)
        number, wire = tag >> 3, tag & 7
        field = descriptor.fields_by_number.get(number)
        name = f"{descriptor.name}.{field.name}" if field else f"field {number}"
        if wire == 0:
            value, i = varint(data, i)
            shown: str = str(value)
            if field is not None and field.type == FieldDescriptor.TYPE_ENUM:
                shown = f"{field.enum_type.values_by_number[value].name} ({value})" if value in field.enum_type.values_by_number else str(value)
            elif field is not None and field.type == FieldDescriptor.TYPE_BOOL:
                shown = "true" if value else "false"
            out.append(f"{pad}{hexs(data[start:i]):<30} {name} = {shown}")
        elif wire == 2:
            length, j = varint(data, i)
            body = data[j:j + length]
            i = j + length
            if field is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
                out.append(f"{pad}{hexs(data[start:j]):<30} {name}: {field.message_type.name}, {length} bytes")
                annotate(body, field.message_type, depth + 1, out)
            else:
                text = body.decode("utf-8", "replace")
                out.append(f"{pad}{hexs(data[start:j]):<30} {name}: {length} bytes = {text!r}")
                for k in range(0, len(body), 10):
                    out.append(f"{pad}  {hexs(body[k:k + 10])}")
        else:
            raise ValueError(f"unexpected wire type {wire}")


def dump(direction: str, frame_bytes: bytes) -> str:
    body = frame_bytes[4:]
    frame = pb.Frame()
    frame.ParseFromString(body)
    kind = frame.WhichOneof("kind")
    lines = [f"{direction} {kind}, {len(frame_bytes)} bytes on the wire:",
             f"{hexs(frame_bytes[:4]):<30} length prefix: {len(body)} (big-endian uint32)"]
    annotate(body, pb.Frame.DESCRIPTOR, 0, lines)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="the server's socket")
    parser.add_argument("--prompt", default="hello world")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="sb-dump-")
    proxy_path = os.path.join(directory, "proxy.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(proxy_path)
    listener.listen(1)
    records: List[Record] = []
    lock = threading.Lock()
    thread = threading.Thread(target=proxy, args=(listener, args.socket, records, lock), daemon=True)
    thread.start()

    with Client.connect(proxy_path, client_name="wire-dump") as client:
        session = client.create_session("demo")                 # call 1
        list(client.prompt(session.id, args.prompt))            # call 2
        client.close_session(session.id)                        # call 3 (not shown)
    thread.join(10)
    os.unlink(proxy_path)
    os.rmdir(directory)

    titles = {0: "Handshake (call id 0)", 1: "Unary call: CreateSession (call id 1)",
              2: "Server-streaming call: Prompt (call id 2)"}
    shown = None
    for direction, frame_bytes in records:
        frame = pb.Frame()
        frame.ParseFromString(frame_bytes[4:])
        if frame.call_id not in titles:
            continue
        if frame.call_id != shown:
            shown = frame.call_id
            print(f"### {titles[shown]}\n")
        print(dump(direction, frame_bytes))
        print()


if __name__ == "__main__":
    main()
