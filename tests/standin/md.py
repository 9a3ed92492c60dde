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
"""DRBD 9 internal meta data, kept in the last bytes of an LV file.

The layout follows DRBD's internal meta data in size (superblock, activity
log and a bitmap of one bit per 4 KiB per peer slot, at the end of the
backing device), so the exposed device size is what real DRBD would give.
The content is the stand-in's own: a header in the last 4 KiB (magic and
length) and a JSON document at the start of the meta data area with the
generation identifiers, flags and, per peer slot, the out-of-sync ranges
(the stand-in's bitmap). Because the meta data lives in the LV file, a thin
snapshot (a copy of the file) carries it along, as with real DRBD.
"""

import json
import os
import random
import struct

MAGIC = b'BLKSTDMD'
HEADER = struct.Struct('<8sQQ')
SB_SIZE = 4096
AL_SIZE = 32 * 1024
BYTES_PER_BM_SECTOR = 512 * 8 * 4096
UUID_JUST_CREATED = 4
HISTORY_UUIDS = 32
DRBD_NODE_ID_MAX = 32
MAX_RANGES = 256

# md flags (drbd_meta_data.h)
MDF_CONSISTENT = 1 << 0
MDF_PRIMARY_IND = 1 << 1
MDF_WAS_UP_TO_DATE = 1 << 4
MDF_CRASHED_PRIMARY = 1 << 6
MDF_AL_CLEAN = 1 << 7
MDF_AL_DISABLED = 1 << 8
MDF_PRIMARY_LOST_QUORUM = 1 << 10
# peer md flags
MDF_PEER_CONNECTED = 1 << 0
MDF_PEER_OUTDATED = 1 << 1
MDF_PEER_FENCING = 1 << 2
MDF_PEER_FULL_SYNC = 1 << 3
MDF_PEER_DEVICE_SEEN = 1 << 4

FULL = 'full'


def _align(value, to):
    return (value + to - 1) // to * to


def md_size(backing_bytes, max_peers):
    """Bytes of internal meta data DRBD 9 puts at the end of a device.

    The kernel's rule (drbd_md_set_sector_offsets): per peer slot one
    512-byte bitmap sector per 16 MiB of backing device, the bitmaps
    together aligned to 4 KiB, plus the 32 KiB activity log and the 4 KiB
    superblock. (drbdmeta's own estimate rounds to 64-bit words instead and
    is never larger.)
    """
    per_slot = -(-backing_bytes // BYTES_PER_BM_SECTOR) * 512
    return _align(per_slot * max_peers, SB_SIZE) + AL_SIZE + SB_SIZE


def usable_size(backing_bytes, max_peers):
    """The DRBD device size internal meta data leaves on ``backing``."""
    aligned = backing_bytes // SB_SIZE * SB_SIZE
    return max(0, aligned - md_size(backing_bytes, max_peers))


def new_uuid():
    return random.getrandbits(64) & ~1 & ((1 << 64) - 1) or 8


def new_md(max_peers):
    return {
        'max_peers': max_peers,
        'node_id': -1,
        'current_uuid': UUID_JUST_CREATED,
        'history': [],
        'flags': MDF_AL_CLEAN,
        'device_uuid': 0,
        'la_size': 0,
        'peers': {},
    }


def file_size(path):
    return os.stat(path).st_size


def read_md(path):
    """The meta data dict of the LV file ``path``, or None."""
    try:
        size = file_size(path)
    except FileNotFoundError:
        return None
    if size < SB_SIZE * 2:
        return None
    with open(path, 'rb') as f:
        f.seek(size - SB_SIZE)
        magic, area, length = HEADER.unpack(f.read(HEADER.size))
        if magic != MAGIC or area > size or length > area - SB_SIZE:
            return None
        f.seek(size - area)
        try:
            md = json.loads(f.read(length))
        except ValueError:
            return None
    md['_area'] = area
    return md


def write_md(path, md):
    size = file_size(path)
    area = md_size(size, md['max_peers'])
    data = {k: v for k, v in md.items() if not k.startswith('_')}
    blob = json.dumps(data, sort_keys=True).encode()
    if len(blob) > area - SB_SIZE:
        # Too many ranges for the area: fall back to full syncs.
        for peer in data['peers'].values():
            if peer.get('ranges'):
                peer['ranges'] = FULL
        blob = json.dumps(data, sort_keys=True).encode()
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, blob, size - area)
        header = HEADER.pack(MAGIC, area, len(blob)).ljust(SB_SIZE, b'\0')
        os.pwrite(fd, header, size - SB_SIZE)
    finally:
        os.close(fd)
    md['_area'] = area


def wipe_md(path):
    """Zero the meta data header (what wipe-md does to the superblock)."""
    size = file_size(path)
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, b'\0' * SB_SIZE, size - SB_SIZE)
    finally:
        os.close(fd)


def peer(md, node_id):
    return md['peers'].setdefault(str(node_id), {
        'bitmap_uuid': 0, 'flags': 0, 'ranges': [], 'bitmap_index': -1})


def add_range(md, node_id, start, end):
    p = peer(md, node_id)
    if p['ranges'] == FULL:
        return
    ranges = p['ranges'] + [[start, end]]
    ranges.sort()
    merged = []
    for s, e in ranges:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    p['ranges'] = FULL if len(merged) > MAX_RANGES else merged


def rotate_uuid(md, new):
    md['history'] = ([md['current_uuid']] + md['history'])[:HISTORY_UUIDS]
    md['current_uuid'] = new


# --- sparse file helpers ---------------------------------------------------

_libc = None
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
CHUNK = 1 << 20


def punch_hole(fd, offset, length):
    """Make [offset, offset+length) of ``fd`` read as zeros, sparsely."""
    global _libc
    if length <= 0:
        return
    if _libc is None:
        import ctypes
        import ctypes.util
        _libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int,
                                    ctypes.c_int64, ctypes.c_int64]
    rc = _libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                         offset, length)
    if rc != 0:
        zero = b'\0' * CHUNK
        end = offset + length
        while offset < end:
            n = min(CHUNK, end - offset)
            os.pwrite(fd, zero[:n], offset)
            offset += n


def data_extents(fd, start, end):
    """Yield (offset, length) of the data (non-hole) parts in a range."""
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole - data
        pos = hole


def copy_range(src_fd, dst_fd, start, end):
    """Copy [start, end) from src to dst, keeping holes holes."""
    punch_hole(dst_fd, start, end - start)
    for off, length in data_extents(src_fd, start, end):
        done = 0
        while done < length:
            n = min(CHUNK, length - done)
            os.pwrite(dst_fd, os.pread(src_fd, n, off + done), off + done)
            done += n


def sparse_copy(src, dst):
    """A new file ``dst`` with the content of ``src``: reflink or copy."""
    size = file_size(src)
    sfd = os.open(src, os.O_RDONLY)
    try:
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                import fcntl
                fcntl.ioctl(dfd, 0x40049409, sfd)  # FICLONE
                return
            except OSError:
                pass
            os.ftruncate(dfd, size)
            copy_range(sfd, dfd, 0, size)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def allocated_bytes(path):
    try:
        return os.stat(path).st_blocks * 512
    except FileNotFoundError:
        return 0
