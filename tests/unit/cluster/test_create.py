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

"""Unit tests of ``cluster/create.py``, through the Controller facade."""

import concurrent.futures
import json
import threading
import time

import ddt

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder import protocol
from tests.unit.cluster import fakes
from tests.unit import base
from tests.unit.cluster.test_controller import ConcurrencyTestCase
from tests.unit.cluster.test_controller import ControllerTestCase
from tests.unit.cluster.test_controller import G
from tests.unit.cluster.test_controller import make
from tests.unit.cluster.test_controller import RecordingLocks
from tests.unit.cluster.test_controller import VOL


@ddt.ddt
class CreateTest(ControllerTestCase):

    def test_three_replicas_same_identity(self):
        spec = self.ctl.create_volume(VOL, 2 * G)
        self.assertEqual(['n1', 'n2', 'n3'],
                         sorted(h.name for h in spec.diskful_hosts))
        defs = [self.definition(n) for n in ('n1', 'n2', 'n3')]
        self.assertEqual({1000}, {d['minor'] for d in defs})
        self.assertEqual({7000}, {h['port'] for d in defs
                                  for h in d['hosts']})
        self.assertEqual([0, 1, 2], sorted(h['node_id']
                                           for h in defs[0]['hosts']))
        secrets = {self.cluster.agents[n].res[VOL][1]
                   for n in ('n1', 'n2', 'n3')}
        self.assertEqual(1, len(secrets))
        self.assertTrue(protocol.SECRET_RE.match(secrets.pop()))
        # Initial sync skipped once, on one node, and every replica is
        # UpToDate.
        self.assertEqual(1, len(self.cluster.ops('new-current-uuid')))
        for agent in ('n1', 'n2', 'n3'):
            self.assertIn(VOL, self.cluster.agents[agent].uptodate)

    def test_the_zone_policy_is_recorded_on_every_replica(self):
        self.ctl.create_volume(VOL, G, zone_policy='spread')
        self.assertEqual({'spread'}, {self.definition(n)['zones']
                                      for n in ('n1', 'n2', 'n3')})
        self.ctl.create_volume('volume-d', G)
        # the backend's when the type says none
        self.assertEqual({'any'}, {self.definition(n, 'volume-d')['zones']
                                   for n in ('n1', 'n2', 'n3')})

    def test_device_size_is_the_volume_size(self):
        spec = self.ctl.create_volume(VOL, 2 * G)
        self.assertEqual(2 * G, spec.size)
        self.assertEqual({'n1': '2097152k', 'n2': '2097152k',
                          'n3': '2097152k'}, self.res_sizes())
        # The LV is sized by the agent for the same size.
        for _, req in self.requests('create'):
            self.assertEqual(2 * G, req['size'])
            self.assertEqual('2097152k', self.text_size(req))
        self.assertEqual(2 * G, self.ctl.find(VOL).spec.size)

    @ddt.data(G + 1, G + 100, -512, True, 1.0 * G)
    def test_size_not_in_sectors_refused(self, size):
        self.assertRaises(errors.InvalidRequest, self.ctl.create_volume,
                          VOL, size)
        self.assertEqual([], self.cluster.ops('create'))
        self.assertEqual([], self.cluster.ops('inventory'))

    def test_secret_only_in_its_field(self):
        spec = self.ctl.create_volume(VOL, G)
        sent = [req for node, req in self.cluster.requests if 'spec' in req]
        self.assertNotEqual([], sent)
        for req in sent:
            self.assertEqual(spec.secret, req['secret'])
            self.assertNotIn(spec.secret, json.dumps(
                {k: v for k, v in req.items() if k != 'secret'}))

    def test_distinct_identities_per_volume(self):
        a = self.ctl.create_volume('volume-a', G)
        b = self.ctl.create_volume('volume-b', G)
        self.assertNotEqual(a.minor, b.minor)
        self.assertNotEqual(a.port, b.port)
        self.assertNotEqual(a.secret, b.secret)

    def test_one_replica(self):
        spec = self.ctl.create_volume(VOL, G, replicas=1)
        self.assertEqual(1, len(spec.hosts))
        self.assertEqual([], self.cluster.ops('status'))

    def test_bad_sizes_and_counts_change_nothing(self):
        self.assertRaises(errors.InvalidRequest, self.ctl.create_volume,
                          VOL, 0)
        self.assertRaises(errors.InvalidRequest, self.ctl.create_volume,
                          VOL, G, replicas=4)
        self.assertRaises(errors.PlacementError, self.ctl.create_volume,
                          VOL, 10_000 * G)
        self.assertEqual([], self.cluster.ops('create'))

    def test_node_failing_after_two_rolls_back_everywhere(self):
        self.cluster.faults[('n3', 'create')] = tp.NodeError(
            'n3', protocol.E_FAILED, 'lvcreate: pool full')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                self.ctl.create_volume, VOL, G)
        self.assertIn('n3', str(exc))
        self.assertEqual({}, self.cluster.clean())
        self.assertEqual(['n1', 'n2', 'n3'],
                         sorted(self.cluster.ops('delete')))
        # The identities are free again.
        spec = self.ctl.create_volume('volume-b', G, replicas=2)
        self.assertEqual(1000, spec.minor)

    def test_unreachable_node_is_not_placed(self):
        self.cluster.down.add('n2')
        spec = self.ctl.create_volume(VOL, G, replicas=2)
        self.assertEqual(['n1', 'n3'], sorted(h.name for h in spec.hosts))
        self.assertRaises(errors.PlacementError, self.ctl.create_volume,
                          'volume-b', G, replicas=3)

    def test_refused_placement_names_the_unreachable_node_and_why(self):
        self.cluster.faults[('n3', 'inventory')] = tp.NodeUnreachable(
            'n3', 'the host key of 192.0.2.3:22 (ssh-ed25519 SHA256:new) '
            'does not match the one in /etc/cinder/known_hosts (ssh-ed25519 '
            'SHA256:old): refusing to connect (host key changed?)')
        exc = self.assertRaises(errors.PlacementError,
                                self.ctl.create_volume, VOL, G)
        self.assertIn('3 replicas asked but only 2 storage nodes are '
                      'available; n3 is not available: the host key of '
                      '192.0.2.3:22', str(exc))
        self.assertIn('(host key changed?)', str(exc))
        self.assertEqual({}, self.cluster.clean())

    def test_refused_placement_names_a_refused_node_and_why(self):
        self.cluster.agents['n2'].kernel_version = '9.1.0'
        exc = self.assertRaises(errors.PlacementError,
                                self.ctl.create_volume, VOL, G)
        self.assertIn('n2 is not available: ', str(exc))
        self.assertIn('9.1.0', str(exc))

    def test_conflict_from_agent_reallocates(self):
        self.cluster.faults[('n2', 'create')] = [tp.NodeError(
            'n2', protocol.E_CONFLICT, 'minor 1000 clashes', 'minor')]
        spec = self.ctl.create_volume(VOL, G)
        self.assertEqual(1001, spec.minor)
        self.assertEqual(1001, self.definition('n2')['minor'])

    def test_replicas_that_never_connect_are_removed(self):
        self.cluster.faults[('n1', 'new-current-uuid')] = tp.NodeError(
            'n1', protocol.E_FAILED, 'drbdsetup failed')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.create_volume, VOL, G)
        self.assertEqual({}, self.cluster.clean())

    def test_concurrent_creates_never_share_minor_or_port(self):
        self.cluster, self.ctl = make(nodes=('n1', 'n2', 'n3', 'n4'))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            specs = list(pool.map(
                lambda i: self.ctl.create_volume(f'volume-{i}', G,
                                                 replicas=2), range(16)))
        self.assertEqual(16, len({s.minor for s in specs}))
        self.assertEqual(16, len({s.port for s in specs}))
        for agent in self.cluster.agents.values():
            minors = [fakes.parse_res(t)['minor']
                      for t, _ in agent.res.values()]
            self.assertEqual(len(minors), len(set(minors)))


