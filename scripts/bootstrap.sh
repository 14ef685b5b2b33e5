#!/usr/bin/env bash
# Installs what building and testing Switchboard needs on a Debian machine, when
# missing: libprotobuf-c (library + headers), protoc-c (to check the generated
# code), pkg-config; systemd-container and debootstrap (the container test of
# scripts/systemd-container-test.sh); for the C and Python clients: protoc
# (protobuf-compiler), make, a C compiler, python3 with the protobuf and pytest
# packages. Swift itself is expected on PATH. The ACP test agents (Tests/Agents) get the official ACP
# Python SDK and pytest in a virtual environment of their own, .venv-acp/ at the
# repository root (gitignored), plus the SDK's examples/echo_agent.py taken
# unchanged from its sdist into .venv-acp/examples/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

missing=()
pkg-config --exists libprotobuf-c 2>/dev/null || missing+=(libprotobuf-c-dev)
command -v protoc-c >/dev/null || missing+=(protobuf-c-compiler)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v setpriv >/dev/null || missing+=(util-linux)
# The session store (SwitchboardPersistence) links GRDB against the system SQLite.
pkg-config --exists sqlite3 2>/dev/null || missing+=(libsqlite3-dev)
# The systemd tests run the real systemd-socket-activate and systemd-analyze.
{ command -v systemd-socket-activate && command -v systemd-analyze; } >/dev/null || missing+=(systemd)
# scripts/systemd-container-test.sh boots systemd in a container built with debootstrap.
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v debootstrap >/dev/null || missing+=(debootstrap)
# The C and Python clients (clients/c, clients/python) and the conformance suite:
command -v protoc >/dev/null || missing+=(protobuf-compiler)  # clients/python/generate.sh
command -v make >/dev/null || missing+=(make)
command -v cc >/dev/null || missing+=(gcc)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
# The ACP SDK's virtual environment needs venv + ensurepip (Debian: python3-venv).
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)

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

# The ACP SDK for the test agents (Tests/Agents) and the agent tests, in its own
# virtual environment so its pinned version never meets the system's packages.
# A stamp names what was installed: a second run costs one file comparison.
acp_sdk=agent-client-protocol==0.12.1
acp_venv="$root/.venv-acp"
acp_stamp="$acp_venv/.switchboard-installed"
acp_wants="$acp_sdk pytest>=8,<10"
if [[ ! -x $acp_venv/bin/python || "$(cat "$acp_stamp" 2>/dev/null)" != "$acp_wants" ]]; then
  echo "bootstrap: installing $acp_wants into $acp_venv" >&2
  rm -rf "$acp_venv"
  python3 -m venv "$acp_venv"
  # shellcheck disable=SC2086  # $acp_wants is a list of requirements
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$acp_venv/bin/python" -m pip install -q $acp_wants
  echo "$acp_wants" >"$acp_stamp"
fi
# The SDK's own echo agent is in its sdist only (not in the wheel): fetch the
# sdist, keep it (the agent tests check the example is byte-identical to it) and
# extract examples/echo_agent.py unchanged.
acp_sdist="$acp_venv/sdist/agent_client_protocol-0.12.1.tar.gz"
acp_echo="$acp_venv/examples/echo_agent.py"
if [[ ! -f $acp_echo || ! -f $acp_sdist ]]; then
  echo "bootstrap: fetching the $acp_sdk sdist for examples/echo_agent.py" >&2
  rm -rf "$acp_venv/sdist" "$acp_venv/examples"
  mkdir -p "$acp_venv/sdist" "$acp_venv/examples"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$acp_venv/bin/python" -m pip download -q --no-deps \
    --no-binary :all: -d "$acp_venv/sdist" "$acp_sdk"
  tar -xzf "$acp_sdist" -C "$acp_venv/examples" --strip-components=2 \
    agent_client_protocol-0.12.1/examples/echo_agent.py
fi

command -v swift >/dev/null || { echo "bootstrap: swift is not on PATH (Swift 6.1 or later is required)" >&2; exit 1; }
