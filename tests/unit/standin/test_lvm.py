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
"""The stand-in LVM takes the command forms Cinder's brick issues.

``cinder.brick.local_dev.lvm`` (the LVM reference driver of the bench,
tests/bench/reference.py) abbreviates long options as getopt_long allows
(``--unit=g``, ``--noheading``), lists PVs with ``pvs``, reads attributes
with ``lvdisplay -C -o Attr`` and activates the thin pool before a
create. Run in-process (no Python start per command).
"""

import contextlib
import io
import json

import fixtures

from tests.standin import cluster
from tests.standin import lvm
from tests.standin import state
from tests.standin.state import StandinError
from tests.unit import base

GiB = 1 << 30
VG, POOL = 'cinder-volumes', 'cinder-volumes-pool'


class BrickFormsTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        root = self.useFixture(fixtures.TempDir()).path
        self.box = cluster.Cluster(root + '/s', fuse=False)
        self.addCleanup(self.box.close)
        self.box.add_node('ref', vg=VG, pool=POOL, size=8 * GiB)
        for key, value in self.box.node_env('ref', base={}).items():
            if key != 'PATH':
                self.useFixture(fixtures.EnvironmentVariable(key, value))

    def run_lvm(self, prog, *argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = lvm.main(prog, list(argv))
        return rc, out.getvalue()

    def state(self):
        with state.locked(self.box.root) as sess:
            return json.loads(json.dumps(sess.nodes['ref']['vgs'][VG]))

    def test_long_option_prefix(self):
        rc, out = self.run_lvm('lvs', '--noheading', '--unit=g', '-o',
                               'vg_name,name,size', '--nosuffix',
                               '--readonly', f'{VG}/{POOL}')
        self.assertEqual(0, rc)
        self.assertEqual([VG, POOL, '8.00'], out.split())
        # the same as the full names
        self.assertEqual(out, self.run_lvm(
            'lvs', '--noheadings', '--units', 'g', '-o', 'vg_name,name,size',
            '--nosuffix', '--readonly', f'{VG}/{POOL}')[1])

    def test_ambiguous_or_unknown_prefix_refused(self):
        before = self.state()
        for bad in ('--no', '--bogus'):
            exc = self.assertRaises(StandinError, self.run_lvm, 'lvs', bad)
            self.assertEqual(3, exc.rc)
            self.assertIn(bad, exc.message)
        self.assertIn('ambiguous', self.assertRaises(
            StandinError, self.run_lvm, 'lvs', '--no').message)
        self.assertEqual(before, self.state())

    def test_pvs(self):
        rc, out = self.run_lvm('pvs', '--noheadings', '--unit=g', '-o',
                               'vg_name,name,size,free', '--separator', '|',
                               '--nosuffix', '--ignoreskippedcluster')
        self.assertEqual(0, rc)
        vg, name, size, free = out.strip().split('|')
        self.assertEqual((VG, '/dev/loop0'), (vg, name))
        self.assertGreater(float(size), 8.0)
        self.assertLess(float(free), float(size))

    def test_thin_pool_activation_is_a_no_op(self):
        before = self.state()
        rc, out = self.run_lvm('lvchange', '-a', 'y', '--yes', '-K',
                               f'{VG}/{POOL}')
        self.assertEqual(0, rc)
        self.assertIn('changed', out)
        self.assertEqual(before, self.state())
        # anything else on the pool is still refused
        self.assertRaises(StandinError, self.run_lvm, 'lvchange', '-a', 'n',
                          f'{VG}/{POOL}')
        self.assertEqual(before, self.state())

    def test_lvdisplay_columns_is_lvs(self):
        self.assertEqual(0, self.run_lvm('lvcreate', '-T', '-V', '1g', '-n',
                                         'volume-a', f'{VG}/{POOL}')[0])
        rc, out = self.run_lvm('lvdisplay', '--noheading', '-C', '-o',
                               'Attr', '--readonly', f'{VG}/volume-a')
        self.assertEqual(0, rc)
        self.assertEqual('Vwi-a-tz--', out.strip())
        exc = self.assertRaises(StandinError, self.run_lvm, 'lvdisplay',
                                f'{VG}/volume-a')
        self.assertIn('-C', exc.message)
