#!/usr/bin/env bash
# Switchboard's benchmarks: one command, every system, the same pinning.
#
#   Benchmarks/run.sh            full run (release builds; ~15 min on a fresh 2-core machine,
#                                 most of it grpc-swift-2's first release build)
#   Benchmarks/run.sh --quick    Switchboard only, debug build, a few seconds of load,
#                                 no figures asserted (scripts/test.sh runs this)
#   Benchmarks/run.sh --persistence  only the persistence section (release, ~2 min): stream
#                                 throughput with --state-dir none vs a state directory,
#                                 alternated, and reload of 10,000 sessions × 10 turns;
#                                 writes $OUT/persistence.md and persistence.json
#   Benchmarks/run.sh --soak     only the memory soak (release, ~4 min; issue #12): server RSS
#                                 after 10k, 50k and 100k one-word prompts on one session,
#                                 with --state-dir none and with a state directory (SQLite);
#                                 --soak-baseline BIN also soaks BIN (say, the unfixed
#                                 commit's server) in the same run, for before/after figures;
#                                 writes $OUT/soak.md and soak.json
#
# Options: --reps N (default 3)  --skip-grpc  --skip-micro  --skip-build
#          --out DIR (default Benchmarks/results)  --only-pin same|split
#          --soak-baseline BIN  --soak-checkpoints N1,N2,... (default 10000,50000,100000)
# Env:     SWITCHBOARD_SCRATCH  scratch path of the main package's build (default .build)
#          SWITCHBOARD_BENCH_SCRATCH  the benchmark package's release scratch path
#          (default Benchmarks/.build)
#          SWITCHBOARD_SERVER_BIN, SWITCHBOARD_BENCH_BIN, SWITCHBOARD_STORE_BENCH_BIN: use
#          these binaries instead (with --skip-build: before/after comparisons)
#
# Systems: raw (Benchmarks/raw/rawbench.c: the physical limit), Switchboard through the
# Swift client (switchboard-bench) and the C client (Benchmarks/cclient, when clients/c
# exists), grpc-swift-2 (grpc-peer) in its default configuration and with NIO as the
# global executor. Pinning: "same" = server and client on CPU 0; "split" = server on
# CPU 0, client on CPU 1. Every figure is the median of --reps runs, with min and max.
# Output: a table on stdout, $OUT/latest.json, $OUT/latest.md, $OUT/latency.png.
set -euo pipefail

bench_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$bench_dir/.." && pwd)
cd "$repo"

quick=0 persistence=0 soak=0 soak_baseline="" soak_checkpoints=10000,50000,100000 reps=3 skip_grpc=0 skip_micro=0 skip_build=0 only_pin=""
out="$bench_dir/results"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --persistence) persistence=1 ;;
    --soak) soak=1 ;;
    --soak-baseline) soak_baseline=$2; shift ;;
    --soak-checkpoints) soak_checkpoints=$2; shift ;;
    --reps) reps=$2; shift ;;
    --skip-grpc) skip_grpc=1 ;;
    --skip-micro) skip_micro=1 ;;
    --skip-build) skip_build=1 ;;
    --out) out=$2; shift ;;
    --only-pin) only_pin=$2; shift ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done

log() { printf '==> %s\n' "$*" >&2; }
if [ $((quick + persistence + soak)) -gt 1 ]; then
  echo "run.sh: --quick, --persistence and --soak do not combine" >&2; exit 64
fi
if [ -n "$soak_baseline" ] && [ ! -x "$soak_baseline" ]; then
  echo "run.sh: --soak-baseline $soak_baseline is not an executable" >&2; exit 64
fi
ncpu=$(nproc)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ------------------------------------------------------------------ build
if [ "$quick" = 1 ]; then
  # Debug everything; the main package's debug build (scripts/test.sh made it) is reused.
  config=debug
  scratch="$bench_dir/.build-quick"
  export SWITCHBOARD_BENCH_QUICK=1
elif [ "$soak" = 1 ]; then
  # Release, but only the light products (switchboard-bench): no gRPC or benchmark
  # framework to build, hence a scratch path of its own.
  config=release
  scratch="$bench_dir/.build-soak"
  export SWITCHBOARD_BENCH_QUICK=1
else
  config=release
  scratch=${SWITCHBOARD_BENCH_SCRATCH:-$bench_dir/.build}
fi

