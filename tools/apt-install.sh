#!/usr/bin/env bash
# Install the Debian packages named as arguments that are not installed
# yet (as root; runs `apt-get update` only when something is missing).
# Never their recommended packages (drbd-utils' would bring a mail server):
# callers name every package they need.
# Extra apt-get options go before `--`: tools/apt-install.sh [OPTS --] PKG...
set -euo pipefail
opts=(--no-install-recommends)
if [[ " $* " == *" -- "* ]]; then
    while [ "$1" != "--" ]; do opts+=("$1"); shift; done
    shift
fi
missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
        | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${opts[@]}" \
        "${missing[@]}"
fi
