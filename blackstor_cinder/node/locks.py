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
"""The agent's per-resource lock: one blackstor-node at a time per name."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Iterator

from blackstor_cinder.node.errors import AgentError
from blackstor_cinder import protocol


@contextlib.contextmanager
def hold(lock_dir: str | None, name: str | None,
         timeout: float) -> Iterator[None]:
    """Hold ``<lock_dir>/<name>.lock``; the file goes when released.

    The holder removes the file before it lets go, so no lock file
    outlives its request (one per name ever asked for, refused ones
    too, was a leak). A waiter may then get the lock of a file that is
    no longer there, or no longer the one at that path: it checks
    after locking and starts again on the current file. No name or no
    ``lock_dir``: nothing is locked.
    """
    if not name or not lock_dir:
        yield
        return
    path = os.path.join(lock_dir, f'{name}.lock')
    deadline = time.monotonic() + timeout
    while True:
        fd = _open(lock_dir, path)
        try:
            _flock(fd, name, deadline)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(fd).st_ino:
                continue        # unlinked by the holder before us
            try:
                yield
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            return
        finally:
            os.close(fd)


def _open(lock_dir: str, path: str) -> int:
    try:
        os.makedirs(lock_dir, mode=0o700, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise AgentError(protocol.E_FAILED,
                         f'cannot create a lock in {lock_dir}:'
                         f' {e.strerror}') from None


def _flock(fd: int, name: str, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise AgentError(
                    protocol.E_BUSY,
                    f'{name} is busy: another blackstor-node works '
                    'on it') from None
            time.sleep(0.2)
