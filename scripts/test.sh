#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: creates .venv when missing,
# installs buttress with its test and lint extras, then runs pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k breaker`).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
bash scripts/install-redis.sh  # redis-server for the store tests (moto comes from pip)
exec .venv/bin/python -m pytest "$@"
