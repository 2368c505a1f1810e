#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs everything (scripts/setup.sh all), then runs
# every test, the slow ones (real model on the CPU, sandbox threat model, end-to-end) included.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"` for the quick subset.
# HYOKA_SETUP_DONE=1 skips the install (.ci/run sets it after its own install step).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${HYOKA_SETUP_DONE:-}" = 1 ] || bash scripts/setup.sh all
export HYOKA_DATA_DIR=${HYOKA_DATA_DIR:-$(cd .. && pwd)/shared/datasets}
exec .venv/bin/python -m pytest --timeout=900 "$@"