@ddt.ddt
class ConcurrentCreateTest(ConcurrencyTestCase):
    """Creates decide under the allocation lock and provision outside it."""

    def test_a_create_does_not_wait_for_another_ones_provisioning(self):
        gate = self.gate('n1')
        first = self.start(self.ctl.create_volume, 'volume-a', G)
        self.reached(gate)
        # volume-a's create on n1 is held; volume-b must not wait for it.
        # (With the allocation lock held across provisioning, this times
        # out.)
        second = self.start(self.ctl.create_volume, 'volume-b', G)
        b = second.result(timeout=self.WAIT / 2)
        self.assertFalse(first.done())
        self.assertIn('volume-b', self.cluster.agents['n1'].uptodate)
        self.assertNotIn('volume-a', self.cluster.agents['n1'].res)
        gate.open()
        a = first.result(timeout=self.WAIT)
        self.assertNotEqual(a.minor, b.minor)
        self.assertNotEqual(a.port, b.port)
        for agent in ('n1', 'n2', 'n3'):
            self.assertEqual({'volume-a', 'volume-b'},
                             set(self.cluster.agents[agent].res))
        self.assert_nothing_held()

    def test_provisioning_runs_outside_the_allocation_lock(self):
        free = []

        def probe(node, request):
            if request['op'] in ('create', 'status', 'new-current-uuid'):
                lock = self.ctl.lock(core.ALLOCATION_LOCK)
                free.append(lock.acquire(blocking=False))
                if free[-1]:
                    lock.release()

        self.cluster.hooks.append(probe)
        self.ctl.create_volume(VOL, G)
        self.assertGreaterEqual(len(free), 5)
        self.assertTrue(all(free), free)

    def test_ten_creates_in_flight_at_once_get_distinct_values(self):
        count = 10
        together = threading.Barrier(count, timeout=self.WAIT)

        def all_in_flight(node, request):
            # every create holds on n1 until all ten are there
            if node == 'n1' and request['op'] == 'create':
                together.wait()

        self.cluster.hooks.append(all_in_flight)
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            specs = list(pool.map(
                lambda i: self.ctl.create_volume(f'volume-{i}', G),
                range(count)))
        self.assertFalse(together.broken)
        self.assertEqual(count, len({s.minor for s in specs}))
        self.assertEqual(count, len({s.port for s in specs}))
        for agent in ('n1', 'n2', 'n3'):
            minors = self.minors(self.cluster.agents[agent])
            self.assertEqual(count, len(set(minors)))
        self.assert_nothing_held()

    def test_replicas_in_flight_count_for_placement(self):
        self.cluster, self.ctl = make(nodes=('n1', 'n2', 'n3', 'n4'))
        gate = self.gate('n1')
        first = self.start(self.ctl.create_volume, 'volume-a', G,
                           replicas=2)
        self.reached(gate)
        # n1 reports nothing of volume-a yet, n2 has it: placing as if
        # volume-a were created, volume-b goes to the two others.
        b = self.ctl.create_volume('volume-b', G, replicas=2)
        self.assertEqual({'n3', 'n4'}, {h.name for h in b.diskful_hosts})
        gate.open()
        a = first.result(timeout=self.WAIT)
        self.assertEqual({'n1', 'n2'}, {h.name for h in a.diskful_hosts})
        self.assert_nothing_held()

    def test_volumes_in_flight_count_against_over_subscription(self):
        self.cluster, self.ctl = make(sizes=(10, 10, 10),
                                      over_subscription=1.0)
        gate = self.gate('n1')
        first = self.start(self.ctl.create_volume, 'volume-a', 6 * G)
        self.reached(gate)
        exc = self.assertRaises(errors.PlacementError,
                                self.ctl.create_volume, 'volume-b', 6 * G)
        self.assertIn('4294967296 bytes', str(exc))     # 10 - 6 GiB
        self.ctl.create_volume('volume-c', 4 * G)
        gate.open()
        first.result(timeout=self.WAIT)
        self.assertNotIn('volume-b', self.cluster.agents['n2'].res)
        self.assert_nothing_held()

    @ddt.data(('n3', 'create'), ('n1', 'new-current-uuid'),
              ('n1', 'status'))
    @ddt.unpack
    def test_a_failed_create_gives_everything_back(self, node, op):
        self.cluster, self.ctl = make(sizes=(10, 10, 10),
                                      over_subscription=1.0)
        self.cluster.faults[(node, op)] = [tp.NodeError(
            node, protocol.E_FAILED, 'boom')]
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.create_volume, VOL, 6 * G)
        self.assertEqual({}, self.cluster.clean())
        self.assert_nothing_held()
        for name in ('blackstor-minor-1000', 'blackstor-port-7000',
                     core.ALLOCATION_LOCK, f'blackstor-resource-{VOL}'):
            self.assert_free(name)
        # the whole capacity and the same identities again
        spec = self.ctl.create_volume('volume-b', 6 * G)
        self.assertEqual((1000, 7000), (spec.minor, spec.port))

    def test_an_unexpected_error_rolls_back_too(self):
        self.cluster.faults[('n2', 'create')] = RuntimeError('bug')
        self.assertRaises(RuntimeError, self.ctl.create_volume, VOL, G)
        self.assertEqual({}, self.cluster.clean())
        self.assert_nothing_held()

    def test_a_failed_growth_gives_everything_back(self):
        self.ctl.create_volume(VOL, 2 * G)
        self.ctl.create_snapshot(VOL, 'snap-1')
        self.cluster.faults[('n2', 'resize')] = tp.NodeError(
            'n2', protocol.E_FAILED, 'lvextend failed')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.create_volume_from_snapshot,
                          'volume-new', 'snap-1', VOL, 2 * G, 3 * G)
        for agent in self.cluster.agents.values():
            self.assertNotIn('volume-new', agent.res)
            self.assertNotIn('volume-new', agent.lvs)
        self.assert_nothing_held()

    def test_clash_is_retried_outside_the_lock_with_new_values(self):
        free = []

        def probe(node, request):
            if request['op'] == 'create':
                lock = self.ctl.lock(core.ALLOCATION_LOCK)
                free.append(lock.acquire(blocking=False))
                if free[-1]:
                    lock.release()

        self.cluster.hooks.append(probe)
        self.cluster.faults[('n2', 'create')] = [tp.NodeError(
            'n2', protocol.E_CONFLICT, 'minor 1000 clashes', 'minor')]
        spec = self.ctl.create_volume(VOL, G)
        self.assertEqual((1001, 7001), (spec.minor, spec.port))
        self.assertEqual([True] * 6, free)
        # What the first attempt made on n1 and n3 was removed before the
        # second; the new values come from a fresh inventory (of the
        # storage nodes and the two clients).
        ops = [(node, req['op']) for node, req in self.cluster.requests
               if req['op'] in ('create', 'delete', 'inventory')]
        self.assertEqual(
            ['inventory'] * 5 + ['create'] * 3 + ['delete'] * 3 +
            ['inventory'] * 5 + ['create'] * 3, [op for _, op in ops])
        for agent in ('n1', 'n2', 'n3'):
            self.assertEqual([1001],
                             self.minors(self.cluster.agents[agent]))
        self.assert_nothing_held()
        self.assert_free('blackstor-minor-1000')

    def test_clash_on_every_attempt_leaves_nothing(self):
        self.cluster.faults[('n3', 'create')] = tp.NodeError(
            'n3', protocol.E_CONFLICT, 'port clashes', 'port')
        exc = self.assertRaises(errors.NodeOperationFailed,
                                self.ctl.create_volume, VOL, G)
        self.assertTrue(exc.conflict)
        self.assertEqual(3 * 3, len(self.requests('create', VOL)))
        self.assertEqual({}, self.cluster.clean())
        self.assert_nothing_held()

    def test_clash_retry_skips_values_another_create_holds(self):
        gate = self.gate('n1')
        first = self.start(self.ctl.create_volume, 'volume-a', G)
        self.reached(gate)
        clashes = [tp.NodeError('n2', protocol.E_CONFLICT,
                                'minor 1001 clashes', 'minor')]

        def clash_once(node, request):
            if (node, request['op'], request.get('resource')) == (
                    'n2', 'create', 'volume-b') and clashes:
                raise clashes.pop()

        self.cluster.hooks.append(clash_once)
        b = self.ctl.create_volume('volume-b', G)
        # 1000 is volume-a's (in flight), 1001 clashed: 1002.
        self.assertEqual((1002, 7002), (b.minor, b.port))
        gate.open()
        self.assertEqual(1000, first.result(timeout=self.WAIT).minor)
        self.assert_nothing_held()

    def test_values_are_given_back_under_the_allocation_lock(self):
        locks = RecordingLocks()
        cluster, controller = make(lock=locks)
        self.addCleanup(controller.close)
        controller.create_volume(VOL, G)
        released = locks.events.index(('blackstor-minor-1000', 'release'))
        allocation = [what for name, what in locks.events[:released]
                      if name == core.ALLOCATION_LOCK]
        self.assertEqual(['acquire', 'release', 'acquire'], allocation)
        # the resource lock is held from before the decision to the end
        names = [name for name, _ in locks.events]
        self.assertEqual(f'blackstor-resource-{VOL}', names[0])
        self.assertEqual(f'blackstor-resource-{VOL}', names[-1])

    def test_two_controllers_never_pick_the_same_values(self):
        # Two cinder-volume services (Active/Active) share the locks but
        # not their memory; their volumes land on distinct nodes, so no
        # agent sees a clash.
        locks = core.LocalLocks()
        self.cluster, one = make(nodes=('n1', 'n2', 'n3', 'n4'), lock=locks)
        two = ctl.Controller(one.config, self.cluster.transport_for,
                             lock=locks, poll_interval=0.01)
        self.addCleanup(one.close)
        self.addCleanup(two.close)
        gates = [self.gate('n1'), self.gate('n2')]
        first = self.start(one.create_volume, 'volume-a', G, replicas=2)
        for gate in gates:
            self.reached(gate)
        # Nothing of volume-a is on the nodes yet; n3 and n4 have the
        # most free space now.
        for name in ('n1', 'n2'):
            self.cluster.agents[name].written_bytes = 50 * G
        b = two.create_volume('volume-b', G, replicas=2)
        self.assertEqual({'n3', 'n4'}, {h.name for h in b.diskful_hosts})
        for gate in gates:
            gate.open()
        a = first.result(timeout=self.WAIT)
        self.assertEqual({'n1', 'n2'}, {h.name for h in a.diskful_hosts})
        self.assertNotEqual(a.minor, b.minor)
        self.assertNotEqual(a.port, b.port)
        self.assert_nothing_held(one)
        self.assert_nothing_held(two)
        # values on the nodes are seen by both afterwards
        c = two.create_volume('volume-c', G, replicas=2)
        self.assertNotIn(c.minor, (a.minor, b.minor))

    def test_delete_of_a_volume_being_created_waits_for_it(self):
        gate = self.gate(None)      # every replica of volume-a held
        create = self.start(self.ctl.create_volume, 'volume-a', G)
        self.reached(gate)
        delete = self.start(self.ctl.delete_volume, 'volume-a')
        # No replica exists yet: a delete that did not wait would find
        # nothing, return, and leave the create to finish after it.
        self.assertRaises(concurrent.futures.TimeoutError, delete.result,
                          timeout=0.5)
        gate.open()
        create.result(timeout=self.WAIT)
        delete.result(timeout=self.WAIT)
        self.assertEqual({}, self.cluster.clean())
        self.assert_nothing_held()


