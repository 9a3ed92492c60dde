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
"""Manage on the cluster in a box: the data on every replica afterwards.

Both kinds of adopted volume, over real SSH, the real drbdadm and the
stand-in's real data: a resource under another name (renamed on every
replica) and a bare thin LV (wrapped, fully synced from its node). Each
ends with the SHA-256 of the volume on every replica's LV equal to that of
the data before, and nothing left once deleted.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

from blackstor_cinder.cluster import adopt
from blackstor_cinder.cluster import errors
from tests.functional import cluster_box
from tests.functional import test_flows

GiB = 1 << 30
MiB = 1 << 20
STORAGE = test_flows.STORAGE
OFFSETS = (0, 300 * MiB + 512, GiB - MiB)


class ManageTest(test_flows.BoxTestCase):

    def lv_digest(self, node: str, lv: str, size: int) -> str:
        digest = hashlib.sha256()
        path = self.standin.lv_path(node, cluster_box.VG, lv)
        with open(path, 'rb') as f:
            while size > 0:
                chunk = f.read(min(size, 16 * MiB))
                if not chunk:
                    raise AssertionError(f'{path}: short')
                digest.update(chunk)
                size -= len(chunk)
        return digest.hexdigest()

    def lvm(self, node: str, *argv: str) -> None:
        subprocess.run(list(argv), env=self.box.node_env(node), check=True,
                       capture_output=True, timeout=60)

    def bare_lv(self, node: str, lv: str, size: int) -> str:
        """A thin LV made outside BlackStor with data in it; its digest."""
        self.lvm(node, 'lvcreate', '--yes', '--type', 'thin',
                 '--virtualsize', f'{size}b', '--thinpool',
                 cluster_box.THINPOOL, '--name', lv, cluster_box.VG)
        self.addCleanup(self._remove_lv, node, lv)
        path = self.standin.lv_path(node, cluster_box.VG, lv)
        with open(path, 'r+b') as f:
            for offset in OFFSETS:
                f.seek(offset)
                f.write(os.urandom(MiB))
        return self.lv_digest(node, lv, GiB)

    def _remove_lv(self, node: str, lv: str) -> None:
        if os.path.exists(self.standin.lv_path(node, cluster_box.VG, lv)):
            self.lvm(node, 'lvremove', '--yes', f'{cluster_box.VG}/{lv}')

    def assert_replicas_hold(self, name: str, digest: str,
                             nodes=STORAGE) -> None:
        for node in nodes:
            state = self.state(node, name)
            self.assertEqual('UpToDate', state['devices'][0]['disk-state'],
                             node)
            self.assertEqual(digest, self.lv_digest(node, name, GiB), node)

    def test_adopt_a_resource_under_another_name(self):
        old, new = self.name('mg-old'), self.name('mg-new')
        self.ctl.create_volume(old, GiB)
        for offset in OFFSETS:
            self.standin.write('stor-a', old, offset, os.urandom(MiB))
        digest = self.lv_digest('stor-b', old, GiB)
        entry = adopt.find(self.ctl, old)
        self.assertEqual(('resource', GiB, None),
                         (entry.kind, entry.size, entry.reason_not_safe))
        spec = adopt.adopt(self.ctl, old, new, 3, 'any')
        self.assertEqual(new, spec.name)
        self.assert_replicas_hold(new, digest)
        for node in STORAGE:
            self.assertNotIn(old, self.lvs(node))
            self.assertFalse((self.box.nodes[node].resource_dir
                              / f'{old}.res').exists())
        # a volume like any other: attach, read what was written
        self.ctl.attach(new, 'hv-1')
        self.assertEqual(
            self.standin.read('stor-c', new, OFFSETS[1], MiB),
            self.standin.read('hv-1', new, OFFSETS[1], MiB))
        self.ctl.detach(new, 'hv-1')
        self.ctl.delete_volume(new)
        self.ran('resource renamed on 3 replicas, same data on each')

    def test_adopt_refused_while_attached(self):
        old = self.name('mg-busy')
        self.ctl.create_volume(old, GiB)
        self.ctl.attach(old, 'hv-1')
        exc = self.assertRaises(errors.InvalidRequest, adopt.adopt,
                                self.ctl, old, 'volume-mg-never', 3, 'any')
        self.assertIn('attached to hv-1', str(exc))
        self.assertEqual(set(STORAGE), set(self.lv_sizes(old)))
        self.ctl.detach(old, 'hv-1')
        self.ctl.delete_volume(old)
        self.ran('attached resource refused, nothing changed')

    def test_wrap_a_bare_lv_with_a_full_sync(self):
        new = self.name('mg-wrapped')
        digest = self.bare_lv('stor-b', 'imported', GiB + 8 * MiB)
        before = len(self.standin.calls())
        spec = adopt.adopt(self.ctl, 'imported', new, 3, 'any')
        self.assertEqual((GiB, 'stor-b'), (spec.size, spec.hosts[0].name))
        self.assertNotIn('imported', self.lvs('stor-b'))
        self.assert_replicas_hold(new, digest)
        calls = [(node, argv) for node, prog, argv, _
                 in self.standin.calls()[before:] if prog == 'drbdsetup']
        # a forced primary on the LV's node, never the initial-sync skip
        self.assertIn(('stor-b', f'primary {new} --force'), calls)
        self.assertEqual([], [c for c in calls if 'clear-bitmap' in c[1]
                              or c[1].startswith('primary')
                              and c[0] != 'stor-b'])
        self.ctl.delete_volume(new)
        self.ran('bare LV wrapped, full sync to 2 new replicas, same data')

    def test_wrap_refused_without_room_then_extended(self):
        new = self.name('mg-tight')
        digest = self.bare_lv('stor-c', 'tight', GiB)
        exc = self.assertRaises(errors.InvalidRequest, adopt.adopt,
                                self.ctl, 'tight', new, 3, 'any')
        missing = str(exc).rsplit('extend it by ', 1)[1].split()[0]
        self.assertEqual(digest, self.lv_digest('stor-c', 'tight', GiB))
        self.assertEqual({}, self.lv_sizes(new))
        # the room the message asks for is enough
        self.lvm('stor-c', 'lvextend', '--size', f'+{missing}m',
                 f'{cluster_box.VG}/tight')
        adopt.adopt(self.ctl, 'tight', new, 3, 'any')
        self.assert_replicas_hold(new, digest)
        self.ctl.delete_volume(new)
        self.ran(f'1 GiB LV refused ("extend it by {missing} MiB"), '
                 'then wrapped')
