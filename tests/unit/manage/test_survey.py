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
"""What the nodes say, and what of it is shown."""

from blackstor_cinder.manage import survey
from tests.unit import base


class PublicTest(base.TestCase):

    def test_public_drops_secrets(self):
        self.assertEqual({'net': {'protocol': 'C'}, 'hosts': [{'a': 1}]},
                         survey.public({'secret': 's', 'net': {
                             'protocol': 'C', 'shared-secret': 's'},
                             'hosts': [{'a': 1, 'Secret': 'x'}]}))


#: n1's ``drbdsetup status --json`` entry (with --statistics): n2 synced,
#: n3 behind by 8 KiB, a client connecting
STATE = {'name': 'volume-1', 'role': 'Primary', 'suspended': False,
         'suspended-user': True,
         'devices': [{'volume': 0, 'disk-state': 'UpToDate'}],
         'connections': [
             {'name': 'n2', 'connection-state': 'Connected',
              'peer_devices': [{'volume': 0, 'peer-disk-state': 'UpToDate',
                                'out-of-sync': 0}]},
             {'name': 'n3', 'connection-state': 'Connected',
              'peer_devices': [{'volume': 0,
                                'peer-disk-state': 'Inconsistent',
                                'out-of-sync': 8}]},
             {'name': 'hv1', 'connection-state': 'Connecting',
              'peer_devices': [{'volume': 0}]}]}


class StateTest(base.TestCase):
    """The status as blackstor-manage shows it (node/drbdstatus.py)."""

    def test_out_of_sync(self):
        self.assertEqual(8192, survey.out_of_sync(STATE))
        self.assertEqual(0, survey.out_of_sync(STATE, ['n1', 'n2']))
        # not reported (no --statistics), or not running: unknown
        self.assertIsNone(survey.out_of_sync(STATE, ['hv1']))
        self.assertIsNone(survey.out_of_sync(None))

    def test_node_view(self):
        self.assertEqual(
            {'running': True, 'role': 'Primary', 'disk': 'UpToDate',
             'suspended': True,
             'connections': {
                 'n2': {'connection': 'Connected', 'peer_disk': 'UpToDate',
                        'out_of_sync_bytes': 0},
                 'n3': {'connection': 'Connected',
                        'peer_disk': 'Inconsistent',
                        'out_of_sync_bytes': 8192},
                 'hv1': {'connection': 'Connecting', 'peer_disk': None}}},
            survey.node_view({'state': STATE}, None))
        self.assertEqual({'running': False}, survey.node_view(
            {'state': None}, None))

    def test_node_view_suspended_of_older_versions(self):
        # without suspended-user: what "suspended" says
        old = {key: value for key, value in STATE.items()
               if key != 'suspended-user'}
        self.assertIs(False, survey.node_view({'state': old},
                                              None)['suspended'])