# The server binary comes from the main package's own scratch path (.build, shared with
# scripts/serve.sh and scripts/test.sh); SWITCHBOARD_SCRATCH overrides it.
main_scratch=${SWITCHBOARD_SCRATCH:-$repo/.build}
if [ "$skip_build" = 0 ]; then
  log "build switchboard ($config)"
  swift build -c "$config" --scratch-path "$main_scratch" --product switchboard >&2
  log "build switchboard-bench ($config)"
  swift build -c "$config" --package-path "$bench_dir" --scratch-path "$scratch" --product switchboard-bench >&2
  if [ "$persistence" = 1 ]; then
    log "build store-bench ($config)"
    swift build -c "$config" --package-path "$bench_dir" --scratch-path "$scratch" --product store-bench >&2
  elif [ "$quick" = 0 ] && [ "$soak" = 0 ]; then
    if [ "$skip_grpc" = 0 ]; then
      log "build grpc-peer (release; grpc-swift-2's first build takes minutes)"
      swift build -c release --package-path "$bench_dir" --scratch-path "$scratch" --product grpc-peer >&2
    fi
  fi
fi
server_bin=${SWITCHBOARD_SERVER_BIN:-"$(swift build -c "$config" --scratch-path "$main_scratch" --show-bin-path)/switchboard"}
bin_dir="$(swift build -c "$config" --package-path "$bench_dir" --scratch-path "$scratch" --show-bin-path)"
sbbench=${SWITCHBOARD_BENCH_BIN:-"$bin_dir/switchboard-bench"}
grpcpeer="$bin_dir/grpc-peer"
storebench=${SWITCHBOARD_STORE_BENCH_BIN:-"$bin_dir/store-bench"}

work=$(mktemp -d /tmp/sbbench.XXXXXX)
trap 'jobs -p | xargs -r kill 2>/dev/null || true; rm -rf "$work"' EXIT
raw_bin="$work/rawbench"
if [ "$quick" = 0 ] && [ "$persistence" = 0 ] && [ "$soak" = 0 ]; then
  cc -O2 -Wall -Wextra -o "$raw_bin" "$bench_dir/raw/rawbench.c"
  cbench_bin=""
  if [ -f "$repo/clients/c/include/switchboard.h" ] && [ -f "$bench_dir/cclient/build.sh" ]; then
    if cbench_bin=$("$bench_dir/cclient/build.sh" "$work") ; then
      log "C client benchmark: $cbench_bin"
    else
      log "C client benchmark: build failed, skipped"
      cbench_bin=""
    fi
  else
    log "C client benchmark: clients/c not present, skipped (gap in the results)"
  fi
fi

# ------------------------------------------------------------------ helpers
sock="$work/s.sock"
jsonl="$work/results.jsonl"
samples_dir="$work/samples"
mkdir -p "$samples_dir"
: >"$jsonl"

server_pid=""
# start_server PIN CMD... : start a server pinned to PIN, wait until it answers.
start_server() {
  local pin=$1 kind=$2; shift 2
  rm -f "$sock"
  taskset -c "$pin" "$@" >>"$work/server.log" 2>&1 &
  server_pid=$!
  case "$kind" in
    switchboard) "$sbbench" wait --socket "$sock" ;;
    grpc) "$grpcpeer" wait --socket "$sock" ;;
    raw) for _ in $(seq 1 2000); do [ -S "$sock" ] && break; sleep 0.005; done ;;
  esac
}
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
# record SYSTEM PIN VARIANT REP CMD... : run a client, label each JSON line it prints.
record() {
  local system=$1 pin=$2 variant=$3 rep=$4; shift 4
  local output
  if ! output=$("$@"); then
    # Not fatal: the figure shows as "not measured" (quick mode counts its results).
    echo "run.sh: $system/$variant ($pin) FAILED: $*" >&2
    return 0
  fi
  while IFS= read -r line; do
    case "$line" in
      "{"*) printf '{"system":"%s","pin":"%s","variant":"%s","rep":%s,%s\n' \
              "$system" "$pin" "$variant" "$rep" "${line#\{}" >>"$jsonl"
            printf '   %-12s %-5s %-18s %s\n' "$system" "$pin" "$variant" "$line" >&2 ;;
    esac
  done <<<"$output"
}

# Memory-only sessions: the figures measure the broker, not the disk.
serve_args=(serve --socket "$sock" --backend echo --state-dir none)

