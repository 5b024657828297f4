#!/usr/bin/env bash
# Runs `buttress demo` on a fresh machine: creates .venv when missing, installs
# buttress with its CLI extra, then starts the demo. Arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[cli]'
exec .venv/bin/buttress demo "$@"
