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

"""Unit tests of ``cluster/resize.py``, through the Controller facade."""

import re

import ddt

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit.cluster import fakes
from tests.unit.cluster.test_controller import ControllerTestCase
from tests.unit.cluster.test_controller import G
from tests.unit.cluster.test_controller import VOL


class ExtendTest(ControllerTestCase):

    def test_extend_every_replica_then_drbd_once(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.extend_volume(VOL, 3 * G)
        for name in ('n1', 'n2', 'n3'):
            self.assertEqual(3 * G, self.cluster.agents[name].lvs[VOL])
        resized = [(n, r) for n, a in self.cluster.agents.items()
                   for r in a.resized]
        self.assertEqual(1, len(resized))

    def test_extend_lvs_then_one_resize_with_the_new_res(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.requests.clear()
        self.ctl.extend_volume(VOL, 3 * G)
        steps = [(node, r['op'], r.get('lv'), r.get('drbd'),
                  self.text_size(r) if 'spec' in r else None)
                 for node, r in self.cluster.requests
                 if r['op'] in ('resize', 'adjust')]
        lvs = sorted(steps[:3])
        self.assertEqual([(n, 'resize', True, False, None)
                          for n in ('n1', 'n2', 'n3')], lvs)
        self.assertEqual(('n1', 'resize', False, True, '3145728k'),
                         steps[3])
        self.assertTrue(self.requests('resize')[3][1]['assume_clean'])
        self.assertEqual([('n2', 'adjust', None, None, '3145728k'),
                          ('n3', 'adjust', None, None, '3145728k')],
                         sorted(steps[4:]))
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '3145728k'),
                         self.res_sizes())
        # the client stays in the .res
        self.assertIn('hv1', [h['name']
                              for h in self.definition('n2')['hosts']])

    def test_extend_never_shrinks(self):
        self.ctl.create_volume(VOL, 2 * G)
        self.assertRaises(errors.InvalidRequest, self.ctl.extend_volume,
                          VOL, G)
        self.assertEqual([], self.cluster.ops('resize'))
        self.ctl.extend_volume(VOL, 2 * G)      # a retry: converges
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '2097152k'),
                         self.res_sizes())

    def test_extend_stopped_half_way_is_retried_at_the_new_size(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.faults[('n3', 'adjust')] = [tp.NodeError(
            'n3', protocol.E_FAILED, 'drbdadm adjust failed')]
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.extend_volume, VOL, 3 * G)
        self.assertEqual({'n1': '3145728k', 'n2': '3145728k',
                          'n3': '1048576k'}, self.res_sizes())
        # What the nodes say: the largest size (every LV was grown).
        self.assertEqual(3 * G, self.ctl.find(VOL).spec.size)
        self.ctl.attach(VOL, 'hv1')
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '3145728k'),
                         self.res_sizes())

    def test_extend_of_a_resource_without_size(self):
        # .res files written before sizes were: uncapped, and they work.
        self.ctl.create_volume(VOL, G)
        for agent in self.cluster.agents.values():
            if VOL in agent.res:
                text, secret = agent.res[VOL]
                agent.res[VOL] = (re.sub(r'    disk \{[^}]*\}\n', '',
                                         text), secret)
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3')),
                         self.res_sizes())
        self.assertIsNone(self.ctl.find(VOL).spec.size)
        self.ctl.attach(VOL, 'hv1')
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3')),
                         self.res_sizes())
        self.ctl.extend_volume(VOL, 2 * G)
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '2097152k'),
                         self.res_sizes())

    def test_extend_refused_with_replica_down(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.down.add('n1')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.extend_volume, VOL, 3 * G)
        self.assertEqual(G, self.cluster.agents['n2'].lvs[VOL])


@ddt.ddt
class TwoPhaseRevertTest(ControllerTestCase):
    """Either every replica has the old data or every one the snapshot's."""

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, 2 * G)
        self.ctl.create_snapshot(VOL, 'snap-1')
        for agent in self.cluster.agents.values():
            if VOL in agent.data:
                agent.data[VOL] = 'written after the snapshot'

    def data(self):
        return {n: a.data.get(VOL) for n, a in self.cluster.agents.items()
                if a.pool}

    def phases(self):
        return [(n, r['phase']) for n, r in self.requests(
            'snapshot-rollback')]

    def test_revert_prepares_everywhere_before_swapping(self):
        self.ctl.revert_to_snapshot(VOL, 'snap-1', 2 * G, 2 * G)
        phases = [p for _, p in self.phases()]
        self.assertEqual(['prepare'] * 3 + ['swap'] * 3 + ['commit'] * 3,
                         phases)
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), 'zeros'),
                         self.data())
        for agent in self.cluster.agents.values():
            self.assertEqual([], [lv for lv in agent.lvs if '.' in lv])
            if agent.pool:
                self.assertIn(VOL, agent.up)

    @ddt.data('prepare', 'swap')
    def test_a_replica_failing_leaves_every_one_with_the_old_data(self,
                                                                  phase):
        fault = tp.NodeError('n2', protocol.E_FAILED, 'lvrename failed')

        def fail(node, request):
            if (node == 'n2' and request['op'] == 'snapshot-rollback'
                    and request.get('phase') == phase):
                raise fault
        self.cluster.hooks.append(fail)
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.revert_to_snapshot, VOL, 'snap-1',
                          2 * G, 2 * G)
        self.assertEqual(
            dict.fromkeys(('n1', 'n2', 'n3'), 'written after the snapshot'),
            self.data())
        self.assertEqual({'n1', 'n2', 'n3'},
                         {n for n, p in self.phases() if p == 'undo'})
        for agent in self.cluster.agents.values():
            self.assertEqual([], [lv for lv in agent.lvs if '.' in lv])
            if agent.pool:
                self.assertIn(VOL, agent.up)

    def test_a_failed_commit_still_reverts(self):
        self.cluster.faults[('n3', 'snapshot-rollback')] = [
            None, None, tp.NodeError('n3', protocol.E_FAILED, 'busy')]
        self.ctl.revert_to_snapshot(VOL, 'snap-1', 2 * G, 2 * G)
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), 'zeros'),
                         self.data())

    def test_delete_removes_what_a_failed_commit_left(self):
        self.cluster.faults[('n3', 'snapshot-rollback')] = [
            None, None, tp.NodeError('n3', protocol.E_FAILED, 'busy')]
        self.ctl.revert_to_snapshot(VOL, 'snap-1', 2 * G, 2 * G)
        self.assertIn(VOL + '.previous', self.cluster.agents['n3'].lvs)
        self.ctl.delete_snapshot('snap-1')
        self.ctl.delete_volume(VOL)
        for agent in self.cluster.agents.values():
            self.assertEqual({}, agent.lvs)