class BriefInventoryTest(ControllerTestCase):
    """A create's decision asks the brief inventory, stats the full one."""

    def inventories(self):
        found = [(node, bool(req.get('brief')))
                 for node, req in self.cluster.requests
                 if req['op'] == 'inventory']
        self.cluster.requests.clear()
        return found

    def test_create_asks_brief_stats_full(self):
        nodes = ('n1', 'n2', 'n3', 'hv1', 'hv2')
        self.ctl.create_volume(VOL, G)
        self.assertEqual({(n, True) for n in nodes}, set(self.inventories()))
        self.ctl.stats()
        self.assertEqual({(n, False) for n in nodes},
                         set(self.inventories()))

    def test_agent_without_brief_asked_the_full_inventory(self):
        self.cluster.faults[('n2', 'inventory')] = [tp.NodeError(
            'n2', protocol.E_INVALID, 'brief: not a field of inventory',
            'brief')]
        spec = self.ctl.create_volume(VOL, G)
        self.assertIn('n2', [h.name for h in spec.diskful_hosts])
        found = self.inventories()
        self.assertEqual([('n2', True), ('n2', False)],
                         [f for f in found if f[0] == 'n2'])

    def test_a_clients_brief_report_keeps_its_full_one(self):
        # Stats read the divergence of a client's .res from its last full
        # report when it does not answer: a create's brief report (names
        # only) must not take its place.
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.add('hv1')
        self.ctl.detach(VOL, 'hv1')     # fenced: hv1 keeps its .res
        self.cluster.down.discard('hv1')
        self.assertEqual((VOL,), self.ctl.stats().divergent_volumes)
        self.ctl.create_volume('volume-0002', G)
        self.cluster.down.add('hv1')
        self.assertEqual((VOL,), self.ctl.stats().divergent_volumes)

    def test_a_clients_minors_count_from_its_brief_report(self):
        other, ctl2 = make(cluster=self.cluster, nodes=('m1', 'm2', 'm3'),
                           subnet=1)
        self.addCleanup(ctl2.close)
        # another backend's volume on hv1 takes minor 1000 there
        ctl2.create_volume('volume-other', G)
        ctl2.attach('volume-other', 'hv1')
        spec = self.ctl.create_volume(VOL, G)
        self.assertNotEqual(1000, spec.minor)
        # hv1 down: its last report, a brief one, still counts
        self.cluster.down.add('hv1')
        self.assertNotEqual(1000,
                            self.ctl.create_volume('volume-0002', G).minor)


