#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: creates .venv when missing,
# installs buttress with its test and lint extras, installs the servers the
# integration tests start on loopback (PostgreSQL and Redis from Debian's
# packages, as root; moto's S3 server comes from pip), then runs pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k breaker`).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
for server in postgres redis; do
    if ! bash "scripts/install-$server.sh"; then
        # Under CI a missing server fails the run; elsewhere its tests skip.
        [ -z "${CI:-}" ] || exit 1
        echo "test.sh: could not install $server; its tests will be skipped" >&2
    fi
done
exec .venv/bin/python -m pytest "$@"
