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
import time
from unittest import mock

from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import heal
from blackstor_cinder.cluster import membership
from blackstor_cinder.cluster import reconcile
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit.cluster import fakes
from tests.unit.cluster import test_controller as tc
from tests.unit import base

G = tc.G
READS = ('inventory', 'status')


class HealTestCase(base.TestCase):

    nodes = ('n1', 'n2', 'n3', 'n4', 'n5')

    def setUp(self):
        super().setUp()
        self.make()

    def make(self, **kwargs):
        self.cluster, self.ctl = tc.make(nodes=self.nodes, **kwargs)
        self.addCleanup(self.ctl.close)

    def volume(self, name, on, zone_policy=None):
        """A volume whose replicas are on ``on`` (the others kept out)."""
        out = [n for n in self.nodes if n not in on]
        self.cluster.down |= set(out)
        try:
            self.ctl.create_volume(name, G, replicas=len(on),
                                   zone_policy=zone_policy)
        finally:
            self.cluster.down -= set(out)
        for node in on:
            self.cluster.agents[node].data[name] = f'data of {name}'

    def replicas(self, name, node):
        definition = fakes.parse_res(self.cluster.agents[node].res[name][0])
        return sorted(h['name'] for h in definition['hosts']
                      if h['diskful'])

    def changes(self):
        return [(n, r['op']) for n, r in self.cluster.requests
                if r['op'] not in READS]

    def assert_healthy(self, name, want):
        """Every replica of ``want`` lists ``want``, is UpToDate, same data."""
        for node in want:
            agent = self.cluster.agents[node]
            self.assertEqual(sorted(want), self.replicas(name, node), node)
            self.assertIn(name, agent.uptodate, node)
            self.assertEqual(f'data of {name}', agent.data[name], node)


