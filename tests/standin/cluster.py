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
"""Harness API: set up emulated nodes and inject faults.

    from tests.standin import cluster
    c = cluster.Cluster('/tmp/box')            # BLACKSTOR_STANDIN_DIR
    c.add_node('nodea', vg='blackstor', pool='thinpool', size=1 << 30)
    env = c.node_env('nodea')                  # PATH, node identity, dir
    subprocess.run(['drbdadm', ...], env=env)
    c.write('nodea', 'r0', 0, b'data')         # data path, Python API
    open(c.device_path('nodea', 'r0'), 'r+b')  # data path, FUSE device
    c.stop_node('nodeb'); c.start_node('nodeb')
    c.cut_link('nodea', 'nodeb'); c.heal_link('nodea', 'nodeb')
    c.close()                                  # unmount, stop servers
"""

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from tests.standin import io as sio
from tests.standin import kernel
from tests.standin import lvm
from tests.standin import state

BIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bin')
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MNT_DETACH = 2


def fuse_available():
    """True when this process may mount FUSE file systems (root, /dev/fuse)."""
    return os.geteuid() == 0 and os.path.exists('/dev/fuse')


def proc_drbd_text(version):
    return ('version: %s (api:2/proto:86-122)\n'
            'GIT-hash: 0000000000000000000000000000000000000000 build by '
            'blackstor-standin\n'
            'Transports (api:21): tcp (%s)\n' % (version, version))


def _umount(path):
    # This process's own libc (no find_library: it runs ldconfig in a
    # subprocess, which under eventlet's monkey patching can race another
    # greenthread's read at cleanup)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(path.encode(), MNT_DETACH)


