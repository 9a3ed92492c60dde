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
import threading
from unittest import mock

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import membership
from blackstor_cinder.cluster import retype
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit.cluster import fakes
from tests.unit.cluster import test_heal

VOL = 'volume-r'


class RetypeTestCase(test_heal.HealTestCase):

    nodes = ('n1', 'n2', 'n3', 'n4')

    def make_volume(self, on, name=VOL):
        """A volume whose replicas are on ``on``, with data."""
        self.volume(name, on)
        if len(on) == 2:
            self.ctl.ensure_tiebreaker(name)

    def hosts(self, node, name=VOL):
        return fakes.parse_res(self.cluster.agents[node].res[name][0])[
            'hosts']

    def tiebreakers(self, node, name=VOL):
        return [h['name'] for h in self.hosts(node, name)
                if h['tiebreaker']]

    def assert_volume(self, want, tiebreaker=None, clients=(), name=VOL):
        """Every host lists ``want``, replicas UpToDate, nothing else.

        The replicas hold the data; no other node has the volume.
        """
        spec = self.ctl.find(name).spec
        self.assertEqual(sorted(want),
                         sorted(h.name for h in spec.diskful_hosts))
        hosts = set(want) | set(clients) | (
            {tiebreaker} if tiebreaker else set())
        for node in hosts:
            self.assertEqual(sorted(want), self.replicas(name, node), node)
            self.assertEqual([tiebreaker] if tiebreaker else [],
                             self.tiebreakers(node, name), node)
        for node in want:
            agent = self.cluster.agents[node]
            self.assertIn(name, agent.uptodate, node)
            self.assertEqual(f'data of {name}', agent.data[name], node)
        for node, agent in self.cluster.agents.items():
            if node not in hosts:
                self.assertNotIn(name, agent.res, node)
                self.assertNotIn(name, agent.lvs, node)
                self.assertNotIn(name, agent.up, node)
            elif node not in want:
                self.assertNotIn(name, agent.lvs, node)


