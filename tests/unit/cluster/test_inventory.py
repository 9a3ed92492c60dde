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
"""Reading what the nodes report: sizes, definitions, DRBD state."""

import logging

import ddt
import fixtures

from blackstor_cinder.cluster import inventory as inv
from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import resspec
from blackstor_cinder.node import resrender
from tests.unit import base

G = 1 << 30


def _render(spec):
    """The .res the agent renders for ``spec`` as the controller sends it."""
    return resrender.render(spec.name, resspec.to_wire(spec))


def definition(disk=None, name='volume-1'):
    return {'name': name, 'minor': 1000, 'secret': 'x' * 32,
            'options': {}, 'net': {}, 'disk': disk or {},
            'hosts': [{'name': 'n1', 'node_id': 0, 'address': '10.0.0.1',
                       'port': 7000, 'family': 'ipv4', 'diskful': True,
                       'disk': '/dev/vg/volume-1'},
                      {'name': 'hv1', 'node_id': 1, 'address': '10.0.1.1',
                       'port': 7000, 'family': 'ipv4', 'diskful': False,
                       'disk': None}]}


CONFIG = model.ClusterConfig(
    storage_nodes=(model.Node('n1', '10.0.0.1'),), pool='vg/pool',
    minors=range(1000, 1100), ports=range(7000, 7100),
    disk_options={'al-extents': '6007'})


@ddt.ddt
class SizeTest(base.TestCase):

    def test_definition_size(self):
        self.assertEqual(2 * G, inv.definition_size(
            definition({'size': '2097152k', 'al-extents': '6007'})))
        self.assertIsNone(inv.definition_size(definition()))
        self.assertIsNone(inv.definition_size(None))
        self.assertIsNone(inv.definition_size({'name': 'x'}))
        # DRBD's default: no size set
        self.assertIsNone(inv.definition_size(definition({'size': '0'})))

    @ddt.data(1536, 4096, G, 3 * G)
    def test_what_the_agent_renders_reads_back(self, size):
        self.assertEqual(size, inv.definition_size(
            definition({'size': resrender.size_option(size)})))

    # node/drbd.size_bytes reads the value (its tests hold the units)
    @ddt.data('1T', '1.5G', 'k', 1024, [])
    def test_unreadable_size_is_not_set(self, value):
        log = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        self.assertIsNone(inv.definition_size(definition({'size': value})))
        self.assertIn(repr(value), log.output)


class SpecFromDefinitionTest(base.TestCase):

    def test_size_from_the_node_policies_from_config(self):
        spec = inv.spec_from_definition(
            definition({'size': '1048576k', 'c-max-rate': '1M'}), CONFIG)
        self.assertEqual(G, spec.size)
        self.assertEqual({'al-extents': '6007'}, spec.disk_options)
        self.assertIn('size 1048576k;', _render(spec))

    def test_old_res_without_size_stays_uncapped(self):
        spec = inv.spec_from_definition(definition(), CONFIG)
        self.assertIsNone(spec.size)
        self.assertNotIn('size', _render(spec))

    def test_zone_policy_from_the_node(self):
        spec = inv.spec_from_definition(dict(definition(), zones='spread'),
                                        CONFIG)
        self.assertEqual('spread', spec.zone_policy)
        self.assertIn('# blackstor-zones spread\n', _render(spec))

    def test_no_or_unknown_zone_policy_is_none(self):
        for zones in (None, 'Spread', 3):
            spec = inv.spec_from_definition(dict(definition(), zones=zones),
                                            CONFIG)
            self.assertIsNone(spec.zone_policy, zones)
            self.assertNotIn('blackstor-zones', _render(spec))
        self.assertIsNone(inv.spec_from_definition(
            definition(), CONFIG).zone_policy)


