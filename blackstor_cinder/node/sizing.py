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
"""How large an LV must be for DRBD 9 to expose a given size on it.

A resource with ``meta-disk internal`` keeps its metadata at the end of the
backing LV (drbd-utils' drbdmeta, "flex-internal" layout), from the end:

- the superblock: the last 4 KiB-aligned 4 KiB block;
- the activity log: 32 KiB (1 stripe of 32 KiB, drbdmeta's default);
- the bitmaps: one per peer slot (``--max-peers``), one bit per 4 KiB of
  the *whole* backing device, the total aligned to 4 KiB.

The DRBD device exposes what lies below the bitmaps. drbdmeta sizes a
bitmap slot as the bit count rounded up to 64 bits; the kernel's own
estimate (``drbd_md_set_sector_offsets``) rounds each slot up to a 512-byte
sector per 16 MiB of backing device. We take the larger (the kernel's),
so the usable size computed here is never more than DRBD's; the unit
tests compare it with ``drbdmeta --dry-run -v -v create-md`` on files.

An LV sized so is rounded up to the extent and exposes a little more than
asked; the device is exactly the volume because the .res sets DRBD's
``disk { size }`` (cluster/resfile.py), which must not exceed what the LV
exposes.
"""

from __future__ import annotations

SECTOR = 512
BLOCK = 4096
SUPERBLOCK = 4096
ACTIVITY_LOG = 32 * 1024
#: Bytes of data one bitmap bit covers.
BYTES_PER_BIT = 4096
#: Backing device bytes one 512-byte bitmap sector covers (kernel view).
BYTES_PER_BM_SECTOR = SECTOR * 8 * BYTES_PER_BIT


def _align_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def _check(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) \
            or value < minimum:
        raise ValueError(f'{name}: {value!r} must be an integer >= '
                         f'{minimum}')


def metadata_size(lv_size: int, max_peers: int) -> int:
    """Bytes of internal metadata at the end of an LV of ``lv_size``."""
    _check('lv_size', lv_size, 0)
    _check('max_peers', max_peers, 1)
    per_peer = -(-lv_size // BYTES_PER_BM_SECTOR) * SECTOR
    bitmaps = _align_up(per_peer * max_peers, BLOCK)
    return bitmaps + ACTIVITY_LOG + SUPERBLOCK


def usable_size_of(lv_size: int, max_peers: int) -> int:
    """Bytes the DRBD device exposes on an LV of ``lv_size`` (0 if none)."""
    aligned = lv_size // BLOCK * BLOCK
    return max(0, aligned - metadata_size(lv_size, max_peers))


def lv_size_for(usable: int, max_peers: int, extent: int) -> int:
    """The smallest multiple of ``extent`` that exposes >= ``usable``.

    An LV of ``size`` exposes ``usable`` when its whole 4 KiB blocks hold
    ``usable`` plus the metadata of an LV of ``size``. The metadata grows
    with the LV, so start from the metadata of ``usable`` alone and take
    the metadata of the last candidate until the candidate stops growing:
    every candidate is a lower bound of the answer (the metadata only
    grows with the size), the last one fits, and each round adds about
    ``max_peers / 2**18`` of the previous growth, so a few rounds do for
    any size (no stepping one extent at a time).
    """
    _check('usable', usable, 1)
    _check('max_peers', max_peers, 1)
    _check('extent', extent, 1)
    size = 0
    while True:
        candidate = _align_up(
            _align_up(usable + metadata_size(size, max_peers), BLOCK),
            extent)
        if candidate == size:
            return size
        size = candidate