class BatchedDecisionTest(ConcurrencyTestCase):
    """Creates queued meanwhile share the leader's inventory."""

    def queued(self, count):
        deadline = time.monotonic() + self.WAIT
        while len(self.ctl.decisions.pending) < count:
            self.assertLess(time.monotonic(), deadline,
                            f'{count} creates never queued')
            time.sleep(0.01)

    def hold_first_inventory(self):
        gate = self.gate('n1', 'inventory', None)
        first = self.start(self.ctl.create_volume, 'volume-0', G,
                           replicas=2)
        self.reached(gate)
        return gate, first

    def test_one_inventory_for_the_creates_queued(self):
        self.cluster, self.ctl = make(nodes=('n1', 'n2', 'n3', 'n4'))
        self.addCleanup(self.ctl.close)
        gate, first = self.hold_first_inventory()
        others = [self.start(self.ctl.create_volume, f'volume-{i}', G,
                             replicas=2) for i in (1, 2, 3)]
        self.queued(3)
        gate.open()
        specs = [first.result(timeout=self.WAIT)] + [
            f.result(timeout=self.WAIT) for f in others]
        self.assertEqual(['hv1', 'hv2', 'n1', 'n2', 'n3', 'n4'],
                         sorted(self.cluster.ops('inventory')))
        self.assertEqual(4, len({s.minor for s in specs}))
        self.assertEqual(4, len({s.port for s in specs}))
        # each decision counted the ones before it: 2 replicas per node
        for name, agent in self.cluster.agents.items():
            if agent.pool:
                self.assertEqual(2, len(agent.lvs), name)
        self.assert_nothing_held()

    def test_a_refused_create_does_not_fail_the_others(self):
        gate, first = self.hold_first_inventory()
        big = self.start(self.ctl.create_volume, 'volume-big', 3000 * G)
        small = self.start(self.ctl.create_volume, 'volume-small', G)
        self.queued(2)
        gate.open()
        self.assertRaises(errors.PlacementError, big.result,
                          timeout=self.WAIT)
        small.result(timeout=self.WAIT)
        first.result(timeout=self.WAIT)
        self.assertNotIn('volume-big', self.cluster.agents['n1'].res)
        self.assert_nothing_held()

    def test_an_inventory_error_fails_the_queued_creates_only(self):
        def broken(node, request):
            if request['op'] == 'inventory' and node == 'n2':
                raise RuntimeError('bug')

        self.cluster.hooks.append(broken)
        gate, first = self.hold_first_inventory()
        other = self.start(self.ctl.create_volume, 'volume-1', G)
        self.queued(1)
        gate.open()
        self.assertRaises(RuntimeError, first.result, timeout=self.WAIT)
        self.assertRaises(RuntimeError, other.result, timeout=self.WAIT)
        self.assert_nothing_held()
        self.assertEqual([], self.cluster.ops('create'))
        self.cluster.hooks.remove(broken)
        self.ctl.create_volume('volume-2', G)

    def test_allocation_lock_failures_hold_nothing(self):
        class Broken:
            def __init__(self, lock, fail):
                self.lock, self.fail = lock, fail

            def __enter__(self):
                if self.fail == 'enter':
                    raise ConnectionError('no coordination backend')
                self.lock.acquire()

            def __exit__(self, *exc_info):
                self.lock.release()
                if self.fail == 'exit':
                    raise ConnectionError('lock lost')

        locks = core.LocalLocks()
        for fail in ('enter', 'exit'):
            def factory(name):
                if name == core.ALLOCATION_LOCK:
                    return Broken(locks(name), fail)
                return locks(name)

            cluster, controller = make(lock=factory)
            self.addCleanup(controller.close)
            self.assertRaises(ConnectionError, controller.create_volume,
                              VOL, G)
            self.assertEqual([], cluster.ops('create'))
            self.assertEqual([], controller.decisions.pending)
            self.assert_nothing_held(controller)
            for name in (f'blackstor-resource-{VOL}',
                         'blackstor-minor-1000', 'blackstor-port-7000'):
                lock = locks(name)
                self.assertTrue(lock.acquire(blocking=False), name)
                lock.release()


