#!/usr/bin/env bash
# The units under a real systemd (issue 18): boots systemd as PID 1 of a container
# (systemd-nspawn), installs switchboard exactly as docs/OPERATIONS.md's "Install
# (system service)" block says (run verbatim, with the debug binary for
# .build/release/switchboard and a test user for alice), and checks what an operator
# relies on: socket activation on the first connection, READY (Type=notify),
# the socket's owner and mode after activation, drain on `systemctl stop` with
# exit 0 and the socket kept, re-activation with the sessions restored, a watchdog
# timeout that restarts the service within WatchdogSec plus a few seconds with
# the reason in the journal, and the user units (linger, state in the documented
# directory).
#
# The container's root (Debian minbase + systemd, from the mirror apt already
# uses) is built once with debootstrap and cached in $SWITCHBOARD_CONTAINER_CACHE
# (default /var/cache/switchboard-test); the container runs it with
# --volatile=overlay, so the cache is never written. Warm cache: about a minute
# (30 s of it waiting for the watchdog); cold: plus 1-3 minutes of debootstrap
# (network and CPU bound; 208 MB). The Swift toolchain (the directory of the
# `swift` on PATH) and the binary are bound read-only.
#
# Skipped, with the reason printed, only where the machine cannot run a container:
# neither root nor password-less sudo, or systemd-nspawn cannot start a process in
# a container at all.
# Everything after that is a failure. Usage: scripts/systemd-container-test.sh [BINARY]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

say() { printf 'systemd container test: %s\n' "$*"; }
skip() { say "SKIPPED: $*"; exit 0; }

if [[ $(id -u) != 0 ]]; then
  # CI may run as a user with password-less sudo (as scripts/bootstrap.sh does).
  if sudo -n true 2>/dev/null; then
    exec sudo -n env PATH="$PATH" SWITCHBOARD_CONTAINER_CACHE="${SWITCHBOARD_CONTAINER_CACHE:-}" "$0" "${1:-$(swift build --show-bin-path)/switchboard}"
  fi
  skip "needs root or password-less sudo (debootstrap, systemd-nspawn)"
fi
for tool in systemd-nspawn debootstrap nsenter; do
  command -v "$tool" >/dev/null || { say "FAIL: $tool is missing: run scripts/bootstrap.sh" >&2; exit 1; }
done
swift_root="$(cd "$(dirname "$(readlink -f "$(command -v swift)")")/../.." && pwd)"
binary="${1:-$(swift build --show-bin-path)/switchboard}"
[[ -x $binary ]] || { say "FAIL: no server binary at $binary (swift build first)" >&2; exit 1; }

# --- The container's root, built once -----------------------------------------
. /etc/os-release
suite="${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"
# The Debian mirror apt uses (never written into the repository).
mirror="$(apt-cache policy | awk -v s=" $suite/main " 'index($0, s) && $2 ~ /^https?:/ { print $2; exit }')"
packages="systemd,systemd-sysv,dbus,libpam-systemd,libprotobuf-c1,libsqlite3-0,libstdc++6,libgcc-s1,procps"
cache="${SWITCHBOARD_CONTAINER_CACHE:-}"
cache="${cache:-/var/cache/switchboard-test}"
key="$(printf '%s %s' "$suite" "$packages" | sha256sum | cut -c1-12)"
rootfs="$cache/root-$suite-$key"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # one build at a time; a second run waits and then uses it
if [[ ! -f $rootfs/.complete ]]; then
  [[ -n $mirror ]] || { say "FAIL: no $suite/main mirror in apt's configuration (apt-cache policy)" >&2; exit 1; }
  say "building the container root $rootfs (debootstrap $suite, once)"
  started=$SECONDS
  # Roots of other package lists or releases are of no further use.
  find "$cache" -mindepth 1 -maxdepth 1 -name 'root-*' ! -name "${rootfs##*/}" -exec rm -rf {} +
  rm -rf "$rootfs.partial"
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs.partial" "$mirror" \
    >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; say "FAIL: debootstrap (log: $cache/debootstrap.log)" >&2; exit 1; }
  # An empty machine-id makes systemd generate one per boot (no "first boot" setup).
  : >"$rootfs.partial/etc/machine-id"
  rm -rf "$rootfs.partial/var/cache/apt/archives/"*.deb
  touch "$rootfs.partial/.complete"
  rm -rf "$rootfs"
  mv "$rootfs.partial" "$rootfs"
  say "container root built in $((SECONDS - started)) s"
