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

import ddt
from oslo_config import cfg
import testtools

from blackstor_cinder import backend
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport
from blackstor_cinder import options


@ddt.ddt
class HostPortTest(testtools.TestCase):

    @ddt.data(('stor1', ('stor1', 22)),
              ('192.0.2.1:2222', ('192.0.2.1', 2222)),
              ('2001:db8::1', ('2001:db8::1', 22)),
              ('[2001:db8::1]:2200', ('2001:db8::1', 2200)),
              ('[::1]', ('::1', 22)))
    @ddt.unpack
    def test_host_port(self, text, expected):
        self.assertEqual(expected, backend.host_port(text, 22))


class ClusterConfigTest(testtools.TestCase):

    def conf(self, **overrides):
        conf = cfg.ConfigOpts()
        conf.register_opts(options.blackstor_opts)
        conf([])
        defaults = {'blackstor_storage_nodes': ['a', 'b'],
                    'blackstor_ssh_addresses': {'a': '192.0.2.1',
                                                'b': 'local'},
                    'blackstor_replication_addresses': {'b': '192.0.2.2'}}
        for key, value in {**defaults, **overrides}.items():
            conf.set_override(key, value)
        return conf

    def test_nodes_and_transports(self):
        conf = self.conf(blackstor_local_node_command='env X=1 agent')
        config = backend.cluster_config(conf, 20.0)
        a, b = config.storage_nodes
        self.assertEqual(('192.0.2.1', 22, '192.0.2.1'),
                         (a.ssh_host, a.ssh_port, a.replication_address))
        self.assertIsNone(b.ssh_host)
        factory = backend.transport_factory(conf)
        local = factory(b)
        self.assertIsInstance(local, transport.LocalTransport)
        self.assertEqual(['env', 'X=1', 'agent'], local.argv)

    def test_drbd_options_checked_at_start_up(self):
        config = backend.cluster_config(self.conf(
            blackstor_net_options={'max-buffers': '8000'},
            blackstor_disk_options={'al-extents': '6007'}), 20.0)
        self.assertEqual({'al-extents': '6007'}, config.disk_options)
        for key, value, why in (
                ('blackstor_disk_options', {'size': '10G'}, 'not a disk '
                 'option BlackStor sets'),
                ('blackstor_net_options', {'shared-secret': 'x'}, 'not a '
                 'net option BlackStor sets'),
                ('blackstor_disk_options', {'handlers': 'x'}, 'not a '
                 'disk option'),
                ('blackstor_net_options', {'max-buffers': '1; x'},
                 'not a number'),
                ('blackstor_net_options', {'max-buffers': '31'},
                 'out of range 32..131072'),
                ('blackstor_disk_options', {'c-max-rate': '5G'},
                 'out of range 0..4194304')):
            exc = self.assertRaises(errors.InvalidRequest,
                                    backend.cluster_config,
                                    self.conf(**{key: value}), 20.0)
            self.assertIn(key, str(exc))
            self.assertIn(why, str(exc))

    def test_bad_pool(self):
        self.assertRaises(errors.InvalidRequest, backend.cluster_config,
                          self.conf(blackstor_pool='vg/../x'), 20.0)