class GrowZeroesTheOldMetadataTest(ControllerTestCase):

    def test_drbd_resize_zeroes_from_the_old_size(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.extend_volume(VOL, 3 * G)
        zeroed = [z for a in self.cluster.agents.values() for z in a.zeroed]
        # from the old device size to the old end of the LVs (where the
        # old internal metadata was)
        self.assertEqual([(VOL, G, G + fakes.MD_BYTES)], zeroed)

    def zeroed(self):
        return [z for a in self.cluster.agents.values() for z in a.zeroed]

    def failed_extend(self, node, step):
        """A 1 GiB volume whose extend to 3 GiB failed at ``step``."""
        self.ctl.create_volume(VOL, G)
        self.cluster.faults[(node, step)] = [tp.NodeError(
            node, protocol.E_FAILED, f'{step} failed')]
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.extend_volume, VOL, 3 * G, old_size=G)

    def test_a_retry_after_a_half_done_grow_zeroes_the_old_area_only(self):
        # n3's LV grow fails: n1 and n2 keep their grown LVs
        self.failed_extend('n3', 'resize')
        self.assertEqual(3 * G, self.cluster.agents['n1'].lvs[VOL])
        self.assertEqual([], self.zeroed())
        self.ctl.extend_volume(VOL, 3 * G, old_size=G)
        # the old metadata area, not the grown range of n1's and n2's LVs
        self.assertEqual([(VOL, G, G + fakes.MD_BYTES)], self.zeroed())
        drbd = [r for n, r in self.cluster.requests
                if r['op'] == 'resize' and r.get('drbd')]
        self.assertEqual(G + fakes.MD_BYTES, drbd[-1]['zero_to'])

    def half_done(self):
        self.failed_extend('n1', 'zeroing')
        self.assertEqual([G, G + fakes.MD_BYTES],
                         self.cluster.agents['n1']._pending(VOL))
        # no replica got the larger .res after the failed zeroing
        self.assertEqual({'n1': '3145728k', 'n2': '1048576k',
                          'n3': '1048576k'}, self.res_sizes())

    def test_a_failed_zeroing_is_finished_by_the_retried_extend(self):
        self.half_done()
        self.ctl.extend_volume(VOL, 3 * G, old_size=G)
        self.assertEqual([(VOL, G, G + fakes.MD_BYTES)], self.zeroed())
        self.assertIsNone(self.cluster.agents['n1']._pending(VOL))
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '3145728k'),
                         self.res_sizes())

    def test_without_the_old_size_the_smallest_res_size_bounds_it(self):
        self.half_done()
        # n1's .res says 3 GiB already; n2's and n3's the size before
        self.ctl.extend_volume(VOL, 3 * G)
        self.assertEqual([(VOL, G, G + fakes.MD_BYTES)], self.zeroed())
        self.assertIsNone(self.cluster.agents['n1']._pending(VOL))

    def test_a_zeroing_pending_elsewhere_is_finished_first(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.agents['n2'].marks[VOL] = {
            'lv_size': G + fakes.MD_BYTES, 'device': G,
            'zero': (G, G + fakes.MD_BYTES)}
        self.cluster.requests.clear()
        self.ctl.extend_volume(VOL, 3 * G, old_size=G)
        steps = [(n, r['op'], r.get('drbd')) for n, r in
                 self.cluster.requests if r['op'] in ('resize', 'adjust')]
        self.assertEqual([('n2', 'resize', True), ('n1', 'resize', True)],
                         steps[3:5])
        self.assertEqual([(VOL, G, G + fakes.MD_BYTES)],
                         self.cluster.agents['n2'].zeroed)
        self.assertIsNone(self.cluster.agents['n2']._pending(VOL))

    def test_a_grow_of_a_held_device_resyncs(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.agents['n1'].held.add(VOL)
        self.ctl.extend_volume(VOL, 3 * G, old_size=G)
        self.assertEqual([], self.zeroed())
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '3145728k'),
                         self.res_sizes())