fi
flock -s 9  # shared while this run uses the root: a rebuild for other packages waits

# --- Boot systemd as PID 1 ------------------------------------------------------
# --volatile=overlay: the cached root is the lower layer of an overlay whose upper
# layer is a tmpfs, so every boot starts from the same, untouched root.
nspawn=(systemd-nspawn -D "$rootfs" --volatile=overlay --register=no --keep-unit -q)
probe="$("${nspawn[@]}" /bin/true 2>&1)" || skip "systemd-nspawn cannot run a container on this machine: $probe"

work="$(mktemp -d /tmp/switchboard-systemd.XXXXXX)"
machine="sbtest$$"
started=$SECONDS
"${nspawn[@]}" -b --console=pipe -M "$machine" \
  --bind-ro="$swift_root" --bind-ro="$repo":/src --bind-ro="$(cd "$(dirname "$binary")" && pwd)":/src-bin \
  </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!
leader=""
inside() {  # runs a command in the container, in a clean environment
  nsenter -t "$leader" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}
finish() {
  local rc=$?
  if [[ -n $leader ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
    if ((rc != 0)); then
      echo "--- journal of the container (last 150 lines) ---" >&2
      inside journalctl --no-pager -n 150 -o short-monotonic >&2 || true
    fi
    inside systemctl poweroff --no-block >/dev/null 2>&1 || true
  fi
  for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$nspawn_pid" 2>/dev/null; then kill -KILL "$nspawn_pid" 2>/dev/null || true; fi
  wait "$nspawn_pid" 2>/dev/null || true
  if ((rc != 0)); then echo "--- container console ---" >&2; tail -40 "$work/console.log" >&2; fi
  rm -rf "$work"
  exit "$rc"
}
trap finish EXIT
fail() { say "FAIL: $*" >&2; exit 1; }
pass() { say "ok: $*"; }

# The container's PID 1 is the nspawn process's child whose pid namespace differs.
for _ in $(seq 150); do
  for child in $(ps -o pid= --ppid "$nspawn_pid" 2>/dev/null); do
    if [[ $(readlink "/proc/$child/ns/pid") != "$(readlink /proc/self/ns/pid)" ]]; then leader=$child; fi
  done
  [[ -n $leader ]] && break
  kill -0 "$nspawn_pid" 2>/dev/null || fail "systemd-nspawn ended: $(tail -20 "$work/console.log")"
  sleep 0.2
done
[[ -n $leader ]] || fail "no container PID 1 after 30 s"
booted=""
for _ in $(seq 120); do
  state="$(inside systemctl is-system-running 2>/dev/null || true)"
  case $state in running|degraded) booted=$state; break ;; esac
  sleep 0.5
done
[[ -n $booted ]] || fail "systemd did not finish booting in 60 s (state: ${state:-none})"
pass "systemd $(inside systemctl --version | awk 'NR==1 {print $2}') is PID 1 of the container, $booted, after $((SECONDS - started)) s"

show() { inside systemctl show -p "$1" --value "$2"; }  # property unit
as_user() { local user=$1; shift; inside runuser -u "$user" -- "$@"; }
# Seconds of a "NNs" setting of the installed system service unit.
unit_seconds() {
  local value
  value="$(awk -F= -v key="$1" '$1 == key { print $2 }' systemd/switchboard.service)"
  [[ $value =~ ^([0-9]+)s$ ]] || fail "$1= of systemd/switchboard.service is '$value', not NNs"
  echo "${BASH_REMATCH[1]}"
}
# An sh block of docs/OPERATIONS.md: the first one after the heading $1.
doc_block() {
  awk -v heading="$1" '$0 == heading { section = 1; next } section && /^```sh/ { code = 1; next } code && /^```/ { exit } code' docs/OPERATIONS.md
}
sock=/run/switchboard/switchboard.sock

# --- Install exactly as OPERATIONS.md says ------------------------------------------
inside useradd -m alice
inside useradd -m bob  # not in the switchboard group
block="$(doc_block '## Install (system service)')"
[[ -n $block ]] || fail "no sh block under '## Install (system service)' in docs/OPERATIONS.md"
# This machine's debug build stands in for the release build; sudo is not needed (root).
commands="$(printf '%s\n' "$block" | grep -v '^swift build' | sed -e 's#\.build/release/switchboard#/src-bin/switchboard#g' -e 's#^sudo ##')"
inside sh -euc "cd /src; $commands" >"$work/install.log" 2>&1 || fail "the install commands of OPERATIONS.md failed: $(cat "$work/install.log")"
pass "installed as OPERATIONS.md says"

[[ $(inside systemctl is-active switchboard.socket) == active ]] || fail "switchboard.socket is not active"
[[ $(inside systemctl is-active switchboard.service || true) == inactive ]] || fail "switchboard.service runs before any connection"
expected_owner="root switchboard 660"
owner="$(inside stat -c '%U %G %a' "$sock")"
[[ $owner == "$expected_owner" ]] || fail "socket before activation: $owner, want $expected_owner"
pass "socket listening ($owner), service not started"

# --- Socket activation, READY -----------------------------------------------------------
out="$(as_user alice switchboard health --socket "$sock" 2>&1)" || fail "health as alice: $out"
[[ $out == *SERVING* ]] || fail "health as alice: $out"
for _ in $(seq 50); do [[ $(show ActiveState switchboard.service) == active ]] && break; sleep 0.2; done
[[ $(show SubState switchboard.service) == running ]] || fail "service after the first connection: $(inside systemctl status --no-pager switchboard.service)"
status_text="$(show StatusText switchboard.service)"
[[ $status_text == serving:* ]] || fail "no STATUS= from the server (Type=notify READY): '$status_text'"
first_pid="$(show MainPID switchboard.service)"
pass "activated by the first connection; READY (active/running), STATUS: $status_text"
out="$(as_user bob switchboard health --socket "$sock" 2>&1)" && fail "bob (not in the group) was served: $out"
pass "a user outside the switchboard group is refused: ${out%%$'\n'*}"

# --- Finding 1: the socket stays root's after activation ---------------------------------------
owner="$(inside stat -c '%U %G %a' "$sock")"
[[ $owner == "$expected_owner" ]] || fail "socket after activation: $owner, want $expected_owner (the service must not own its socket)"
dir_owner="$(inside stat -c '%U %G %a' /run/switchboard)"
[[ $dir_owner == "root root 755" ]] || fail "/run/switchboard after activation: $dir_owner, want root root 755"
pass "after activation the socket is $owner and /run/switchboard $dir_owner"

# --- Drain on stop, exit 0; re-activation restores sessions ---------------------------------------
out="$(as_user alice switchboard session create --socket "$sock" --id kept-across-stop 2>&1)" || fail "session create: $out"
since="$(inside date +%s)"
inside systemctl stop switchboard.service 2>/dev/null  # (its warning: the socket can still activate it)
result="$(show Result switchboard.service) $(show ExecMainCode switchboard.service) $(show ExecMainStatus switchboard.service)"
[[ $result == "success 1 0" ]] || fail "after systemctl stop: Result ExecMainCode ExecMainStatus = $result, want success 1 (exited) 0"
journal="$(inside journalctl -u switchboard.service --since "@$since" -o cat --no-pager)"
[[ $journal == *draining* ]] || fail "no drain in the journal after stop: $journal"
[[ $(inside systemctl is-active switchboard.socket) == active ]] || fail "the socket unit stopped with the service"
owner="$(inside stat -c '%U %G %a' "$sock")"
[[ $owner == "$expected_owner" ]] || fail "socket after stop: $owner"
pass "systemctl stop drained and exited 0; the socket stays ($owner)"

# The backtrace drop-in of OPERATIONS.md ("Watchdog and backtraces"), with this
# toolchain's static backtracer; it applies from the next start.
dropin="$(awk '/^## Watchdog and backtraces/ { section = 1; next } section && /^```ini/ { code = 1; next } code && /^```/ { exit } code' docs/OPERATIONS.md)"
[[ $dropin == *SWIFT_BACKTRACE=* ]] || fail "no SWIFT_BACKTRACE drop-in under '## Watchdog and backtraces' in docs/OPERATIONS.md"
backtracer="$swift_root/usr/libexec/swift/linux/swift-backtrace-static"
[[ -x $backtracer ]] || fail "no static backtracer at $backtracer"
inside mkdir -p /etc/systemd/system/switchboard.service.d
printf '%s\n' "$dropin" | sed "s#=/[^ ]*/swift-backtrace-static#=$backtracer#" | inside sh -c 'cat >/etc/systemd/system/switchboard.service.d/backtrace.conf'
inside systemctl daemon-reload

out="$(as_user alice switchboard session get --socket "$sock" kept-across-stop 2>&1)" || fail "session get after re-activation: $out"
second_pid="$(show MainPID switchboard.service)"
[[ $second_pid != 0 && $second_pid != "$first_pid" ]] || fail "not a new process after re-activation: $first_pid -> $second_pid"
state_files="$(inside stat -c '%U %a %n' /var/lib/switchboard/switchboard.sqlite /var/lib/switchboard/lock)"
[[ $(awk '$1 != "switchboard" || $2 != "600"' <<<"$state_files") == "" ]] || fail "state files: $state_files"
pass "re-activated by the next connection (pid $first_pid -> $second_pid), session kept; state files switchboard 0600"

# --- Finding 2: a watchdog timeout restarts within WatchdogSec plus a few seconds ------------------
# A stopped process sends no WATCHDOG=1: exactly a hung server. systemd then sends
# WatchdogSignal= (SIGABRT, with SIGCONT) and SIGKILL after TimeoutAbortSec=.
watchdog=$(unit_seconds WatchdogSec)
abort=$(unit_seconds TimeoutAbortSec)
restart=$(unit_seconds RestartSec)
limit=$((watchdog + abort + restart + 5))
restarts_before="$(show NRestarts switchboard.service)"
since="$(inside date +%s.%N)"
inside kill -STOP "$second_pid"
stopped_at=$SECONDS
while ((SECONDS - stopped_at <= limit + 30)); do
  [[ $(show NRestarts switchboard.service) -gt $restarts_before && $(show ActiveState switchboard.service) == active ]] && break
  sleep 1
done
journal="$(inside journalctl -u switchboard.service --since "@${since%.*}" -o cat --no-pager)"
[[ $(show NRestarts switchboard.service) -gt $restarts_before ]] || fail "no restart $((limit + 30)) s after the server hung: $journal"
# The times, from the journal's own timestamps (not from this loop's polling).
events="$(inside journalctl -u switchboard.service --since "@${since%.*}" -o short-unix --no-pager)"
at() { awk -v since="$since" -v text="$1" 'index($0, text) && $1 >= since { print $1; exit }' <<<"$events"; }
timed_out="$(at "Watchdog timeout")"; backtraced="$(at "Backtracing from")"; restarted="$(at "Started switchboard.service")"
[[ -n $timed_out ]] || fail "no 'Watchdog timeout' in the journal: $journal"
[[ -n $restarted ]] || fail "no restart in the journal: $journal"
[[ $journal == *"Failed with result 'watchdog'"* ]] || fail "no watchdog result in the journal: $journal"
recovered="$(awk -v a="$since" -v b="$restarted" 'BEGIN { printf "%.1f", b - a }')"
awk -v r="$recovered" -v l="$limit" 'BEGIN { exit !(r <= l) }' \
  || fail "restarted only $recovered s after the server hung; WatchdogSec=$watchdog TimeoutAbortSec=$abort RestartSec=$restart allow $limit: $journal"
[[ $journal == *"Program crashed: Aborted"* && $journal == *"Thread 0 "* && -n $backtraced ]] || fail "no backtrace of the hung server in the journal: $journal"
timings="timeout at +$(awk -v a="$since" -v b="$timed_out" 'BEGIN { printf "%.1f", b - a }') s, backtrace at +$(awk -v a="$since" -v b="$backtraced" 'BEGIN { printf "%.1f", b - a }') s"
third_pid="$(show MainPID switchboard.service)"
out="$(as_user alice switchboard session get --socket "$sock" kept-across-stop 2>&1)" || fail "session get after the watchdog restart: $out"
pass "hung server (pid $second_pid) restarted $recovered s after it hung (limit $limit; $timings) as pid $third_pid; journal: Watchdog timeout, a backtrace, result 'watchdog'"

# --- Finding 3: the user units, installed as OPERATIONS.md says --------------------------------------
block="$(doc_block '## Install (user service)')"
[[ -n $block ]] || fail "no sh block under '## Install (user service)' in docs/OPERATIONS.md"
uid="$(inside id -u alice)"
# Lines starting with sudo are the administrator's (the packages are in the root already);
# the rest run as alice, in the environment a login (or lingering) session gives her.
root_commands="$(printf '%s\n' "$block" | grep '^sudo ' | grep -v 'apt-get install' | sed -e 's#^sudo ##' -e 's#"\$USER"#alice#g; s#\$USER#alice#g')"
user_commands="$(printf '%s\n' "$block" | grep -v '^sudo ' | sed -e 's#\.build/release/switchboard#/src-bin/switchboard#g')"
inside sh -euc "$root_commands" >"$work/user-install.log" 2>&1 || fail "the root commands of the user install failed: $(cat "$work/user-install.log")"
for _ in $(seq 100); do [[ $(inside systemctl is-active "user@$uid.service" || true) == active ]] && break; sleep 0.2; done
[[ $(inside systemctl is-active "user@$uid.service" || true) == active ]] || fail "no user manager for alice after the root commands: $(inside systemctl status --no-pager "user@$uid.service" || true)"
user_env=(env XDG_RUNTIME_DIR="/run/user/$uid" HOME=/home/alice USER=alice LOGNAME=alice)
inside runuser -u alice -- "${user_env[@]}" sh -euc "cd /src; $user_commands" >>"$work/user-install.log" 2>&1 \
  || fail "the user install commands of OPERATIONS.md failed: $(cat "$work/user-install.log")"
[[ $(tail -1 "$work/user-install.log") == *SERVING* ]] || fail "the user install's health did not answer SERVING: $(cat "$work/user-install.log")"
user_owner="$(inside stat -c '%U %a' "/run/user/$uid/switchboard.sock")"
[[ $user_owner == "alice 600" ]] || fail "the user socket is $user_owner, want alice 600"
# systemd.exec(5): a user unit's StateDirectory= is $XDG_CONFIG_HOME before systemd 254, $XDG_STATE_HOME since.
version="$(inside systemctl --version | awk 'NR==1 {print $2}')"
state_dir=/home/alice/.config/switchboard
((version >= 254)) && state_dir=/home/alice/.local/state/switchboard
state="$(inside stat -c '%U %a' "$state_dir/switchboard.sqlite" 2>&1)" || fail "no $state_dir/switchboard.sqlite (systemd $version): $(inside find /home/alice -name 'switchboard.sqlite*')"
[[ $state == "alice 600" ]] || fail "$state_dir/switchboard.sqlite is $state"
pass "user units as alice (linger): socket $user_owner, served, state in $state_dir (systemd $version)"

say "passed in $((SECONDS - started)) s (container root: $rootfs)"
