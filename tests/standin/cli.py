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
"""Entry point of the executables in ``bin/``."""

import os
import sys
import time

from tests.standin import state
from tests.standin.state import StandinError

CALL_LOG = 'calls.log'


def _log(prog, argv, rc):
    """Append the call to ``<dir>/calls.log`` (one line, atomic append)."""
    root = os.environ.get(state.ENV_DIR)
    if not root or not os.path.isdir(root):
        return
    line = '%.3f %s %s %s rc=%d\n' % (
        time.time(), state.current_node(), prog,
        ' '.join(a.replace('\n', ' ') for a in argv), rc)
    fd = os.open(os.path.join(root, CALL_LOG),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(prog, argv):
    try:
        if prog == 'drbdsetup':
            from tests.standin import drbdsetup
            rc = drbdsetup.main(argv)
        elif prog == 'drbdmeta':
            from tests.standin import drbdmeta
            rc = drbdmeta.main(argv)
        else:
            from tests.standin import lvm
            rc = lvm.main(prog, argv)
    except StandinError as e:
        sys.stdout.flush()
        sys.stderr.write(e.message + '\n')
        rc = e.rc
    sys.stdout.flush()
    _log(prog, argv, rc)
    return rc
