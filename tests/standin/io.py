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
"""Python API to the data path of an emulated DRBD device.

A device opened for writing auto-promotes the resource (and demotes it on
the last close), like DRBD 9 with ``auto-promote yes``. Writes go to every
connected replica with a disk, reads come from the local disk when it is
UpToDate or else from a connected UpToDate peer. I/O without quorum fails
with EIO (``on-no-quorum io-error``) or waits (``suspend-io``, and while
``suspend-io`` is in force), up to ``timeout`` seconds.
"""

import errno
import time

from tests.standin import kernel
from tests.standin import state
from tests.standin.state import StandinError


def _session_call(root, fn, timeout):
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            with state.locked(root) as sess:
                kernel.evaluate(sess)
                return fn(sess)
        except kernel.Wait:
            if time.monotonic() >= deadline:
                raise OSError(errno.EIO, 'I/O suspended, gave up after '
                              '%.0f s' % timeout) from None
            time.sleep(delay)
            delay = min(0.2, delay * 2)


def _check_node(sess, node):
    if node not in sess.nodes or not sess.running(node):
        raise OSError(errno.ENODEV, 'node %s is not running' % node)


def resolve(root, node, name):
    """(resource, volume) of ``drbd<minor>`` or ``<res>/<vnr>`` on node."""
    with state.locked(root) as sess:
        _check_node(sess, node)
        if name.startswith('drbd') and name[4:].isdigit():
            found = kernel.find_minor(sess, node, int(name[4:]))
            if found is None:
                raise OSError(errno.ENOENT, name)
            return found[0], found[2]
    res, _, vnr = name.partition('/')
    return res, vnr or '0'


class Device:
    """An open emulated DRBD device of one node."""

    def __init__(self, root, node, res, vol=0, write=False, timeout=30.0):
        self.root = root
        self.node = node
        self.res = res
        self.vnr = str(vol)
        self.write_mode = write
        self.timeout = timeout
        self.closed = False

        def do_open(sess):
            _check_node(sess, node)
            kernel.open_device(sess, res, node, self.vnr, write)
        _session_call(root, do_open, timeout)

    def pread(self, size, offset):
        def do(sess):
            _check_node(sess, self.node)
            return kernel.do_read(sess, self.res, self.node, self.vnr,
                                  offset, size)
        return _session_call(self.root, do, self.timeout)

    def pwrite(self, data, offset):
        if not self.write_mode:
            raise OSError(errno.EBADF, 'device not open for writing')

        def do(sess):
            _check_node(sess, self.node)
            return kernel.do_write(sess, self.res, self.node, self.vnr,
                                   offset, bytes(data))
        return _session_call(self.root, do, self.timeout)

    def size(self):
        with state.locked(self.root) as sess:
            res = kernel.resources(sess, self.node).get(self.res)
            if res is None or self.vnr not in res['vols']:
                raise OSError(errno.ENODEV, 'no such device')
            return res['vols'][self.vnr]['size']

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            with state.locked(self.root) as sess:
                if sess.running(self.node):
                    kernel.close_device(sess, self.res, self.node, self.vnr,
                                        self.write_mode)
                    kernel.evaluate(sess)
        except StandinError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write(root, node, res, offset, data, vol=0, timeout=30.0):
    """Open for writing (auto-promote), write, close (auto-demote)."""
    with Device(root, node, res, vol, write=True, timeout=timeout) as dev:
        return dev.pwrite(data, offset)


def read(root, node, res, offset, size, vol=0, timeout=30.0):
    with Device(root, node, res, vol, write=False, timeout=timeout) as dev:
        return dev.pread(size, offset)
