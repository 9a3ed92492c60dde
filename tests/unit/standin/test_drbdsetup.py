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
"""The stand-in's device size: ``disk { size }`` as DRBD honours it.

The real drbdadm turns each .res into the drbdsetup/drbdmeta calls
(``drbdadm -d`` prints them); they are replayed in-process against the
stand-in, which is much faster than running its executables (one Python
start each). No FUSE, no root.
"""

import io
import os
import shlex
import shutil
import subprocess
import tempfile

import ddt
import fixtures
import testtools

from tests.standin import cluster
from tests.standin import drbdmeta
from tests.standin import drbdsetup
from tests.standin import kernel
from tests.standin import lvm
from tests.standin import md as mdlib
from tests.standin import state
from tests.standin.state import StandinError
from tests.unit import base

MiB = 1 << 20
LV = 16 * MiB

HOSTS = (('nodea', 0, '127.0.0.1', True), ('nodeb', 1, '127.0.0.2', True),
         ('client1', 2, '127.0.0.3', False))


def res_text(size=None, hosts=HOSTS):
    """A .res like cluster/resfile.py renders (``size``: DRBD syntax)."""
    text = ('global { disable-ip-verification; }\n'
            'resource "r0" {\n    net {\n        protocol C;\n    }\n')
    if size:
        text += '    disk {\n        size %s;\n    }\n' % size
    for name, node_id, address, diskful in hosts:
        text += ('    on %s {\n        node-id %d;\n        address ipv4 '
                 '%s:7000;\n        volume 0 {\n            device minor '
                 '1000;\n            disk %s;\n            meta-disk '
                 'internal;\n        }\n    }\n'
                 % (name, node_id, address,
                    '"/dev/blackstor/r0"' if diskful else 'none'))
    for i, a in enumerate(hosts):
        for b in hosts[i + 1:]:
            if a[3] or b[3]:
                text += ('    connection {\n        host %s;\n        '
                         'host %s;\n    }\n' % (a[0], b[0]))
    return text + '}\n'


@ddt.ddt
class SizeParseTest(base.TestCase):

    @ddt.data(('2048', MiB), ('2048s', MiB), ('1024k', MiB), ('1M', MiB),
              ('1g', 1 << 30))
    @ddt.unpack
    def test_units_as_drbdsetup(self, text, size):
        self.assertEqual(size, kernel.size_bytes(text))

    @ddt.data('1T', '1.5M', 'k', '', '1kk', '-1')
    def test_not_a_number(self, text):
        self.assertRaises(StandinError, kernel.size_bytes, text)

    def test_too_big(self):
        self.assertEqual(20, self.assertRaises(
            StandinError, kernel.size_bytes, '1099511627777k').rc)


