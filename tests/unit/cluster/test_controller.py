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

import concurrent.futures
import dataclasses
import json
import re
import threading
import time

import ddt
import fixtures

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import transport as tp
from blackstor_cinder.node import resrender
from blackstor_cinder import protocol
from tests.unit.cluster import fakes
from tests.unit import base

G = 1 << 30
VOL = 'volume-0001'


def make(nodes=('n1', 'n2', 'n3'), zones=None, sizes=None, replicas=3,
         clients=('hv1', 'hv2'), lock=None, cluster=None, subnet=0,
         **config):
    """A controller on a fake cluster (``cluster``: add to that one).

    Clients already in ``cluster`` are shared, not made anew: another
    backend's hypervisors. ``subnet`` keeps a second backend's storage
    addresses apart.
    """
    cluster = cluster or fakes.FakeCluster()
    storage = []
    for i, name in enumerate(nodes):
        cluster.add(name, pool_bytes=(sizes[i] if sizes else 100) * G)
        storage.append(model.Node(name, f'10.{subnet}.0.{i + 1}',
                                  ssh_host=name,
                                  zone=(zones or {}).get(name)))
    client_nodes = []
    for i, name in enumerate(clients):
        if name not in cluster.agents:
            cluster.add(name, pool=None)
        client_nodes.append(model.Node(name, f'10.0.1.{i + 1}',
                                       ssh_host=name, storage=False))
    config.setdefault('minors', range(1000, 1100))
    config.setdefault('ports', range(7000, 7100))
    cfg = model.ClusterConfig(
        storage_nodes=tuple(storage), client_nodes=tuple(client_nodes),
        pool='vg/pool', replicas=replicas, connect_timeout=1.0, **config)
    controller = ctl.Controller(cfg, cluster.transport_for, lock=lock,
                                poll_interval=0.01)
    return cluster, controller


class ControllerTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cluster, self.ctl = make()
        self.addCleanup(self.ctl.close)

    def definition(self, node, name=VOL):
        return fakes.parse_res(self.cluster.agents[node].res[name][0])

    def res_sizes(self, name=VOL, nodes=('n1', 'n2', 'n3')):
        """Node -> the size its .res gives the device (None: not set)."""
        return {n: self.definition(n, name)['disk'].get('size')
                for n in nodes}

    def requests(self, op, name=VOL):
        return [(node, req) for node, req in self.cluster.requests
                if req['op'] == op and req.get('resource') == name]

    @staticmethod
    def text_size(req):
        text = resrender.render(req['resource'], req['spec'])
        return fakes.parse_res(text)['disk'].get('size')


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


class RecordingLocks:
    """In-process locks that log (name, 'acquire'|'release') in order."""

    def __init__(self):
        self._locks = core.LocalLocks()
        self.events = []
        self._guard = threading.Lock()

    def __call__(self, name):
        return _RecordedLock(self, name, self._locks(name))

    def record(self, name, what):
        with self._guard:
            self.events.append((name, what))


class _RecordedLock:

    def __init__(self, owner, name, lock):
        self.owner, self.name, self.lock = owner, name, lock

    def acquire(self, blocking=True):
        got = self.lock.acquire(blocking)
        if got:
            self.owner.record(self.name, 'acquire')
        return got

    def release(self):
        self.owner.record(self.name, 'release')
        self.lock.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()


class ConcurrencyTestCase(ControllerTestCase):

    WAIT = 10       # seconds before a test fails instead of hanging

    def gate(self, node, op='create', resource='volume-a', cluster=None):
        gate = fakes.Gate(node, op, resource, timeout=self.WAIT)
        (cluster or self.cluster).hooks.append(gate)
        self.addCleanup(gate.open)
        return gate

    def start(self, fn, *args, **kwargs):
        pool = concurrent.futures.ThreadPoolExecutor(1)
        self.addCleanup(pool.shutdown, wait=True)
        return pool.submit(fn, *args, **kwargs)

    def reached(self, gate):
        self.assertTrue(gate.reached.wait(self.WAIT),
                        f'nothing reached the {gate.op} gate')

    def assert_nothing_held(self, controller=None):
        controller = controller or self.ctl
        self.assertEqual((frozenset(), frozenset()),
                         controller.allocator.outstanding())
        self.assertEqual(frozenset(), controller.in_flight.names())

    def assert_free(self, name, controller=None):
        lock = (controller or self.ctl).lock(name)
        self.assertTrue(lock.acquire(blocking=False), f'{name} is held')
        lock.release()

    def minors(self, agent):
        return [fakes.parse_res(text)['minor']
                for text, _ in agent.res.values()]


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


