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
"""The majority's .res pushed to replicas that missed a change."""

import logging
import threading

import fixtures

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import reconcile
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit.cluster import fakes
from tests.unit import base

G = 1 << 30
VOL = 'volume-0001'
STORAGE = ('n1', 'n2', 'n3')


class ReconcileTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self.cluster = fakes.FakeCluster()
        storage = []
        for i, name in enumerate(STORAGE):
            self.cluster.add(name)
            storage.append(model.Node(name, f'10.0.0.{i + 1}',
                                      ssh_host=name))
        self.cluster.add('hv1', pool=None)
        config = model.ClusterConfig(
            storage_nodes=tuple(storage),
            client_nodes=(model.Node('hv1', '10.0.1.1', ssh_host='hv1',
                                     storage=False),),
            pool='vg/pool', minors=range(1000, 1100),
            ports=range(7000, 7100), replicas=3, connect_timeout=1.0)
        self.locks = {}
        self.ctl = ctl.Controller(config, self.cluster.transport_for,
                                  lock=self.lock, poll_interval=0.01)
        self.addCleanup(self.ctl.close)

    def lock(self, name):
        return self.locks.setdefault(name, threading.Lock())

    def agent(self, node):
        return self.cluster.agents[node]

    def definition(self, node, name=VOL):
        return fakes.parse_res(self.agent(node).res[name][0])

    def clients(self, node):
        return sorted(h['name'] for h in self.definition(node)['hosts']
                      if not h['diskful'])

    def stale(self, node='n3'):
        """A volume attached to hv1 while ``node`` kept its old .res."""
        self.ctl.create_volume(VOL, G)
        old = self.agent(node).res[VOL]
        self.ctl.attach(VOL, 'hv1')
        self.agent(node).res[VOL] = old
        self.assertEqual([], self.clients(node))
        return old

    def adjusted(self, mark):
        return [n for n, r in self.cluster.requests[mark:]
                if r['op'] == 'adjust']

    def test_majority_pushed_to_the_stale_replica(self):
        self.stale()
        mark = len(self.cluster.requests)
        outcome = reconcile.reconcile(self.ctl)
        self.assertEqual([VOL], list(outcome))
        self.assertIn('n3: adjusted with the .res of n1, n2', outcome[VOL])
        self.assertEqual(['n3'], self.adjusted(mark))
        self.assertEqual(['hv1'], self.clients('n3'))
        self.assertEqual(self.definition('n1'), self.definition('n3'))
        self.assertEqual(self.agent('n1').res[VOL][1],
                         self.agent('n3').res[VOL][1])
        # The lock was taken and given back; the secret is not logged.
        self.assertFalse(self.locks[f'blackstor-resource-{VOL}'].locked())
        self.assertIn('Repaired the .res of ' + VOL, self.log.output)
        self.assertNotIn(self.agent('n1').res[VOL][1], self.log.output)
        # Nothing left to do.
        self.assertEqual({}, reconcile.reconcile(self.ctl))
        self.assertEqual('in sync', reconcile.reconcile(self.ctl, [VOL])[VOL])

    def test_stale_node_after_a_real_outage(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.down.add('n3')
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.discard('n3')
        self.assertEqual([], self.clients('n3'))
        reconcile.reconcile(self.ctl)
        self.assertEqual(['hv1'], self.clients('n3'))

    def live_migration_with_a_stale_source(self):
        """hv1 and hv2 attached, hv2 detached while hv1's adjust failed."""
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.add('hv2', pool=None)
        self.ctl.attach(VOL, 'hv2', '10.0.1.2')
        self.assertEqual('yes', self.definition('hv1')['net'].get(
            'allow-two-primaries'))
        self.cluster.faults[('hv1', 'adjust')] = [tp.NodeTimeout(
            'hv1', 'no answer')]
        self.ctl.detach(VOL, 'hv2')
        self.assertEqual({}, self.definition('n1')['net'])
        self.assertEqual('yes', self.definition('hv1')['net'].get(
            'allow-two-primaries'))

    def test_a_client_with_an_old_two_primaries_gets_the_majority(self):
        self.live_migration_with_a_stale_source()
        self.ctl.inventories()
        mark = len(self.cluster.requests)
        outcome = reconcile.reconcile(self.ctl, [VOL])[VOL]
        self.assertIn('hv1: client adjusted with the .res of n1, n2, n3',
                      outcome)
        self.assertEqual(['hv1'], self.adjusted(mark))
        self.assertEqual(self.definition('n1'), self.definition('hv1'))
        self.assertEqual('in sync', reconcile.reconcile(self.ctl, [VOL])[VOL])

    def test_a_stale_client_unreachable_is_reported(self):
        self.live_migration_with_a_stale_source()
        self.cluster.down.add('hv1')
        outcome = reconcile.reconcile(self.ctl, [VOL])[VOL]
        self.assertIn('hv1: unreachable client', outcome)
        self.cluster.down.discard('hv1')
        self.assertEqual('yes', self.definition('hv1')['net'].get(
            'allow-two-primaries'))

    def test_a_client_fenced_off_is_detached_when_it_returns(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.add('hv1')
        self.ctl.detach(VOL, 'hv1')     # fenced: replicas no longer list it
        self.cluster.down.discard('hv1')
        self.assertIn(VOL, self.agent('hv1').res)
        self.ctl.stats()                # the client's inventory is read
        outcome = reconcile.reconcile(self.ctl, [VOL])[VOL]
        self.assertIn('hv1: client detached', outcome)
        self.assertNotIn(VOL, self.agent('hv1').res)
        detach = [r for n, r in self.cluster.requests
                  if n == 'hv1' and r['op'] == 'detach'][-1]
        self.assertFalse(detach.get('force', False))

    def test_a_left_client_whose_device_is_open_stays_and_is_reported(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.add('hv1')
        self.ctl.detach(VOL, 'hv1')
        self.cluster.down.discard('hv1')
        self.ctl.stats()
        self.cluster.faults[('hv1', 'detach')] = tp.NodeError(
            'hv1', protocol.E_BUSY, 'in use')
        outcome = reconcile.reconcile(self.ctl, [VOL])[VOL]
        self.assertIn('hv1: left behind', outcome)
        self.assertIn(VOL, self.agent('hv1').res)
        self.assertIn('is not repaired', self.log.output)

    def test_tie_without_a_connected_client_changes_nothing(self):
        self.ctl.create_volume(VOL, G, replicas=2)
        holders = sorted(n for n in STORAGE if VOL in self.agent(n).res)
        old = self.agent(holders[1]).res[VOL]
        self.ctl.attach(VOL, 'hv1')
        self.agent(holders[1]).res[VOL] = old
        self.agent('hv1').up.discard(VOL)       # its DRBD is not running
        mark = len(self.cluster.requests)
        outcome = reconcile.reconcile(self.ctl)
        self.assertIn('no majority', outcome[VOL])
        self.assertEqual([], self.adjusted(mark))
        self.assertEqual(old, self.agent(holders[1]).res[VOL])
        self.assertIn('is not repaired', self.log.output)

    def test_tie_decided_by_the_client_drbd_has_connected(self):
        # holders[1] missed the attach (down): DRBD connected hv1 to
        # holders[0] only; holders[1] gets its .res
        self.ctl.create_volume(VOL, G, replicas=2)
        holders = sorted(n for n in STORAGE if VOL in self.agent(n).res)
        old = self.agent(holders[1]).res[VOL]
        self.ctl.attach(VOL, 'hv1')
        new = self.agent(holders[0]).res[VOL]
        self.agent(holders[1]).res[VOL] = old
        mark = len(self.cluster.requests)
        outcome = reconcile.reconcile(self.ctl)
        self.assertIn(f'{holders[1]}: adjusted', outcome[VOL])
        self.assertEqual([holders[1]], self.adjusted(mark))
        self.assertEqual(new, self.agent(holders[1]).res[VOL])

    def test_busy_lock_is_left_alone(self):
        self.stale()
        held = self.lock(f'blackstor-resource-{VOL}')
        held.acquire()
        self.addCleanup(held.release)
        mark = len(self.cluster.requests)
        self.assertEqual({VOL: 'busy'}, reconcile.reconcile(self.ctl, [VOL]))
        self.assertEqual([], self.cluster.requests[mark:])
        self.assertEqual([], self.clients('n3'))

    def test_acts_on_the_fresh_view(self):
        # The inventory shows n3 stale; by the locked re-read a detach has
        # run and n1 alone still lists hv1: n1 is the one to repair.
        old = self.stale()
        new = self.agent('n1').res[VOL]

        def detach_meanwhile(node, request):
            if request['op'] == 'status':
                self.cluster.hooks.remove(detach_meanwhile)
                self.agent('n2').res[VOL] = old
        self.cluster.hooks.append(detach_meanwhile)
        mark = len(self.cluster.requests)
        outcome = reconcile.reconcile(self.ctl)
        self.assertIn('n1: adjusted with the .res of n2, n3', outcome[VOL])
        self.assertEqual(['n1'], self.adjusted(mark))
        self.assertEqual([], self.clients('n1'))
        self.assertNotEqual(new[0], self.agent('n1').res[VOL][0])

    def test_unreachable_stale_replica_is_reported(self):
        self.stale()
        self.cluster.down.add('n3')
        mark = len(self.cluster.requests)
        outcome = reconcile.reconcile(self.ctl, [VOL])
        self.assertIn('unreachable: n3', outcome[VOL])
        self.assertEqual([], self.adjusted(mark))

    def test_unreachable_during_the_push(self):
        self.stale()
        self.cluster.faults[('n3', 'adjust')] = tp.NodeUnreachable(
            'n3', 'connection refused')
        outcome = reconcile.reconcile(self.ctl)
        self.assertIn('n3: failed: connection refused', outcome[VOL])
        self.assertEqual([], self.clients('n3'))
        self.assertIn('is not repaired', self.log.output)

    def test_not_a_majority_of_the_replicas(self):
        # 3 replicas, n1 unreachable, n2 and n3 disagree: a tie of what
        # was read, and n1 may hold either copy.
        self.stale()
        self.cluster.down.add('n1')
        mark = len(self.cluster.requests)
        outcome = reconcile.reconcile(self.ctl, [VOL])
        self.assertIn('skipped', outcome[VOL])
        self.assertIn('unreachable: n1', outcome[VOL])
        self.assertEqual([], self.adjusted(mark))

    def test_failure_of_one_resource_is_its_outcome(self):
        self.stale()
        self.cluster.faults[('n1', 'status')] = protocol.ProtocolError(
            'broken')
        outcome = reconcile.reconcile(self.ctl, [VOL])
        self.assertTrue(outcome[VOL].startswith('failed: '), outcome)
        self.assertFalse(self.locks[f'blackstor-resource-{VOL}'].locked())

    def test_only_pushes_a_missing_res(self):
        self.ctl.create_volume(VOL, G)
        del self.agent('n2').res[VOL]
        mark = len(self.cluster.requests)
        outcome = reconcile.repair(self.ctl, VOL, only=['n2'])
        self.assertEqual({'n2': 'adjusted with the .res of n1, n3'},
                         outcome.nodes)
        self.assertEqual(['n2'], self.adjusted(mark))
        self.assertEqual(self.definition('n1'), self.definition('n2'))


class SizeRepairTest(ReconcileTest):

    def test_a_replica_left_at_the_old_size_gets_the_largest(self):
        self.ctl.create_volume(VOL, G)
        old = self.agent('n3').res[VOL]
        self.cluster.faults[('n3', 'adjust')] = [tp.NodeError(
            'n3', protocol.E_FAILED, 'drbdadm adjust failed')]
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.extend_volume, VOL, 3 * G)
        self.assertEqual(old, self.agent('n3').res[VOL])
        outcomes = reconcile.reconcile(self.ctl)
        self.assertIn('adjusted', outcomes[VOL])
        for node in STORAGE:
            self.assertEqual('3145728k',
                             self.definition(node)['disk']['size'])


class PendingZeroingTest(ReconcileTest):
    """An extend whose zeroing failed after DRBD took the new size."""

    def half_done_extend(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.faults[('n1', 'zeroing')] = [tp.NodeError(
            'n1', protocol.E_FAILED, 'zeroing failed: EIO')]
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.extend_volume, VOL, 3 * G)
        self.assertEqual([G, G + fakes.MD_BYTES],
                         self.agent('n1')._pending(VOL))
        self.assertEqual({'n1': '3145728k', 'n2': '1048576k',
                          'n3': '1048576k'},
                         {n: self.definition(n)['disk']['size']
                          for n in STORAGE})

    def test_the_zeroing_is_finished_before_the_larger_size_is_pushed(self):
        self.half_done_extend()
        mark = len(self.cluster.requests)
        outcome = reconcile.reconcile(self.ctl)[VOL]
        self.assertIn('n1: zeroed the pending', outcome)
        self.assertIn('n2: adjusted', outcome)
        steps = [(n, r['op']) for n, r in self.cluster.requests[mark:]
                 if r['op'] in ('resize', 'adjust')]
        self.assertEqual(('n1', 'resize'), steps[0])
        self.assertEqual([('n2', 'adjust'), ('n3', 'adjust')],
                         sorted(steps[1:]))
        zeroing = [r for n, r in self.cluster.requests[mark:]
                   if r['op'] == 'resize'][0]
        # from the smallest size a .res gives: what Cinder knows
        self.assertEqual(G, zeroing['zero_from'])
        self.assertNotIn('spec', zeroing)
        self.assertEqual([(VOL, G, G + fakes.MD_BYTES)],
                         self.agent('n1').zeroed)
        self.assertIsNone(self.agent('n1')._pending(VOL))
        for node in STORAGE:
            self.assertEqual('3145728k',
                             self.definition(node)['disk']['size'])
        self.assertEqual({}, reconcile.reconcile(self.ctl))

    def test_no_push_while_the_zeroing_cannot_be_finished(self):
        self.half_done_extend()
        self.agent('n1').held.add(VOL)      # attached and Primary elsewhere
        mark = len(self.cluster.requests)
        outcome = reconcile.reconcile(self.ctl)[VOL]
        self.assertTrue(outcome.startswith('failed: n1: zeroing pending'),
                        outcome)
        self.assertEqual([], self.adjusted(mark))
        # the others keep their old size: the divergence is not cemented
        self.assertEqual('1048576k', self.definition('n2')['disk']['size'])
        self.assertEqual('1048576k', self.definition('n3')['disk']['size'])
        self.assertEqual([G, G + fakes.MD_BYTES],
                         self.agent('n1')._pending(VOL))
        # once the device can be opened, the next round finishes
        self.agent('n1').held.discard(VOL)
        self.assertIn('n1: zeroed', reconcile.reconcile(self.ctl)[VOL])
        self.assertEqual('3145728k', self.definition('n3')['disk']['size'])

    def test_pending_zeroing_alone_is_repaired(self):
        self.ctl.create_volume(VOL, G)
        self.agent('n2').marks[VOL] = {'lv_size': G + fakes.MD_BYTES,
                                       'device': G,
                                       'zero': (G, G + fakes.MD_BYTES)}
        outcome = reconcile.reconcile(self.ctl)
        self.assertIn('n2: zeroed the pending', outcome[VOL])
        self.assertIsNone(self.agent('n2')._pending(VOL))

    def test_a_pending_range_below_the_size_is_refused(self):
        self.ctl.create_volume(VOL, 2 * G)
        self.agent('n2').marks[VOL] = {'lv_size': G + fakes.MD_BYTES,
                                       'device': G,
                                       'zero': (G, G + fakes.MD_BYTES)}
        outcome = reconcile.reconcile(self.ctl)[VOL]
        self.assertTrue(outcome.startswith('failed: n2: zeroing pending'),
                        outcome)
        self.assertEqual([], self.agent('n2').zeroed)