# ------------------------------------------------------------------ quick mode
if [ "$quick" = 1 ]; then
  log "quick: Switchboard only, debug build, tiny loads (no figures asserted)"
  start_server 0 switchboard "$server_bin" "${serve_args[@]}"
  record switchboard quick unary-seq 1 "$sbbench" unary --socket "$sock" --calls 300 --warmup 20
  record switchboard quick unary-c16 1 "$sbbench" unary --socket "$sock" --calls 320 --concurrency 16 --warmup 20
  record switchboard quick stream 1 "$sbbench" stream --socket "$sock" --chunks 3000
  record switchboard quick sessions 1 "$sbbench" sessions --socket "$sock" --server-pid "$server_pid" --count 200
  record switchboard quick connections 1 "$sbbench" connections --socket "$sock" --server-pid "$server_pid" --count 20
  stop_server
  start_server 0 switchboard "$server_bin" "${serve_args[@]}" --echo-delay 100ms
  record switchboard quick busy-status 1 "$sbbench" busy-status --socket "$sock" --sessions 20 --words 1000 --calls 100 --warmup 10 \
    --interval-us 0 --settle-ms 200
  stop_server
  record switchboard quick startup 1 "$sbbench" startup --socket "$sock" -- "$server_bin" "${serve_args[@]}"
  lines=$(wc -l <"$jsonl")
  if [ "$lines" -lt 7 ]; then
    echo "run.sh --quick: expected 7 results, got $lines" >&2
    exit 1
  fi
  log "quick: $lines results, harness OK"
  exit 0
fi

