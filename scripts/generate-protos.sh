#!/usr/bin/env bash
# Regenerates the protoc-c output committed under Sources/CSwitchboardProto
# (and, when it exists, clients/python's _pb2 module) from proto/.
#
#   scripts/generate-protos.sh           regenerate in place
#   scripts/generate-protos.sh --check   fail when the committed output is stale
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-write}
command -v protoc-c >/dev/null || { echo "protoc-c missing: apt-get install -y protobuf-c-compiler" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
protoc-c --proto_path=proto --c_out="$out" proto/switchboard/v1/*.proto

c_dir=Sources/CSwitchboardProto
declare -A targets=(
  ["$out/switchboard/v1/switchboard.pb-c.c"]="$c_dir/switchboard.pb-c.c"
  ["$out/switchboard/v1/switchboard.pb-c.h"]="$c_dir/include/switchboard/v1/switchboard.pb-c.h"
)

stale=0
for src in "${!targets[@]}"; do
  dst=${targets[$src]}
  if [[ $mode == --check ]]; then
    if ! cmp -s "$src" "$dst"; then
      echo "stale generated file: $dst (run scripts/generate-protos.sh)" >&2
      stale=1
    fi
  else
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst"
  fi
done

if [[ -f clients/python/generate.sh ]]; then
  clients/python/generate.sh "$mode" || stale=1
fi

if [[ $mode == --check ]]; then
  [[ $stale == 0 ]] && echo "generated code is up to date"
  exit $stale
fi
echo "regenerated protoc-c output in $c_dir"
