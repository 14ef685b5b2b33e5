#!/usr/bin/env bash
# Installs what building and testing Switchboard needs on a Debian machine, when
# missing: libprotobuf-c (library + headers), protoc-c (to check the generated
# code), pkg-config; for the C and Python clients: protoc (protobuf-compiler),
# make, a C compiler, python3 with the protobuf and pytest packages. Swift itself
# is expected on PATH.
set -euo pipefail

missing=()
pkg-config --exists libprotobuf-c 2>/dev/null || missing+=(libprotobuf-c-dev)
command -v protoc-c >/dev/null || missing+=(protobuf-c-compiler)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v setpriv >/dev/null || missing+=(util-linux)
# The session store (SwitchboardPersistence) links GRDB against the system SQLite.
pkg-config --exists sqlite3 2>/dev/null || missing+=(libsqlite3-dev)
# The systemd tests run the real systemd-socket-activate and systemd-analyze.
{ command -v systemd-socket-activate && command -v systemd-analyze; } >/dev/null || missing+=(systemd)
# The C and Python clients (clients/c, clients/python) and the conformance suite:
command -v protoc >/dev/null || missing+=(protobuf-compiler)  # clients/python/generate.sh
command -v make >/dev/null || missing+=(make)
command -v cc >/dev/null || missing+=(gcc)
command -v python3 >/dev/null || missing+=(python3 python3-pip)

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo=""
  [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Python packages of clients/python: pip when it works, else Debian's package
# (a system Python may refuse pip installs: PEP 668).
python_module() {  # module pip-requirement debian-package
  python3 -c "import $1" 2>/dev/null && return 0
  echo "bootstrap: installing $2 for $(command -v python3)" >&2
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check "$2" && return 0
  local sudo=""
  [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$3" >/dev/null
}
python_module google.protobuf 'protobuf>=3.20,<8' python3-protobuf
python_module pytest pytest python3-pytest

command -v swift >/dev/null || { echo "bootstrap: swift is not on PATH (Swift 6.1 or later is required)" >&2; exit 1; }
