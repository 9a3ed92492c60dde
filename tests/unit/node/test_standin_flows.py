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
"""The agent's data-safety checks against the stand-in's real state."""


from blackstor_cinder import protocol
from tests.unit.node import standin_node
from tests.unit import base

POOL = standin_node.POOL
SECRET = standin_node.SECRET


class StandinTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        why = standin_node.missing()
        if why:
            self.skipTest(why)
        self.nodes = self.useFixture(standin_node.StandinNodes())

    def refused(self, name, op, code, **fields):
        reply = self.nodes.call(name, op, **fields)
        self.assertFalse(reply['ok'], reply)
        self.assertEqual(code, reply['error']['code'], reply)
        return reply['error']


class CreateTestCase(StandinTestCase):

    def test_create_over_a_used_replica_refused(self):
        results = self.nodes.create()
        self.assertTrue(all(r['md_created'] and r['brought_up']
                            and r['res_created']
                            for r in results.values()))
        # nodeb goes down (a reboot); its LV holds the data in use.
        rc, _, err = self.nodes.standin.drbdsetup('nodeb', 'down', 'r0')
        self.assertEqual(0, rc, err)
        err = self.refused('nodeb', 'create', protocol.E_CONFLICT,
                           resource='r0', pool=POOL, size=64 << 20,
                           spec=self.nodes.spec(), secret=SECRET)
        self.assertIn('vg0/r0', err['message'])
        self.assertIsNone(self.nodes.status('nodeb', 'r0'))

    def test_rerun_before_first_use_is_fine(self):
        self.nodes.ok('nodea', 'create', resource='r0', pool=POOL,
                      size=64 << 20, spec=self.nodes.spec(),
                      secret=SECRET)
        self.nodes.standin.drbdsetup('nodea', 'down', 'r0')
        again = self.nodes.ok('nodea', 'create', resource='r0', pool=POOL,
                              size=64 << 20, spec=self.nodes.spec(),
                              secret=SECRET)
        self.assertFalse(again['md_created'])
        self.assertTrue(again['brought_up'])


class InventoryTestCase(StandinTestCase):

    def test_pool_zeroing(self):
        pools = self.nodes.ok('nodea', 'inventory')['pools']
        self.assertIs(True, pools[0]['zero_new_blocks'])
        self.nodes.standin.set_pool_zeroing('nodea', standin_node.VG, False)
        pools = self.nodes.ok('nodea', 'inventory')['pools']
        self.assertIs(False, pools[0]['zero_new_blocks'])


class NoShrinkTestCase(StandinTestCase):

    def test_adjust_below_the_running_size_refused(self):
        self.nodes.create(size=64 << 20, spec_size=64 << 20)
        status = self.nodes.ok('nodea', 'status', resource='r0')
        self.assertEqual(64 << 20, status['device_size'])
        inventory = self.nodes.ok('nodea', 'inventory')
        self.assertEqual(64 << 20,
                         inventory['resources']['r0']['device_size'])
        err = self.refused('nodea', 'adjust', protocol.E_CONFLICT,
                           resource='r0', secret=SECRET,
                           spec=self.nodes.spec(size=32 << 20))
        self.assertIn(str(32 << 20), err['message'])
        self.assertIn(str(64 << 20), err['message'])
        self.assertIn('size 65536k;', self.nodes.res_file('nodea', 'r0'))
        self.assertEqual(64 << 20, self.nodes.ok(
            'nodea', 'status', resource='r0')['device_size'])


class DetachNotRunningTestCase(StandinTestCase):
    """The connector behind the agent's ``detach``, on the real executor.

    The agent's executor raises its own ProcessFailed, not
    processutils' ProcessExecutionError: ``drbdsetup status`` of a
    resource that is not running (exit 10) must still read as "not up".
    """

    def client_spec(self):
        return self.nodes.spec(hosts=[
            ('nodea', 0, '127.0.0.1', standin_node.VG),
            ('nodeb', 1, '127.0.0.2', None)])

    def test_detach_of_a_resource_never_attached_is_a_no_op(self):
        self.assertEqual({'resource': 'r0'},
                         self.nodes.ok('nodeb', 'detach', resource='r0'))

    def test_detach_after_a_reboot_removes_the_res(self):
        # nodeb is a diskless client of r0; it reboots: its .res stays,
        # DRBD does not run the resource.
        self.nodes.ok('nodeb', 'adjust', resource='r0',
                      spec=self.client_spec(), secret=SECRET)
        self.assertIsNotNone(self.nodes.status('nodeb', 'r0'))
        rc, _, err = self.nodes.standin.drbdsetup('nodeb', 'down', 'r0')
        self.assertEqual(0, rc, err)
        self.assertIsNone(self.nodes.status('nodeb', 'r0'))
        store = self.nodes.agents['nodeb'].store
        self.assertTrue(store.exists('r0'))
        self.nodes.ok('nodeb', 'detach', resource='r0')
        self.assertFalse(store.exists('r0'))
        self.assertIsNone(self.nodes.status('nodeb', 'r0'))