class ZonesTest(base.TestCase):

    def test_spread_places_in_distinct_zones(self):
        zones = {'n1': 'a', 'n2': 'a', 'n3': 'b', 'n4': 'c'}
        cluster, controller = make(nodes=('n1', 'n2', 'n3', 'n4'),
                                   zones=zones, sizes=[90, 80, 10, 20])
        spec = controller.create_volume(VOL, G, 3, 'spread')
        self.assertEqual({'a', 'b', 'c'},
                         {zones[h.name] for h in spec.hosts})

    def test_spread_with_too_few_zones(self):
        cluster, controller = make(zones={'n1': 'a', 'n2': 'a', 'n3': 'b'})
        exc = self.assertRaises(errors.PlacementError,
                                controller.create_volume, VOL, G, 3,
                                'spread')
        self.assertIn('zones', str(exc))
        self.assertEqual({}, cluster.clean())


class InitialSyncTest(ControllerTestCase):
    """new-current-uuid only once every replica sees every other."""

    def test_skip_waits_for_every_replica_established_inconsistent(self):
        seen = []
        late = {'left': 3}

        def slow_peer(node, request):
            # n3 reports its connection to n1 as still connecting for its
            # first three status replies.
            if request['op'] == 'new-current-uuid':
                seen.append(list(self.cluster.ops('status')))
        original = self.cluster.agents['n3']._state

        def state(name):
            result = original(name)
            if result and late['left'] > 0:
                late['left'] -= 1
                for conn in result['connections']:
                    if conn['name'] == 'n1':
                        conn['connection-state'] = 'Connecting'
            return result
        self.cluster.agents['n3']._state = state
        self.cluster.hooks.append(slow_peer)
        self.ctl.create_volume(VOL, G)
        self.assertEqual(0, late['left'])
        # every replica was read before the UUID was made, n3 4 times
        self.assertEqual(4, seen[0].count('n3'))
        self.assertEqual({'n1', 'n2'}, set(seen[0]) - {'n3'})
        for name in ('n1', 'n2', 'n3'):
            self.assertIn(VOL, self.cluster.agents[name].uptodate)

    def test_a_resync_after_the_skip_fails_the_create(self):
        original = self.cluster.agents['n2']._state

        def state(name):
            result = original(name)
            if result and name in self.cluster.agents['n2'].uptodate:
                result['connections'][0]['peer_devices'][0][
                    'replication-state'] = 'SyncTarget'
            return result
        self.cluster.agents['n2']._state = state
        exc = self.assertRaises(errors.ClusterError,
                                self.ctl.create_volume, VOL, G)
        self.assertIn('no resync', str(exc))
        self.assertEqual({}, self.cluster.clean())

    def test_a_replica_not_inconsistent_is_not_skipped(self):
        self.cluster.agents['n2'].uptodate.add(VOL)    # stale UpToDate
        self.assertRaises(errors.ClusterError,
                          self.ctl.create_volume, VOL, G)
        self.assertEqual([], self.cluster.ops('new-current-uuid'))
        self.assertEqual({}, self.cluster.clean())


