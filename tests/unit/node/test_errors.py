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
"""AgentError and its replies."""


from blackstor_cinder.node import errors
from blackstor_cinder import protocol
from tests.unit import base


class ErrorsTestCase(base.TestCase):

    def test_reply(self):
        e = errors.AgentError(protocol.E_CONFLICT, 'clash', 'minor', n=1)
        self.assertEqual(4, e.exit_code)
        self.assertEqual({'ok': False, 'error': {
            'code': 'conflict', 'message': 'clash', 'field': 'minor',
            'details': {'n': 1}}}, e.reply())

    def test_unknown_code(self):
        self.assertRaises(ValueError, errors.AgentError, 'oops', 'x')

    def test_command_error(self):
        e = errors.CommandError(
            ['drbdadm', 'up', 'r0'], 10, 'out',
            '\n   found __DRBD_NODE__ in environment\n'
            '   PRETENDING that I am >>a<<\nsh: 1: modinfo: not found\n'
            'r0: Failure: (114) Lower device is already claimed\n')
        self.assertEqual(protocol.E_FAILED, e.code)
        self.assertEqual(10, e.rc)
        self.assertEqual('drbdadm up r0 failed with exit code 10: r0: '
                         'Failure: (114) Lower device is already claimed',
                         e.message)
