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
"""attach and detach (the diskless client) through the agent."""

from unittest import mock


from blackstor_cinder.node import client
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import resrender
from blackstor_cinder import protocol
from tests.unit.node import samples
from tests.unit.node import test_agent


class AttachTestCase(test_agent.AgentTestCase):

    def setUp(self):
        super().setUp()
        patcher = mock.patch(
            'blackstor_cinder.node.client.DisklessClient')
        self.client_cls = patcher.start()
        self.addCleanup(patcher.stop)
        self.client = self.client_cls.return_value

    def attach_req(self, **extra):
        return dict(resource='r0', spec=samples.spec(),
                    secret=samples.SECRET, **extra)

    def test_attach(self):
        self.client.connect.return_value = '/dev/drbd1000'
        result = self.ok('attach', **self.attach_req(
            device_path='/dev/drbd/by-res/r0/0', timeout=5))
        self.assertEqual({'resource': 'r0', 'device_path': '/dev/drbd1000'},
                         result)
        kwargs = self.client_cls.call_args[1]
        self.assertEqual(5, kwargs['attach_timeout'])
        self.assertEqual('nodea', kwargs['node_name'])
        self.assertEqual(str(self.res_dir), kwargs['resource_dir'])
        self.assertEqual(str(self.conf_file), kwargs['drbd_config'])
        self.client.connect.assert_called_once_with(
            'r0', resrender.render('r0', samples.spec()), samples.SECRET,
            '/dev/drbd/by-res/r0/0')

    def test_attach_default_timeout(self):
        self.client.connect.return_value = '/dev/drbd1000'
        self.ok('attach', **self.attach_req())
        self.assertEqual(60.0, self.client_cls.call_args[1]['attach_timeout'])

    def test_attach_timeout(self):
        self.client.connect.side_effect = client.AttachTimeout('slow')
        err, _ = self.error('attach', protocol.E_TIMEOUT, None,
                            **self.attach_req())
        self.assertIn('slow', err['message'])

    def test_attach_passes_agent_errors(self):
        self.client.connect.side_effect = AgentError(
            protocol.E_CONFLICT, 'minor taken', 'minor')
        self.error('attach', protocol.E_CONFLICT, 'minor',
                   **self.attach_req())

    def test_detach(self):
        self.ok('detach', resource='r0', force=True)
        self.client.disconnect.assert_called_once_with('r0', force=True)

    def test_detach_in_use(self):
        self.client.disconnect.side_effect = client.DeviceInUse('open')
        self.error('detach', protocol.E_BUSY, None, resource='r0')

    def test_detach_of_a_replica_is_a_conflict(self):
        self.client.disconnect.side_effect = client.ReplicaHere(
            'nodea holds a replica of r0')
        err, _ = self.error('detach', protocol.E_CONFLICT, None,
                            resource='r0')
        self.assertIn('holds a replica', err['message'])