class CreateRollbackTest(ControllerTestCase):
    """A failed create removes only what it made."""

    def test_rollback_keeps_an_lv_the_create_did_not_make(self):
        # An LV of that name which this create did not make is on n3 by
        # the time the create reaches it (an LV the decision's inventory
        # shows is removed before: see RetriedCreateTest); n3's refusal
        # was lost on the way back.
        agent = self.cluster.agents['n3']

        def appears(node, request):
            if node == 'n3' and request['op'] == 'create':
                agent.lvs[VOL] = G
                agent.created_by[VOL] = None

        self.cluster.hooks.append(appears)
        self.cluster.faults[('n3', 'create')] = tp.NodeTimeout(
            'n3', 'no reply')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.create_volume, VOL, G)
        self.assertEqual({'n3': [VOL]}, self.cluster.clean())
        [create_id] = {r['create_id'] for _, r in self.requests('create')}
        deletes = self.requests('delete')
        self.assertEqual({'n1', 'n2', 'n3'}, {n for n, _ in deletes})
        self.assertEqual({create_id}, {r['create_id'] for _, r in deletes})

    def test_each_attempt_has_its_own_create_id(self):
        self.cluster.faults[('n2', 'create')] = [tp.NodeError(
            'n2', protocol.E_CONFLICT, 'minor or port clash')]
        self.ctl.create_volume(VOL, G)
        ids = [r['create_id'] for _, r in self.requests('create')]
        self.assertEqual(6, len(ids))
        self.assertEqual(2, len(set(ids)))