# ------------------------------------------------------------------ soak (issue #12)
# Server RSS over a long run of one-word prompts on one session (echo backend, one
# connection, sequential, as a chat client sends them): 1,000 warm-up prompts, then
# the settled RSS after each checkpoint. With --state-dir none and with a fresh state
# directory (SQLite), for this tree's server and, with --soak-baseline, for another
# binary in the same run. A server that keeps nothing per prompt stays flat: a session
# keeps its last 100 turns, so the growth per prompt must tend to zero.
if [ "$soak" = 1 ]; then
  mkdir -p "$out"
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  log "soak: load average before: $load_before; checkpoints $soak_checkpoints"
  if [ "$ncpu" -ge 2 ]; then pin=split cpin=1; else pin=same cpin=0; fi
  servers=("current=$server_bin")
  [ -n "$soak_baseline" ] && servers=("baseline=$soak_baseline" "${servers[@]}")
  for entry in "${servers[@]}"; do
    name=${entry%%=*} bin=${entry#*=}
    for mode in none sqlite; do
      if [ "$mode" = none ]; then state=none; else state="$work/soak-state-$name"; rm -rf "$state"; fi
      log "soak: $name server ($bin), --state-dir $mode"
      start_server 0 switchboard "$bin" serve --socket "$sock" --backend echo --state-dir "$state"
      record "soak-$name" "$pin" "$mode" 1 taskset -c "$cpin" "$sbbench" soak --socket "$sock" --server-pid "$server_pid" \
        --checkpoints "$soak_checkpoints"
      stop_server
      [ "$state" = none ] || rm -rf "$state"
    done
  done
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  mkdir -p "$out/raw"
  cp "$jsonl" "$out/raw/soak.jsonl"
  commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$repo" status --porcelain 2>/dev/null | grep -qv '^??' && echo "+uncommitted changes" || true)
  python3 "$bench_dir/soak_report.py" --results "$jsonl" --out "$out" --commit "$commit$dirty" \
    --baseline "${soak_baseline:-}" --load-before "$load_before" --load-after "$load_after"
  exit 0
fi

# ------------------------------------------------------------------ persistence (issue #8)
# Stream throughput with sessions in memory (--state-dir none) against a fresh state
# directory per run (SQLite, the default in production), alternated off/on within each
# repetition, same client, prompt and pinning as the stream figure of the full run;
# server CPU for each stream (until the store's writer is idle again); then reload:
# store-bench fills a state directory with 10,000 sessions × 10 turns × 4 chunks
# (through the store itself, as a server stores them) and times open + load, and
# `switchboard serve --state-dir` on that directory is timed from spawn to the first
# status answer that already counts the 10,000 sessions.
if [ "$persistence" = 1 ]; then
  mkdir -p "$out"
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  log "persistence: load average before: $load_before"
  if [ "$ncpu" -ge 2 ]; then pins=(same split); else pins=(same); fi
  [ -n "$only_pin" ] && pins=("$only_pin")
  STREAM_CHUNKS=100000 RELOAD_SESSIONS=10000 RELOAD_TURNS=10
  # server_cpu_ticks PID: user + system clock ticks of the whole process.
  server_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
  # settled_cpu_ticks PID: the same, once it has stopped growing (the writer caught up).
  settled_cpu_ticks() {
    local last now
    last=$(server_cpu_ticks "$1")
    for _ in $(seq 1 100); do
      sleep 0.1; now=$(server_cpu_ticks "$1")
      [ "$now" = "$last" ] && break
      last=$now
    done
    echo "$last"
  }
  hz=$(getconf CLK_TCK)
  for pin in "${pins[@]}"; do
    spin=0
    if [ "$pin" = same ]; then cpin=0; else cpin=1; fi
    client=(taskset -c "$cpin")
    for rep in $(seq 1 "$reps"); do
      for mode in off on; do
        if [ "$mode" = off ]; then state=none; else state="$work/state-$pin-$rep"; fi
        log "persistence: stream, pinning $pin, repetition $rep/$reps, persistence $mode"
        start_server "$spin" switchboard "$server_bin" serve --socket "$sock" --backend echo --state-dir "$state"
        before=$(server_cpu_ticks "$server_pid")
        record "persist-$mode" "$pin" stream "$rep" "${client[@]}" "$sbbench" stream --socket "$sock" --chunks "$STREAM_CHUNKS"
        after=$(settled_cpu_ticks "$server_pid")
        # The warm-up turn (1,000 chunks) is inside the CPU window: 101,000 chunks.
        awk -v m="$mode" -v p="$pin" -v r="$rep" -v t=$((after - before)) -v hz="$hz" -v n=$((STREAM_CHUNKS + 1000)) 'BEGIN {
          printf "{\"system\":\"persist-%s\",\"pin\":\"%s\",\"variant\":\"server-cpu\",\"rep\":%s,\"bench\":\"server_cpu\",\"cpu_s\":%.4f,\"us_per_chunk\":%.4f}\n",
            m, p, r, t / hz, t / hz * 1e6 / n }' >>"$jsonl"
        stop_server
        [ "$state" = none ] || rm -rf "$state"
      done
    done
  done

  reload_dir="$work/reload-fill"
  log "persistence: filling $RELOAD_SESSIONS sessions × $RELOAD_TURNS turns (store-bench), store-level reload ×3"
  record store same reload 1 taskset -c 0 "$storebench" --dir "$reload_dir" --keep --skip-throughput \
    --sessions "$RELOAD_SESSIONS" --turns "$RELOAD_TURNS"
  [ -f "$reload_dir/reload/switchboard.sqlite" ] || { echo "run.sh: store-bench left no state directory" >&2; exit 1; }
  du -sk "$reload_dir/reload" | awk '{ printf "{\"system\":\"store\",\"pin\":\"same\",\"variant\":\"size\",\"rep\":1,\"bench\":\"size\",\"mib\":%s}\n", $1 / 1024 }' >>"$jsonl"
  for pin in "${pins[@]}"; do
    spin=0
    if [ "$pin" = same ]; then cpin=0; else cpin=1; fi
    client=(taskset -c "$cpin")
    for rep in $(seq 1 "$reps"); do
      log "persistence: startup, pinning $pin, repetition $rep/$reps"
      record persist-off "$pin" startup "$rep" "${client[@]}" "$sbbench" startup --socket "$sock" -- \
        taskset -c "$spin" "$server_bin" serve --socket "$sock" --backend echo --state-dir none
      rm -rf "$work/state-empty"
      record persist-on "$pin" startup-empty "$rep" "${client[@]}" "$sbbench" startup --socket "$sock" -- \
        taskset -c "$spin" "$server_bin" serve --socket "$sock" --backend echo --state-dir "$work/state-empty"
      record persist-on "$pin" startup-reload "$rep" "${client[@]}" "$sbbench" startup --socket "$sock" \
        --expect-sessions "$RELOAD_SESSIONS" -- \
        taskset -c "$spin" "$server_bin" serve --socket "$sock" --backend echo --state-dir "$reload_dir/reload"
    done
  done

  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  mkdir -p "$out/raw"
  cp "$jsonl" "$out/raw/persistence.jsonl"
  commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$repo" status --porcelain 2>/dev/null | grep -qv '^??' && echo "+uncommitted changes" || true)
  python3 "$bench_dir/persistence_report.py" --results "$jsonl" --out "$out" --commit "$commit$dirty" --reps "$reps" \
    --load-before "$load_before" --load-after "$load_after"
  exit 0
