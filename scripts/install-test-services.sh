#!/usr/bin/env bash
# Make sure the real servers the test suite starts are installed (the suite
# itself starts and stops them), and Debian's Chromium for the browser tests
# (Playwright drives /usr/bin/chromium; `playwright install` is never needed).
# Installs Debian packages when run as root; otherwise says what is missing.
# Under CI=true a missing service is an error.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing test services: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The suite starts its own servers; don't leave Debian's default ones running.
    if command -v systemctl >/dev/null; then
        systemctl stop redis-server 2>/dev/null || true
    fi
    pkill -x redis-server 2>/dev/null || true
    if command -v pg_ctlcluster >/dev/null; then
        pg_lsclusters -h 2>/dev/null | while read -r version name _; do
            pg_ctlcluster "$version" "$name" stop 2>/dev/null || true
        done
    fi
    exit 0
fi
echo "missing test services: ${missing[*]} (install with: sudo apt-get install ${missing[*]})" >&2
if [ "${CI:-}" = "true" ]; then
    exit 1
fi
