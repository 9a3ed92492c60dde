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

from blackstor_cinder import backend
from blackstor_cinder.cluster import errors
from blackstor_cinder.cluster import transport
from blackstor_cinder import options
from tests.unit import base


@ddt.ddt
class HostPortTest(base.TestCase):

    @ddt.data(('stor1', ('stor1', 22)),
              ('192.0.2.1:2222', ('192.0.2.1', 2222)),
              ('2001:db8::1', ('2001:db8::1', 22)),
              ('[2001:db8::1]:2200', ('2001:db8::1', 2200)),
              ('[::1]', ('::1', 22)))
    @ddt.unpack
    def test_host_port(self, text, expected):
        self.assertEqual(expected, backend.host_port(text, 22))


def make_conf(**overrides):
    """A backend's options: two storage nodes, defaults, ``overrides``."""
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


class ClusterConfigTest(base.TestCase):

    conf = staticmethod(make_conf)

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
        self.assertEqual({'max-buffers': '8000', 'verify-alg': 'crc32c'},
                         config.net_options)
        config = backend.cluster_config(self.conf(
            blackstor_net_options={'verify-alg': 'sha256'}), 20.0)
        self.assertEqual({'verify-alg': 'sha256'}, config.net_options)
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


@ddt.ddt
class WorkableConfigTest(base.TestCase):
    """Start-up refuses what no volume could work with."""

    @ddt.data((3, 3, 4), (1, 1, 2), (8, 8, 9))
    @ddt.unpack
    def test_max_peers_without_room_for_a_live_migration(self, replicas,
                                                         max_peers, needed):
        exc = self.assertRaises(errors.InvalidRequest,
                                backend.cluster_config,
                                make_conf(blackstor_replicas=replicas,
                                          blackstor_max_peers=max_peers),
                                20.0)
        self.assertIn(f'blackstor_max_peers = {max_peers} gives a volume '
                      f'room for {max_peers + 1} hosts', str(exc))
        self.assertIn(f'blackstor_replicas = {replicas}', str(exc))
        self.assertIn(f'set blackstor_max_peers to {needed} or more',
                      str(exc))
        config = backend.cluster_config(
            make_conf(blackstor_replicas=replicas,
                      blackstor_max_peers=needed), 20.0)
        self.assertEqual(needed, config.max_peers)

    def test_quorum_off_refused_where_replicas_can_diverge(self):
        exc = self.assertRaises(errors.InvalidRequest,
                                backend.cluster_config,
                                make_conf(blackstor_quorum='off'), 20.0)
        self.assertIn('blackstor_quorum = off', str(exc))
        self.assertIn('allow-two-primaries', str(exc))
        self.assertIn('Set blackstor_quorum = majority', str(exc))
        for quorum in ('majority', 'all'):
            backend.cluster_config(make_conf(blackstor_quorum=quorum), 20.0)

    def test_quorum_off_with_one_storage_node(self):
        # every volume has one replica: nothing to diverge from
        config = backend.cluster_config(make_conf(
            blackstor_quorum='off', blackstor_storage_nodes=['a'],
            blackstor_replicas=1), 20.0)
        self.assertEqual('off', config.quorum)

    def test_two_replicas_without_tiebreaker_warn_only(self):
        # two storage nodes: no third one for a tiebreaker
        config = backend.cluster_config(make_conf(blackstor_replicas=2),
                                        20.0)
        [warning] = backend.setup_warnings(config)
        self.assertIn('blackstor_replicas = 2 and no tiebreaker (a '
                      'tiebreaker needs a third storage node)', warning)
        self.assertIn('use blackstor_replicas = 3', warning)
        for replicas in (1, 3):
            config = backend.cluster_config(
                make_conf(blackstor_replicas=replicas), 20.0)
            self.assertEqual([], backend.setup_warnings(config))

    def three_nodes(self, **overrides):
        return backend.cluster_config(make_conf(
            blackstor_replicas=2, blackstor_storage_nodes=['a', 'b', 'c'],
            blackstor_ssh_addresses={'a': '192.0.2.1', 'b': 'local',
                                     'c': '192.0.2.3'}, **overrides), 20.0)

    def test_two_replicas_with_a_third_node_start_quietly(self):
        self.assertEqual([], backend.setup_warnings(self.three_nodes()))

    def test_two_replicas_without_room_for_a_tiebreaker_warn(self):
        # 2 replicas + 2 clients fill max_peers 3: no tiebreaker
        [warning] = backend.setup_warnings(self.three_nodes(
            blackstor_max_peers=3))
        self.assertIn('blackstor_max_peers = 3 leaves no room', warning)