class RetriedCreateTest(ConcurrencyTestCase):
    """A create retried under the same name converges (Cinder reschedule)."""

    def crash_in_the_initial_sync(self, node='n3'):
        """The first create fails with ``node`` down from its sync on.

        Its rollback cannot reach ``node``, which keeps its replica and
        brings it up again when it returns, as a node at boot.
        """
        def crash(name, request):
            if request['op'] == 'status' and request.get('resource') == VOL:
                self.cluster.down.add(node)

        self.cluster.hooks.append(crash)
        self.assertRaises(errors.ClusterError, self.ctl.create_volume,
                          VOL, G)
        self.cluster.hooks.remove(crash)
        self.cluster.down.discard(node)
        self.assertEqual({node: [VOL, VOL]}, self.cluster.clean())
        self.assertIn(VOL, self.cluster.agents[node].up)
        return self.definition(node)

    def test_the_leftover_of_a_crashed_replica_is_removed_first(self):
        left = self.crash_in_the_initial_sync()
        mark = len(self.cluster.requests)
        spec = self.ctl.create_volume(VOL, G)
        self.assertNotEqual(left['minor'], spec.minor)
        retry = self.cluster.requests[mark:]
        removal = [(n, r) for n, r in retry if r['op'] == 'delete']
        self.assertEqual(['n3'], [n for n, _ in removal])
        self.assertNotIn('create_id', removal[0][1])
        first_create = next(i for i, (_, r) in enumerate(retry)
                            if r['op'] == 'create')
        self.assertLess(retry.index(removal[0]), first_create)
        [create_id] = {r['create_id'] for _, r in retry
                       if r['op'] == 'create'}
        self.assertEqual(3, len(self.requests('create')[-3:]))
        for node in ('n1', 'n2', 'n3'):
            agent = self.cluster.agents[node]
            self.assertEqual(create_id, agent.created_by[VOL], node)
            self.assertEqual(spec.minor, self.definition(node)['minor'])
            self.assertIn(VOL, agent.uptodate, node)
        self.assert_nothing_held()

    def test_a_leftover_that_cannot_be_removed_fails_the_create_cleanly(
            self):
        self.crash_in_the_initial_sync()
        self.cluster.faults[('n3', 'delete')] = tp.NodeError(
            'n3', protocol.E_FAILED, 'lvremove failed')
        mark = len(self.cluster.requests)
        with self.assertRaises(errors.NodeOperationFailed) as ctx:
            self.ctl.create_volume(VOL, G)
        self.assertIn('earlier create of ' + VOL, ctx.exception.step)
        self.assertEqual(['n3'], list(ctx.exception.failures))
        self.assertNotIn('create', {r['op'] for _, r in
                                    self.cluster.requests[mark:]})
        self.assertEqual({'n3': [VOL, VOL]}, self.cluster.clean())
        self.assert_nothing_held()

        del self.cluster.faults[('n3', 'delete')]
        self.ctl.create_volume(VOL, G)
        self.assertEqual({n: [VOL, VOL] for n in ('n1', 'n2', 'n3')},
                         self.cluster.clean())

    def test_a_volume_from_snapshot_retried_converges(self):
        self.ctl.create_volume('volume-src', G)
        self.ctl.create_snapshot('volume-src', 'snap-1')

        def crash(name, request):
            if (request['op'] == 'status' and request.get('resource') == VOL
                    and name == 'n1'):
                self.cluster.down.add('n3')

        self.cluster.hooks.append(crash)
        self.assertRaises(errors.ClusterError,
                          self.ctl.create_volume_from_snapshot, VOL,
                          'snap-1', 'volume-src', G, G)
        self.cluster.hooks.remove(crash)
        self.cluster.down.discard('n3')
        self.assertIn(VOL, self.cluster.agents['n3'].res)
        mark = len(self.cluster.requests)
        spec = self.ctl.create_volume_from_snapshot(
            VOL, 'snap-1', 'volume-src', G, G)
        # removed first: no clash with the leftover's values on the way
        self.assertEqual(['n1', 'n2', 'n3'], sorted(
            n for n, r in self.cluster.requests[mark:]
            if r['op'] == 'create-from-snapshot'))
        for node in ('n1', 'n2', 'n3'):
            self.assertEqual(spec.minor, self.definition(node)['minor'])
        self.assert_nothing_held()


