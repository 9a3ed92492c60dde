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
"""Device nodes of one emulated host, served over FUSE.

A minimal FUSE server speaking the kernel protocol on ``/dev/fuse``
directly (no libfuse, no Python binding: stdlib only, needs root). Mounted
at ``<dir>/<node>/dev`` it shows, for every DRBD volume up on the node,
``drbd<minor>`` and ``drbd/by-res/<res>/<vnr>``. They are regular files
(FUSE cannot make block devices) whose open() for writing auto-promotes
(EROFS when DRBD would refuse), whose last close demotes, and whose reads
and writes go through :mod:`tests.standin.kernel`'s data path: writes to
every connected replica, EIO or a wait without quorum. Attributes are never
cached (entries come and go with ``drbdadm up``/``down``) and I/O bypasses
the page cache (FOPEN_DIRECT_IO), so every access sees the current state.

Run: ``python3 -c '...fuse.main()' <dir> <node> <mountpoint>``; SIGTERM
unmounts and exits.
"""

import ctypes
import ctypes.util
import errno
import os
import signal
import stat
import struct
import sys
import threading
import time

from tests.standin import kernel
from tests.standin import state
from tests.standin.state import StandinError

# opcodes
LOOKUP, FORGET, GETATTR, SETATTR = 1, 2, 3, 4
OPEN, READ, WRITE, STATFS, RELEASE = 14, 15, 16, 17, 18
FSYNC, FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR = 20, 25, 26, 27, 28, 29
FSYNCDIR, ACCESS, INTERRUPT, DESTROY, BATCH_FORGET = 30, 34, 36, 38, 42
NO_REPLY = (FORGET, BATCH_FORGET, INTERRUPT)

IN_HEADER = struct.Struct('<IIQQIIIHH')       # 40 bytes
OUT_HEADER = struct.Struct('<IiQ')            # 16 bytes
ATTR = struct.Struct('<QQQQQQIIIIIIIIII')     # 88 bytes
ENTRY_OUT = struct.Struct('<QQQQII')          # + attr
ATTR_OUT = struct.Struct('<QII')              # + attr
OPEN_IN = struct.Struct('<II')
OPEN_OUT = struct.Struct('<QII')
RW_IN = struct.Struct('<QQIIQII')             # read_in / write_in
WRITE_OUT = struct.Struct('<II')
RELEASE_IN = struct.Struct('<QIIQ')
SETATTR_IN = struct.Struct('<IIQQQQQQIIIIIIII')
INIT_IN = struct.Struct('<IIII')
INIT_OUT = struct.Struct('<IIIIHHIIHHI')
DIRENT = struct.Struct('<QQII')
KSTATFS = struct.Struct('<QQQQQIIII24x')

FOPEN_DIRECT_IO = 1 << 0
FUSE_BIG_WRITES = 1 << 5
FUSE_MAX_PAGES = 1 << 22
MAX_WRITE = 1 << 20
BUFSIZE = MAX_WRITE + 64 * 1024
ROOT, DRBD_DIR, BYRES_DIR = 1, 2, 3
IO_TIMEOUT = 60.0


