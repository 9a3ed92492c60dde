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
"""The old metadata area of a grow: what to zero, and zeroing it.

A grow with ``--assume-clean`` marks the grown range in sync. New thin
blocks read zeros on every replica, except where the old internal
metadata was: from the old device size to the old end of the LV, each
replica holds its own bytes there (node-id, bitmaps). That range is
zeroed through the DRBD device, so every replica gets the same zeros.

Two facts must survive a crash or a power cut, so they are kept in one
small JSON file per resource, ``<state_dir>/<resource>.grow`` (written to
a temporary file, fsynced and renamed, the directory fsynced):

- ``lv_size``, ``device_size``: the LV's size before the first grow of an
  extend that is not finished, and the DRBD device's size then. Written
  before the first ``lvextend`` of it; a retry after a half-done grow
  reads the old end of the LV from here, not from the already grown LV.
  Once the device is larger than ``device_size`` (DRBD was resized since)
  the entry is stale: that grow's zeroing is done or pending, see below.
- ``zero``: ``[start, end)``, a zeroing that is pending. Written on the
  node that zeroes, before its ``drbdadm resize --assume-clean``; the
  file goes after the zeroing is written and flushed. Until then the
  replicas may differ in that range while DRBD believes them in sync.

:func:`zero_range` asks the kernel for ``BLKZEROOUT`` (on DRBD that is a
WRITE_ZEROES request, a few bytes on the wire per range, when the peers
agreed on that feature), and writes pages of zeros only where the device
does not support it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import pathlib
import secrets
import struct
from typing import Callable

from blackstor_cinder.node.errors import AgentError
from blackstor_cinder import protocol

LOG = logging.getLogger(__name__)

#: ``_IO(0x12, 127)`` from <linux/fs.h>: zero a byte range of a block
#: device; the argument is two u64, start and length, sector-aligned.
BLKZEROOUT = (0x12 << 8) | 127
SECTOR = 512
SUFFIX = '.grow'
#: Where the marks go when neither state_dir nor lock_dir is set.
DEFAULT_DIR = '/var/lib/blackstor-node'
#: What one BLKZEROOUT asks for at most, so a long range is written in
#: bounded steps.
ZEROOUT_CHUNK = 128 << 20
#: errno values that mean "this device cannot do BLKZEROOUT (here)".
UNSUPPORTED = (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL)


def zero_range(fd: int, start: int, end: int,
               ioctl: Callable = fcntl.ioctl,
               chunk: int = 1 << 20) -> str:
    """Zero [start, end) of the block device ``fd`` and flush it.

    The sector-aligned part goes through ``BLKZEROOUT``; unaligned edges,
    and everything when the device refuses the ioctl, are written as
    zeros. Returns how: ``'zeroout'``, ``'write'`` or ``'none'`` (empty
    range). OSError (EIO ...) goes to the caller.
    """
    if end <= start:
        return 'none'
    first = -(-start // SECTOR) * SECTOR
    last = end // SECTOR * SECTOR
    if first >= last:
        _write_zeros(fd, start, end, chunk)
        how = 'write'
    else:
        done = _zeroout(fd, first, last, ioctl)
        _write_zeros(fd, start, first, chunk)
        _write_zeros(fd, done, last, chunk)
        _write_zeros(fd, last, end, chunk)
        how = 'zeroout' if done == last else 'write'
    os.fsync(fd)
    return how


def _zeroout(fd: int, start: int, end: int, ioctl: Callable) -> int:
    """BLKZEROOUT over [start, end); where it stopped (unsupported)."""
    offset = start
    while offset < end:
        length = min(ZEROOUT_CHUNK, end - offset)
        try:
            ioctl(fd, BLKZEROOUT, struct.pack('QQ', offset, length))
        except OSError as e:
            if e.errno not in UNSUPPORTED:
                raise
            LOG.info('BLKZEROOUT not supported here (%s); writing zeros',
                     os.strerror(e.errno))
            return offset
        offset += length
    return offset


def _write_zeros(fd: int, start: int, end: int, chunk: int) -> None:
    zeros = bytes(chunk)
    offset = start
    while offset < end:
        offset += os.pwrite(fd, zeros[:min(chunk, end - offset)], offset)


@dataclasses.dataclass
class GrowMark:
    """What this node keeps about an extend that is not finished."""

    lv_size: int                        # the LV before the first grow
    device_size: int | None             # the DRBD device then (bytes)
    zero: tuple[int, int] | None = None     # pending zeroing [start, end)

    def stale(self, device_size: int | None) -> bool:
        """Whether DRBD was resized since (and no zeroing is pending)."""
        return (self.zero is None and device_size is not None
                and self.device_size is not None
                and device_size > self.device_size)


class GrowMarks:
    """The ``<resource>.grow`` files of one directory."""

    def __init__(self, directory: str) -> None:
        self.directory = pathlib.Path(directory)

    def path(self, resource: str) -> pathlib.Path:
        protocol.check_name('resource', resource)
        return self.directory / f'{resource}{SUFFIX}'

    def read(self, resource: str) -> GrowMark | None:
        """The mark of ``resource``; None when there is none.

        A file that cannot be parsed is an error, not "none": it may hold
        a pending zeroing.
        """
        path = self.path(resource)
        try:
            data = json.loads(path.read_text())
            zero = data.get('zero')
            mark = GrowMark(
                lv_size=_size(data['lv_size']),
                device_size=(None if data.get('device_size') is None
                             else _size(data['device_size'])),
                zero=None if zero is None else (_size(zero[0]),
                                                _size(zero[1])))
        except FileNotFoundError:
            return None
        except OSError as e:
            raise AgentError(protocol.E_FAILED,
                             f'cannot read {path}: {e.strerror}') from None
        except (ValueError, KeyError, TypeError, IndexError,
                AttributeError) as e:
            raise AgentError(protocol.E_FAILED,
                             f'{path} is damaged ({e}); it may record a '
                             'zeroing that is pending: inspect it') from None
        return mark

    def write(self, resource: str, mark: GrowMark) -> None:
        self._commit(resource, {
            'lv_size': mark.lv_size, 'device_size': mark.device_size,
            'zero': list(mark.zero) if mark.zero else None})

    def remove(self, resource: str) -> bool:
        """Remove the mark; False when there was none."""
        return self._commit(resource, None)

    def pending(self, resource: str) -> list[int] | None:
        """The pending zeroing as the replies show it, or None."""
        mark = self.read(resource)
        return list(mark.zero) if mark is not None and mark.zero else None

    def _commit(self, resource: str, data: dict | None) -> bool:
        """Put ``data`` in place (None: remove it) for good: fsynced.

        False when there was nothing to remove.
        """
        path = self.path(resource)
        tmp = path.with_name(f'.{path.name}.{secrets.token_hex(8)}.tmp')
        try:
            if data is None:
                try:
                    path.unlink()
                except FileNotFoundError:
                    return False
            else:
                self.directory.mkdir(mode=0o700, parents=True,
                                     exist_ok=True)
                with open(tmp, 'w') as f:
                    json.dump(data, f)
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(tmp, path)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise AgentError(protocol.E_FAILED,
                             f'cannot {"remove" if data is None else "write"}'
                             f' {path}: {e.strerror}') from None
        return True


def _size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f'{value!r} is not a size')
    return value