class NodeLostTest(HealTestCase):

    def test_every_replica_replaced_and_lost_forgotten(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.volume('volume-b', ('n1', 'n3', 'n4'))
        self.volume('volume-c', ('n2', 'n3', 'n4'))
        lost_id = {v: next(h['node_id'] for h in fakes.parse_res(
            self.cluster.agents['n3'].res[v][0])['hosts']
            if h['name'] == 'n1') for v in ('volume-a', 'volume-b')}
        self.cluster.down.add('n1')
        report = heal.node_lost(self.ctl, 'n1')
        self.assertTrue(report.ok, report)
        self.assertEqual({'volume-a', 'volume-b'}, set(report.moved))
        for name in ('volume-a', 'volume-b'):
            want = self.replicas(name, 'n3')
            self.assertEqual(3, len(want))
            self.assertNotIn('n1', want)
            self.assert_healthy(name, want)
            new = report.moved[name]
            # the new replica synced: never the initial-sync skip
            self.assertNotIn(new, [n for n, r in self.cluster.requests
                                   if r['op'] == 'new-current-uuid'
                                   and r['resource'] == name][1:])
            for node in want:
                if node != new:
                    self.assertIn((name, lost_id[name]),
                                  self.cluster.agents[node].forgotten)
        # untouched: the volume without a replica on n1
        self.assertEqual(['n2', 'n3', 'n4'],
                         self.replicas('volume-c', 'n2'))

    def test_returning_node_leftover_removed_never_rejoins(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.cluster.down.add('n1')
        self.assertTrue(heal.node_lost(self.ctl, 'n1').ok)
        self.cluster.down.discard('n1')
        n1 = self.cluster.agents['n1']
        self.assertIn('volume-a', n1.lvs)          # back with its replica
        self.assertIn('volume-a', self.ctl.stats().divergent_volumes)
        outcomes = reconcile.reconcile(self.ctl)
        self.assertIn('n1: removed', outcomes['volume-a'])
        self.assertEqual({}, {k: v for k, v in self.cluster.clean().items()
                              if k == 'n1'})
        self.assertEqual((), self.ctl.stats().divergent_volumes)
        self.assertNotIn('n1', self.replicas('volume-a', 'n2'))

    def test_returning_node_snapshots_go_with_its_replica(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.volume('volume-b', ('n1', 'n2', 'n3'))
        self.ctl.create_snapshot('volume-a', 'snap-1')
        self.ctl.create_snapshot('volume-b', 'snap-2')
        self.cluster.down.add('n1')
        self.assertTrue(heal.node_lost(self.ctl, 'n1').ok)
        self.cluster.down.discard('n1')
        n1 = self.cluster.agents['n1']
        inner = n1.op_inventory

        def op_inventory(req):
            # the real agent reports every LV's origin; the fake only a
            # snapshot's
            reply = inner(req)
            for lv in reply['volumes']:
                lv.setdefault('origin', None)
            return reply
        n1.op_inventory = op_inventory
        outcomes = reconcile.reconcile(self.ctl, ['volume-a'])
        self.assertIn('with its snapshots snap-1', outcomes['volume-a'])
        self.assertNotIn('snap-1', n1.snapshots)
        # another volume's stale replica and snapshot: its own repair
        self.assertIn('snap-2', n1.snapshots)
        for node in ('n2', 'n3'):
            self.assertIn('snap-1', self.cluster.agents[node].snapshots, node)
        reconcile.reconcile(self.ctl)
        self.assertEqual({}, {k: v for k, v in self.cluster.clean().items()
                              if k == 'n1'})

    def test_zones_respected(self):
        zones = {'n1': 'a', 'n2': 'b', 'n3': 'c', 'n4': 'c', 'n5': 'a'}
        # n1 (zone a) is lost; the survivors are in b and c: n4 has the
        # most room but shares zone c with n3, n5 is in the free zone a
        self.make(zones=zones, zone_policy='spread',
                  sizes=(100, 100, 100, 500, 100))
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.cluster.down.add('n1')
        report = heal.node_lost(self.ctl, 'n1')
        self.assertEqual({'volume-a': 'n5'}, report.moved)

    def test_zones_no_room_is_reported_unchanged(self):
        zones = {'n1': 'a', 'n2': 'b', 'n3': 'c', 'n4': 'c', 'n5': 'b'}
        self.make(zones=zones, zone_policy='spread')
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.cluster.down.add('n1')
        before = len(self.changes())
        report = heal.node_lost(self.ctl, 'n1')
        self.assertFalse(report.ok)
        self.assertIn('zone', report.unplaced['volume-a'])
        self.assertEqual(before, len(self.changes()))

    def test_the_volumes_recorded_spread_on_an_any_backend(self):
        # the type said spread, the backend says any: n4 has the most
        # room but shares zone c with n3; n5 is in the free zone a
        zones = {'n1': 'a', 'n2': 'b', 'n3': 'c', 'n4': 'c', 'n5': 'a'}
        self.make(zones=zones, sizes=(100, 100, 100, 500, 100))
        self.volume('volume-s', ('n1', 'n2', 'n3'), zone_policy='spread')
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.assertEqual('spread', self.ctl.find('volume-s').spec.zone_policy)
        self.assertEqual('any', self.ctl.find('volume-a').spec.zone_policy)
        self.cluster.down.add('n1')
        report = heal.node_lost(self.ctl, 'n1')
        self.assertEqual({'volume-s': 'n5', 'volume-a': 'n4'}, report.moved)
        # the new .res records it still (a later heal places by it too)
        self.assertEqual('spread', self.ctl.find('volume-s').spec.zone_policy)
        self.assertIn('# blackstor-zones spread\n',
                      self.cluster.agents['n5'].res['volume-s'][0])

    def test_the_volumes_recorded_any_on_a_spread_backend(self):
        zones = {'n1': 'a', 'n2': 'b', 'n3': 'c', 'n4': 'c', 'n5': 'b'}
        self.make(zones=zones, zone_policy='spread')
        self.volume('volume-a', ('n1', 'n2', 'n3'), zone_policy='any')
        self.cluster.down.add('n1')
        report = heal.node_lost(self.ctl, 'n1')
        self.assertTrue(report.ok, report)
        self.assertIn(report.moved['volume-a'], ('n4', 'n5'))

    def test_no_recorded_policy_backend_policy_said_so(self):
        zones = {'n1': 'a', 'n2': 'b', 'n3': 'c', 'n4': 'c', 'n5': 'a'}
        self.make(zones=zones, zone_policy='spread',
                  sizes=(100, 100, 100, 500, 100))
        self.volume('volume-a', ('n1', 'n2', 'n3'), zone_policy='any')
        for agent in self.cluster.agents.values():
            # a .res written before the policy was recorded
            for name, (text, secret) in list(agent.res.items()):
                agent.res[name] = (text.replace('# blackstor-zones any\n',
                                                ''), secret)
        self.assertIsNone(self.ctl.find('volume-a').spec.zone_policy)
        self.cluster.down.add('n1')
        report = heal.node_lost(self.ctl, 'n1')
        self.assertEqual({'volume-a': 'n5'}, report.moved)
        self.assertIn("volume-a has no zone policy in its .res (written "
                      "before it was recorded): its new replica is placed "
                      "by the backend's blackstor_zone_policy (spread)",
                      self.logger.output)

    def test_an_attach_during_the_sync_does_not_wait_for_it(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.cluster.down.add('n1')
        real = membership.wait_up_to_date
        attached = []

        def wait(ctl, spec, node, timeout, poll=0.5):
            worker = threading.Thread(target=lambda: attached.append(
                self.ctl.attach('volume-a', 'hv1')))
            worker.start()
            worker.join(5)
            self.assertFalse(worker.is_alive())     # not blocked
            return real(ctl, spec, node, timeout, poll)
        with mock.patch.object(membership, 'wait_up_to_date', wait):
            report = heal.node_lost(self.ctl, 'n1')
        self.assertTrue(report.ok, report)
        self.assertEqual(1, len(attached))
        want = self.replicas('volume-a', 'n2')
        self.assertEqual(want, self.replicas('volume-a', 'hv1'))
        self.assert_healthy('volume-a', want)

    def test_capacity_respected_across_moves(self):
        # n4 has room for one 1 GiB volume (over-subscription 1), n5 for
        # many: spreading alone would give n4 two of the four
        self.make(sizes=(100, 100, 100, 1, 100), over_subscription=1.0)
        names = [f'volume-{i}' for i in range(4)]
        for name in names:
            self.volume(name, ('n1', 'n2', 'n3'))
        self.cluster.down.add('n1')
        moves, unplaced = heal.plan(self.ctl, 'n1',
                                    self.ctl.inventories()[0])
        targets = [m.target for m in moves]
        self.assertEqual({}, unplaced)
        self.assertEqual(1, targets.count('n4'))
        self.assertEqual(3, targets.count('n5'))

    def test_parallel_limit_per_node(self):
        for i in range(5):
            self.volume(f'volume-{i}', ('n1', 'n2', 'n3'))
        self.cluster.down.add('n1')
        active, peak, lock = set(), [0], threading.Lock()

        def hook(node, request):
            if request['op'] != 'create':
                return
            with lock:
                active.add(request['resource'])
                peak[0] = max(peak[0], len(active))
            time.sleep(0.05)
            with lock:
                active.discard(request['resource'])
        self.cluster.hooks.append(hook)
        # every move syncs from n2 and n3: at most 2 at once
        report = heal.node_lost(self.ctl, 'n1', parallel=2)
        self.assertEqual(5, len(report.moved))
        self.assertEqual(2, peak[0])

    def test_parallel_one_is_serial(self):
        moves = [heal.Move(f'r{i}', 'n1', 'n4', G, ('n2',))
                 for i in range(4)]
        active, peak = [0], [0]
        lock = threading.Lock()

        def do(move):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.02)
            with lock:
                active[0] -= 1
            return 'n4'
        results = heal.run(moves, 1, do)
        self.assertEqual(1, peak[0])
        self.assertEqual(4, len(results))

    def test_nothing_done_twice(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.cluster.down.add('n1')
        self.assertTrue(heal.node_lost(self.ctl, 'n1').ok)
        before = self.changes()
        report = heal.node_lost(self.ctl, 'n1')
        self.assertEqual({}, report.moved)
        self.assertEqual(before, self.changes())

    def test_failure_half_way_rolled_back_then_converges(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.cluster.down.add('n1')
        self.cluster.faults[('n3', 'adjust')] = [tp.NodeError(
            'n3', protocol.E_FAILED, 'adjust failed')]
        report = heal.node_lost(self.ctl, 'n1')
        self.assertIn('volume-a', report.failed)
        target = [n for n, r in self.cluster.requests
                  if r['op'] == 'create' and r['resource'] == 'volume-a'][-1]
        # rolled back: the survivors list n1 again, the target holds nothing
        self.assertEqual(['n1', 'n2', 'n3'],
                         self.replicas('volume-a', 'n2'))
        self.assertEqual(['n1', 'n2', 'n3'],
                         self.replicas('volume-a', 'n3'))
        self.assertNotIn('volume-a', self.cluster.agents[target].lvs)
        self.assertNotIn('volume-a', self.cluster.agents[target].res)
        report = heal.node_lost(self.ctl, 'n1')
        self.assertTrue(report.ok, report)
        want = self.replicas('volume-a', 'n2')
        self.assertEqual(3, len(want))
        self.assert_healthy('volume-a', want)
        others = set(self.nodes) - set(want) - {'n1'}
        for node in others:
            self.assertNotIn('volume-a', self.cluster.agents[node].lvs)

    def test_bad_node_refused_nothing_changed(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        before = len(self.changes())
        for bad in ('n9', 'hv1', '../n1', ''):
            self.assertRaises(errors.InvalidRequest, heal.node_lost,
                              self.ctl, bad)
            self.assertRaises(errors.InvalidRequest, heal.evacuate,
                              self.ctl, bad)
        # a node that answers is not lost
        exc = self.assertRaises(errors.InvalidRequest, heal.node_lost,
                                self.ctl, 'n1')
        self.assertIn('evacuate', str(exc))
        self.assertEqual(before, len(self.changes()))

    def test_snapshots_of_lost_node_reported(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.ctl.create_snapshot('volume-a', 'snap-1')
        self.cluster.down.add('n1')
        report = heal.node_lost(self.ctl, 'n1')
        self.assertEqual({'volume-a': ['snap-1']}, report.snapshots)
        self.assertIn('snap-1', self.logger.output)


class EvacuateTest(HealTestCase):

    def test_moves_every_replica_live(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.volume('volume-b', ('n1', 'n4', 'n5'))
        self.ctl.create_snapshot('volume-a', 'snap-1')
        order = []
        self.cluster.hooks.append(
            lambda node, req: order.append((node, req['op']))
            if req['op'] in ('create', 'delete') else None)
        report = heal.evacuate(self.ctl, 'n1')
        self.assertTrue(report.ok, report)
        self.assertEqual({'volume-a', 'volume-b'}, set(report.moved))
        for name in ('volume-a', 'volume-b'):
            want = self.replicas(name, report.moved[name])
            self.assertEqual(3, len(want))
            self.assertNotIn('n1', want)
            self.assert_healthy(name, want)
        # the new replica first, the old one removed after
        for name in ('volume-a', 'volume-b'):
            ops = [(n, op) for n, op in order]
            self.assertLess(ops.index((report.moved[name], 'create')),
                            max(i for i, (n, op) in enumerate(ops)
                                if (n, op) == ('n1', 'delete')))
        self.assertEqual({}, {k: v for k, v in self.cluster.clean().items()
                              if k == 'n1'})
        self.assertEqual({'volume-a': ['snap-1']}, report.snapshots)

    def test_evacuate_down_node_refused(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.cluster.down.add('n1')
        self.assertRaises(errors.NodeOperationFailed, heal.evacuate,
                          self.ctl, 'n1')

    def test_a_primary_replica_is_not_moved(self):
        # a guest uses the replica on n1 (hyperconverged): moving it
        # would pull the disk from under the guest
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        self.volume('volume-b', ('n1', 'n4', 'n5'))
        self.cluster.agents['n1'].primary.add('volume-a')
        before = len(self.cluster.requests)
        report = heal.evacuate(self.ctl, 'n1')
        self.assertFalse(report.ok)
        self.assertIn('is Primary on n1', report.failed['volume-a'])
        self.assertEqual(['volume-b'], list(report.moved))
        self.assertEqual(['n1', 'n2', 'n3'],
                         self.replicas('volume-a', 'n2'))
        self.assert_healthy('volume-a', ('n1', 'n2', 'n3'))
        self.assertEqual([], [(n, r['op']) for n, r in
                              self.cluster.requests[before:]
                              if r.get('resource') == 'volume-a'
                              and r['op'] not in READS])

    def test_evacuate_again_converges_after_a_timeout(self):
        self.volume('volume-a', ('n1', 'n2', 'n3'))
        # the new replica does not sync within the wait
        real = fakes.FakeCluster.resync
        self.cluster.resync = lambda name: None
        report = heal.evacuate(self.ctl, 'n1', sync_timeout=0.05)
        self.assertIn('volume-a', report.failed)
        target = next(n for n, r in self.cluster.requests
                      if r['op'] == 'create' and r['resource'] == 'volume-a'
                      and n != 'n1' and n not in ('n2', 'n3'))
        self.assertIn('n1', self.replicas('volume-a', 'n2'))
        self.cluster.resync = lambda name: real(self.cluster, name)
        self.cluster.resync('volume-a')
        report = heal.evacuate(self.ctl, 'n1')
        self.assertTrue(report.ok, report)
        # the same target, not one more replica
        self.assertEqual({'volume-a': target}, report.moved)
        self.assertEqual(sorted(['n2', 'n3', target]),
                         self.replicas('volume-a', 'n2'))


class TiebreakerTest(HealTestCase):
    """Two-replica volumes: their tiebreaker follows, or is replaced."""

    nodes = ('n1', 'n2', 'n3', 'n4')

    def tiebreaker(self, name, node):
        definition = fakes.parse_res(self.cluster.agents[node].res[name][0])
        text = self.cluster.agents[node].res[name][0]
        return [h['name'] for h in definition['hosts']
                if not h['diskful']
                and f'blackstor-tiebreaker {h["name"]}' in text]

    def test_the_tiebreaker_gets_the_new_res(self):
        self.ctl.create_volume('volume-t', G, replicas=2)
        spec = self.ctl.find('volume-t').spec
        keeper = spec.tiebreaker_host.name
        lost = spec.diskful_hosts[0].name
        self.cluster.down.add(lost)
        report = heal.node_lost(self.ctl, lost)
        self.assertEqual(['volume-t'], list(report.moved))
        new = report.moved['volume-t']
        # the tiebreaker's own .res lists the new replica: it connects
        self.assertEqual(sorted([spec.diskful_hosts[1].name, new]),
                         self.replicas('volume-t', keeper))
        self.assertEqual((), self.ctl.stats().divergent_volumes)

    def test_a_tiebreaker_on_the_lost_node_is_replaced(self):
        self.ctl.create_volume('volume-t', G, replicas=2)
        spec = self.ctl.find('volume-t').spec
        lost = spec.tiebreaker_host.name
        self.cluster.down.add(lost)
        report = heal.node_lost(self.ctl, lost)
        self.assertEqual({}, report.moved)
        free = next(n for n in self.nodes if spec.host(n) is None)
        self.assertEqual({'volume-t': f'tiebreaker placed on {free}'},
                         report.tiebreakers)
        for node in [h.name for h in spec.diskful_hosts] + [free]:
            self.assertEqual([free], self.tiebreaker('volume-t', node),
                             node)


class TiebreakerBecomesReplicaTest(HealTestCase):
    """Three nodes, two replicas: the tiebreaker's node is the only one."""

    nodes = ('n1', 'n2', 'n3')

    def setUp(self):
        super().setUp()
        self.spec = self.ctl.create_volume('volume-t', G, replicas=2)
        self.tie = self.spec.tiebreaker_host
        self.lost, self.keeper = [h.name for h in self.spec.diskful_hosts]
        for node in (self.lost, self.keeper):
            self.cluster.agents[node].data['volume-t'] = 'data of volume-t'

    def test_node_lost_the_tiebreaker_becomes_the_replica(self):
        self.cluster.down.add(self.lost)
        report = heal.node_lost(self.ctl, self.lost)
        self.assertTrue(report.ok, report)
        self.assertEqual({'volume-t': self.tie.name}, report.moved)
        spec = self.ctl.find('volume-t').spec
        host = spec.host(self.tie.name)
        # the same node-id and address, a disk now; no tiebreaker left
        self.assertEqual((self.tie.node_id, self.tie.address, True, False),
                         (host.node_id, host.address, host.diskful,
                          host.tiebreaker))
        self.assertIsNone(spec.tiebreaker_host)
        self.assert_healthy('volume-t', sorted([self.keeper, self.tie.name]))
        # the replica's .res got its disk before it attached one (the
        # bitmap slot), and its sync was a full one (no skip)
        ops = self.changes()
        self.assertLess(ops.index((self.keeper, 'adjust')),
                        ops.index((self.tie.name, 'create')))
        self.assertEqual(1, len(self.cluster.ops('new-current-uuid')))
        self.assertIn(('volume-t', self.spec.host(self.lost).node_id),
                      self.cluster.agents[self.keeper].forgotten)
        # said in the report and the stats: no node for a tiebreaker
        self.assertEqual(
            {'volume-t': f'its tiebreaker on {self.tie.name} became its '
                         f'new replica; unchanged: no tiebreaker could be '
                         f'placed (see the log)'}, report.tiebreakers)
        self.assertEqual(('volume-t',),
                         self.ctl.stats().without_tiebreaker)
        # a run again has nothing left to do
        before = self.changes()
        again = heal.node_lost(self.ctl, self.lost)
        self.assertEqual(({}, {}), (again.moved, again.failed))
        self.assertEqual(before, self.changes())

    def test_evacuate_the_tiebreaker_becomes_the_replica(self):
        report = heal.evacuate(self.ctl, self.lost)
        self.assertTrue(report.ok, report)
        self.assertEqual({'volume-t': self.tie.name}, report.moved)
        self.assert_healthy('volume-t', sorted([self.keeper, self.tie.name]))
        self.assertNotIn('volume-t', self.cluster.agents[self.lost].lvs)
        self.assertNotIn('volume-t', self.cluster.agents[self.lost].res)
        # never back on the node that leaves
        self.assertIn(f'its tiebreaker on {self.tie.name} became its new '
                      f'replica', report.tiebreakers['volume-t'])
        self.assertIsNone(self.ctl.find('volume-t').spec.tiebreaker_host)

    def test_a_failed_create_keeps_the_tiebreaker(self):
        self.cluster.faults[(self.tie.name, 'create')] = [tp.NodeError(
            self.tie.name, protocol.E_FAILED, 'create failed')]
        self.cluster.down.add(self.lost)
        report = heal.node_lost(self.ctl, self.lost)
        self.assertIn('volume-t', report.failed)
        spec = self.ctl.find('volume-t').spec
        self.assertEqual(self.tie, spec.tiebreaker_host)
        self.assertEqual(sorted([self.lost, self.keeper]),
                         sorted(h.name for h in spec.diskful_hosts))
        tie = self.cluster.agents[self.tie.name]
        self.assertIn('volume-t', tie.up)
        self.assertNotIn('volume-t', tie.lvs)
        self.assertIn(f'# blackstor-tiebreaker {self.tie.name}\n',
                      tie.res['volume-t'][0])
        # and converges when run again
        self.assertEqual({'volume-t': self.tie.name},
                         heal.node_lost(self.ctl, self.lost).moved)

    def test_the_tiebreakers_node_in_a_used_zone_is_not_taken(self):
        self.make(zones={'n1': 'a', 'n2': 'b', 'n3': 'a'})
        spec = self.ctl.create_volume('volume-z', G, replicas=2,
                                      zone_policy='spread')
        # n2 (zone b) is a replica; the other and the tiebreaker are in a
        self.assertTrue(spec.host('n2').diskful)
        self.assertIn(spec.tiebreaker_host.name, ('n1', 'n3'))
        self.cluster.down.add('n2')
        report = heal.node_lost(self.ctl, 'n2')
        self.assertEqual({}, report.moved)
        self.assertIn('in a zone its other replicas do not use',
                      report.unplaced['volume-z'])

    def test_a_client_node_is_never_taken(self):
        # the third node attached the volume: its client is no tiebreaker
        self.ctl.attach('volume-t', self.tie.name)
        self.cluster.down.add(self.lost)
        before = len(self.changes())
        report = heal.node_lost(self.ctl, self.lost)
        self.assertEqual({}, report.moved)
        self.assertIn('holds it already', report.unplaced['volume-t'])
        self.assertEqual(before, len(self.changes()))
