#!/usr/bin/env bash
# Make sure the load generator the HTTP benchmarks use is installed: Debian's
# `wrk` (and `taskset` from util-linux, normally present, to pin it to a CPU;
# `ss` from iproute2 to tell worker processes apart).
# Installs Debian packages when run as root; otherwise says what is missing and
# exits 0: the benchmarks then fall back to a (clearly labelled, slower) Python
# load generator.
set -euo pipefail
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)  # benchmarks/workers.py: which worker owns a socket
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing benchmark tools: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    exit 0
fi
echo "missing benchmark tools: ${missing[*]} (install with: sudo apt-get install ${missing[*]});" \
    "the HTTP benchmarks will use the slower Python load generator" >&2
