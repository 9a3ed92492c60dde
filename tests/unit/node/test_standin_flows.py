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


import hashlib
import os
import subprocess

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


class ManageTestCase(StandinTestCase):
    """rename, wrap and sync-source (manage) on the stand-in's state."""

    MiB = 1 << 20

    def rename(self, name, old='r0', new='r1'):
        return self.nodes.call(name, 'rename', resource=old, new_name=new,
                               pool=POOL, spec=self.nodes.spec(),
                               secret=SECRET)

    def bare_lv(self, name, lv, size):
        env = self.nodes.standin.node_env(name)
        subprocess.run(['lvcreate', '--yes', '--type', 'thin',
                        '--virtualsize', f'{size}b', '--thinpool',
                        standin_node.THIN, '--name', lv, standin_node.VG],
                       env=env, check=True, capture_output=True)
        data = os.urandom(self.MiB)
        path = self.nodes.standin.lv_path(name, standin_node.VG, lv)
        with open(path, 'r+b') as f:
            for offset in (0, 17 * self.MiB, 63 * self.MiB):
                f.seek(offset)
                f.write(data)
        return self.digest(name, lv, 64 * self.MiB)

    def digest(self, name, lv, size):
        path = self.nodes.standin.lv_path(name, standin_node.VG, lv)
        with open(path, 'rb') as f:
            return hashlib.sha256(f.read(size)).hexdigest()

    def test_rename_every_replica_keeps_the_data(self):
        self.nodes.create()
        self.nodes.standin.write('nodea', 'r0', 4096, b'kept' * 1024)
        before = self.digest('nodea', 'r0', 64 * self.MiB)
        for name in self.nodes.names:
            reply = self.rename(name)
            self.assertTrue(reply['ok'], reply)
            self.assertTrue(reply['result']['renamed'])
        for name in self.nodes.names:
            self.assertEqual(before, self.digest(name, 'r1', 64 * self.MiB))
            self.assertFalse(self.agent_has(name, 'r0'))
            self.assertIn('resource "r1"', self.nodes.res_file(name, 'r1'))
            state = self.nodes.status(name, 'r1')
            self.assertEqual('UpToDate',
                             state['devices'][0]['disk-state'])
            self.assertEqual(['Connected'], [
                c['connection-state'] for c in state['connections']])
        # again: done, nothing to do
        self.assertFalse(self.nodes.ok(
            'nodea', 'rename', resource='r0', new_name='r1', pool=POOL,
            spec=self.nodes.spec(), secret=SECRET)['renamed'])

    def agent_has(self, name, resource):
        return (self.nodes.agents[name].store.exists(resource)
                or self.nodes.status(name, resource) is not None)

    def test_rename_refused_while_primary(self):
        self.nodes.create()
        rc, _, err = self.nodes.standin.drbdsetup('nodea', 'primary', 'r0')
        self.assertEqual(0, rc, err)
        err = self.refused('nodea', 'rename', protocol.E_BUSY,
                           resource='r0', new_name='r1', pool=POOL,
                           spec=self.nodes.spec(), secret=SECRET)
        self.assertIn('in use', err['message'])
        self.assertEqual('Primary', self.nodes.status('nodea',
                                                      'r0')['role'])
        self.assertFalse(self.agent_has('nodea', 'r1'))

    def test_wrap_then_full_sync_from_the_holder(self):
        digest = self.bare_lv('nodea', 'data1', 72 * self.MiB)
        inventory = self.nodes.ok('nodea', 'inventory')
        self.assertEqual([('data1', 72 * self.MiB)], [
            (e['name'], e['size_bytes']) for e in inventory['bare_lvs']])
        spec = self.nodes.spec(size=64 * self.MiB)
        result = self.nodes.ok('nodea', 'wrap', resource='r1', lv='data1',
                               pool=POOL, size=64 * self.MiB, spec=spec,
                               secret=SECRET)
        self.assertTrue(result['wrapped'])
        self.nodes.ok('nodeb', 'create', resource='r1', pool=POOL,
                      size=64 * self.MiB, spec=spec, secret=SECRET)
        self.assertEqual('Inconsistent', self.nodes.status(
            'nodeb', 'r1')['devices'][0]['disk-state'])
        self.assertTrue(self.nodes.ok('nodea', 'sync-source',
                                      resource='r1')['forced'])
        for name in self.nodes.names:
            self.assertEqual(digest, self.digest(name, 'r1', 64 * self.MiB),
                             name)
            self.assertEqual('UpToDate', self.nodes.status(
                name, 'r1')['devices'][0]['disk-state'])
        self.assertEqual('Secondary', self.nodes.status('nodea',
                                                        'r1')['role'])
        self.assertEqual([], self.nodes.ok('nodea', 'inventory')['bare_lvs'])
        # a retry changes nothing
        self.assertFalse(self.nodes.ok('nodea', 'sync-source',
                                       resource='r1')['forced'])

    def test_wrap_without_room_refused_with_what_is_missing(self):
        digest = self.bare_lv('nodea', 'data1', 64 * self.MiB)
        entry = self.nodes.ok('nodea', 'inventory')['bare_lvs'][0]
        self.assertEqual(0, entry['volume_bytes'])     # under 1 GiB
        err = self.refused('nodea', 'wrap', protocol.E_INVALID,
                           resource='r1', lv='data1', pool=POOL,
                           size=64 * self.MiB,
                           spec=self.nodes.spec(size=64 * self.MiB),
                           secret=SECRET)
        self.assertIn('extend it by 4 MiB', err['message'])
        self.assertEqual(digest, self.digest('nodea', 'data1',
                                             64 * self.MiB))
        self.assertFalse(self.agent_has('nodea', 'r1'))

    def test_wrap_undo_gives_the_bare_lv_back(self):
        digest = self.bare_lv('nodea', 'data1', 72 * self.MiB)
        spec = self.nodes.spec(size=64 * self.MiB)
        self.nodes.ok('nodea', 'wrap', resource='r1', lv='data1', pool=POOL,
                      size=64 * self.MiB, spec=spec, secret=SECRET)
        self.assertTrue(self.nodes.ok(
            'nodea', 'wrap', resource='r1', lv='data1', pool=POOL,
            size=64 * self.MiB, spec=spec, secret=SECRET,
            undo=True)['unwrapped'])
        self.assertFalse(self.agent_has('nodea', 'r1'))
        self.assertEqual(['data1'], [
            e['name'] for e in self.nodes.ok('nodea',
                                             'inventory')['bare_lvs']])
        self.assertEqual(digest, self.digest('nodea', 'data1',
                                             64 * self.MiB))

    def test_wrap_undo_refused_when_the_name_is_taken_changes_nothing(self):
        self.bare_lv('nodea', 'data1', 72 * self.MiB)
        spec = self.nodes.spec(size=64 * self.MiB)
        self.nodes.ok('nodea', 'wrap', resource='r1', lv='data1', pool=POOL,
                      size=64 * self.MiB, spec=spec, secret=SECRET)
        self.bare_lv('nodea', 'data1', 72 * self.MiB)   # the name again
        before = self.nodes.status('nodea', 'r1')
        err = self.refused('nodea', 'wrap', protocol.E_CONFLICT,
                           resource='r1', lv='data1', pool=POOL,
                           size=64 * self.MiB, spec=spec, secret=SECRET,
                           undo=True)
        self.assertIn('data1 exists', err['message'])
        self.assertTrue(self.agent_has('nodea', 'r1'))
        self.assertEqual(before['role'], self.nodes.status('nodea',
                                                           'r1')['role'])
        self.assertEqual(before['devices'][0]['disk-state'],
                         self.nodes.status('nodea', 'r1')['devices'][0][
                             'disk-state'])

    def test_snapshot_rename_only_of_that_resource(self):
        self.nodes.create()
        self.nodes.ok('nodea', 'snapshot-create', resource='r0', pool=POOL,
                      snapshot='s1')
        err = self.refused('nodea', 'snapshot-rename', protocol.E_CONFLICT,
                           resource='r9', pool=POOL, snapshot='s1',
                           new_name='s2')
        self.assertIn('is a snapshot of r0, not of r9', err['message'])
        self.assertTrue(self.nodes.ok(
            'nodea', 'snapshot-rename', resource='r0', pool=POOL,
            snapshot='s1', new_name='s2')['renamed'])
        self.assertEqual(['s2'], [s['name'] for s in self.nodes.ok(
            'nodea', 'inventory')['snapshots']])
        self.assertFalse(self.nodes.ok(
            'nodea', 'snapshot-rename', resource='r0', pool=POOL,
            snapshot='s1', new_name='s2')['renamed'])
