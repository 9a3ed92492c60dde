#!/usr/bin/env bash
# Install what the tests need on a fresh Debian 12 machine (as root) and
# run every test layer CI runs: pep8, unit, functional, e2e.
# Usage: tools/run-tests.sh [tox env list]   (default: pep8,py3,functional,e2e)
# `tools/run-tests.sh vm` runs the on-demand VM tier (tests/vm/README.md).
# Needs root: the functional and e2e layers run sshd, FUSE and databases.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
envs=${1:-pep8,py3,functional,e2e}

tools/apt-install.sh drbd-utils openssh-server openssh-client python3-venv git

case ",$envs," in
    *,e2e,*) tools/stack/install.sh --apt-only ;;
esac
case ",$envs," in
    *,vm,*) tools/apt-install.sh qemu-system-x86 qemu-utils debootstrap \
        e2fsprogs ;;
esac

tools_venv="$top/.cache/tools-venv"
if [ ! -x "$tools_venv/bin/tox" ]; then
    echo "== installing tox into $tools_venv"
    python3 -m venv "$tools_venv"
    "$tools_venv/bin/pip" install -q 'tox>=4'
fi

echo "== tox -e $envs"
exec "$tools_venv/bin/tox" -e "$envs"