@ddt.ddt
class ResourceLockTest(ControllerTestCase):
    """Flows that change one resource run under its resource lock."""

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, 2 * G)
        self.ctl.create_snapshot(VOL, 'snap-0')
        self.held = []

        def probe(node, request):
            if request.get('resource') != VOL:
                return
            lock = self.ctl.lock(f'blackstor-resource-{VOL}')
            free = lock.acquire(blocking=False)
            if free:
                lock.release()
            self.held.append(not free)

        self.cluster.hooks.append(probe)

    @ddt.data(
        ('delete_volume', (VOL,), {}),
        ('extend_volume', (VOL, 3 * G), {}),
        ('extend_volume', (), {'name': VOL, 'size': 3 * G}),
        ('create_snapshot', (VOL, 'snap-1'), {}),
        ('create_snapshot', (), {'volume': VOL, 'snapshot': 'snap-1'}),
        ('revert_to_snapshot', (VOL, 'snap-0', 2 * G, 2 * G), {}),
        ('create_volume_from_snapshot',
         ('volume-new', 'snap-0', VOL, 2 * G, 2 * G), {}),
        ('clone_volume', ('volume-new', VOL, 2 * G, 2 * G), {}),
        ('attach', (VOL, 'hv1'), {}),
        ('detach', (VOL, 'hv1'), {}),
    )
    @ddt.unpack
    def test_held_during_every_request(self, flow, args, kwargs):
        getattr(self.ctl, flow)(*args, **kwargs)
        # the client check of attach comes first, without the lock
        self.assertGreaterEqual(len(self.held), 2)
        self.assertTrue(all(self.held), self.held)
        lock = self.ctl.lock(f'blackstor-resource-{VOL}')
        self.assertTrue(lock.acquire(blocking=False))
        lock.release()

    def test_a_snapshot_delete_waits_for_its_create(self):
        # Cinder lets a snapshot whose create timed out be deleted while
        # the create still runs: the delete waits, then removes it all.
        gate = fakes.Gate('n2', 'snapshot-create', VOL, timeout=10)
        self.cluster.hooks.append(gate)
        self.addCleanup(gate.open)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            create = pool.submit(self.ctl.create_snapshot, VOL, 'snap-1')
            self.assertTrue(gate.reached.wait(10))
            delete = pool.submit(self.ctl.delete_snapshot, 'snap-1', VOL)
            self.assertRaises(concurrent.futures.TimeoutError,
                              delete.result, timeout=0.5)
            gate.open()
            create.result(timeout=10)
            delete.result(timeout=10)
        for node in ('n1', 'n2', 'n3'):
            self.assertNotIn('snap-1', self.cluster.agents[node].snapshots)

    def test_held_while_creating(self):
        self.ctl.delete_volume(VOL)
        self.held.clear()
        self.ctl.create_volume(VOL, G)
        self.assertGreaterEqual(len(self.held), 5)
        self.assertTrue(all(self.held), self.held)


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


