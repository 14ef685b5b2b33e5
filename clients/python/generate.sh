#!/usr/bin/env bash
# Generates switchboard_client/switchboard_pb2.py (+ .pyi type stubs) from the
# .proto with Debian's protoc (package protobuf-compiler).
#
#   clients/python/generate.sh write     regenerate in place (the default)
#   clients/python/generate.sh --check   fail when the committed files are stale
#
# scripts/generate-protos.sh calls this with its own mode.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:-write}
case $mode in write | --check) ;; *) echo "usage: $0 [write|--check]" >&2; exit 64 ;; esac
command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
protoc --proto_path="$root/proto" --python_out="$out" --pyi_out="$out" "$root/proto/switchboard/v1/switchboard.proto"

stale=0
for ext in py pyi; do
  src=$out/switchboard/v1/switchboard_pb2.$ext
  dst=$here/switchboard_client/switchboard_pb2.$ext
  if [[ $mode == --check ]]; then
    if ! cmp -s "$src" "$dst"; then
      echo "stale generated file: clients/python/switchboard_client/switchboard_pb2.$ext (run scripts/generate-protos.sh)" >&2
      stale=1
    fi
  else
    cp "$src" "$dst"
  fi
done
exit $stale
