#!/usr/bin/env bash
# Runs every scenario of conformance/scenarios.json with every client (Swift, C,
# Python) against real servers, and prints "N passed, M failed, K skipped" (a
# scenario with a "clients" list is skipped for the other clients).
#
#   conformance/run.sh                       build what is needed, run everything
#   conformance/run.sh --clients c,python    only these clients
#   conformance/run.sh --scenario deadline   only this scenario (repeatable)
#
# Environment: SWITCHBOARD_BIN, the server binary (default: `swift build
# --product switchboard` and its debug binary); SWITCHBOARD_CONFORMANCE_SCRATCH, the
# Swift runner's scratch path (default .build-conformance). Servers are started once per
# profile in scenarios.json ("servers") on temporary sockets and stopped at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

clients="swift c python"
only=()
while (($#)); do
  case $1 in
    --clients) clients=${2//,/ }; shift 2 ;;
    --scenario) only+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done

log() { printf '%s\n' "$*" >&2; }

# --- build ---------------------------------------------------------------------
if [[ -z ${SWITCHBOARD_BIN:-} ]]; then
  log "conformance: building the server (swift build --product switchboard)"
  swift build --product switchboard >&2
  SWITCHBOARD_BIN="$(swift build --show-bin-path)/switchboard"
fi
[[ -x $SWITCHBOARD_BIN ]] || { log "conformance: no server binary at $SWITCHBOARD_BIN"; exit 1; }

declare -A runner
for client in $clients; do
  case $client in
    swift)
      scratch=${SWITCHBOARD_CONFORMANCE_SCRATCH:-$root/.build-conformance}
      log "conformance: building the Swift runner (conformance/swift, scratch $scratch)"
      swift build --package-path conformance/swift --scratch-path "$scratch" >&2
      runner[swift]="$scratch/debug/switchboard-conformance"
      ;;
    c)
      log "conformance: building the C runner (make -C clients/c)"
      make -s -C clients/c build/switchboard-c-conformance >&2
      runner[c]="$root/clients/c/build/switchboard-c-conformance"
      ;;
    python)
      python3 -c 'import google.protobuf' 2>/dev/null || { log "conformance: python3 lacks the protobuf package (scripts/bootstrap.sh)"; exit 1; }
      runner[python]="python3 $root/conformance/python/runner.py"
      ;;
    *) log "conformance: unknown client $client"; exit 64 ;;
  esac
done

# --- scenarios as lines: name <TAB> server <TAB> clients <TAB> key=value ... ---
# clients: "*", or the comma-separated clients a scenario is for ("clients" in
# the JSON, for features a client library does not offer); others SKIP it.
scenarios=$(python3 - "$root/conformance/scenarios.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for name, flags in doc["servers"].items():
    print("\t".join(["@server", name] + flags))
for s in doc["scenarios"]:
    args = [f"{k}={v}" for k, v in s.get("params", {}).items()]
    args += [f"expect.{k}={v}" for k, v in s.get("expect", {}).items()]
    print("\t".join([s["name"], s["server"], ",".join(s.get("clients", ["*"]))] + args))
EOF
)

# --- servers -----------------------------------------------------------------
tmp=$(mktemp -d /tmp/sb-conformance.XXXXXX)
declare -A server_pid server_socket
cleanup() {
  for name in "${!server_pid[@]}"; do kill -TERM "${server_pid[$name]}" 2>/dev/null || true; done
  for name in "${!server_pid[@]}"; do wait "${server_pid[$name]}" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

while IFS=$'\t' read -r -a fields; do
  [[ ${fields[0]} == @server ]] || continue
  name=${fields[1]}
  sock="$tmp/$name.sock"
  "$SWITCHBOARD_BIN" serve --socket "$sock" --state-dir "$tmp/$name.state" --log-level warning "${fields[@]:2}" >"$tmp/$name.log" 2>&1 &
  server_pid[$name]=$!
  server_socket[$name]=$sock
done <<<"$scenarios"
for name in "${!server_pid[@]}"; do
  for _ in $(seq 300); do
    "$SWITCHBOARD_BIN" health --socket "${server_socket[$name]}" >/dev/null 2>&1 && continue 2
    kill -0 "${server_pid[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  log "conformance: server '$name' did not start:"; cat "$tmp/$name.log" >&2; exit 1
done

# --- run -------------------------------------------------------------------------
passed=0 failed=0 skipped=0 n=0
declare -A client_passed client_failed client_skipped
failures=()
while IFS=$'\t' read -r -a fields; do
  name=${fields[0]}
  [[ $name == @server ]] && continue
  if ((${#only[@]})) && [[ ! " ${only[*]} " == *" $name "* ]]; then continue; fi
  sock=${server_socket[${fields[1]}]:?"scenario $name: unknown server ${fields[1]}"}
  for client in $clients; do
    if [[ ${fields[2]} != "*" && ",${fields[2]}," != *",$client,"* ]]; then
      printf 'SKIP  %-7s %s (not for this client)\n' "$client" "$name"
      skipped=$((skipped + 1)); client_skipped[$client]=$((${client_skipped[$client]:-0} + 1))
      continue
    fi
    n=$((n + 1))
    out="$tmp/out.$n"
    # shellcheck disable=SC2086  # runner[python] is "python3 path"
    if timeout 120 ${runner[$client]} --socket "$sock" --scenario "$name" \
        "prefix=conf-$client-$$-$n" "${fields[@]:3}" >"$out" 2>&1; then
      printf 'PASS  %-7s %s\n' "$client" "$name"
      passed=$((passed + 1)); client_passed[$client]=$((${client_passed[$client]:-0} + 1))
    else
      printf 'FAIL  %-7s %s\n' "$client" "$name"
      sed 's/^/        /' "$out"
      failed=$((failed + 1)); client_failed[$client]=$((${client_failed[$client]:-0} + 1))
      failures+=("$client/$name")
    fi
  done
done <<<"$scenarios"

echo
for client in $clients; do
  printf '%-7s %d passed, %d failed, %d skipped\n' "$client" "${client_passed[$client]:-0}" \
    "${client_failed[$client]:-0}" "${client_skipped[$client]:-0}"
done
if ((failed)); then
  echo "failed: ${failures[*]}"
  for name in "${!server_pid[@]}"; do
    echo "--- server '$name' log (tail)"; tail -n 20 "$tmp/$name.log"
  done
fi
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