class ReplicaCountTest(RetypeTestCase):

    def test_three_to_two_to_three_attached(self):
        self.make_volume(('n1', 'n2', 'n3'))
        self.ctl.attach(VOL, 'hv1')
        self.cluster.agents['hv1'].primary.add(VOL)
        ids = {h['name']: h['node_id'] for h in self.hosts('n1')}
        result = retype.retype(self.ctl, VOL, 2, 'any')
        self.assertEqual([], result.added)
        self.assertEqual(1, len(result.removed))
        gone = result.removed[0]
        kept = sorted({'n1', 'n2', 'n3'} - {gone})
        spec = self.ctl.find(VOL).spec
        tie = spec.tiebreaker_host.name
        self.assertEqual(f'tiebreaker placed on {tie}', result.tiebreaker)
        self.assert_volume(kept, tiebreaker=tie, clients=('hv1',))
        for node in kept:
            self.assertIn((VOL, ids[gone]),
                          self.cluster.agents[node].forgotten)

        result = retype.retype(self.ctl, VOL, 3, 'any')
        self.assertEqual(1, len(result.added))
        self.assertEqual([], result.removed)
        self.assertEqual(f'removed from {tie}', result.tiebreaker)
        want = kept + result.added
        self.assert_volume(want, clients=('hv1',))
        self.assertIsNone(self.ctl.find(VOL).spec.tiebreaker_host)
        # the new replica synced in full: no initial-sync skip for it
        self.assertEqual(1, len(self.cluster.ops('new-current-uuid')))
        # the client stays attached (never taken down) with every change
        self.assertNotIn('hv1', self.cluster.ops('detach'))
        self.assertEqual((), self.ctl.stats().divergent_volumes)

    def test_nothing_to_change_changes_nothing(self):
        self.make_volume(('n1', 'n2', 'n3'))
        before = self.changes()
        result = retype.retype(self.ctl, VOL, 3, 'any')
        self.assertEqual(([], [], ''), (result.added, result.removed,
                                        result.tiebreaker))
        self.assertIsNone(result.migrate)
        self.assertEqual(before, self.changes())

    def test_two_to_three_on_three_nodes_takes_the_tiebreakers_node(self):
        self.nodes = ('n1', 'n2', 'n3')
        self.make()
        self.make_volume(('n1', 'n2'))
        self.assertEqual(['n3'], self.tiebreakers('n1'))
        result = retype.retype(self.ctl, VOL, 3, 'any')
        self.assertEqual(['n3'], result.added)
        self.assertEqual('removed from n3', result.tiebreaker)
        self.assert_volume(['n1', 'n2', 'n3'])
        # its node-id was forgotten before n3 came back as a replica
        ops = self.changes()
        self.assertLess(ops.index(('n3', 'delete')),
                        ops.index(('n3', 'create')))

    def test_two_to_one_drops_the_tiebreaker(self):
        self.make_volume(('n1', 'n2'))
        tie = self.tiebreakers('n1')[0]
        result = retype.retype(self.ctl, VOL, 1, 'any')
        self.assertEqual(1, len(result.removed))
        self.assertEqual(f'removed from {tie}', result.tiebreaker)
        left = sorted({'n1', 'n2'} - set(result.removed))
        self.assert_volume(left)

    def test_one_to_two_gets_a_tiebreaker(self):
        self.make_volume(('n1',))
        result = retype.retype(self.ctl, VOL, 2, 'any')
        self.assertEqual(1, len(result.added))
        tie = self.ctl.find(VOL).spec.tiebreaker_host.name
        self.assert_volume(['n1'] + result.added, tiebreaker=tie)

    def test_the_replica_in_use_stays(self):
        self.make_volume(('n1', 'n2', 'n3'))
        # hyperconverged: the guest runs on n2 and uses its replica
        self.cluster.agents['n2'].primary.add(VOL)
        result = retype.retype(self.ctl, VOL, 1, 'any')
        self.assertEqual(['n1', 'n3'], sorted(result.removed))
        self.assert_volume(['n2'])

    def test_more_replicas_than_nodes_refused_unchanged(self):
        self.make_volume(('n1', 'n2', 'n3'))
        before = self.changes()
        for bad in (5, 0, -1, '3'):
            exc = self.assertRaises(errors.InvalidRequest, retype.retype,
                                    self.ctl, VOL, bad, 'any')
            self.assertIn('storage nodes', str(exc))
        self.assertRaises(errors.InvalidRequest, retype.retype,
                          self.ctl, VOL, 3, 'everywhere')
        self.cluster.down.add('n4')
        exc = self.assertRaises(errors.PlacementError, retype.retype,
                                self.ctl, VOL, 4, 'any')
        self.assertIn('n4 is not available', str(exc))
        self.assertEqual(before, self.changes())
        self.assert_volume(['n1', 'n2', 'n3'])

    def test_no_bitmap_slot_refused_unchanged(self):
        self.make(max_peers=3)
        self.make_volume(('n1', 'n2', 'n3'))
        self.ctl.attach(VOL, 'hv1')
        before = self.changes()
        exc = self.assertRaises(errors.InvalidRequest, retype.retype,
                                self.ctl, VOL, 4, 'any')
        self.assertIn('blackstor_max_peers = 3', str(exc))
        self.assertEqual(before, self.changes())

    def test_replica_not_up_to_date_refused_unchanged(self):
        self.make_volume(('n1', 'n2', 'n3'))
        self.cluster.agents['n3'].uptodate.discard(VOL)
        before = self.changes()
        exc = self.assertRaises(errors.ClusterError, retype.retype,
                                self.ctl, VOL, 2, 'any')
        self.assertIn('n3=Inconsistent', str(exc))
        self.cluster.down.add('n2')
        self.assertRaises(errors.NodeOperationFailed, retype.retype,
                          self.ctl, VOL, 2, 'any')
        self.assertEqual(before, self.changes())

    def test_as_asked_while_degraded_changes_nothing(self):
        self.make_volume(('n1', 'n2', 'n3'))
        self.cluster.down.add('n3')
        before = self.changes()
        result = retype.retype(self.ctl, VOL, 3, 'any')
        self.assertEqual(([], []), (result.added, result.removed))
        self.assertEqual(before, self.changes())

    def test_failure_half_way_rolled_back_then_converges(self):
        self.make_volume(('n1', 'n2', 'n3'))
        self.cluster.faults[('n2', 'adjust')] = [tp.NodeError(
            'n2', protocol.E_FAILED, 'adjust failed')]
        self.assertRaises(errors.NodeOperationFailed, retype.retype,
                          self.ctl, VOL, 4, 'any')
        self.assert_volume(['n1', 'n2', 'n3'])
        result = retype.retype(self.ctl, VOL, 4, 'any')
        self.assertEqual(['n4'], result.added)
        self.assert_volume(['n1', 'n2', 'n3', 'n4'])

    def test_sync_timeout_then_retry_converges(self):
        self.make_volume(('n1', 'n2'))
        tie = self.tiebreakers('n1')[0]
        real = fakes.FakeCluster.resync
        self.cluster.resync = lambda name: None
        self.assertRaises(errors.ClusterError, retype.retype, self.ctl,
                          VOL, 3, 'any', sync_timeout=0.05)
        # syncing: a retry waits for it (refused, nothing changed)
        before = self.changes()
        exc = self.assertRaises(errors.ClusterError, retype.retype,
                                self.ctl, VOL, 3, 'any')
        self.assertIn('retry', str(exc))
        self.assertEqual(before, self.changes())
        self.cluster.resync = lambda name: real(self.cluster, name)
        self.cluster.resync(VOL)
        result = retype.retype(self.ctl, VOL, 3, 'any')
        self.assertEqual([], result.added)      # not one more
        self.assertEqual(f'removed from {tie}', result.tiebreaker)
        self.assertEqual(3, len(self.ctl.find(VOL).spec.diskful_hosts))


