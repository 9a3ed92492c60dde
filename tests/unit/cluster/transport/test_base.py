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
"""Tests of the transports' shared parts: replies, masking."""

import json

import ddt

from blackstor_cinder.cluster import transport
from blackstor_cinder.cluster.transport import base as tp_base
from blackstor_cinder import protocol
from tests.unit import base
from tests.unit.cluster.transport import fakes


@ddt.ddt
class ParseReplyTestCase(base.TestCase):

    def test_ok_returns_result(self):
        self.assertEqual({'a': 1}, transport.parse_reply(
            'n1', 0, fakes.reply({'a': 1}), b''))

    def test_ok_without_result_is_empty(self):
        self.assertEqual({}, transport.parse_reply(
            'n1', 0, b'{"ok": true}\n', b''))

    def test_agent_error(self):
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 2,
            fakes.error('invalid-input', 'size: -1 is out of range',
                        'size', {'low': 1}), b'')
        self.assertNotIsInstance(exc, transport.NodeUnreachable)
        self.assertEqual(('n1', 'invalid-input', 'size', {'low': 1}),
                         (exc.node, exc.code, exc.field, exc.details))
        self.assertEqual('size: -1 is out of range', exc.message)
        self.assertEqual('n1: size: -1 is out of range', str(exc))

    def test_error_without_code_or_message(self):
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 1,
            b'{"ok": false, "error": "x"}', b'')
        self.assertEqual(protocol.E_INTERNAL, exc.code)
        self.assertIn('exit status 1', exc.message)
        self.assertIsNone(exc.field)

    @ddt.data(b'', b'not json', b'[1, 2]', b'{"result": {}}',
              b'{"ok": "yes"}', b'\xff\xfe', b'{"ok": true}{"ok": true}')
    def test_not_a_reply(self, stdout):
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 1, stdout,
            b'Traceback: KeyError: boom\n')
        self.assertEqual(protocol.E_INTERNAL, exc.code)
        self.assertIn('exit status 1', exc.message)
        self.assertIn('KeyError: boom', exc.message)

    def test_command_not_found(self):
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 127, b'',
            b'bash: line 1: blackstor-node: command not found')
        self.assertEqual(protocol.E_MISSING, exc.code)
        self.assertIn('command not found', exc.message)

    def test_killed_by_signal(self):
        exc = self.assertRaises(transport.NodeError, transport.parse_reply,
                                'n1', -9, b'', b'')
        self.assertIn('killed by signal 9', exc.message)

    def test_stderr_tail_is_bounded(self):
        stderr = b'x' * 100000 + b'THE END'
        exc = self.assertRaises(transport.NodeError, transport.parse_reply,
                                'n1', 1, b'', stderr)
        self.assertIn('THE END', exc.message)
        self.assertLess(len(exc.message), tp_base.STDERR_TAIL_CHARS + 200)

    def test_ok_with_failure_exit_status(self):
        exc = self.assertRaises(transport.NodeError, transport.parse_reply,
                                'n1', 1, fakes.reply({}), b'')
        self.assertEqual(protocol.E_INTERNAL, exc.code)

    def test_ok_with_result_not_a_dict(self):
        self.assertRaises(transport.NodeError, transport.parse_reply,
                          'n1', 0, b'{"ok": true, "result": [1]}', b'')

    def test_secret_scrubbed_from_errors(self):
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 4,
            fakes.error('conflict', f'bad file: net {{ shared-secret '
                        f'{fakes.SECRET}; }} and {fakes.SECRET}'), b'',
            secrets={fakes.SECRET})
        self.assertNotIn(fakes.SECRET, exc.message)
        self.assertIn('bad file', exc.message)
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 1, b'',
            f'drbdadm: {fakes.SECRET}'.encode(), secrets={fakes.SECRET})
        self.assertNotIn(fakes.SECRET, exc.message)
        self.assertIn('drbdadm', exc.message)


@ddt.ddt
class MaskTestCase(base.TestCase):

    def test_mask_request(self):
        request = {'op': 'attach', 'resource': 'volume-1',
                   'secret': fakes.SECRET,
                   'res_text': 'shared-secret "%s"' % (
                       protocol.SECRET_PLACEHOLDER),
                   'connection': {'provider_auth': 'other-secret-value'},
                   'hosts': [{'provider_auth': 'third-secret-value'}]}
        masked = json.dumps(transport.mask(request))
        for value in (fakes.SECRET, 'other-secret-value',
                      'third-secret-value'):
            self.assertNotIn(value, masked)
        self.assertIn('volume-1', masked)
        self.assertIn('attach', masked)
        # The original is untouched.
        self.assertEqual(fakes.SECRET, request['secret'])

    def test_mask_reply_definition(self):
        reply = {'ok': True, 'result': {'resources': {'volume-1': {
            'definition': {'name': 'volume-1', 'secret': fakes.SECRET,
                           'minor': 1000}}}}}
        masked = json.dumps(transport.mask(reply))
        self.assertNotIn(fakes.SECRET, masked)
        self.assertIn('1000', masked)

    def test_secrets_of(self):
        self.assertEqual({fakes.SECRET, 'pa'}, tp_base.secrets_of(
            {'op': 'x', 'secret': fakes.SECRET, 'resource': 'volume-1',
             'nested': [{'provider_auth': 'pa'}], 'size': 3}))
