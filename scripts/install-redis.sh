#!/usr/bin/env bash
# Installs redis-server (Debian/Ubuntu package) for the store tests, unless it is
# already there. Idempotent and quiet; the tests start their own server on a random
# loopback port, so the package's system service is not needed.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