class SnapshotTest(RetypeTestCase):

    def test_adding_with_snapshots_is_a_migration(self):
        self.make_volume(('n1', 'n2'))
        self.ctl.create_snapshot(VOL, 'snap-1')
        before = self.changes()
        result = retype.retype(self.ctl, VOL, 3, 'any')
        self.assertIn('snap-1', result.migrate)
        self.assertEqual(before, self.changes())

    def test_removing_with_snapshots_removes_their_copies(self):
        self.make_volume(('n1', 'n2', 'n3'))
        self.ctl.create_snapshot(VOL, 'snap-1')
        result = retype.retype(self.ctl, VOL, 2, 'any')
        self.assertIsNone(result.migrate)
        gone = result.removed[0]
        self.assertNotIn('snap-1', self.cluster.agents[gone].snapshots)
        for node in {'n1', 'n2', 'n3'} - {gone}:
            self.assertIn('snap-1', self.cluster.agents[node].snapshots)


class ZoneTest(RetypeTestCase):

    zones = {'n1': 'a', 'n2': 'a', 'n3': 'b', 'n4': 'c'}

    def test_spread_moves_the_replica_sharing_a_zone(self):
        self.make(zones=self.zones)
        self.make_volume(('n1', 'n2', 'n3'))
        result = retype.retype(self.ctl, VOL, 3, 'spread')
        self.assertEqual(['n4'], result.added)
        self.assertEqual(1, len(result.removed))
        self.assertIn(result.removed[0], ('n1', 'n2'))
        want = sorted({'n1', 'n2', 'n3', 'n4'} - set(result.removed))
        self.assert_volume(want)
        # the new replica first, the old one removed after
        ops = self.changes()
        self.assertLess(ops.index(('n4', 'create')),
                        ops.index((result.removed[0], 'delete')))

    def test_spread_already_met_only_records_it(self):
        self.make(zones=self.zones)
        self.make_volume(('n1', 'n3', 'n4'))
        self.assertEqual('any', self.ctl.find(VOL).spec.zone_policy)
        before = self.changes()
        result = retype.retype(self.ctl, VOL, 3, 'spread')
        self.assertEqual(([], []), (result.added, result.removed))
        # no replica moves: each .res records the type's policy
        self.assertEqual([('n1', 'adjust'), ('n3', 'adjust'),
                          ('n4', 'adjust')],
                         sorted(self.changes()[len(before):]))
        for node in ('n1', 'n3', 'n4'):
            self.assertIn('# blackstor-zones spread\n',
                          self.cluster.agents[node].res[VOL][0])
        self.assertEqual('spread', self.ctl.find(VOL).spec.zone_policy)
        before = self.changes()
        retype.retype(self.ctl, VOL, 3, 'spread')
        self.assertEqual(before, self.changes())

    def test_the_policy_recorded_on_every_host_after_the_moves(self):
        self.make(zones=self.zones)
        self.make_volume(('n1', 'n2', 'n3'))
        self.ctl.attach(VOL, 'hv1')
        retype.retype(self.ctl, VOL, 3, 'spread')
        spec = self.ctl.find(VOL).spec
        self.assertEqual('spread', spec.zone_policy)
        for host in spec.hosts:
            self.assertEqual('spread', fakes.parse_res(
                self.cluster.agents[host.name].res[VOL][0])['zones'],
                host.name)

    def test_a_refused_retype_keeps_the_old_policy(self):
        self.make(zones=self.zones)
        self.make_volume(('n1', 'n3', 'n4'))
        self.assertRaises(errors.PlacementError, retype.retype,
                          self.ctl, VOL, 4, 'spread')
        self.assertEqual('any', self.ctl.find(VOL).spec.zone_policy)

    def test_a_failed_retype_keeps_the_old_policy(self):
        self.make(zones=self.zones)
        self.make_volume(('n1', 'n2', 'n3'))
        self.cluster.faults[('n4', 'create')] = [tp.NodeError(
            'n4', protocol.E_FAILED, 'create failed')]
        self.assertRaises(errors.ClusterError, retype.retype,
                          self.ctl, VOL, 3, 'spread')
        self.assertEqual('any', self.ctl.find(VOL).spec.zone_policy)
        retype.retype(self.ctl, VOL, 3, 'spread')
        self.assertEqual('spread', self.ctl.find(VOL).spec.zone_policy)

    def test_more_replicas_than_zones_refused_unchanged(self):
        self.make(zones=self.zones)
        self.make_volume(('n1', 'n3', 'n4'))
        before = self.changes()
        exc = self.assertRaises(errors.PlacementError, retype.retype,
                                self.ctl, VOL, 4, 'spread')
        self.assertIn('zones', str(exc))
        self.assertEqual(before, self.changes())

    def test_spread_with_snapshots_is_a_migration(self):
        self.make(zones=self.zones)
        self.make_volume(('n1', 'n2', 'n3'))
        self.ctl.create_snapshot(VOL, 'snap-1')
        before = self.changes()
        result = retype.retype(self.ctl, VOL, 3, 'spread')
        self.assertIsNotNone(result.migrate)
        self.assertEqual(before, self.changes())


