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
"""Real cinder-volume started while one of three storage nodes is down.

Its own stack and box: the backend's default replica count is 3, so with
one node down fewer nodes answer than that count, which used to make
``check_for_setup_error`` fail and Cinder keep the backend disabled until
cinder-volume was restarted.
"""

import sys
import time

import testtools

from tests.e2e import scenario
from tests.e2e import stack as stack_mod
from tests.functional import cluster_box

TWO = 'two-replicas'


def say(text):
    print(text, file=sys.stderr, flush=True)


class NodeDownAtStartE2ETest(testtools.TestCase):

    box = stack = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        why = cluster_box.missing_prerequisites()
        if why:
            raise RuntimeError(why)
        cls.box = cluster_box.ClusterInABox(hypervisors=('hv-1',))
        cls.box.setUp()
        try:
            backend = scenario.backend_section(cls.box)
            backend['blackstor_replicas'] = '3'
            cls.stack = stack_mod.Stack(
                cls.box.dir / 'stack', backends={scenario.BACKEND: backend},
                extra_conf={'DEFAULT': {
                    'backend_stats_polling_interval': '3'}})
            cls.stack.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.stack is not None:
            cls.stack.stop()
            left = cls.stack.leftover_processes()
            if left:
                raise AssertionError(f'stack processes left: {left}')
        if cls.box is not None:
            cls.box.cleanUp()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.down = set()
        self.journey = scenario.Journey(self.stack, self.box,
                                        report=lambda step: say(
                                            f'  {step.name}: {step.status} '
                                            f'{step.seconds:.1f}s'))

    def volume_log(self):
        with open(self.stack.logs['cinder-volume']) as f:
            return f.read()

    def create(self, key, vtype=None):
        args = ['volume', 'create', '--size', '1']
        if vtype:
            args += ['--type', vtype]
        vol = self.stack.openstack(*args, f'down-{key}')
        self.journey.ids[key] = vol['id']
        return vol['id']

    def holders(self, key, nodes):
        name = f'volume-{self.journey.ids[key]}'
        return sorted(n for n in nodes if any(
            v['name'] == name
            for v in self.box.inventory(n).get('volumes', [])))

    def wait_nodes_down(self, expected, timeout=240):
        """The backend's stats, reported by the cinder-volume started now."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            try:
                pools = self.stack.pools()
            except Exception as exc:  # noqa: B902 - poll until the deadline
                seen = exc
            else:
                caps = [p['capabilities'] for p in pools]
                seen = [c.get('blackstor_nodes_down') for c in caps]
                if [expected] == seen:
                    return caps[0]
            time.sleep(2)
        raise AssertionError(
            f'cinder-volume did not report nodes down {expected} within '
            f'{timeout}s (last: {seen}); its log ends with:\n'
            + ''.join(self.volume_log().splitlines(True)[-40:]))

    def test_cinder_volume_starts_with_a_storage_node_down(self):
        j = self.journey
        self.stack.create_volume_type(TWO, scenario.BACKEND,
                                      {'blackstor:replicas': '2'})
        for key, vtype in (('three', None), ('two', TWO)):
            self.create(key, vtype)
        for key in ('three', 'two'):
            j.wait('volume', j.ids[key], 'available')
        storage = self.box.storage_names
        self.assertEqual(list(storage), self.holders('three', storage))
        down = sorted(set(storage) - set(self.holders('two', storage)))[0]
        up = [n for n in storage if n != down]

        # cinder-volume (re)starts while a node is down
        self.stack.stop_service('cinder-volume')
        self.box.stop_node(down)
        self.down.add(down)
        self.addCleanup(self.start_node, down)
        self.stack.start_service('cinder-volume')
        t0 = time.monotonic()
        caps = self.wait_nodes_down([down])
        say(f'cinder-volume up with {down} down after '
            f'{time.monotonic() - t0:.1f}s: {caps}')
        self.assertNotIn('BlackStorDriverError', self.volume_log())
        # capacity for the 2 replicas that still fit: the scheduler lets
        # the 2-replica type through
        self.assertEqual(2, caps['blackstor_capacity_replicas'])
        self.assertGreater(caps['free_capacity_gb'], 0)

        # existing volumes attach and detach; one on the nodes up deletes
        for key in ('two', 'three'):
            j.step(f'attach {key}', lambda key=key: j.attach(key))
            j.step(f'detach {key}', lambda key=key: j.detach(key))
        self.stack.openstack('volume', 'delete', j.ids['two'], json=False)
        j.wait('volume', j.ids['two'], 'deleted')
        self.assertEqual([], self.holders('two', up))
        del j.ids['two']

        # what can be placed on the nodes up is created
        self.create('placed', TWO)
        vol = j.wait('volume', j.ids['placed'], 'available')
        self.assertEqual(up, self.holders('placed', up))
        say(f'created with {down} down: {vol["id"]} on {up}')
        self.create('too-many')
        self.assertRaises(stack_mod.StackError, j.wait, 'volume',
                          j.ids['too-many'], 'available')
        self.assertIn('3 replicas asked but only 2', self.volume_log())

        # the node returns: everything deletes, nothing is left
        self.start_node(down)
        for key in list(j.ids):
            self.stack.openstack('volume', 'delete', j.ids[key], json=False)
        for key in list(j.ids):
            j.wait('volume', j.ids.pop(key), 'deleted')
        self.assertEqual({}, self.box.leftovers())

    def start_node(self, name):
        if name in self.down:
            self.down.discard(name)
            self.box.start_node(name)