fi

# ------------------------------------------------------------------ full run
mkdir -p "$out"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before the run: $load_before (other work on the machine skews every figure)"
if [ "$ncpu" -ge 2 ]; then pins=(same split); else pins=(same); fi
[ -n "$only_pin" ] && pins=("$only_pin")

UNARY_CALLS=20000 CONC_CALLS=32000 STREAM_CHUNKS=100000 RAW_STREAM_FRAMES=1000000
GRPC_STREAM_CHUNKS=20000

for pin in "${pins[@]}"; do
  spin=0
  if [ "$pin" = same ]; then cpin=0; else cpin=1; fi
  client=(taskset -c "$cpin")
  for rep in $(seq 1 "$reps"); do
    log "pinning $pin (server CPU $spin, client CPU $cpin), repetition $rep/$reps"

    # raw limit
    start_server "$spin" raw "$raw_bin" serve "$sock"
    record raw "$pin" unary-seq "$rep" "${client[@]}" "$raw_bin" pingpong "$sock" 100000 10000 "$samples_dir/raw-$pin-$rep.txt"
    record raw "$pin" unary-c16 "$rep" "${client[@]}" "$raw_bin" pipelined "$sock" 200000 16
    record raw "$pin" stream-single "$rep" "${client[@]}" "$raw_bin" stream "$sock" "$RAW_STREAM_FRAMES" single
    record raw "$pin" stream-batched "$rep" "${client[@]}" "$raw_bin" stream "$sock" "$RAW_STREAM_FRAMES" batched
    stop_server

    # Switchboard, Swift client (and C client)
    start_server "$spin" switchboard "$server_bin" "${serve_args[@]}"
    record switchboard "$pin" unary-seq "$rep" "${client[@]}" "$sbbench" unary --socket "$sock" --calls "$UNARY_CALLS" \
      --samples "$samples_dir/switchboard-$pin-$rep.txt"
    record switchboard "$pin" unary-c16 "$rep" "${client[@]}" "$sbbench" unary --socket "$sock" --calls "$CONC_CALLS" --concurrency 16
    record switchboard "$pin" stream "$rep" "${client[@]}" "$sbbench" stream --socket "$sock" --chunks "$STREAM_CHUNKS"
    # The same Swift client with NIO as the global executor (no loop -> pool hop per call).
    record switchboard-nio "$pin" unary-seq "$rep" "${client[@]}" "$sbbench" unary --socket "$sock" --calls "$UNARY_CALLS" \
      --nio-executor --samples "$samples_dir/switchboard-nio-$pin-$rep.txt"
    record switchboard-nio "$pin" unary-c16 "$rep" "${client[@]}" "$sbbench" unary --socket "$sock" --calls "$CONC_CALLS" \
      --concurrency 16 --nio-executor
    record switchboard-nio "$pin" stream "$rep" "${client[@]}" "$sbbench" stream --socket "$sock" --chunks "$STREAM_CHUNKS" --nio-executor
    if [ -n "${cbench_bin:-}" ]; then
      record switchboard-c "$pin" unary-seq "$rep" "${client[@]}" "$cbench_bin" unary "$sock" "$UNARY_CALLS" \
        "$samples_dir/switchboard-c-$pin-$rep.txt" || true
      record switchboard-c "$pin" unary-c16 "$rep" "${client[@]}" "$cbench_bin" unary "$sock" "$CONC_CALLS" - 16 || true
      record switchboard-c "$pin" stream "$rep" "${client[@]}" "$cbench_bin" stream "$sock" "$STREAM_CHUNKS" || true
    fi
    stop_server

    # status while 1,000 sessions are mid-turn, against the idle server (same flags)
    start_server "$spin" switchboard "$server_bin" "${serve_args[@]}" --echo-delay 100ms
    record switchboard "$pin" status-idle "$rep" "${client[@]}" "$sbbench" busy-status --socket "$sock" --sessions 0 --calls 5000 \
      --samples "$samples_dir/status-idle-$pin-$rep.txt"
    stop_server
    start_server "$spin" switchboard "$server_bin" "${serve_args[@]}" --echo-delay 100ms
    record switchboard "$pin" status-busy "$rep" "${client[@]}" "$sbbench" busy-status --socket "$sock" --sessions 1000 \
      --words 1000 --calls 5000 --samples "$samples_dir/status-busy-$pin-$rep.txt"
    stop_server

    # startup: process start to first answered status call
    record switchboard "$pin" startup "$rep" "${client[@]}" "$sbbench" startup --socket "$sock" -- \
      taskset -c "$spin" "$server_bin" "${serve_args[@]}"

    # memory (pinning does not change it: measured under "split" only)
    if [ "$pin" = split ] || [ "${#pins[@]}" = 1 ]; then
      start_server "$spin" switchboard "$server_bin" "${serve_args[@]}"
      record switchboard "$pin" sessions "$rep" "${client[@]}" "$sbbench" sessions --socket "$sock" --server-pid "$server_pid" --count 100000
      stop_server
      start_server "$spin" switchboard "$server_bin" "${serve_args[@]}"
      record switchboard "$pin" connections "$rep" "${client[@]}" "$sbbench" connections --socket "$sock" --server-pid "$server_pid" --count 1000
      stop_server
    fi

    # grpc-swift-2, default and with NIO as the global executor
    if [ "$skip_grpc" = 0 ]; then
      for variant in default nio-executor; do
        flag=()
        [ "$variant" = nio-executor ] && flag=(--nio-executor)
        start_server "$spin" grpc "$grpcpeer" serve --socket "$sock" "${flag[@]}"
        record "grpc-$variant" "$pin" unary-seq "$rep" "${client[@]}" "$grpcpeer" unary --socket "$sock" --calls "$UNARY_CALLS" \
          --samples "$samples_dir/grpc-$variant-$pin-$rep.txt" "${flag[@]}"
        record "grpc-$variant" "$pin" unary-c16 "$rep" "${client[@]}" "$grpcpeer" unary --socket "$sock" --calls "$CONC_CALLS" \
          --concurrency 16 "${flag[@]}"
        record "grpc-$variant" "$pin" stream "$rep" "${client[@]}" "$grpcpeer" stream --socket "$sock" --chunks "$GRPC_STREAM_CHUNKS" "${flag[@]}"
        stop_server
      done
    fi
  done
