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
"""Shared state of the emulated cluster.

One JSON document (``standin.json``) holds every node's LVM metadata and
the runtime ("kernel") state of its DRBD resources; LV data lives in sparse
files below ``<dir>/<node>/vg/<vg>/<lv>``. Every command takes an exclusive
``flock`` on ``standin.lock`` for the whole read-modify-write, so commands of
several emulated nodes can run concurrently.
"""

import contextlib
import fcntl
import json
import os
import socket

STATE_FILE = 'standin.json'
LOCK_FILE = 'standin.lock'
ENV_DIR = 'BLACKSTOR_STANDIN_DIR'
ENV_NODE = 'BLACKSTOR_STANDIN_NODE'
DEFAULT_KERNEL_VERSION = '9.2.18'


class StandinError(Exception):
    """A command failure: ``message`` goes to stderr, ``rc`` is the exit."""

    def __init__(self, message, rc=1):
        super().__init__(message)
        self.message = message
        self.rc = rc


def standin_dir():
    path = os.environ.get(ENV_DIR)
    if not path:
        raise StandinError('%s is not set: the stand-in does not know '
                           'where the emulated cluster lives' % ENV_DIR, 20)
    return os.path.abspath(path)


def current_node():
    """The emulated host this command runs on."""
    return (os.environ.get(ENV_NODE) or os.environ.get('__DRBD_NODE__')
            or socket.gethostname())


def node_dir(root, node):
    return os.path.join(root, node)


def lv_file(root, node, vg, lv):
    return os.path.join(root, node, 'vg', vg, lv)


def empty_state():
    return {'version': 1, 'nodes': {}, 'cut_links': [], 'seq': 0}


class Session:
    """The loaded state of one locked critical section."""

    def __init__(self, root, data):
        self.root = root
        self.data = data

    @property
    def nodes(self):
        return self.data['nodes']

    def node(self, name):
        try:
            return self.data['nodes'][name]
        except KeyError:
            raise StandinError(
                'stand-in: unknown emulated node %r (known: %s)'
                % (name, ', '.join(sorted(self.data['nodes'])) or 'none'),
                20) from None

    def running(self, name):
        node = self.data['nodes'].get(name)
        return bool(node and node.get('running'))

    def link_cut(self, a, b):
        return sorted((a, b)) in self.data['cut_links']

    def lv_file(self, node, vg, lv):
        return lv_file(self.root, node, vg, lv)


@contextlib.contextmanager
def locked(root=None):
    """Lock the cluster state, yield a :class:`Session`, save changes."""
    root = root or standin_dir()
    if not os.path.isdir(root):
        raise StandinError('stand-in directory %s does not exist' % root, 20)
    lock_fd = os.open(os.path.join(root, LOCK_FILE),
                      os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        path = os.path.join(root, STATE_FILE)
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            text = ''
        data = json.loads(text) if text else empty_state()
        session = Session(root, data)
        yield session
        new_text = json.dumps(data, sort_keys=True)
        if new_text != text:
            tmp = path + '.tmp'
            with open(tmp, 'w') as f:
                f.write(new_text)
            os.replace(tmp, path)
    finally:
        os.close(lock_fd)
