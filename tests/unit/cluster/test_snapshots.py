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

"""Unit tests of ``cluster/snapshots.py``, through the Controller facade."""

import concurrent.futures
import dataclasses
import time

import fixtures

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit.cluster import fakes
from tests.unit.cluster.test_controller import ControllerTestCase
from tests.unit.cluster.test_controller import G
from tests.unit.cluster.test_controller import make
from tests.unit.cluster.test_controller import VOL


class SnapshotTest(ControllerTestCase):

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, 2 * G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.log.clear()

    def test_snapshot_suspends_everyone_and_resumes(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        suspends = [n for n, op in self.cluster.log if op == 'suspend-io']
        self.assertEqual(['hv1', 'n1', 'n2', 'n3'], sorted(suspends))
        ops = [op for _, op in self.cluster.log]
        # Every snapshot is taken while every node is suspended.
        self.assertEqual(['suspend-io'] * 4 + ['snapshot-create'] * 3 +
                         ['resume-io'] * 4, ops)
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertIn('snap-1', agent.snapshots)
            self.assertEqual(set(), agent.suspended)
        self.assertNotIn('snap-1', self.cluster.agents['hv1'].snapshots)

    def test_failed_snapshot_resumes_and_cleans(self):
        self.cluster.faults[('n3', 'snapshot-create')] = tp.NodeError(
            'n3', protocol.E_FAILED, 'lvcreate failed')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.create_snapshot, VOL, 'snap-1')
        for agent in self.cluster.agents.values():
            self.assertEqual(set(), agent.suspended)
            self.assertNotIn('snap-1', agent.snapshots)

    def test_snapshot_refused_with_replica_down(self):
        self.cluster.down.add('n3')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                self.ctl.create_snapshot, VOL, 'snap-1')
        self.assertIn('n3', str(exc))
        # Learnt from the first suspend (it reports the volume): the
        # replicas it suspended are resumed before the refusal, the
        # client never suspended, no snapshot taken.
        self.assertEqual(['n1', 'n2'], sorted(
            n for n, op in self.cluster.log if op == 'suspend-io'))
        self.assertEqual(['n1', 'n2'], sorted(
            n for n, op in self.cluster.log if op == 'resume-io'))
        self.assertEqual([], self.cluster.ops('snapshot-create'))
        for agent in self.cluster.agents.values():
            self.assertEqual(set(), agent.suspended)

    def test_unreachable_client_does_not_block(self):
        self.cluster.down.add('hv1')
        logger = self.useFixture(fixtures.FakeLogger())
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.assertIn('snap-1', self.cluster.agents['n1'].snapshots)
        # checked before and after the thin snapshots, said once
        self.assertEqual(1, logger.output.count(
            'Client hv1 of %s could not be suspended' % VOL))

    def test_delete_snapshot(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.ctl.delete_snapshot('snap-1')
        self.ctl.delete_snapshot('snap-1')
        for agent in self.cluster.agents.values():
            self.assertEqual({}, agent.snapshots)

    def test_delete_snapshot_needs_only_the_replicas_of_its_volume(self):
        cluster, controller = make(nodes=('n1', 'n2', 'n3', 'n4'),
                                   sizes=(100, 100, 100, 10))
        self.addCleanup(controller.close)
        spec = controller.create_volume(VOL, G)
        replicas = {h.name for h in spec.diskful_hosts}
        self.assertNotIn('n4', replicas)
        controller.create_snapshot(VOL, 'snap-1')
        cluster.down.add('n4')
        logger = self.useFixture(fixtures.FakeLogger())
        controller.delete_snapshot('snap-1', VOL)
        for name in replicas:
            self.assertEqual({}, cluster.agents[name].snapshots)
        self.assertIn('n4 holds no replica', logger.output)
        # Without the volume every storage node is needed.
        controller.create_snapshot(VOL, 'snap-2')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                controller.delete_snapshot, 'snap-2')
        self.assertEqual({'n4'}, set(exc.failures))

    def test_delete_snapshot_with_a_replica_down_fails_naming_it(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.cluster.down.add('n2')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                self.ctl.delete_snapshot, 'snap-1', VOL)
        self.assertEqual({'n2'}, set(exc.failures))
        self.cluster.down.clear()
        self.ctl.delete_snapshot('snap-1', VOL)
        for agent in self.cluster.agents.values():
            self.assertEqual({}, agent.snapshots)

    def test_volume_from_snapshot_keeps_node_ids(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        spec = self.ctl.create_volume_from_snapshot(
            'volume-new', 'snap-1', VOL, 2 * G, 3 * G)
        src = self.definition('n1')
        new = self.definition('n1', 'volume-new')
        self.assertEqual(
            {h['name']: h['node_id'] for h in src['hosts'] if h['diskful']},
            {h['name']: h['node_id'] for h in new['hosts']})
        self.assertNotEqual(src['minor'], new['minor'])
        self.assertEqual([], self.cluster.ops('new-current-uuid')[1:])
        # Grown after it came up: every LV, DRBD once.
        for name in ('n1', 'n2', 'n3'):
            self.assertEqual(3 * G,
                             self.cluster.agents[name].lvs['volume-new'])
        resized = [r for a in self.cluster.agents.values()
                   for r in a.resized]
        self.assertEqual([('volume-new', 3 * G)], resized)
        self.assertEqual(spec.name, 'volume-new')

    def test_volume_from_snapshot_records_its_sources_zone_policy(self):
        # on the source's nodes: placed as the source was
        self.ctl.create_volume('volume-s', G, zone_policy='spread')
        self.ctl.create_snapshot('volume-s', 'snap-1')
        self.ctl.create_volume_from_snapshot('volume-new', 'snap-1',
                                             'volume-s', G, G)
        self.assertEqual('spread', self.definition('n1', 'volume-new')[
            'zones'])

    def test_volume_from_snapshot_comes_up_capped_then_grows(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        spec = self.ctl.create_volume_from_snapshot(
            'volume-new', 'snap-1', VOL, 2 * G, 3 * G)
        self.assertEqual(3 * G, spec.size)
        [create] = {self.text_size(r) for _, r in
                    self.requests('create-from-snapshot', 'volume-new')}
        self.assertEqual('2097152k', create)
        self.assertEqual(
            dict.fromkeys(('n1', 'n2', 'n3'), '3145728k'),
            self.res_sizes('volume-new'))
        self.assertEqual(3 * G, self.ctl.find('volume-new').spec.size)

    def test_volume_from_snapshot_same_size_is_not_grown(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        spec = self.ctl.create_volume_from_snapshot(
            'volume-new', 'snap-1', VOL, 2 * G, 2 * G)
        self.assertEqual(2 * G, spec.size)
        self.assertEqual([], self.requests('resize', 'volume-new'))
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '2097152k'),
                         self.res_sizes('volume-new'))

    def test_volume_from_snapshot_failure_leaves_nothing(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.cluster.faults[('n2', 'create-from-snapshot')] = tp.NodeError(
            'n2', protocol.E_FAILED, 'boom')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.create_volume_from_snapshot,
                          'volume-new', 'snap-1', VOL, 2 * G, 2 * G)
        for agent in self.cluster.agents.values():
            self.assertNotIn('volume-new', agent.lvs)
            self.assertNotIn('volume-new', agent.res)

    def test_volume_from_snapshot_honours_the_over_subscription_ratio(self):
        self.cluster, self.ctl = make(sizes=(10, 10, 10),
                                      over_subscription=1.0)
        self.ctl.create_volume('volume-src', 4 * G)
        self.ctl.create_snapshot('volume-src', 'snap-1')
        # 4 GiB volume + 4 GiB snapshot provisioned of 10 GiB per node
        exc = self.assertRaises(
            errors.PlacementError, self.ctl.create_volume_from_snapshot,
            VOL, 'snap-1', 'volume-src', 4 * G, 4 * G)
        self.assertIn(f'a volume of {4 * G} bytes does not fit on n1, n2, '
                      f'n3: n1 has room for {2 * G} more bytes '
                      f'(max_over_subscription_ratio 1)', str(exc))
        self.assertEqual([], self.cluster.ops('create-from-snapshot'))
        self.assertNotIn(VOL, self.cluster.agents['n1'].lvs)
        # 15 - 8 GiB left at a ratio of 1.5: it fits
        roomier = ctl.Controller(
            dataclasses.replace(self.ctl.config, over_subscription=1.5),
            self.cluster.transport_for, poll_interval=0.01)
        self.addCleanup(roomier.close)
        spec = roomier.create_volume_from_snapshot(
            VOL, 'snap-1', 'volume-src', 4 * G, 4 * G)
        self.assertEqual(['n1', 'n2', 'n3'],
                         sorted(h.name for h in spec.diskful_hosts))

    def test_volume_from_snapshot_refused_with_a_node_refused(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.cluster.agents['n3'].kernel_version = '9.1.0'
        exc = self.assertRaises(
            errors.PlacementError, self.ctl.create_volume_from_snapshot,
            'volume-new', 'snap-1', VOL, 2 * G, 2 * G)
        self.assertIn('n3 is not available: ', str(exc))
        self.assertIn('9.1.0', str(exc))
        self.assertEqual([], self.cluster.ops('create-from-snapshot'))

    def test_clone_removes_temporary_snapshot(self):
        spec = self.ctl.clone_volume('volume-clone', VOL, 2 * G, 2 * G)
        self.assertEqual(2 * G, spec.size)
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '2097152k'),
                         self.res_sizes('volume-clone'))
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertIn('volume-clone', agent.lvs)
            self.assertEqual({}, agent.snapshots)

    def test_a_clone_whose_snapshot_failed_at_resume_removes_it(self):
        # The snapshot exists on every replica when its resume fails: the
        # clone fails, and takes its temporary snapshot with it.
        cluster, controller = make(io_suspend_timeout=0.25)
        self.addCleanup(controller.close)
        controller.create_volume(VOL, 2 * G)
        cluster.faults[('n3', 'resume-io')] = tp.NodeTimeout('n3', 'gone')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                controller.clone_volume, 'volume-clone', VOL,
                                2 * G, 2 * G)
        self.assertEqual('resume-io', exc.step)
        for name in ('n1', 'n2', 'n3'):
            self.assertEqual({}, cluster.agents[name].snapshots, name)
            self.assertNotIn('volume-clone', cluster.agents[name].lvs)
        self.assertEqual({}, controller.stats().temporary_snapshots)

    def clone_with_n3_lost_at_the_end(self):
        temp = 'clone-volume-clone'

        def lost(node, request):
            if request['op'] == 'snapshot-delete' and request.get(
                    'snapshot') == temp:
                self.cluster.down.add('n3')

        self.cluster.hooks.append(lost)
        spec = self.ctl.clone_volume('volume-clone', VOL, 2 * G, 2 * G)
        self.cluster.hooks.remove(lost)
        self.assertEqual(['n1', 'n2', 'n3'],
                         sorted(h.name for h in spec.diskful_hosts))
        self.assertEqual({temp: 2 * G}, self.cluster.agents['n3'].snapshots)
        return temp

    def test_a_clone_snapshot_left_on_a_lost_node_goes_when_it_returns(
            self):
        temp = self.clone_with_n3_lost_at_the_end()
        stats = self.ctl.stats()
        self.assertEqual({}, stats.temporary_snapshots)   # n3 is down
        self.assertEqual({temp: 'left on n3: n3: connection refused'},
                         self.ctl.remove_temporary_snapshots([temp]))
        self.cluster.down.discard('n3')
        stats = self.ctl.stats()
        self.assertEqual({temp: ('n3',)}, stats.temporary_snapshots)
        self.assertEqual({temp: 'removed'},
                         self.ctl.remove_temporary_snapshots(
                             stats.temporary_snapshots))
        self.assertEqual({}, self.cluster.agents['n3'].snapshots)
        self.assertEqual({}, self.ctl.stats().temporary_snapshots)

    def test_the_snapshot_of_a_clone_in_progress_is_not_removed(self):
        gate = fakes.Gate('n1', 'create-from-snapshot', 'volume-clone')
        self.cluster.hooks.append(gate)
        self.addCleanup(gate.open)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            clone = pool.submit(self.ctl.clone_volume, 'volume-clone', VOL,
                                2 * G, 2 * G)
            self.assertTrue(gate.reached.wait(10))
            temp = 'clone-volume-clone'
            self.assertEqual({temp: ('n1', 'n2', 'n3')},
                             self.ctl.stats().temporary_snapshots)
            self.assertEqual({temp: 'busy'},
                             self.ctl.remove_temporary_snapshots([temp]))
            gate.open()
            clone.result(timeout=10)
        self.assertEqual([], [n for n, r in self.cluster.requests
                              if r['op'] == 'snapshot-delete'
                              and r['snapshot'] == temp][3:])
        self.assertEqual({}, self.ctl.stats().temporary_snapshots)

    def test_only_temporary_clone_snapshots_are_removed(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.assertEqual({}, self.ctl.stats().temporary_snapshots)
        self.assertEqual({'snap-1': 'skipped: not a temporary clone '
                                    'snapshot'},
                         self.ctl.remove_temporary_snapshots(['snap-1']))
        self.assertIn('snap-1', self.cluster.agents['n1'].snapshots)

    def test_revert_refused_while_attached(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.assertRaises(errors.InvalidRequest, self.ctl.revert_to_snapshot,
                          VOL, 'snap-1', 2 * G, 2 * G)
        self.assertEqual([], self.cluster.ops('snapshot-rollback'))

    def test_revert(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.ctl.extend_volume(VOL, 4 * G)
        self.ctl.detach(VOL, 'hv1')
        self.ctl.revert_to_snapshot(VOL, 'snap-1', 2 * G, 4 * G)
        self.assertEqual(['n1', 'n2', 'n3'],
                         sorted(set(self.cluster.ops('snapshot-rollback'))))
        for name in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[name]
            self.assertIn(VOL, agent.up)
            self.assertEqual(4 * G, agent.lvs[VOL])
        # Up again at the snapshot's size (what its LVs hold), then grown.
        rollback = [i for i, (_, r) in enumerate(self.cluster.requests)
                    if r['op'] == 'snapshot-rollback'
                    and r['phase'] == 'swap']
        adjusts = [(i, r) for i, (_, r) in enumerate(self.cluster.requests)
                   if r['op'] == 'adjust' and i > max(rollback)]
        self.assertEqual('2097152k', self.text_size(adjusts[0][1]))
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '4194304k'),
                         self.res_sizes())

    def test_revert_with_a_replica_lost_while_connecting_is_a_cluster_error(
            self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.ctl.detach(VOL, 'hv1')
        # n1 answers the lookup, then cannot be reached while the
        # replicas reconnect
        self.cluster.faults[('n1', 'status')] = [None, tp.NodeUnreachable(
            'n1', 'connection to 10.0.0.1:22 lost during the request')]
        exc = self.assertRaises(errors.ClusterError,
                                self.ctl.revert_to_snapshot, VOL, 'snap-1',
                                2 * G, 2 * G)
        self.assertIsInstance(exc, errors.NodeOperationFailed)
        self.assertEqual(['n1'], list(exc.failures))
        self.assertIn('n1: connection to 10.0.0.1:22 lost', str(exc))

    def test_revert_to_the_same_size(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.ctl.detach(VOL, 'hv1')
        self.cluster.requests.clear()
        self.ctl.revert_to_snapshot(VOL, 'snap-1', 2 * G, 2 * G)
        self.assertEqual([], self.requests('resize'))
        self.assertEqual(dict.fromkeys(('n1', 'n2', 'n3'), '2097152k'),
                         self.res_sizes())

    def test_revert_to_a_larger_snapshot_refused(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.ctl.detach(VOL, 'hv1')
        self.assertRaises(errors.InvalidRequest, self.ctl.revert_to_snapshot,
                          VOL, 'snap-1', 3 * G, 2 * G)
        self.assertEqual([], self.cluster.ops('snapshot-rollback'))


class SuspendTest(ControllerTestCase):
    """Snapshots never leave I/O suspended and never miss a writer."""

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, 2 * G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.log.clear()

    def suspended(self):
        return {n for n, a in self.cluster.agents.items() if VOL in
                a.suspended}

    def test_suspend_carries_a_lease_and_a_short_timeout(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        leases = {n: a.leases.get(VOL)
                  for n, a in self.cluster.agents.items() if a.leases}
        step = self.ctl.config.io_suspend_timeout
        self.assertEqual(dict.fromkeys(('hv1', 'n1', 'n2', 'n3'), 4 * step),
                         leases)

    def test_a_suspend_whose_reply_is_lost_is_resumed(self):
        def lost_reply(node, request):
            if node == 'n2' and request['op'] == 'suspend-io':
                self.cluster.agents[node].op_suspend_io(request)
                raise tp.NodeTimeout(node, 'no reply in 15s')
        self.cluster.hooks.append(lost_reply)
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.create_snapshot, VOL, 'snap-1')
        self.assertEqual(set(), self.suspended())
        self.assertIn('n2', self.cluster.ops('resume-io'))
        for agent in self.cluster.agents.values():
            self.assertNotIn('snap-1', agent.snapshots)

    def test_resume_is_retried_until_it_works(self):
        self.cluster.faults[('n3', 'resume-io')] = [
            tp.NodeTimeout('n3', 'no reply'),
            tp.NodeUnreachable('n3', 'connection reset')]
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.assertEqual(set(), self.suspended())
        self.assertEqual(3, self.cluster.ops('resume-io').count('n3'))

    def test_resume_given_up_at_the_lease_is_reported(self):
        cluster, controller = make(io_suspend_timeout=0.25)
        self.addCleanup(controller.close)
        controller.create_volume(VOL, G)
        cluster.faults[('n3', 'resume-io')] = tp.NodeTimeout('n3', 'gone')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                controller.create_snapshot, VOL, 'snap-1')
        self.assertEqual('resume-io', exc.step)
        self.assertGreater(cluster.ops('resume-io').count('n3'), 1)

    def test_unreachable_client_still_connected_refuses_the_snapshot(self):
        # Its agent does not answer, but DRBD still connects it: it may
        # be writing while the replicas are snapshotted.
        self.cluster.ssh_down.add('hv1')
        exc = self.assertRaises(errors.ClusterError,
                                self.ctl.create_snapshot, VOL, 'snap-1')
        self.assertIn('hv1', str(exc))
        self.assertIn('connected', str(exc))
        self.assertEqual([], self.cluster.ops('snapshot-create'))
        self.assertEqual(set(), self.suspended())

    def test_unreachable_client_cut_off_does_not_block(self):
        self.cluster.down.add('hv1')    # gone for DRBD too
        self.ctl.create_snapshot(VOL, 'snap-1')
        for name in ('n1', 'n2', 'n3'):
            self.assertIn('snap-1', self.cluster.agents[name].snapshots)
        self.assertEqual(set(), self.suspended() - {'hv1'})

    def test_client_reconnecting_during_the_snapshot_discards_it(self):
        self.cluster.down.add('hv1')

        def comes_back(node, request):
            if request['op'] == 'snapshot-create':
                self.cluster.down.discard('hv1')
                self.cluster.ssh_down.add('hv1')
        self.cluster.hooks.append(comes_back)
        self.assertRaises(errors.ClusterError, self.ctl.create_snapshot,
                          VOL, 'snap-1')
        for agent in self.cluster.agents.values():
            self.assertNotIn('snap-1', agent.snapshots)

    def test_snapshot_longer_than_the_lease_is_discarded(self):
        cluster, controller = make(io_suspend_timeout=0.25)
        self.addCleanup(controller.close)
        controller.create_volume(VOL, G)

        def slow(node, request):
            if request['op'] == 'snapshot-create':
                time.sleep(1.1)
        cluster.hooks.append(slow)
        exc = self.assertRaises(errors.ClusterError,
                                controller.create_snapshot, VOL, 'snap-1')
        self.assertIn('lease', str(exc))
        for agent in cluster.agents.values():
            self.assertNotIn('snap-1', agent.snapshots)
            self.assertEqual(set(), agent.suspended)


class DrbdVersionTest(ControllerTestCase):
    """Nodes whose suspend-io does not drain writes are not used."""

    def test_old_kernel_refused_at_setup_and_in_stats(self):
        self.cluster.agents['n2'].kernel_version = '9.2.13'
        problems = self.ctl.check_setup()
        self.assertEqual(['n2'], sorted(problems))
        self.assertIn('9.2.13', problems['n2'])
        self.assertIn('9.2.14', problems['n2'])
        stats = self.ctl.stats()
        self.assertEqual(['n2'], sorted(stats.nodes_refused))
        self.assertEqual({}, stats.nodes_down)
        # two nodes left: no room for 3 replicas, capacity is for 2
        self.assertEqual(2, stats.capacity_replicas)
        self.assertRaises(errors.PlacementError, self.ctl.create_volume,
                          VOL, G)
        self.assertEqual([], self.cluster.ops('create'))

    def test_new_enough_kernels_pass(self):
        for name, version in (('n1', '9.2.14'), ('n2', '9.3.0'),
                              ('n3', '10.0.1-rc1')):
            self.cluster.agents[name].kernel_version = version
        self.assertEqual({}, self.ctl.check_setup())

    def test_unknown_kernel_version_refused(self):
        self.cluster.agents['n3'].kernel_version = None
        self.assertIn('unknown', self.ctl.check_setup()['n3'])

    def test_snapshot_refused_on_a_node_known_old(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.agents['n3'].kernel_version = '9.1.22'
        self.ctl.stats()
        exc = self.assertRaises(errors.ClusterError,
                                self.ctl.create_snapshot, VOL, 'snap-1')
        self.assertIn('n3', str(exc))
        self.assertIn('9.1.22', str(exc))
        self.assertEqual([], self.cluster.ops('suspend-io'))

    def test_pool_without_zeroing_refused(self):
        self.cluster.agents['n1'].zero_new_blocks = False
        problems = self.ctl.check_setup()
        self.assertEqual(['n1'], sorted(problems))
        self.assertIn('zero', problems['n1'])
        self.assertEqual(['n1'], sorted(self.ctl.stats().nodes_refused))

    def test_node_that_cannot_serve_refused_with_its_reason(self):
        # what the agent answers when LVM would scan DRBD devices
        why = ('this node cannot serve: LVM would scan DRBD devices ...; '
               'set global_filter in the devices section of lvm.conf')
        self.cluster.faults[('n2', 'inventory')] = tp.NodeError(
            'n2', protocol.E_MISSING, why)
        self.assertEqual({'n2': why}, self.ctl.check_setup())
        stats = self.ctl.stats()
        self.assertEqual({'n2': why}, stats.nodes_refused)
        self.assertEqual({}, stats.nodes_down)
        self.assertEqual(('n1', 'n3'), stats.nodes_up)
        self.assertEqual(2, stats.capacity_replicas)   # 3 asked, 2 nodes
        self.assertRaises(errors.PlacementError, self.ctl.create_volume,
                          VOL, G)
        self.assertEqual([], self.cluster.ops('create'))


class ClientDrbdVersionTest(ControllerTestCase):

    def test_snapshot_refused_with_a_client_known_old(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.agents['hv1'].kernel_version = '9.2.10'
        self.ctl.attach(VOL, 'hv1')
        exc = self.assertRaises(errors.ClusterError,
                                self.ctl.create_snapshot, VOL, 'snap-1')
        self.assertIn('hv1: DRBD kernel module 9.2.10', str(exc))
        self.assertEqual([], self.cluster.ops('suspend-io'))


class SnapshotRoundTripsTest(ControllerTestCase):
    """Three requests per replica, two per client (as transports count)."""

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, 2 * G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.log.clear()
        self.mark = len(self.cluster.requests)

    def sent(self):
        per_node = {}
        for node, request in self.cluster.requests[self.mark:]:
            per_node.setdefault(node, []).append(request['op'])
        return per_node

    def test_three_per_replica(self):
        self.ctl.create_snapshot(VOL, 'snap-1')
        replica = ['suspend-io', 'snapshot-create', 'resume-io']
        self.assertEqual({'n1': replica, 'n2': replica, 'n3': replica,
                          'hv1': ['suspend-io', 'resume-io']}, self.sent())
        # every thin snapshot while every node is suspended
        self.assertEqual(['suspend-io'] * 4 + ['snapshot-create'] * 3 +
                         ['resume-io'] * 4,
                         [op for _, op in self.cluster.log])
        # the client is suspended after the replicas reported it
        first = [(n, r) for n, r in self.cluster.requests[self.mark:]
                 if r['op'] == 'suspend-io']
        self.assertEqual(['hv1'], [n for n, r in first
                                   if 'report' not in r])
        self.assertEqual(['hv1'], [n for n, _ in first][-1:])

    def test_a_storage_node_without_the_volume_is_asked_once(self):
        cluster, controller = make(nodes=('n1', 'n2', 'n3', 'n4'),
                                   sizes=(100, 100, 100, 10))
        self.addCleanup(controller.close)
        controller.create_volume(VOL, G)
        mark = len(cluster.requests)
        controller.create_snapshot(VOL, 'snap-1')
        self.assertEqual([('n4', 'suspend-io')], [
            (n, r['op']) for n, r in cluster.requests[mark:] if n == 'n4'])
        self.assertEqual(set(), cluster.agents['n4'].suspended)

    def test_a_missing_volume_suspends_nothing(self):
        exc = self.assertRaises(errors.ResourceNotFound,
                                self.ctl.create_snapshot, 'volume-none',
                                'snap-1')
        self.assertIn('volume-none', str(exc))
        self.assertEqual([], self.cluster.log)

    def test_older_agents_are_looked_up_first(self):
        self.cluster.agents['n2'].unknown_fields.add('report')
        self.ctl.create_snapshot(VOL, 'snap-1')
        for name in ('n1', 'n2', 'n3'):
            self.assertIn('snap-1', self.cluster.agents[name].snapshots)
        self.assertEqual(['n1', 'n2', 'n3'], sorted(
            self.cluster.ops('status')[-3:]))
        for agent in self.cluster.agents.values():
            self.assertEqual(set(), agent.suspended)
        # the snapshots were taken while every node was suspended
        ops = [op for _, op in self.cluster.log]
        taken = ops.index('snapshot-create')
        self.assertEqual(4, ops[:taken].count('suspend-io')
                         - ops[:taken].count('resume-io'))

    def test_a_node_known_old_refuses_before_suspending(self):
        # a client's too: known from its last inventory
        self.cluster.agents['hv2'].kernel_version = '9.2.10'
        self.ctl.attach(VOL, 'hv2')
        self.cluster.log.clear()
        exc = self.assertRaises(errors.ClusterError,
                                self.ctl.create_snapshot, VOL, 'snap-1')
        self.assertIn('hv2', str(exc))
        self.assertEqual([], self.cluster.log)