@ddt.ddt
class RangesTest(base.TestCase):
    """The minor and port ranges, alone and beside other backends."""

    conf = staticmethod(make_conf)

    @ddt.data(('blackstor_minor_range', '0-1048575',
               range(0, 1048576)),
              ('blackstor_minor_range', '1000-1000', range(1000, 1001)),
              ('blackstor_port_range', '1024-65535', range(1024, 65536)))
    @ddt.unpack
    def test_ranges_at_the_limits(self, option, text, expected):
        config = backend.cluster_config(self.conf(**{option: text}), 20.0)
        got = config.minors if 'minor' in option else config.ports
        self.assertEqual(expected, got)

    @ddt.data(('blackstor_minor_range', '2000-1000'),
              ('blackstor_minor_range', '1000-1048576'),
              ('blackstor_port_range', '8000-7000'),
              ('blackstor_port_range', '7000-65536'),
              ('blackstor_port_range', '1-1023'))
    @ddt.unpack
    def test_ranges_refused(self, option, text):
        exc = self.assertRaises(errors.InvalidRequest,
                                backend.cluster_config,
                                self.conf(**{option: text}), 20.0)
        self.assertIn(option, str(exc))
        self.assertIn(text, str(exc))

    def ranges(self, name, minors='1000-1999', ports='7000-7999',
               nodes=('a', 'b'), clients=(), unlisted=True):
        return backend.BackendRanges.of(name, self.conf(
            blackstor_minor_range=minors, blackstor_port_range=ports,
            blackstor_storage_nodes=list(nodes),
            blackstor_client_nodes=list(clients),
            blackstor_allow_unlisted_clients=unlisted))

    def test_default_ranges_on_the_same_hypervisors_refused(self):
        one = self.ranges('one', nodes=('a',), clients=('hv1',),
                          unlisted=False)
        two = self.ranges('two', nodes=('b',), clients=('hv1', 'hv2'),
                          unlisted=False)
        exc = self.assertRaises(errors.InvalidRequest,
                                backend.check_disjoint, one, [two])
        message = str(exc)
        for part in ('[one] blackstor_minor_range 1000-1999',
                     '[two] blackstor_minor_range 1000-1999',
                     '[one] blackstor_port_range 7000-7999',
                     'both list hv1'):
            self.assertIn(part, message)

    def test_unlisted_clients_may_meet_anywhere(self):
        one = self.ranges('one', nodes=('a',), unlisted=False)
        two = self.ranges('two', nodes=('b',), minors='1500-2999',
                          ports='9000-9999')
        exc = self.assertRaises(errors.InvalidRequest,
                                backend.check_disjoint, one, [two])
        self.assertIn('share 1500-1999', str(exc))
        self.assertIn('[two] accepts unlisted clients', str(exc))
        self.assertNotIn('port_range 7000', str(exc))

    @ddt.data(
        # disjoint ranges on the same hosts
        (dict(), dict(minors='2000-2999', ports='8000-8999')),
        # the same ranges on hosts that never meet
        (dict(nodes=('a',), clients=('hv1',), unlisted=False),
         dict(nodes=('b',), clients=('hv2',), unlisted=False)),
        # adjacent ranges
        (dict(minors='1000-1999', ports='7000-7499'),
         dict(minors='2000-2999', ports='7500-7999')))
    @ddt.unpack
    def test_accepted(self, one, two):
        backend.check_disjoint(self.ranges('one', **one),
                               [self.ranges('two', **two)])

    def test_every_other_backend_is_named(self):
        own = self.ranges('one')
        exc = self.assertRaises(
            errors.InvalidRequest, backend.check_disjoint, own,
            [self.ranges('two', minors='5000-5999', ports='7990-8100'),
             self.ranges('three', ports='9000-9100')])
        self.assertIn('[two] blackstor_port_range 7990-8100 share '
                      '7990-7999', str(exc))
        self.assertIn('[three] blackstor_minor_range 1000-1999', str(exc))
        self.assertNotIn('[two] blackstor_minor_range', str(exc))
