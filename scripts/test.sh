#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs everything (scripts/setup.sh all), then runs
# every test, the slow ones (real model on the CPU, sandbox threat model, end-to-end) included.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"` for the quick subset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
export HYOKA_DATA_DIR=${HYOKA_DATA_DIR:-$(cd .. && pwd)/shared/datasets}
exec .venv/bin/python -m pytest --timeout=900 "$@"