class NodeInventoryTest(base.TestCase):

    def test_device_sizes(self):
        lv_size = 2 * G + (8 << 20)
        report = inv.NodeInventory.from_reply('n1', {
            'hostname': 'n1',
            'resources': {
                'volume-1': {'definition': definition(
                    {'size': '2097152k'}), 'state': None},
                'volume-2': {'definition': definition(name='volume-2'),
                             'state': None},
                'volume-3': {'definition': None, 'error': 'unreadable',
                             'state': None}},
            'volumes': [{'name': 'volume-1', 'size_bytes': lv_size},
                        {'name': 'volume-2', 'size_bytes': G}]})
        self.assertEqual({'volume-1': 2 * G}, report.device_sizes())
        self.assertEqual({'volume-1': lv_size, 'volume-2': G},
                         report.volumes)

    def test_values_taken_by_other_resources(self):
        report = inv.NodeInventory.from_reply('hv1', {
            'hostname': 'hv1',
            'resources': {'volume-other': {'definition': None,
                                           'state': None}},
            'used_minors': [1000, 1001], 'used_ports': [7001]})
        self.assertEqual([('minor', 1000)],
                         report.taken_by_others('volume-1', 1000, 7000))
        self.assertEqual([('minor', 1001), ('port', 7001)],
                         report.taken_by_others('volume-1', 1001, 7001))
        self.assertEqual([], report.taken_by_others('volume-1', 1002, 7002))
        # a resource the node already has uses its own values
        self.assertEqual([], report.taken_by_others('volume-other', 1001,
                                                    7001))


class StateTest(base.TestCase):
    """The controller's view of a node's ``state`` (node/drbdstatus.py)."""

    STATE = {'name': 'r0',
             'devices': [{'volume': 0, 'disk-state': 'UpToDate'}],
             'connections': [
                 {'name': 'nodeb', 'connection-state': 'Connected',
                  'peer_devices': [{'volume': 0,
                                    'peer-disk-state': 'Inconsistent'}]},
                 {'name': 'nodec', 'connection-state': 'Connecting',
                  'peer_devices': [{'volume': 0}]}]}

    def test_disk_states(self):
        self.assertEqual({'local': 'UpToDate', 'nodeb': 'Inconsistent',
                          'nodec': 'DUnknown'},
                         inv.disk_states(self.STATE))
        self.assertEqual({}, inv.disk_states(None))
        # no device reported: no local disk state (not "Unknown")
        self.assertIsNone(inv.disk_states(
            {'name': 'r0', 'devices': []}).get('local'))

    def test_peers_connected(self):
        self.assertFalse(inv.peers_connected(self.STATE))
        self.assertFalse(inv.peers_connected(None))
        self.assertTrue(inv.peers_connected({'name': 'r0'}))
        connected = dict(self.STATE,
                         connections=self.STATE['connections'][:1])
        self.assertTrue(inv.peers_connected(connected))

    def test_connected_peers(self):
        self.assertEqual(('nodeb',), inv.connected_peers(self.STATE))
        self.assertEqual((), inv.connected_peers(None))
        self.assertEqual((), inv.connected_peers({'name': 'r0'}))

    def test_is_primary(self):
        self.assertTrue(inv.is_primary(dict(self.STATE, role='Primary')))
        self.assertFalse(inv.is_primary(dict(self.STATE, role='Secondary')))
        self.assertFalse(inv.is_primary(self.STATE))        # not reported
        for down in (None, {}):
            self.assertFalse(inv.is_primary(down), down)


class LvFamiliesTest(base.TestCase):

    def test_linked_either_way(self):
        # a reverted volume is a snapshot of its snapshot, whose own
        # origin (the old volume LV) is gone; a volume made from the
        # snapshot links to it too; an unrelated volume stands alone
        volumes = {'volume-a': {'origin': 'snap-1'},
                   'volume-b': {'origin': 'snap-1'},
                   'volume-c': {'origin': None}}
        snapshots = {'snap-1': {'origin': None},
                     'snap-2': {'origin': 'volume-c'}}
        families = inv.lv_families(volumes, snapshots)
        self.assertEqual({'volume-a', 'volume-b', 'snap-1'},
                         families['volume-a'])
        self.assertEqual(families['volume-a'], families['snap-1'])
        self.assertEqual({'volume-c', 'snap-2'}, families['snap-2'])

    def test_unknown_without_origins(self):
        self.assertIsNone(inv.lv_families({'volume-a': {}}, {}))