class DeleteTest(ControllerTestCase):

    def test_delete_everywhere_and_twice(self):
        self.ctl.create_volume(VOL, G)
        self.ctl.attach(VOL, 'hv1')
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())
        self.ctl.delete_volume(VOL)

    def test_delete_with_replica_down_converges(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.down.add('n2')
        self.assertRaises(errors.NodeOperationFailed,
                          self.ctl.delete_volume, VOL)
        self.cluster.down.clear()
        self.ctl.delete_volume(VOL)
        self.assertEqual({}, self.cluster.clean())

    def test_identities_reused_after_delete(self):
        first = self.ctl.create_volume(VOL, G)
        self.ctl.delete_volume(VOL)
        again = self.ctl.create_volume('volume-b', G)
        self.assertEqual((first.minor, first.port),
                         (again.minor, again.port))


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
        self.assertEqual([], [op for _, op in self.cluster.log])

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


class AttachTest(ControllerTestCase):

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, G)

    def test_attach_adds_diskless_client(self):
        path = self.ctl.attach(VOL, 'hv1')
        self.assertEqual(f'/dev/drbd/by-res/{VOL}/0', path)
        for node in ('n1', 'n2', 'n3', 'hv1'):
            hosts = {h['name']: h for h in self.definition(node)['hosts']}
            self.assertEqual(3, hosts['hv1']['node_id'])
            self.assertFalse(hosts['hv1']['diskful'])
            self.assertEqual('10.0.1.1', hosts['hv1']['address'])
        self.assertEqual({}, self.definition('n1')['net'])

    def test_attach_is_idempotent(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv1')
        hosts = self.definition('n1')['hosts']
        self.assertEqual(4, len(hosts))

    def test_live_migration_sequence(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.assertEqual('yes', self.definition('n1')['net'].get(
            'allow-two-primaries'))
        self.assertEqual('yes', self.definition('hv2')['net'].get(
            'allow-two-primaries'))
        self.ctl.detach(VOL, 'hv1')
        self.assertEqual({}, self.definition('n1')['net'])
        self.assertNotIn(VOL, self.cluster.agents['hv1'].res)
        self.ctl.detach(VOL, 'hv2')
        self.assertEqual(3, len(self.definition('n1')['hosts']))
        self.assertNotIn(VOL, self.cluster.agents['hv2'].res)

    def test_unknown_unreachable_host_changes_nothing(self):
        before = {n: dict(a.res) for n, a in self.cluster.agents.items()}
        exc = self.assertRaises(errors.NodeOperationFailed, self.ctl.attach,
                                VOL, 'stranger', '10.9.9.9')
        self.assertIn('stranger', str(exc))
        self.assertEqual([], self.cluster.ops('adjust'))
        self.assertEqual(before, {n: dict(a.res)
                                  for n, a in self.cluster.agents.items()})

    def test_unlisted_reachable_host_is_accepted(self):
        self.cluster.add('hv9', pool=None)
        self.ctl.attach(VOL, 'hv9', '10.0.9.9')
        hosts = {h['name']: h for h in self.definition('n1')['hosts']}
        self.assertEqual('10.0.9.9', hosts['hv9']['address'])

    def test_unlisted_host_refused_when_not_allowed(self):
        cluster, controller = make(allow_unlisted_clients=False)
        controller.create_volume(VOL, G)
        cluster.add('hv9', pool=None)
        self.assertRaises(errors.InvalidRequest, controller.attach, VOL,
                          'hv9', '10.0.9.9')

    def test_failed_client_attach_restores_storage_config(self):
        self.cluster.faults[('hv1', 'attach')] = tp.NodeError(
            'hv1', protocol.E_TIMEOUT, 'no UpToDate peer within 60s')
        self.assertRaises(errors.NodeOperationFailed, self.ctl.attach, VOL,
                          'hv1')
        self.assertEqual(3, len(self.definition('n1')['hosts']))

    def test_a_replica_refusing_the_new_res_leaves_no_phantom_client(self):
        before = {n: self.definition(n) for n in ('n1', 'n2', 'n3')}
        self.cluster.faults[('n2', 'adjust')] = [tp.NodeError(
            'n2', protocol.E_FAILED, 'drbdadm adjust failed')]
        exc = self.assertRaises(errors.NodeOperationFailed, self.ctl.attach,
                                VOL, 'hv1')
        self.assertEqual(['n2'], list(exc.failures))
        self.assertEqual(before, {n: self.definition(n)
                                  for n in ('n1', 'n2', 'n3')})
        self.assertEqual([], self.cluster.ops('attach'))
        self.assertEqual((), self.ctl.stats().divergent_volumes)
        self.ctl.attach(VOL, 'hv1')
        self.assertEqual(4, len(self.definition('n2')['hosts']))

    def lose_at_adjust(self, node):
        """``node`` answers the lookup and is gone from its adjust on."""
        def hook(name, request):
            if name == node and request['op'] == 'adjust':
                self.cluster.down.add(node)
        self.cluster.hooks.append(hook)

    def test_a_replica_lost_after_the_lookup_does_not_stop_attach(self):
        self.lose_at_adjust('n3')
        logger = self.useFixture(fixtures.FakeLogger())
        path = self.ctl.attach(VOL, 'hv1')
        self.assertEqual(f'/dev/drbd/by-res/{VOL}/0', path)
        for node in ('n1', 'n2', 'hv1'):
            self.assertIn('hv1', [h['name']
                                  for h in self.definition(node)['hosts']])
        self.assertNotIn('hv1', [h['name']
                                 for h in self.definition('n3')['hosts']])
        self.assertIn('Replica n3 of %s became unreachable' % VOL,
                      logger.output)
        # back, the periodic repair gives it the client
        self.cluster.down.discard('n3')
        self.cluster.hooks.clear()
        self.assertEqual((VOL,), self.ctl.stats().divergent_volumes)

    def test_a_replica_lost_after_the_lookup_does_not_stop_detach(self):
        self.ctl.attach(VOL, 'hv1')
        self.lose_at_adjust('n3')
        self.ctl.detach(VOL, 'hv1')
        for node in ('n1', 'n2'):
            self.assertEqual(['n1', 'n2', 'n3'], sorted(
                h['name'] for h in self.definition(node)['hosts']))
        self.assertNotIn(VOL, self.cluster.agents['hv1'].res)

    def test_attach_fails_when_no_replica_takes_the_new_res(self):
        for node in ('n1', 'n2', 'n3'):
            self.lose_at_adjust(node)
        exc = self.assertRaises(errors.NodeOperationFailed, self.ctl.attach,
                                VOL, 'hv1')
        self.assertEqual(['n1', 'n2', 'n3'], sorted(exc.failures))
        self.assertEqual([], self.cluster.ops('attach'))

    def test_a_timed_out_adjust_still_fails_the_attach(self):
        # the adjust may have run there: not the same as never reached
        self.cluster.faults[('n3', 'adjust')] = [tp.NodeTimeout(
            'n3', 'no reply within 120s')]
        self.assertRaises(errors.NodeOperationFailed, self.ctl.attach, VOL,
                          'hv1')
        self.assertEqual([], self.cluster.ops('attach'))

    def test_a_second_client_refused_by_a_replica_changes_nothing(self):
        self.ctl.attach(VOL, 'hv1')
        before = {n: self.definition(n) for n in ('n1', 'n2', 'n3', 'hv1')}
        self.cluster.faults[('n3', 'adjust')] = [tp.NodeTimeout(
            'n3', 'no reply within 120s')]
        self.assertRaises(errors.NodeOperationFailed, self.ctl.attach, VOL,
                          'hv2')
        self.assertEqual(before, {n: self.definition(n)
                                  for n in ('n1', 'n2', 'n3', 'hv1')})
        self.assertNotIn(VOL, self.cluster.agents['hv2'].res)

    def test_force_detach_everywhere_with_client_down(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.cluster.down.add('hv2')
        self.ctl.detach(VOL, None, force=True)
        self.assertEqual(3, len(self.definition('n1')['hosts']))
        self.assertEqual({}, self.definition('n1')['net'])

    def test_detach_forgets_the_client_on_every_replica(self):
        # DRBD keeps the slot of a peer it once saw and counts it in a
        # quorum tie: a departed client must not stay a missing voter.
        self.ctl.attach(VOL, 'hv1')
        node_id = next(h['node_id'] for h in self.definition('n1')['hosts']
                       if h['name'] == 'hv1')
        self.ctl.detach(VOL, 'hv1')
        for node in ('n1', 'n2', 'n3'):
            self.assertEqual([(VOL, node_id)],
                             self.cluster.agents[node].forgotten, node)
        self.assertEqual([], self.cluster.agents['hv1'].forgotten)

    def test_a_failed_forget_does_not_fail_the_detach(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.faults[('n2', 'forget-peer')] = tp.NodeError(
            'n2', protocol.E_FAILED, 'drbdsetup forget-peer failed')
        logger = self.useFixture(fixtures.FakeLogger())
        self.ctl.detach(VOL, 'hv1')
        self.assertEqual(3, len(self.definition('n2')['hosts']))
        self.assertIn('forget-peer 3 of %s on n2 failed' % VOL,
                      logger.output)

    def test_detach_of_a_dead_hypervisor_fences_it_off(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.add('hv1')
        logger = self.useFixture(fixtures.FakeLogger())
        self.ctl.detach(VOL, 'hv1')
        for node in ('n1', 'n2', 'n3'):
            self.assertEqual(['n1', 'n2', 'n3'], sorted(
                h['name'] for h in self.definition(node)['hosts']))
        self.assertIn(f'Detach of {VOL}: host hv1 is unreachable',
                      logger.output)

    def test_dead_source_of_a_live_migration_turns_two_primaries_off(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.cluster.down.add('hv1')      # evacuated: the host is gone
        self.ctl.detach(VOL, 'hv1')
        for node in ('n1', 'n2', 'n3', 'hv2'):
            definition = self.definition(node)
            self.assertEqual({}, definition['net'], node)
            self.assertNotIn('hv1', [h['name']
                                     for h in definition['hosts']])

    def test_detach_refused_by_a_client_that_answers_fails(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.faults[('hv1', 'detach')] = tp.NodeError(
            'hv1', protocol.E_BUSY, 'in use: the device is open')
        exc = self.assertRaises(errors.NodeOperationFailed, self.ctl.detach,
                                VOL, 'hv1')
        self.assertIn('in use', str(exc))
        self.assertEqual(4, len(self.definition('n1')['hosts']))
        self.assertIn(VOL, self.cluster.agents['hv1'].res)

    def test_detach_of_missing_volume_is_fine(self):
        self.ctl.detach('volume-gone', 'hv1')

    def test_client_beyond_max_peers_refused_before_any_change(self):
        # max-peers 4: 5 hosts, 3 replicas and 2 clients (live migration)
        cluster, controller = make(clients=('hv1', 'hv2', 'hv3'),
                                   max_peers=4)
        self.addCleanup(controller.close)
        controller.create_volume(VOL, G)
        controller.attach(VOL, 'hv1')
        controller.attach(VOL, 'hv2')
        before = {n: dict(a.res) for n, a in cluster.agents.items()}
        sent = len(cluster.requests)
        exc = self.assertRaises(errors.InvalidRequest, controller.attach,
                                VOL, 'hv3')
        self.assertIn('hv3', str(exc))
        self.assertIn('blackstor_max_peers = 4', str(exc))
        self.assertIn('at most 5 hosts', str(exc))
        self.assertIn('3 replicas and 2 clients', str(exc))
        # only reads: no node was touched
        self.assertEqual({'inventory', 'status'},
                         {req['op'] for _, req in cluster.requests[sent:]})
        self.assertEqual(before, {n: dict(a.res)
                                  for n, a in cluster.agents.items()})
        self.assertNotIn(VOL, cluster.agents['hv3'].up)
        # the host already attached, and one after a detach, still attach
        controller.attach(VOL, 'hv2')
        controller.detach(VOL, 'hv1')
        controller.attach(VOL, 'hv3')


class HyperconvergedAttachTest(ControllerTestCase):
    """Attach on a host that holds a replica of the volume."""

    def setUp(self):
        super().setUp()
        self.ctl.create_volume(VOL, G)
        self.primary = set()
        for agent in self.cluster.agents.values():
            self._report_role(agent)

    def _report_role(self, agent):
        """The fake reports no role: Primary for nodes in self.primary."""
        plain = agent._state

        def state(name):
            found = plain(name)
            if found is not None:
                found['role'] = ('Primary' if agent.name in self.primary
                                 else 'Secondary')
            return found
        agent._state = state

    def two_primaries(self, node):
        return self.definition(node)['net'].get('allow-two-primaries')

    def test_path_comes_from_the_replica_agent(self):
        self.cluster.requests.clear()
        path = self.ctl.attach(VOL, 'n1')
        self.assertEqual(f'/dev/drbd/by-res/{VOL}/0', path)
        self.assertEqual(['n1'], [n for n, _ in self.requests('attach')])
        # Still a replica, nothing added, no option: one user only.
        hosts = {h['name']: h for h in self.definition('n1')['hosts']}
        self.assertEqual({'n1', 'n2', 'n3'}, set(hosts))
        self.assertTrue(hosts['n1']['diskful'])
        self.assertIsNone(self.two_primaries('n1'))
        self.assertIn(VOL, self.cluster.agents['n1'].lvs)

    def test_replica_gets_the_current_res_before_its_attach(self):
        self.cluster.requests.clear()
        self.ctl.attach(VOL, 'n2')
        ops = [req['op'] for node, req in self.cluster.requests
               if node == 'n2' and req.get('resource') == VOL]
        self.assertEqual(['adjust', 'attach'], ops[-2:])

    def test_client_while_replica_is_primary_allows_two_primaries(self):
        self.ctl.attach(VOL, 'n1')
        self.primary.add('n1')              # its guest opened the device
        self.ctl.attach(VOL, 'hv1')
        for node in ('n1', 'n2', 'n3', 'hv1'):
            self.assertEqual('yes', self.two_primaries(node), node)

    def test_replica_while_client_is_attached_allows_two_primaries(self):
        self.ctl.attach(VOL, 'hv1')
        self.assertIsNone(self.two_primaries('n1'))
        self.ctl.attach(VOL, 'n2')          # migration target
        for node in ('n1', 'n2', 'n3', 'hv1'):
            self.assertEqual('yes', self.two_primaries(node), node)

    def test_existing_clients_get_the_new_res(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.cluster.requests.clear()
        self.ctl.detach(VOL, 'hv2')
        self.assertEqual(['hv1'], [n for n, _ in self.requests('adjust')
                                   if n.startswith('hv')])
        self.assertIsNone(self.two_primaries('hv1'))

    def test_unreachable_existing_client_does_not_fail_the_attach(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.down.add('hv1')
        self.ctl.attach(VOL, 'n1')
        self.assertEqual('yes', self.two_primaries('n1'))

    def test_secondary_replicas_are_not_counted(self):
        self.ctl.attach(VOL, 'n1')
        self.ctl.attach(VOL, 'n2')          # n1 never opened it
        self.assertIsNone(self.two_primaries('n1'))

    def test_detach_on_replica_clears_the_option_and_keeps_it(self):
        self.ctl.attach(VOL, 'n1')
        self.primary.add('n1')
        self.ctl.attach(VOL, 'hv1')
        self.primary.discard('n1')          # the guest left n1
        self.cluster.requests.clear()
        self.ctl.detach(VOL, 'n1')
        self.assertEqual([], self.cluster.ops('detach'))
        self.assertEqual([], self.cluster.ops('delete'))
        for node in ('n1', 'n2', 'n3', 'hv1'):
            self.assertIsNone(self.two_primaries(node), node)
        n1 = self.cluster.agents['n1']
        self.assertIn(VOL, n1.lvs)
        self.assertIn(VOL, n1.up)
        self.assertIn(VOL, n1.res)
        self.assertEqual(4, len(self.definition('n1')['hosts']))

    def test_detach_on_replica_still_primary_is_not_counted(self):
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'n1')
        self.primary.add('n1')              # state read before it closed
        self.ctl.detach(VOL, 'n1')
        self.assertIsNone(self.two_primaries('n2'))
        self.assertIn(VOL, self.cluster.agents['n1'].up)

    def test_client_detach_keeps_option_while_replica_is_primary(self):
        self.ctl.attach(VOL, 'n1')
        self.primary.add('n1')
        self.ctl.attach(VOL, 'hv1')
        self.ctl.attach(VOL, 'hv2')
        self.ctl.detach(VOL, 'hv2')
        self.assertEqual('yes', self.two_primaries('n2'))
        self.assertEqual('yes', self.two_primaries('hv1'))
        self.ctl.detach(VOL, 'hv1')
        self.assertIsNone(self.two_primaries('n2'))

    def test_detach_everywhere_never_takes_a_replica_down(self):
        self.ctl.attach(VOL, 'n1')
        self.ctl.attach(VOL, 'hv1')
        self.cluster.requests.clear()
        self.ctl.detach(VOL, None, force=True)
        self.assertEqual(['hv1'], self.cluster.ops('detach'))
        self.assertIn(VOL, self.cluster.agents['n1'].up)

    def test_failed_replica_attach_restores_the_option(self):
        self.ctl.attach(VOL, 'hv1')
        self.cluster.faults[('n1', 'attach')] = tp.NodeError(
            'n1', protocol.E_TIMEOUT, 'not usable within 60s')
        self.assertRaises(errors.NodeOperationFailed, self.ctl.attach, VOL,
                          'n1')
        for node in ('n1', 'n2', 'hv1'):
            self.assertIsNone(self.two_primaries(node), node)
        self.assertIn(VOL, self.cluster.agents['n1'].up)
        self.assertEqual([], self.cluster.ops('detach'))


@ddt.ddt
class StatsTest(base.TestCase):

    @ddt.data(
        # sizes of 3 nodes (GiB), replicas, expected total/free (GiB)
        ((100, 200, 300), 1, 600),
        ((100, 200, 300), 2, 300),
        ((100, 200, 300), 3, 100),
        ((50, 50, 400), 2, 100),
    )
    @ddt.unpack
    def test_capacity(self, sizes, replicas, expected):
        cluster, controller = make(sizes=sizes, replicas=replicas,
                                   clients=())
        stats = controller.stats()
        self.assertEqual(expected * G, stats.total_bytes)
        self.assertEqual(expected * G, stats.free_bytes)

    def test_free_follows_physical_use_and_provisioned_counts_once(self):
        cluster, controller = make(sizes=(100, 100, 100), clients=())
        controller.create_volume(VOL, 10 * G)
        for agent in cluster.agents.values():
            agent.written_bytes = 30 * G
        stats = controller.stats()
        self.assertEqual(100 * G, stats.total_bytes)
        self.assertEqual(70 * G, stats.free_bytes)
        self.assertEqual(10 * G, stats.provisioned_bytes)
        self.assertEqual(1, stats.total_volumes)
        self.assertEqual((), stats.degraded_volumes)

    def test_provisioned_counts_volume_sizes_not_lvs(self):
        cluster, controller = make(clients=())
        controller.create_volume('volume-a', 10 * G)
        controller.create_volume('volume-b', 2 * G, replicas=2)
        for agent in cluster.agents.values():
            # what the agent makes: metadata and extent rounding on top
            for name in agent.lvs:
                agent.lvs[name] += 4 << 20
        stats = controller.stats()
        self.assertEqual(12 * G, stats.provisioned_bytes)
        self.assertEqual(2, stats.total_volumes)

    def test_provisioned_counts_lv_of_a_resource_without_size(self):
        cluster, controller = make(clients=())
        controller.create_volume('volume-a', 10 * G)
        controller.create_volume('volume-b', 2 * G)
        for agent in cluster.agents.values():
            agent.lvs['volume-a'] += 4 << 20
            agent.lvs['volume-b'] += 4 << 20
            text, secret = agent.res['volume-b']
            agent.res['volume-b'] = (re.sub(r'    disk \{[^}]*\}\n', '',
                                            text), secret)
        stats = controller.stats()
        self.assertEqual(12 * G + (4 << 20), stats.provisioned_bytes)

    def test_one_inventory_per_node_whatever_the_volumes(self):
        cluster, controller = make(clients=())
        for i in range(5):
            controller.create_volume(f'volume-{i}', G)
        cluster.requests.clear()
        controller.stats()
        self.assertEqual(['n1', 'n2', 'n3'],
                         sorted(n for n, _ in cluster.requests))

    def test_node_down_shows_degraded(self):
        cluster, controller = make(clients=())
        controller.create_volume(VOL, G)
        cluster.down.add('n3')
        stats = controller.stats()
        self.assertIn('n3', stats.nodes_down)
        self.assertEqual((VOL,), stats.degraded_volumes)
        # 3 replicas by default, 2 nodes: capacity for what fits there
        self.assertEqual(2, stats.capacity_replicas)
        self.assertEqual(100 * G, stats.free_bytes)
        self.assertEqual(100 * G, stats.total_bytes)

    def test_capacity_is_for_the_default_replicas_when_they_fit(self):
        cluster, controller = make(clients=())
        stats = controller.stats()
        self.assertEqual(3, stats.capacity_replicas)
        self.assertEqual(100 * G, stats.free_bytes)
        cluster.down.update({'n2', 'n3'})
        stats = controller.stats()
        self.assertEqual(1, stats.capacity_replicas)
        self.assertEqual(100 * G, stats.free_bytes)
        cluster.down.add('n1')
        stats = controller.stats()
        self.assertEqual(0, stats.free_bytes)
        self.assertEqual(0, stats.total_bytes)

    def test_check_setup_reports_per_node(self):
        cluster, controller = make(clients=())
        cluster.down.add('n2')
        cluster.agents['n3'].pool = 'vg/other'
        problems = controller.check_setup()
        self.assertEqual({'n2', 'n3'}, set(problems))
        self.assertIn('vg/pool', problems['n3'])


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


class ClientDrbdVersionTest(ControllerTestCase):

    def test_snapshot_refused_with_a_client_known_old(self):
        self.ctl.create_volume(VOL, G)
        self.cluster.agents['hv1'].kernel_version = '9.2.10'
        self.ctl.attach(VOL, 'hv1')
        exc = self.assertRaises(errors.ClusterError,
                                self.ctl.create_snapshot, VOL, 'snap-1')
        self.assertIn('hv1: DRBD kernel module 9.2.10', str(exc))
        self.assertEqual([], self.cluster.ops('suspend-io'))


class SharedClientsTest(base.TestCase):
    """Two backends whose volumes attach on the same hypervisors."""

    def setUp(self):
        super().setUp()
        self.cluster, self.a = make()
        _, self.b = make(nodes=('m1', 'm2', 'm3'), cluster=self.cluster,
                         subnet=2)
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)

    def res(self):
        return {name: dict(agent.res)
                for name, agent in self.cluster.agents.items()}

    def test_create_skips_the_values_a_client_uses(self):
        a = self.a.create_volume('volume-a', G)
        self.a.attach('volume-a', 'hv1')
        b = self.b.create_volume('volume-b', G)
        self.assertEqual((1000, 7000), (a.minor, a.port))
        self.assertEqual((1001, 7001), (b.minor, b.port))
        self.b.attach('volume-b', 'hv1')
        self.assertEqual({'volume-a', 'volume-b'},
                         set(self.cluster.agents['hv1'].res))

    def test_attach_refused_when_the_client_uses_the_values(self):
        # b took 1000/7000 while no client used them; then a attached
        # its own 1000/7000 on hv1
        self.b.create_volume('volume-b', G)
        self.a.create_volume('volume-a', G)
        self.a.attach('volume-a', 'hv1')
        before = self.res()
        self.cluster.requests.clear()
        exc = self.assertRaises(errors.AllocationError, self.b.attach,
                                'volume-b', 'hv1')
        message = str(exc)
        for part in ('hv1', 'volume-b', 'DRBD minor 1000',
                     'DRBD port 7000', 'blackstor_minor_range',
                     'blackstor_port_range', 'nothing was changed'):
            self.assertIn(part, message)
        self.assertEqual(before, self.res())
        self.assertEqual({'inventory', 'status'},
                         {req['op'] for _, req in self.cluster.requests})
        # on the other hypervisor it attaches
        self.b.attach('volume-b', 'hv2')

    def test_attach_refused_names_only_the_value_taken(self):
        self.b.create_volume('volume-b', G)
        hv1 = self.cluster.agents['hv1']
        self.a.create_volume('volume-a', G)
        self.a.attach('volume-a', 'hv1')
        text, secret = hv1.res['volume-a']
        hv1.res['volume-a'] = (text.replace(':7000;', ':7050;'), secret)
        exc = self.assertRaises(errors.AllocationError, self.b.attach,
                                'volume-b', 'hv1')
        self.assertIn('DRBD minor 1000', str(exc))
        self.assertNotIn('port', str(exc).replace('blackstor_port', ''))

    def test_a_client_that_does_not_answer_counts_with_its_last_report(self):
        self.a.create_volume('volume-a', G)
        self.a.attach('volume-a', 'hv1')
        self.b.stats()                      # b hears hv1 once
        self.cluster.down.add('hv1')
        b = self.b.create_volume('volume-b', G)
        self.assertEqual((1001, 7001), (b.minor, b.port))

    def test_a_client_never_heard_of_does_not_stop_creates(self):
        self.cluster.down.add('hv2')
        spec = self.b.create_volume('volume-b', G)
        self.assertEqual(3, len(spec.diskful_hosts))
        stats = self.b.stats()
        self.assertEqual({}, stats.nodes_down)
        self.assertEqual({}, stats.nodes_refused)

    def test_stats_report_the_room_left(self):
        stats = self.b.stats()
        self.assertEqual((100, 100), (stats.minors_free, stats.ports_free))
        self.b.create_volume('volume-b', G)
        self.a.create_volume('volume-a', G)
        self.a.create_volume('volume-a2', G)
        self.a.attach('volume-a2', 'hv1')       # 1001/7001 on hv1
        stats = self.b.stats()
        # b's own 1000/7000 and a's 1001/7001 on the shared client
        self.assertEqual((98, 98), (stats.minors_free, stats.ports_free))

    def test_values_outside_the_range_do_not_count(self):
        cluster, ctl_ = make(minors=range(1000, 1010),
                             ports=range(7000, 7010))
        self.addCleanup(ctl_.close)
        _, other = make(nodes=('m1',), replicas=1, cluster=cluster,
                        subnet=2, minors=range(2000, 2010),
                        ports=range(8000, 8010))
        self.addCleanup(other.close)
        other.create_volume('volume-o', G)
        other.attach('volume-o', 'hv1')
        stats = ctl_.stats()
        self.assertEqual((10, 10), (stats.minors_free, stats.ports_free))


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