done

# ------------------------------------------------------------------ micro-benchmarks
micro_json="$work/micro.txt"
if [ "$skip_micro" = 0 ]; then
  log "micro-benchmarks (ordo-one/benchmark): check against the committed Thresholds/, then record this run's p90s"
  mkdir -p "$work/micro-now"
  if ( cd "$bench_dir" && taskset -c 0 swift package --scratch-path "$scratch" --disable-sandbox benchmark \
        thresholds check --path Thresholds --no-progress ) >"$micro_json" 2>&1; then
    echo 1 >"$work/micro.ok"
  else
    echo 0 >"$work/micro.ok"
  fi
  grep -v '^\[' "$micro_json" | tail -30 >&2 || true
  ( cd "$bench_dir" && taskset -c 0 swift package --scratch-path "$scratch" --disable-sandbox \
      --allow-writing-to-directory "$work/micro-now" benchmark thresholds update --path "$work/micro-now" --no-progress ) \
      >>"$micro_json" 2>&1 || log "micro-benchmarks: recording this run's figures failed (see $out/raw/micro.txt)"
fi

# ------------------------------------------------------------------ report
mkdir -p "$out/raw"
cp "$jsonl" "$out/raw/results.jsonl"
cp -r "$samples_dir" "$out/raw/"
[ -f "$micro_json" ] && cp "$micro_json" "$out/raw/micro.txt"
[ -d "$work/micro-now" ] && cp -r "$work/micro-now" "$out/raw/"
commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain 2>/dev/null | grep -qv '^??' && echo "+uncommitted changes" || true)
python3 "$bench_dir/report.py" --results "$jsonl" --samples "$samples_dir" --out "$out" \
  --commit "$commit$dirty" --reps "$reps" --micro "$micro_json" --micro-now "$work/micro-now" \
  --thresholds "$bench_dir/Thresholds" --load-before "$load_before" --load-after "$(cut -d' ' -f1-3 /proc/loadavg)"
