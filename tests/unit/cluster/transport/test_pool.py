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
"""Tests of make_transport and TransportPool."""

from unittest import mock

from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import transport
from tests.unit import base


class MakeTransportTestCase(base.TestCase):

    def test_local(self):
        node = model.Node('host-1', '10.0.0.1')
        t = transport.make_transport(node, local_command=['agent', '-x'],
                                     local_env={'A': 'b'}, timeout=7)
        self.assertIsInstance(t, transport.LocalTransport)
        self.assertEqual(('host-1', ['agent', '-x'], {'A': 'b'}, 7.0),
                         (t.node, t.argv, t.env, t.timeout))

    def test_local_default_command(self):
        t = transport.make_transport(model.Node('host-1', '10.0.0.1'))
        self.assertEqual(['blackstor-node'], t.argv)

    def test_ssh(self):
        node = model.Node('host-2', '10.0.0.2', ssh_host='host-2.example',
                          ssh_port=2200)
        t = transport.make_transport(
            node, ssh_user='cinder', ssh_private_key='/k',
            ssh_known_hosts='/kh', ssh_command='sudo blackstor-node',
            connect_timeout=4, timeout=9)
        self.assertIsInstance(t, transport.SSHTransport)
        self.assertEqual(
            ('host-2', 'host-2.example', 2200, 'cinder', '/k', '/kh',
             'sudo blackstor-node', 4.0, 9.0),
            (t.node, t.host, t.port, t.user, t.private_key, t.known_hosts,
             t.command, t.connect_timeout, t.timeout))

    def test_ssh_needs_keys(self):
        node = model.Node('host-2', '10.0.0.2', ssh_host='host-2.example')
        self.assertRaises(ValueError, transport.make_transport, node,
                          ssh_user='cinder')

    def test_ssh_bad_port(self):
        node = model.Node('host-2', '10.0.0.2', ssh_host='h', ssh_port=0)
        self.assertRaises(ValueError, transport.make_transport, node,
                          ssh_user='u', ssh_private_key='/k',
                          ssh_known_hosts='/kh')


class TransportPoolTestCase(base.TestCase):

    def test_one_transport_per_node(self):
        made = []

        def factory(node):
            t = mock.Mock(node=node.name)
            made.append(t)
            return t

        pool = transport.TransportPool(factory)
        a = model.Node('a', '10.0.0.1', ssh_host='a')
        b = model.Node('b', '10.0.0.2', ssh_host='b')
        self.assertIs(pool.get(a), pool.get(a))
        self.assertIsNot(pool.get(a), pool.get(b))
        self.assertEqual(2, len(made))
        # A node that moved gets a new transport; the old one is closed.
        moved = model.Node('a', '10.0.0.1', ssh_host='a2')
        self.assertIsNot(made[0], pool.get(moved))
        made[0].close.assert_called_once_with()
        pool.close()
        for t in made[1:]:
            t.close.assert_called_once_with()
