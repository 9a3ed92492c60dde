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
"""suspend-io, resume-io, new-current-uuid and forget-peer."""

from unittest import mock

from blackstor_cinder.node import lease as lease_mod
from blackstor_cinder.node import ops_io
from blackstor_cinder import protocol
from tests.unit.node import test_agent


class IoTestCase(test_agent.ReplicaTestCase):

    def test_suspend_resume(self):
        self.ok('suspend-io', resource='r0')
        self.ok('suspend-io', resource='r0')
        self.ok('resume-io', resource='r0')
        self.ok('resume-io', resource='r0')
        self.assertEqual([['drbdsetup', 'suspend-io', '1000'],
                          ['drbdsetup', 'resume-io', '1000']], self.changes())
        result = self.ok('suspend-io', resource='r9')
        self.assertFalse(result['running'])

    def test_suspend_reports_the_status(self):
        expected = self.ok('status', resource='r0')
        self.fake.calls.clear()
        result = self.ok('suspend-io', resource='r0', lease=60, report=True)
        self.assertTrue(result['suspended'])
        for key in ('exists', 'definition', 'device_size', 'zero_pending'):
            self.assertEqual(expected[key], result[key], key)
        self.assertEqual('r0', result['state']['name'])
        self.assertIn(['drbdsetup', 'suspend-io', '1000'], self.changes())
        self.ok('resume-io', resource='r0')
        # nothing here: reported, nothing suspended, no error
        result = self.ok('suspend-io', resource='r9', lease=60,
                         report=True)
        self.assertEqual((False, False, False), (
            result['exists'], result['running'], result['suspended']))

    def test_suspend_with_report_spares_the_tiebreaker(self):
        real = ops_io.ops_inventory.status

        def as_tiebreaker(node, req):
            reply = real(node, req)
            for host in reply['definition']['hosts']:
                if host['name'] == self.conf.node_name:
                    host.update(diskful=False, disk=None, tiebreaker=True)
            return reply

        self.fake.calls.clear()
        with mock.patch.object(ops_io.ops_inventory, 'status',
                               side_effect=as_tiebreaker):
            result = self.ok('suspend-io', resource='r0', lease=60,
                             report=True)
        self.assertEqual((True, False), (result['running'],
                                         result['suspended']))
        self.assertEqual([], self.changes())
        # asked without report (as the controller does when its view of
        # the resource says the node is a client) it suspends
        with mock.patch.object(ops_io.ops_inventory, 'status',
                               side_effect=as_tiebreaker):
            self.assertTrue(self.ok('suspend-io', resource='r0',
                                    lease=60)['suspended'])
            # suspended so: reported, its lease kept (it resumes it)
            self.assertTrue(self.ok('suspend-io', resource='r0', lease=60,
                                    report=True)['suspended'])
        self.assertTrue(lease_mod.lease_path(self.conf, 'r0').exists())

    def test_new_current_uuid(self):
        self.ok('new-current-uuid', resource='r0')
        self.ok('new-current-uuid', resource='r0', clear_bitmap=False)
        self.assertEqual(
            [['drbdadm', 'new-current-uuid', '--clear-bitmap', 'r0/0'],
             ['drbdadm', 'new-current-uuid', 'r0/0']], self.changes())
        self.error('new-current-uuid', protocol.E_NOT_FOUND, 'resource',
                   resource='r9')

    def test_forget_peer(self):
        self.ok('forget-peer', resource='r0', node_id=5)
        self.assertEqual([['drbdsetup', 'forget-peer', 'r0', '5']],
                         self.changes())
        # a peer the .res still lists keeps its slot
        self.error('forget-peer', protocol.E_CONFLICT, 'node_id',
                   resource='r0', node_id=1)
        self.error('forget-peer', protocol.E_NOT_FOUND, 'resource',
                   resource='r9', node_id=5)
        self.error('forget-peer', protocol.E_INVALID, 'node_id',
                   resource='r0', node_id=32)
        self.assertEqual([['drbdsetup', 'forget-peer', 'r0', '5']],
                         self.changes())
