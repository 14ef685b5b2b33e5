#!/usr/bin/env bash
# Builds cbench against the C client library (clients/c, its own Makefile, -O2) into
# DIR and prints the binary's path. Fails (and run.sh leaves a gap) when clients/c
# is missing or does not build.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
cdir="$here/../../clients/c"
make -s -C "$cdir" build/libswitchboard.a >&2
proto="$here/../../Sources/CSwitchboardProto/include"
cc -std=c11 -O2 -Wall -Wextra -I"$cdir/include" -I"$proto" $(pkg-config --cflags libprotobuf-c) \
  "$here/cbench.c" "$cdir/build/libswitchboard.a" $(pkg-config --libs libprotobuf-c) -pthread -o "$out/cbench"
echo "$out/cbench"