class RangeExhaustedTest(base.TestCase):

    def test_create_refused_naming_the_option_to_widen(self):
        cluster, controller = make(ports=range(7000, 7002))
        self.addCleanup(controller.close)
        controller.create_volume('volume-1', G)
        controller.create_volume('volume-2', G)
        self.assertEqual(0, controller.stats().ports_free)
        before = {n: dict(a.res) for n, a in cluster.agents.items()}
        lvs = {n: dict(a.lvs) for n, a in cluster.agents.items()}
        cluster.requests.clear()
        exc = self.assertRaises(errors.AllocationError,
                                controller.create_volume, 'volume-3', G)
        self.assertIn('no free DRBD port left in 7000-7001', str(exc))
        self.assertIn('widen blackstor_port_range', str(exc))
        self.assertEqual(['inventory'],
                         sorted({r['op'] for _, r in cluster.requests}))
        self.assertEqual(before, {n: dict(a.res)
                                  for n, a in cluster.agents.items()})
        self.assertEqual(lvs, {n: dict(a.lvs)
                               for n, a in cluster.agents.items()})
        self.assertEqual((frozenset(), frozenset()),
                         controller.allocator.outstanding())

    def test_minors_a_client_uses_count_against_the_range(self):
        cluster, controller = make(minors=range(1000, 1002))
        self.addCleanup(controller.close)
        _, other = make(nodes=('m1',), replicas=1, cluster=cluster,
                        subnet=2, ports=range(8000, 8100))
        self.addCleanup(other.close)
        other.create_volume('volume-o', G)
        other.attach('volume-o', 'hv2')         # minor 1000 on hv2
        controller.create_volume('volume-1', G)
        exc = self.assertRaises(errors.AllocationError,
                                controller.create_volume, 'volume-2', G)
        self.assertIn('widen blackstor_minor_range', str(exc))
        self.assertEqual(['volume-1'], sorted(cluster.agents['n1'].res))