class LockTest(RetypeTestCase):
    """The volume's lock is not held while a new replica syncs."""

    zones = {'n1': 'a', 'n2': 'a', 'n3': 'b', 'n4': 'c'}

    def during_sync(self, action):
        """Patch the wait for the sync: ``action`` runs at its start."""
        real = membership.wait_up_to_date

        def wait(ctl, spec, node, timeout, poll=0.5):
            action(node)
            return real(ctl, spec, node, timeout, poll)
        return mock.patch.object(membership, 'wait_up_to_date', wait)

    def test_an_attach_during_the_sync_does_not_wait_for_it(self):
        self.make_volume(('n1', 'n2', 'n3'))
        attached = []

        def attach(node):
            worker = threading.Thread(target=lambda: attached.append(
                self.ctl.attach(VOL, 'hv1')))
            worker.start()
            worker.join(5)
            # it ran while the new replica synced: not blocked by retype
            self.assertFalse(worker.is_alive())
        with self.during_sync(attach):
            result = retype.retype(self.ctl, VOL, 4, 'any')
        self.assertEqual(['n4'], result.added)
        self.assertEqual(1, len(attached))
        # the client was given the new replica: it is in the .res it got
        self.assert_volume(['n1', 'n2', 'n3', 'n4'], clients=('hv1',))
        self.assertEqual(['n1', 'n2', 'n3', 'n4'],
                         self.replicas(VOL, 'hv1'))

    def test_a_replica_no_longer_up_to_date_after_the_sync_stops_it(self):
        self.make(zones=self.zones)
        self.make_volume(('n1', 'n2', 'n3'))
        real = membership.wait_up_to_date

        def wait(ctl, spec, node, timeout, poll=0.5):
            real(ctl, spec, node, timeout, poll)
            # changed while the lock was free: it lost its disk state
            self.cluster.agents[node].uptodate.discard(VOL)
        with mock.patch.object(membership, 'wait_up_to_date', wait):
            exc = self.assertRaises(errors.ClusterError, retype.retype,
                                    self.ctl, VOL, 3, 'spread')
        self.assertIn('changed while its new replica on n4 synced', str(exc))
        # nothing more: no replica removed, the old policy kept
        self.assertEqual([], self.cluster.ops('delete'))
        spec = self.ctl.find(VOL).spec
        self.assertEqual(['n1', 'n2', 'n3', 'n4'],
                         sorted(h.name for h in spec.diskful_hosts))
        self.assertEqual('any', spec.zone_policy)
