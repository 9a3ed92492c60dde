#!/usr/bin/env bash
# The README's main job: install what the demo needs on a fresh Debian 12
# machine (as root), then run real Cinder with this driver on a cluster in
# a box and drive it with `openstack`.
# Usage: tools/demo.sh [--keep] [--workdir DIR]   (tools/demo.py --help)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

tools/apt-install.sh drbd-utils openssh-server openssh-client python3-venv git
tools/stack/install.sh --apt-only

venv="$top/.cache/demo-venv"
if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -U pip
fi
echo "== Cinder, Keystone, openstackclient and this driver in $venv"
# The harness (tests/) needs fixtures; pip is quick when all is there.
"$venv/bin/pip" install -q -e . -r requirements.txt 'cinder==29.0.0' \
    'fixtures>=4.0.0'
tools/stack/install.sh "$venv/bin/python"

exec "$venv/bin/python" tools/demo.py "$@"