@testtools.skipUnless(shutil.which('drbdadm'), 'drbdadm is not installed')
class DeviceSizeTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix='standin-size-')
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.box = cluster.Cluster(os.path.join(self.dir, 'box'),
                                   fuse=False)
        self.addCleanup(self.box.close)
        self.useFixture(fixtures.EnvironmentVariable(state.ENV_DIR,
                                                     self.box.root))
        for name, _, _, diskful in HOSTS:
            self.box.add_node(name, vg='blackstor' if diskful else None,
                              size=256 * MiB)

    def conf(self, node, size=None):
        path = os.path.join(self.dir, f'{node}.res')
        with open(path, 'w') as f:
            f.write(res_text(size))
        return path

    def drbdadm(self, node, *args, size=None, ok=True):
        """Run what ``drbdadm`` would run, in-process.

        Returns (rc, stderr and argv) of the first failing call, else
        (0, ''); with ``-d`` first, only the calls, as argv lists.
        """
        dry = args[0] == '-d'
        proc = subprocess.run(
            ['drbdadm', '-c', self.conf(node, size),
             *(args if dry else ('-d',) + args)],
            env=self.box.node_env(node), capture_output=True, text=True,
            timeout=60)
        self.assertEqual(0, proc.returncode, proc.stderr)
        calls = [shlex.split(line) for line in proc.stdout.splitlines()]
        if dry:
            return calls
        for argv in calls:
            tool = {'drbdsetup': drbdsetup, 'drbdmeta': drbdmeta}[argv[0]]
            rc, _, err = tool.run(argv[1:], self.box.root, node)
            if rc:
                if ok:
                    self.fail(f'{node}: {shlex.join(argv)}: {err}')
                return rc, f'{err}{shlex.join(argv)}'
        return 0, ''

    def lvm(self, node, *argv):
        self.useFixture(fixtures.EnvironmentVariable(state.ENV_NODE, node))
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', io.StringIO()))
        self.assertEqual(0, lvm.main(argv[0], list(argv[1:])))

    def up(self, sizes, lv=LV):
        for name, _, _, diskful in HOSTS:
            if diskful:
                self.lvm(name, 'lvcreate', '--yes', '--type', 'thin',
                         '--virtualsize', '%db' % lv, '--thinpool',
                         'thinpool', '--name', 'r0', 'blackstor')
                self.drbdadm(name, '--', '--max-peers=7', '--force',
                             'create-md', 'r0', size=sizes.get(name))
        for name, _, _, _ in HOSTS:
            self.drbdadm(name, 'up', 'r0', size=sizes.get(name))

    def device_sizes(self):
        return {name: self.box.status(name, 'r0')[0]['devices'][0]['size']
                * 1024 for name, _, _, _ in HOSTS}

    def shown_size(self, node):
        _, out, _ = self.box.drbdsetup(node, 'show', 'r0')
        return [line.split()[1] for line in out.splitlines()
                if line.split()[:1] == ['size']]

    def test_without_size_all_the_lv_below_the_meta_data(self):
        self.up({})
        usable = mdlib.usable_size(LV, 7)
        self.assertEqual(dict.fromkeys(('nodea', 'nodeb', 'client1'),
                                       usable), self.device_sizes())
        self.assertEqual([], self.shown_size('nodea'))

    def test_size_is_the_device_size_everywhere(self):
        self.up(dict.fromkeys(('nodea', 'nodeb', 'client1'), '8M'))
        self.assertEqual(dict.fromkeys(('nodea', 'nodeb', 'client1'),
                                       8 * MiB), self.device_sizes())
        self.assertEqual(['16384s;'], self.shown_size('nodea'))
        # The running size is what the .res says: the real drbdadm, which
        # parses the stand-in's "show", has nothing to adjust.
        self.assertEqual([], self.drbdadm('nodea', '-d', 'adjust', 'r0',
                                          size='8192k'))
        self.assertEqual([['drbdsetup', 'resize', '1000', '--size=12M'],
                          ['drbdsetup', 'check-resize', '1000']],
                         self.drbdadm('nodea', '-d', 'adjust', 'r0',
                                      size='12M'))

    def test_attach_larger_than_the_backing_device_refused(self):
        self.lvm('nodea', 'lvcreate', '--yes', '--type', 'thin',
                 '--virtualsize', '%db' % LV, '--thinpool', 'thinpool',
                 '--name', 'r0', 'blackstor')
        self.drbdadm('nodea', '--', '--max-peers=7', '--force', 'create-md',
                     'r0')
        rc, err = self.drbdadm('nodea', 'up', 'r0',
                               size='%dk' % (LV // 1024), ok=False)
        self.assertEqual(10, rc)
        self.assertIn('(111) Low.dev. smaller than requested DRBD-dev. '
                      'size.', err)
        self.assertIn('attach 1000 /dev/blackstor/r0 /dev/blackstor/r0 '
                      'internal --size=16384k', err)

    def test_resize_sets_the_size_on_every_replica(self):
        self.up(dict.fromkeys(('nodea', 'nodeb', 'client1'), '8M'))
        for node in ('nodea', 'nodeb'):
            self.lvm(node, 'lvextend', '--size', '%db' % (2 * LV),
                     'blackstor/r0')
        self.assertEqual(8 * MiB, self.device_sizes()['nodea'])
        self.drbdadm('nodea', '--', '--assume-clean', 'resize', 'r0/0',
                     size='24M')
        self.assertEqual(dict.fromkeys(('nodea', 'nodeb', 'client1'),
                                       24 * MiB), self.device_sizes())
        # the peer took the size: its adjust with the new .res is a no-op
        self.assertEqual(['49152s;'], self.shown_size('nodeb'))
        self.assertEqual([], self.drbdadm('nodeb', '-d', 'adjust', 'r0',
                                          size='24M'))
        # and a resize without a size takes all there is
        self.drbdadm('nodea', 'resize', 'r0/0')
        self.assertEqual(mdlib.usable_size(2 * LV, 7),
                         self.device_sizes()['nodeb'])
        self.assertEqual([], self.shown_size('nodeb'))

    def test_resize_beyond_a_peer_refused(self):
        self.up(dict.fromkeys(('nodea', 'nodeb', 'client1'), '8M'))
        self.lvm('nodea', 'lvextend', '--size', '%db' % (2 * LV),
                 'blackstor/r0')
        rc, err = self.drbdadm('nodea', 'resize', 'r0/0', size='24M',
                               ok=False)
        self.assertIn('(111)', err)
        self.assertEqual(dict.fromkeys(('nodea', 'nodeb', 'client1'),
                                       8 * MiB), self.device_sizes())
        self.assertEqual(['16384s;'], self.shown_size('nodeb'))

    def test_connecting_replicas_agree_on_the_smaller_size(self):
        self.up({'nodea': '8M', 'nodeb': '12M', 'client1': '12M'})
        self.assertEqual(dict.fromkeys(('nodea', 'nodeb', 'client1'),
                                       8 * MiB), self.device_sizes())
        self.assertEqual(['16384s;'], self.shown_size('nodeb'))
