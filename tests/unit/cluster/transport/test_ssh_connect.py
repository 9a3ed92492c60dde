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
"""Tests of opening SSH connections: keys, known hosts, command."""

import socket
from unittest import mock

import ddt
import paramiko

from blackstor_cinder.cluster import transport
from tests.unit.cluster.transport import fakes


@ddt.ddt
class RemoteCommandTestCase(fakes.SSHTestCase):

    @ddt.data(('sudo -n blackstor-node', 'sudo -n blackstor-node'),
              (['/usr/bin/python3', '/opt/agent.py', '--config-file=/a/b'],
               '/usr/bin/python3 /opt/agent.py --config-file=/a/b'),
              (('env', 'BLACKSTOR_NODE=n1', 'blackstor-node'),
               'env BLACKSTOR_NODE=n1 blackstor-node'))
    @ddt.unpack
    def test_remote_command(self, words, expected):
        self.assertEqual(expected, transport.remote_command(words))

    @ddt.data('', [], ['a b'], ['x;reboot'], 'a | b', 'a && b', '$(id)',
              '`id`', "a'b", 'a"b', 'a > /etc/x', 'a &', 'a*', '~/x',
              ['a\nb'], 'a\\b', ['x', ''], ['x', None], 'a#b', '(a)',
              'a{b}')
    def test_remote_command_refuses_shell_syntax(self, words):
        self.assertRaises(ValueError, transport.remote_command, words)


@ddt.ddt
class SSHConnectTestCase(fakes.SSHTestCase):

    def test_bad_command_refused_at_construction(self):
        self.assertRaises(ValueError, self._transport,
                          command='blackstor-node; rm -rf /')

    def test_ipv6_host_in_brackets(self):
        t = transport.SSHTransport(
            'n6', '[fd00::1]', user='u', private_key='k', known_hosts='h')
        self.assertEqual('fd00::1', t.host)
        self.assertIn('[fd00::1]:22', repr(t))

    def _connect_error(self, client, *words):
        self.clients.append(client)
        exc = self.assertRaises(transport.NodeUnreachable,
                                self._transport().call, {'op': 'inventory'})
        self.assertEqual(transport.E_UNREACHABLE, exc.code)
        for word in words:
            self.assertIn(word, exc.message)
        self.assertNotIn('PRIVATE-KEY-CONTENT', exc.message)
        self.assertTrue(client.closed)
        return exc

    def test_unknown_host_key(self):
        self._connect_error(fakes.FakeClient(missing_key=True),
                            'is not in', str(self.known_hosts),
                            'SHA256:abc', '192.0.2.10')

    def test_changed_host_key(self):
        got = mock.Mock(**{'get_name.return_value': 'ssh-ed25519',
                           'fingerprint': 'SHA256:new',
                           'get_base64.return_value': 'AAAnew'})
        expected = mock.Mock(**{'get_name.return_value': 'ssh-ed25519',
                                'fingerprint': 'SHA256:old',
                                'get_base64.return_value': 'AAAold'})
        self._connect_error(
            fakes.FakeClient(error=paramiko.BadHostKeyException(
                '[192.0.2.10]:2222', got, expected)),
            'does not match', 'SHA256:new', 'SHA256:old')

    def test_authentication_failed(self):
        self._connect_error(
            fakes.FakeClient(error=paramiko.AuthenticationException(
                'Authentication failed.')),
            'authentication as blackstor', 'failed')

    @ddt.data(socket.timeout('timed out'),
              paramiko.ssh_exception.NoValidConnectionsError(
                  {('192.0.2.10', 2222): ConnectionRefusedError()}),
              socket.gaierror(-2, 'Name or service not known'),
              EOFError(), paramiko.SSHException('Error reading SSH banner'))
    def test_cannot_connect(self, error):
        exc = self._connect_error(fakes.FakeClient(error=error),
                                  'cannot connect', '192.0.2.10:2222')
        self.assertNotIn('[Errno', exc.message)

    def test_no_address_answered_says_what_each_one_did(self):
        exc = self._connect_error(
            fakes.FakeClient(
                error=paramiko.ssh_exception.NoValidConnectionsError(
                    {('192.0.2.10', 2222): ConnectionRefusedError(
                        111, 'Connection refused')})),
            'cannot connect to 192.0.2.10:2222: Unable to connect to port '
            '2222 on 192.0.2.10 (Connection refused)')
        self.assertNotIn('Errno', exc.message)

    def test_missing_known_hosts_file(self):
        self.known_hosts.unlink()
        self._connect_error(fakes.FakeClient(), 'known_hosts',
                            str(self.known_hosts))

    def test_private_key_unreadable(self):
        self.from_path.side_effect = FileNotFoundError(2, 'No such file')
        exc = self.assertRaises(transport.NodeUnreachable,
                                self._transport().call, {'op': 'x'})
        self.assertIn(str(self.key_path), exc.message)
        self.assertEqual([], self.made)

    @ddt.data(paramiko.PasswordRequiredException('encrypted'),
              paramiko.SSHException('bad key PRIVATE-KEY-CONTENT'),
              ValueError('PRIVATE-KEY-CONTENT-DO-NOT-SHOW'),
              paramiko.ssh_exception.SSHException(
                  'not a valid key: PRIVATE-KEY-CONTENT'))
    def test_private_key_bad(self, error):
        self.from_path.side_effect = error
        exc = self.assertRaises(transport.NodeUnreachable,
                                self._transport().call, {'op': 'x'})
        self.assertIn(str(self.key_path), exc.message)
        self.assertNotIn('PRIVATE-KEY-CONTENT', exc.message)
        self.assertNotIn('PRIVATE-KEY-CONTENT', self.logger.output)

    # Threads.
