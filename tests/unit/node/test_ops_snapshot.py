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
"""Snapshots and reverts (one shot and two-phase) on a fake node."""

from blackstor_cinder.node import ops_snapshot
from blackstor_cinder import protocol
from tests.unit.node import fakes
from tests.unit.node import samples
from tests.unit.node import test_agent

GiB = fakes.GiB


class SnapshotTestCase(test_agent.AgentTestCase):

    def setUp(self):
        super().setUp()
        self.ok('create', **self.create_req())
        self.fake.calls.clear()

    def test_every_revert_phase_has_its_step(self):
        self.assertEqual(set(protocol.REVERT_PHASES),
                         set(ops_snapshot._PHASES))

    def snap_req(self, **extra):
        return dict(resource='r0', pool='vg0/thin', snapshot='s1', **extra)

    def test_create(self):
        result = self.ok('snapshot-create', **self.snap_req())
        self.assertEqual(
            [['lvcreate', '--yes', '--snapshot', '--setactivationskip', 'n',
              '--activate', 'y', '--name', 's1', '--addtag', 'blackstor',
              '--addtag', 'blackstor-snapshot', 'vg0/r0']], self.changes())
        self.assertEqual({'snapshot': 's1', 'pool': 'vg0/thin',
                          'size_bytes': self.need(), 'origin': 'r0',
                          'created': True}, result)
        self.fake.calls.clear()
        self.assertFalse(self.ok('snapshot-create',
                                 **self.snap_req())['created'])
        self.assertEqual([], self.changes())

    def test_create_conflicts(self):
        self.fake.add_lv('vg0', 's1', GiB,
                         tags=('blackstor', 'blackstor-snapshot'),
                         origin='other')
        self.error('snapshot-create', protocol.E_CONFLICT, 'snapshot',
                   **self.snap_req())
        self.fake.lvs.pop(('vg0', 's1'))
        self.fake.add_lv('vg0', 's1', GiB)  # a volume, not a snapshot
        self.error('snapshot-create', protocol.E_CONFLICT, 'snapshot',
                   **self.snap_req())

    def test_create_without_volume(self):
        self.error('snapshot-create', protocol.E_NOT_FOUND, 'resource',
                   **dict(self.snap_req(), resource='r9'))

    def test_delete(self):
        self.ok('snapshot-create', **self.snap_req())
        self.fake.calls.clear()
        req = dict(pool='vg0/thin', snapshot='s1')
        self.assertTrue(self.ok('snapshot-delete', **req)['removed'])
        self.assertEqual([['lvremove', '--force', 'vg0/s1']],
                         self.changes())
        self.assertFalse(self.ok('snapshot-delete', **req)['removed'])

    def test_delete_refuses_a_volume(self):
        self.error('snapshot-delete', protocol.E_CONFLICT, 'snapshot',
                   pool='vg0/thin', snapshot='r0')
        self.assertIn(('vg0', 'r0'), self.fake.lvs)

    def test_rollback(self):
        self.ok('snapshot-create', **self.snap_req())
        self.fake.calls.clear()
        result = self.ok('snapshot-rollback', **self.snap_req())
        self.assertEqual(
            [['drbdadm', 'down', 'r0'],
             ['lvcreate', '--yes', '--snapshot', '--setactivationskip', 'n',
              '--activate', 'y', '--name', 'r0.rollback', '--addtag',
              'blackstor', 'vg0/s1'],
             ['lvremove', '--force', 'vg0/r0'],
             ['lvrename', 'vg0', 'r0.rollback', 'r0']], self.changes())
        lv = self.fake.lvs[('vg0', 'r0')]
        self.assertEqual('s1', lv['origin'])
        self.assertEqual(['blackstor'], lv['tags'])
        self.assertNotIn('r0', self.fake.running)
        self.assertTrue(result['down'])
        self.assertIn('/dev/vg0/r0', self.fake.metadata)

    def phase(self, phase):
        return self.ok('snapshot-rollback', phase=phase, **self.snap_req())

    def names(self):
        return sorted(n for (v, n) in self.fake.lvs if v == 'vg0'
                      and n.startswith('r0'))

    def test_two_phase_revert_keeps_the_old_lv_until_commit(self):
        self.ok('snapshot-create', **self.snap_req())
        old = dict(self.fake.lvs[('vg0', 'r0')])
        self.phase('prepare')
        # prepare touches nothing live
        self.assertIn('r0', self.fake.running)
        self.assertEqual(['r0', 'r0.rollback'], self.names())
        self.assertEqual(old, self.fake.lvs[('vg0', 'r0')])
        self.phase('prepare')                   # idempotent
        self.assertEqual(['r0', 'r0.rollback'], self.names())
        self.assertTrue(self.phase('swap')['swapped'])
        self.assertNotIn('r0', self.fake.running)
        self.assertEqual(['r0', 'r0.previous'], self.names())
        self.assertEqual('s1', self.fake.lvs[('vg0', 'r0')]['origin'])
        self.assertEqual(old, self.fake.lvs[('vg0', 'r0.previous')])
        self.phase('swap')                      # a rerun changes nothing
        self.assertEqual(['r0', 'r0.previous'], self.names())
        self.assertTrue(self.phase('commit')['previous_removed'])
        self.assertEqual(['r0'], self.names())
        self.phase('commit')
        self.assertEqual(['r0'], self.names())

    def test_undo_after_swap_brings_the_old_lv_back(self):
        self.ok('snapshot-create', **self.snap_req())
        old = dict(self.fake.lvs[('vg0', 'r0')])
        self.phase('prepare')
        self.phase('swap')
        self.assertTrue(self.phase('undo')['restored'])
        self.assertEqual(['r0'], self.names())
        self.assertEqual(old, self.fake.lvs[('vg0', 'r0')])
        self.phase('undo')                      # idempotent
        self.assertEqual(old, self.fake.lvs[('vg0', 'r0')])

    def test_undo_after_prepare_only_removes_the_rollback_lv(self):
        self.ok('snapshot-create', **self.snap_req())
        self.phase('prepare')
        self.fake.calls.clear()
        self.assertFalse(self.phase('undo')['restored'])
        self.assertEqual(['r0'], self.names())
        self.assertIn('r0', self.fake.running)
        self.assertNotIn(['drbdadm', 'down', 'r0'], self.changes())

    def test_delete_removes_what_an_interrupted_revert_left(self):
        self.ok('snapshot-create', **self.snap_req())
        self.phase('prepare')
        self.phase('swap')
        result = self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertEqual(['r0.previous'], result['revert_lvs_removed'])
        self.assertEqual([], self.names())

    def test_delete_after_prepare_removes_the_rollback_lv(self):
        self.ok('snapshot-create', **self.snap_req())
        self.phase('prepare')
        result = self.ok('delete', resource='r0', pool='vg0/thin')
        self.assertEqual(['r0.rollback'], result['revert_lvs_removed'])
        self.assertEqual([], self.names())
        self.assertIn(('vg0', 's1'), self.fake.lvs)   # the snapshot stays

    def test_commit_refused_before_swap(self):
        self.ok('snapshot-create', **self.snap_req())
        self.phase('prepare')
        self.error('snapshot-rollback', protocol.E_CONFLICT, 'resource',
                   phase='commit', **self.snap_req())

    def test_unknown_phase_refused(self):
        self.error('snapshot-rollback', protocol.E_INVALID, 'phase',
                   phase='later', **self.snap_req())

    def _crash_rollback(self, *words, after=False):
        self.ok('snapshot-create', **self.snap_req())
        self.fake.crash(*words, after=after)
        self.assertRaises(fakes.Crash, self.agent.handle,
                          dict(op='snapshot-rollback', **self.snap_req()))
        self.assertTrue(('vg0', 'r0') in self.fake.lvs
                        or ('vg0', 'r0.rollback') in self.fake.lvs)
        self.ok('snapshot-rollback', **self.snap_req())
        self.assertEqual('s1', self.fake.lvs[('vg0', 'r0')]['origin'])
        self.assertNotIn(('vg0', 'r0.rollback'), self.fake.lvs)

    def test_rollback_crash_after_old_removed(self):
        self._crash_rollback('lvremove', after=True)
        self.assertEqual(['lvrename', 'vg0', 'r0.rollback', 'r0'],
                         self.changes()[-1])

    def test_rollback_crash_after_temp_created(self):
        self._crash_rollback('lvcreate', 'r0.rollback', after=True)

    def test_rollback_missing_snapshot(self):
        self.error('snapshot-rollback', protocol.E_NOT_FOUND, 'snapshot',
                   **self.snap_req())
        self.assertIn('r0', self.fake.running)

    def test_rollback_size_beyond_snapshot(self):
        self.ok('snapshot-create', **self.snap_req())
        self.error('snapshot-rollback', protocol.E_INVALID, 'size',
                   **self.snap_req(size=2 * GiB))
        self.ok('snapshot-rollback', **self.snap_req(size=GiB))

    def from_snap_req(self, name='r1', size=GiB):
        return dict(resource=name, pool='vg0/thin', snapshot='s1',
                    size=size, spec=samples.spec(1001, 7001),
                    secret=samples.SECRET)

    def test_create_from_snapshot(self):
        self.ok('snapshot-create', **self.snap_req())
        self.fake.calls.clear()
        result = self.ok('create-from-snapshot', **self.from_snap_req())
        self.assertEqual(
            [['lvcreate', '--yes', '--snapshot', '--setactivationskip', 'n',
              '--activate', 'y', '--name', 'r1', '--addtag', 'blackstor',
              'vg0/s1'],
             ['drbdadm', 'up', 'r1']], self.changes())
        self.assertEqual(['blackstor'], self.fake.lvs[('vg0', 'r1')]['tags'])
        self.assertTrue(result['lv_created'])
        self.fake.calls.clear()
        self.ok('create-from-snapshot', **self.from_snap_req())
        self.assertEqual([], self.changes())

    def test_create_from_snapshot_drops_inherited_tag(self):
        self.ok('snapshot-create', **self.snap_req())
        real = self.fake._lvcreate

        def inherit(args, kwargs):
            rc, out, err = real(args, kwargs)
            self.fake.lvs[('vg0', 'r1')]['tags'].append(
                'blackstor-snapshot')
            return rc, out, err
        self.fake._lvcreate = inherit
        self.ok('create-from-snapshot', **self.from_snap_req())
        self.assertIn(['lvchange', '--deltag', 'blackstor-snapshot',
                       'vg0/r1'], self.changes())
        self.assertEqual(['blackstor'], self.fake.lvs[('vg0', 'r1')]['tags'])

    def test_create_from_snapshot_failure_leaves_nothing(self):
        self.ok('snapshot-create', **self.snap_req())
        before = self.fake.snapshot()
        self.fake.fail('drbdadm', 'up', 'r1')
        self.assertFalse(self.call('create-from-snapshot',
                                   **self.from_snap_req())['ok'])
        self.assertEqual(before, self.fake.snapshot())

    def test_create_from_missing_snapshot(self):
        self.error('create-from-snapshot', protocol.E_NOT_FOUND, 'snapshot',
                   **self.from_snap_req())

    def test_create_from_snapshot_too_large(self):
        self.ok('snapshot-create', **self.snap_req())
        self.error('create-from-snapshot', protocol.E_INVALID, 'size',
                   **self.from_snap_req(size=2 * GiB))
