#!/usr/bin/env bash
# Installs the PostgreSQL server the database tests start (tests/servers/postgres.py)
# on a Debian or Ubuntu machine. Run as root; idempotent and quiet; returns at once
# when a server is already installed. The tests run it as the `postgres` user the
# package creates, on a temporary cluster and a random loopback port: the
# package's own cluster service is not needed, and is not started here.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null && id postgres >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-postgres.sh: run as root (apt-get install postgresql)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Keep the package's scripts from creating and starting a cluster of their own.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/buttress-no-main.conf
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
