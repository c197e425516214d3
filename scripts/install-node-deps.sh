#!/usr/bin/env bash
# The node clients of the interop tests (tests/interop/node: openid-client, and
# oidc-client-ts whose browser build tests/browser/test_oidc_client_ts.py serves; pinned
# by package-lock.json): node and npm from Debian when missing (as root), then
# `npm ci` whenever the lockfile changed. Under CI=true a missing node is an error.
set -euo pipefail
cd "$(dirname "$0")/../tests/interop/node"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing nodejs and npm for the interop tests" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
        echo "node/npm missing (sudo apt-get install nodejs npm): interop tests will skip" >&2
        [ "${CI:-}" = "true" ] && exit 1
        exit 0
    fi
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
