#!/usr/bin/env bash
# Copyright 2026 BlackStor developers
#
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
#
# Install what the e2e stack (tests/e2e/stack.py) needs: MariaDB and
# RabbitMQ from Debian, Keystone, the OpenStack client, a MySQL driver and
# a WSGI server from PyPI. Idempotent: installs only what is missing.
#
# Usage: tools/stack/install.sh [--apt-only] [PYTHON]
#   --apt-only: Debian packages only (tox installs the PyPI ones from
#   test-requirements.txt).
#   PYTHON: the interpreter of the venv that runs Cinder (default: python3
#   on PATH, i.e. the active venv). Needs root for apt-get.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
apt_only=
if [ "${1:-}" = "--apt-only" ]; then
    apt_only=1
    shift
fi
python=${1:-python3}

# Debian packages. Their maintainer scripts try to start the services;
# Debian's policy-rc.d (where present) prevents it and the stack starts its
# own private instances anyway.
"$here/../apt-install.sh" mariadb-server rabbitmq-server
# The packages may have started system-wide instances (no policy-rc.d):
# stop them so they hold no ports the tests could collide with.
for svc in rabbitmq-server mariadb; do
    if command -v systemctl >/dev/null 2>&1 \
            && systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
    fi
done

if [ -n "$apt_only" ]; then
    echo "== stack Debian packages installed"
    exit 0
fi

# PyPI packages, into the interpreter's environment.
if ! "$python" - "$here/requirements.txt" <<'PYEOF'
import sys
from importlib import metadata
from packaging.requirements import Requirement
ok = True
for line in open(sys.argv[1]):
    line = line.split('#')[0].strip()
    if not line:
        continue
    req = Requirement(line)
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        ok = False
        continue
    if not req.specifier.contains(version, prereleases=True):
        ok = False
sys.exit(0 if ok else 1)
PYEOF
then
    echo "== installing PyPI packages from $here/requirements.txt"
    "$python" -m pip install -q -r "$here/requirements.txt"
fi
echo "== stack prerequisites installed"