class Cluster:
    """An emulated cluster living in directory ``root``."""

    def __init__(self, root, fuse=None, kernel_version=None):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.fuse = fuse_available() if fuse is None else fuse
        self.kernel_version = kernel_version or state.DEFAULT_KERNEL_VERSION
        self._servers = {}
        self._addresses = []
        with state.locked(self.root):
            pass

    # --- nodes --------------------------------------------------------------

    def add_node(self, name, vg='blackstor', pool='thinpool', size=1 << 30,
                 extent_size=lvm.DEFAULT_EXTENT, start=True):
        """Add an emulated host with VG ``vg`` holding thin pool ``pool``.

        ``size`` is the pool's data size in bytes. Add more VGs with
        :meth:`add_vg`. A host without storage: ``vg=None``.
        """
        with state.locked(self.root) as sess:
            if name in sess.nodes:
                raise ValueError('node %s exists' % name)
            sess.nodes[name] = {'running': False, 'vgs': {}, 'drbd': {},
                                'kernel_version': self.kernel_version}
        os.makedirs(os.path.join(self.root, name, 'dev'), exist_ok=True)
        if vg:
            self.add_vg(name, vg, pool, size, extent_size)
        if start:
            self.start_node(name)

    def add_vg(self, node, vg, pool='thinpool', size=1 << 30,
               extent_size=lvm.DEFAULT_EXTENT):
        size = (size + extent_size - 1) // extent_size * extent_size
        with state.locked(self.root) as sess:
            vgs = sess.node(node)['vgs']
            if vg in vgs:
                raise ValueError('VG %s exists on %s' % (vg, node))
            vgs[vg] = {'size': size + 2 * lvm.POOL_META,
                       'extent_size': extent_size, 'pool': pool,
                       'pool_size': size, 'lvs': {}}
        os.makedirs(os.path.join(self.root, node, 'vg', vg), exist_ok=True)

    def set_pool_zeroing(self, node, vg, zero):
        """Turn the thin pool's zeroing of new blocks on or off.

        LVM's default is on (``thin_pool_zero = 1``); ``lvs -o zero``
        reports it. The stand-in's LV files are sparse, so new blocks read
        zeros either way: only the report changes.
        """
        with state.locked(self.root) as sess:
            sess.node(node)['vgs'][vg]['pool_zero'] = bool(zero)

    def set_lvm_config(self, node, key, value):
        """Set ``key`` (``devices/global_filter``) in the node's lvm.conf.

        ``value``: a list of strings, or the text lvmconfig is to print
        (a value LVM would not take, for instance); None: unset, LVM's
        default applies. Every node starts with
        :data:`lvm.DEFAULT_CONFIG` (LVM sees only the PVs).
        """
        with state.locked(self.root) as sess:
            sess.node(node).setdefault('lvm_conf', {})[key] = value

    def add_loopback_address(self, address):
        """Put ``address`` on ``lo``: real drbdadm checks it is local.

        Removed again by :meth:`close` if it was added here.
        """
        proc = subprocess.run(['ip', 'addr', 'add', address + '/32', 'dev',
                               'lo'], capture_output=True, text=True)
        if proc.returncode == 0:
            self._addresses.append(address)
        elif 'exists' not in proc.stderr:
            raise OSError('ip addr add %s failed: %s'
                          % (address, proc.stderr.strip()))

    def nodes(self):
        with state.locked(self.root) as sess:
            return sorted(sess.nodes)

    def node_env(self, node, base=None):
        """Environment for commands run as ``node`` (stand-ins first)."""
        env = dict(os.environ if base is None else base)
        env['PATH'] = BIN_DIR + os.pathsep + env.get('PATH', '/usr/bin:/bin')
        env[state.ENV_DIR] = self.root
        env[state.ENV_NODE] = node
        env['__DRBD_NODE__'] = node
        return env

    def device_root(self, node):
        return os.path.join(self.root, node, 'dev')

    def device_path(self, node, res, vol=0):
        return os.path.join(self.device_root(node), 'drbd', 'by-res', res,
                            str(vol))

    def proc_drbd_path(self, node):
        return os.path.join(self.root, node, 'proc_drbd')

    def lv_path(self, node, vg, lv):
        """The sparse file holding LV ``vg/lv`` of ``node``."""
        return state.lv_file(self.root, node, vg, lv)

    # --- faults -------------------------------------------------------------

    def start_node(self, name):
        """Boot: no DRBD resource is up; LVs and their data are as left."""
        with state.locked(self.root) as sess:
            node = sess.node(name)
            node['running'] = True
            node['drbd'] = {}
            version = node.get('kernel_version', self.kernel_version)
        with open(self.proc_drbd_path(name), 'w') as f:
            f.write(proc_drbd_text(version))
        if self.fuse:
            self._start_fuse(name)

    def stop_node(self, name):
        """Crash: the node vanishes from its peers; its devices go away."""
        self._stop_fuse(name, crash=True)
        with state.locked(self.root) as sess:
            node = sess.node(name)
            node['running'] = False
            node['drbd'] = {}
            kernel.evaluate(sess)
        try:
            os.unlink(self.proc_drbd_path(name))
        except FileNotFoundError:
            pass

    def cut_link(self, a, b):
        with state.locked(self.root) as sess:
            pair = sorted((a, b))
            if pair not in sess.data['cut_links']:
                sess.data['cut_links'].append(pair)
            kernel.evaluate(sess)

    def heal_link(self, a, b):
        with state.locked(self.root) as sess:
            pair = sorted((a, b))
            if pair in sess.data['cut_links']:
                sess.data['cut_links'].remove(pair)
            kernel.evaluate(sess)

    # --- inspection and data ------------------------------------------------

    def status(self, node, res=None):
        """``drbdsetup status --json`` of ``node`` as Python data."""
        from tests.standin import drbdsetup
        rc, out, err = drbdsetup.run(
            ['status', '--json'] + ([res] if res else []), self.root, node)
        if rc:
            raise OSError(err.strip())
        return json.loads(out)

    def drbdsetup(self, node, *args):
        """Run the stand-in drbdsetup in-process: (rc, stdout, stderr)."""
        from tests.standin import drbdsetup
        return drbdsetup.run(list(args), self.root, node)

    def write(self, node, res, offset, data, vol=0, timeout=30.0):
        return sio.write(self.root, node, res, offset, data, vol, timeout)

    def read(self, node, res, offset, size, vol=0, timeout=30.0):
        return sio.read(self.root, node, res, offset, size, vol, timeout)

    def open_device(self, node, res, vol=0, write=False, timeout=30.0):
        return sio.Device(self.root, node, res, vol, write, timeout)

    def read_lv(self, node, vg, lv, offset, size):
        with open(self.lv_path(node, vg, lv), 'rb') as f:
            f.seek(offset)
            return f.read(size)

    def calls(self, node=None):
        """Stand-in commands run so far: [(node, prog, argv string, rc)]."""
        try:
            with open(os.path.join(self.root, 'calls.log')) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            _, who, prog, rest = line.split(' ', 3)
            argv, _, rc = rest.rpartition(' rc=')
            if node in (None, who):
                out.append((who, prog, argv, int(rc)))
        return out

    # --- FUSE servers -------------------------------------------------------

    def _start_fuse(self, name):
        if name in self._servers:
            return
        mountpoint = self.device_root(name)
        _umount(mountpoint)
        os.makedirs(mountpoint, exist_ok=True)
        log = open(os.path.join(self.root, name, 'fuse.log'), 'ab')
        code = ('import sys; sys.path.insert(0, %r); '
                'from tests.standin import fuse; fuse.main()' % REPO_ROOT)
        proc = subprocess.Popen(
            [sys.executable, '-c', code, self.root, name, mountpoint],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + 10
        while not os.path.ismount(mountpoint):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError('FUSE server for %s did not start; see %s'
                                   % (name, os.path.join(self.root, name,
                                                         'fuse.log')))
            time.sleep(0.02)
        self._servers[name] = proc

    def _stop_fuse(self, name, crash=False):
        proc = self._servers.pop(name, None)
        if proc is None:
            return
        proc.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _umount(self.device_root(name))

    def close(self, remove=False):
        """Stop every FUSE server; ``remove`` deletes the directory."""
        for name in list(self._servers):
            self._stop_fuse(name)
        while self._addresses:
            subprocess.run(['ip', 'addr', 'del', self._addresses.pop() + '/32',
                            'dev', 'lo'], capture_output=True)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
