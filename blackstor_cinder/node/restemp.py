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
"""The temporary files of the .res writes, and those a killed writer left.

A .res is written to ``.<resource>.<16 hex>.tmp`` (mode 0600), checked,
and renamed into place (:class:`.resfiles.ResFileStore`). A writer
killed between writing the temporary file and renaming it (SIGKILL, a
node crash) leaves it behind, and it holds the shared secret:
:func:`remove_stale` removes such files: only names this module gives
its temporary files, only regular files, only old ones. The caller
holds the directory lock every write holds while its temporary file
exists.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import re
import secrets
import stat
import time

from blackstor_cinder.node.errors import AgentError
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

SUFFIX = '.tmp'
#: Names of the temporary files of a write or restore (never "*.res", so
#: drbd.conf's include does not see them): ``.<resource>.<16 hex>.tmp``;
#: older agents wrote ``.<resource>.<8 of [a-z0-9_]>.tmp`` (mkstemp) and
#: ``.<resource>.res.restore.tmp``.
NAME_RE = re.compile(
    r'^\.[A-Za-z0-9][A-Za-z0-9_-]{0,62}'
    r'\.(?:[0-9a-f]{16}|[a-z0-9_]{8}|res\.restore)\.tmp\Z')
#: Seconds before a temporary file counts as left behind. The directory
#: lock already keeps away every writer of this module; the age also
#: spares a writer that does not take it (an agent of an older version
#: restoring a .res during an upgrade).
STALE_AGE = 600


def write(directory: pathlib.Path, resource: str,
          content: str | bytes) -> str:
    """A new temporary file (mode 0600) holding ``content``; its path.

    Called with the directory lock held.
    """
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
             | os.O_CLOEXEC)
    for _attempt in range(100):
        tmp = str(directory / f'.{resource}.{secrets.token_hex(8)}{SUFFIX}')
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:
            continue
    else:
        raise AgentError(protocol.E_FAILED, 'cannot name a temporary '
                         f'file in {directory}')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(content.encode() if isinstance(content, str)
                    else content)
            f.flush()
            os.fchmod(f.fileno(), 0o600)
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def listed(directory: pathlib.Path) -> list[str]:
    """Paths of the temporary files in ``directory``, of any age."""
    try:
        with os.scandir(directory) as entries:
            return sorted(e.path for e in entries
                          if NAME_RE.match(e.name)
                          and e.is_file(follow_symlinks=False))
    except FileNotFoundError:
        return []


def remove_stale(directory: pathlib.Path, dir_fd: int,
                 min_age: float) -> list[str]:
    """Remove the temporary files ``min_age`` seconds old; their paths.

    ``dir_fd``: the directory, opened (and locked) by the caller. A file
    that cannot be removed is logged and skipped.
    """
    removed = []
    now = time.time()
    with os.scandir(dir_fd) as entries:
        names = sorted(e.name for e in entries if NAME_RE.match(e.name))
    for name in names:
        path = str(directory / name)
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < min_age:
                continue
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            continue
        except OSError as e:
            LOG.warning('Cannot remove the stale temporary file %s: %s',
                        path, e.strerror)
            continue
        LOG.warning('Removed %s, a temporary .res file left by a write '
                    'that did not finish', path)
        removed.append(path)
    if removed:
        os.fsync(dir_fd)
    return removed