class Server:

    def __init__(self, root, node, mountpoint):
        self.root = root
        self.node = node
        self.mountpoint = mountpoint
        self.lock = threading.Lock()
        self.inodes = {}        # key -> ino
        self.keys = {}          # ino -> key
        self.handles = {}       # fh -> (res, vnr, write)
        self.next_ino = 10
        self.next_fh = 1
        self.fd = None
        self.start = time.time()

    # --- inode table --------------------------------------------------------

    def ino(self, key):
        with self.lock:
            if key not in self.inodes:
                self.inodes[key] = self.next_ino
                self.keys[self.next_ino] = key
                self.next_ino += 1
            return self.inodes[key]

    def key(self, ino):
        if ino == ROOT:
            return ('dir', 'root')
        if ino == DRBD_DIR:
            return ('dir', 'drbd')
        if ino == BYRES_DIR:
            return ('dir', 'by-res')
        return self.keys.get(ino)

    def snapshot(self):
        """{res: {vnr: (minor, size)}} of the node's DRBD volumes."""
        with state.locked(self.root) as sess:
            if not sess.running(self.node):
                return {}
            kernel.evaluate(sess)
            return {name: {vnr: (vol['minor'], vol['size'])
                           for vnr, vol in res['vols'].items()}
                    for name, res in kernel.resources(sess, self.node).items()}

    def attr(self, ino, key, snap):
        now = int(self.start)
        if key[0] == 'dir':
            mode, size, nlink = stat.S_IFDIR | 0o755, 0, 2
        elif key[0] == 'resdir':
            if key[1] not in snap:
                raise OSError(errno.ENOENT, 'gone')
            mode, size, nlink = stat.S_IFDIR | 0o755, 0, 2
        else:
            vols = snap.get(key[1], {})
            if key[2] not in vols:
                raise OSError(errno.ENOENT, 'gone')
            mode, size, nlink = stat.S_IFREG | 0o600, vols[key[2]][1], 2
        return ATTR.pack(ino, size, (size + 511) // 512, now, now, now,
                         0, 0, 0, mode, nlink, 0, 0, 0, 4096, 0)

    def lookup(self, parent, name, snap):
        pkey = self.key(parent)
        if pkey is None:
            raise OSError(errno.ENOENT, name)
        if pkey == ('dir', 'root'):
            if name == 'drbd':
                return DRBD_DIR, ('dir', 'drbd')
            if name.startswith('drbd') and name[4:].isdigit():
                for res, vols in snap.items():
                    for vnr, (minor, size) in vols.items():
                        if minor == int(name[4:]):
                            key = ('dev', res, vnr)
                            return self.ino(key), key
        elif pkey == ('dir', 'drbd') and name == 'by-res':
            return BYRES_DIR, ('dir', 'by-res')
        elif pkey == ('dir', 'by-res') and name in snap:
            key = ('resdir', name)
            return self.ino(key), key
        elif pkey[0] == 'resdir' and name in snap.get(pkey[1], {}):
            key = ('dev', pkey[1], name)
            return self.ino(key), key
        raise OSError(errno.ENOENT, name)

    def listdir(self, ino, snap):
        key = self.key(ino)
        entries = [('.', ino, stat.S_IFDIR), ('..', ROOT, stat.S_IFDIR)]
        if key == ('dir', 'root'):
            entries.append(('drbd', DRBD_DIR, stat.S_IFDIR))
            for res, vols in sorted(snap.items()):
                for vnr, (minor, size) in sorted(vols.items()):
                    entries.append(('drbd%d' % minor,
                                    self.ino(('dev', res, vnr)),
                                    stat.S_IFREG))
        elif key == ('dir', 'drbd'):
            entries.append(('by-res', BYRES_DIR, stat.S_IFDIR))
        elif key == ('dir', 'by-res'):
            for res in sorted(snap):
                entries.append((res, self.ino(('resdir', res)),
                                stat.S_IFDIR))
        elif key and key[0] == 'resdir':
            for vnr in sorted(snap.get(key[1], {})):
                entries.append((vnr, self.ino(('dev', key[1], vnr)),
                                stat.S_IFREG))
        else:
            raise OSError(errno.ENOTDIR, 'not a directory')
        return entries

    # --- data path ----------------------------------------------------------

    def call(self, fn):
        deadline = time.monotonic() + IO_TIMEOUT
        delay = 0.02
        while True:
            try:
                with state.locked(self.root) as sess:
                    if not sess.running(self.node):
                        raise OSError(errno.ENODEV, 'node down')
                    kernel.evaluate(sess)
                    return fn(sess)
            except kernel.Wait:
                if time.monotonic() >= deadline:
                    raise OSError(errno.EIO, 'suspended too long') from None
                time.sleep(delay)
                delay = min(0.2, delay * 2)

    # --- request handling ---------------------------------------------------

    def handle(self, op, nodeid, body):
        if op == INIT:
            major, minor, readahead, flags = INIT_IN.unpack_from(body)
            want = flags & (FUSE_BIG_WRITES | FUSE_MAX_PAGES)
            return INIT_OUT.pack(7, min(minor, 31), readahead, want, 16, 12,
                                 MAX_WRITE, 1, MAX_WRITE // 4096, 0,
                                 0).ljust(64, b'\0')
        if op == LOOKUP:
            name = body.split(b'\0', 1)[0].decode()
            snap = self.snapshot()
            ino, key = self.lookup(nodeid, name, snap)
            return ENTRY_OUT.pack(ino, 0, 0, 0, 0, 0) + self.attr(ino, key,
                                                                  snap)
        if op == GETATTR or op == SETATTR:
            key = self.key(nodeid)
            if key is None:
                raise OSError(errno.ENOENT, 'stale')
            # SETATTR: a device has a fixed size; truncation is ignored.
            return ATTR_OUT.pack(0, 0, 0) + self.attr(nodeid, key,
                                                      self.snapshot())
        if op in (OPENDIR,):
            if self.key(nodeid) is None:
                raise OSError(errno.ENOENT, 'stale')
            return OPEN_OUT.pack(0, 0, 0)
        if op == READDIR:
            fh, offset, size = RW_IN.unpack_from(body)[:3]
            entries = self.listdir(nodeid, self.snapshot())
            out = b''
            for i, (name, ino, mode) in enumerate(entries):
                if i < offset:
                    continue
                raw = name.encode()
                rec = DIRENT.pack(ino, i + 1, len(raw), mode >> 12) + raw
                rec = rec.ljust((len(rec) + 7) // 8 * 8, b'\0')
                if len(out) + len(rec) > size:
                    break
                out += rec
            return out
        if op in (RELEASEDIR, FSYNCDIR, FLUSH, FSYNC):
            return b''
        if op == OPEN:
            flags = OPEN_IN.unpack_from(body)[0]
            key = self.key(nodeid)
            if key is None or key[0] != 'dev':
                raise OSError(errno.EISDIR if key else errno.ENOENT, 'open')
            write = (flags & os.O_ACCMODE) != os.O_RDONLY
            self.call(lambda s: kernel.open_device(s, key[1], self.node,
                                                   key[2], write))
            with self.lock:
                fh = self.next_fh
                self.next_fh += 1
                self.handles[fh] = (key[1], key[2], write)
            return OPEN_OUT.pack(fh, FOPEN_DIRECT_IO, 0)
        if op == READ:
            fh, offset, size = RW_IN.unpack_from(body)[:3]
            res, vnr, write = self.handles[fh]
            return self.call(lambda s: kernel.do_read(s, res, self.node, vnr,
                                                      offset, size))
        if op == WRITE:
            fh, offset, size = RW_IN.unpack_from(body)[:3]
            data = body[RW_IN.size:RW_IN.size + size]
            res, vnr, write = self.handles[fh]
            if not write:
                raise OSError(errno.EBADF, 'read-only handle')
            n = self.call(lambda s: kernel.do_write(s, res, self.node, vnr,
                                                    offset, data))
            return WRITE_OUT.pack(n, 0)
        if op == RELEASE:
            fh = RELEASE_IN.unpack_from(body)[0]
            with self.lock:
                handle = self.handles.pop(fh, None)
            if handle:
                res, vnr, write = handle

                def close(s):
                    kernel.close_device(s, res, self.node, vnr, write)
                    kernel.evaluate(s)
                try:
                    self.call(close)
                except OSError:
                    pass
            return b''
        if op == STATFS:
            return KSTATFS.pack(0, 0, 0, 0, 0, 4096, 255, 4096, 0)
        if op == DESTROY:
            return b''
        raise OSError(errno.ENOSYS, 'not implemented')

    def loop(self):
        while True:
            try:
                buf = os.read(self.fd, BUFSIZE)
            except OSError as e:
                if e.errno == errno.EINTR or e.errno == errno.EAGAIN:
                    continue
                return  # ENODEV: unmounted
            if not buf:
                return
            length, op, unique, nodeid = IN_HEADER.unpack_from(buf)[:4]
            body = buf[IN_HEADER.size:length]
            if op in NO_REPLY:
                continue
            try:
                payload = self.handle(op, nodeid, body)
                error = 0
            except OSError as e:
                payload, error = b'', -(e.errno or errno.EIO)
            except StandinError:
                payload, error = b'', -errno.EIO
            except Exception as e:  # keep serving; log the bug
                sys.stderr.write('fuse op %d failed: %r\n' % (op, e))
                payload, error = b'', -errno.EIO
            reply = OUT_HEADER.pack(OUT_HEADER.size + len(payload), error,
                                    unique) + payload
            try:
                os.write(self.fd, reply)
            except OSError:
                pass  # request interrupted or fs gone
            if op == DESTROY:
                return


def mount(mountpoint):
    fd = os.open('/dev/fuse', os.O_RDWR)
    libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    opts = 'fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other' % fd
    if libc.mount(b'blackstor-standin', mountpoint.encode(),
                  b'fuse.blackstor-standin', ctypes.c_ulong(6),
                  opts.encode()) != 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, 'mount %s: %s' % (mountpoint, os.strerror(err)))
    return fd


def umount(mountpoint):
    libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    libc.umount2(mountpoint.encode(), 2)


def main(argv=None, threads=4):
    argv = sys.argv[1:] if argv is None else argv
    root, node, mountpoint = argv[:3]
    server = Server(root, node, mountpoint)
    server.fd = mount(mountpoint)

    def stop(signum, frame):
        umount(mountpoint)

    signal.signal(signal.SIGTERM, stop)
    workers = [threading.Thread(target=server.loop, daemon=True)
               for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        while w.is_alive():
            w.join(1.0)
    return 0
