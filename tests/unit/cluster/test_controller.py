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
"""Unit tests of the Controller facade over ``cluster/core.py``.

Also what the tests of the flow modules (``test_create``,
``test_snapshots``, ``test_resize``, ``test_attach``, ``test_delete``,
``test_stats``, ``test_tiebreaker``, ``test_heal``, ``test_adopt``) share:
:func:`make`, :class:`ControllerTestCase`, :class:`ConcurrencyTestCase`.
"""

import concurrent.futures
import threading

import ddt

from blackstor_cinder.cluster import controller as ctl
from blackstor_cinder.cluster import core
from blackstor_cinder.cluster import model
from blackstor_cinder.node import resrender
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
