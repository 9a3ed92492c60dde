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
"""The one model of ``drbdsetup status --json`` (node/drbdstatus.py).

What the agent and cluster/ read of a status entry (the connector's
part is in test_connector.ParseStatusTestCase).
"""

import json

from blackstor_cinder.node import drbdstatus
from tests.unit import base
from tests.unit.node import samples


def entry(**fields):
    """A running resource: volume 0 UpToDate, one peer connected."""
    state = {'name': 'r0', 'node-id': 1, 'role': 'Secondary',
             'suspended': False, 'suspended-user': False,
             'devices': [{'volume': 0, 'minor': 1000,
                          'disk-state': 'UpToDate', 'size': 1048576}],
             'connections': [{'name': 'nodeb', 'peer-node-id': 2,
                              'connection-state': 'Connected',
                              'peer_devices': [{
                                  'volume': 0,
                                  'peer-disk-state': 'UpToDate'}]}]}
    state.update(fields)
    return state


class ModelTestCase(base.TestCase):

    def test_a_running_replica(self):
        state = drbdstatus.of(entry())
        self.assertEqual(1, state.node_id)
        self.assertEqual(1 << 30, state.size)
        self.assertEqual(1000, state.minor)
        self.assertEqual((1000,), state.minors)
        self.assertTrue(state.attached)
        self.assertFalse(state.user_suspended)
        self.assertEqual((), state.suspended_reasons)
        self.assertTrue(state.peers_connected)
        self.assertEqual({'local': 'UpToDate', 'nodeb': 'UpToDate'},
                         state.disk_states())

    def test_down_is_none(self):
        for down in (None, {}, 'junk'):
            self.assertIsNone(drbdstatus.of(down), down)
            self.assertIsNone(drbdstatus.device_size(down), down)

    def test_device_size(self):
        self.assertEqual(1 << 30, drbdstatus.device_size(entry()))
        for devices in ([{'volume': 0}], [{'volume': 1, 'size': 4}],
                        [{'volume': 0, 'size': True}]):
            self.assertIsNone(drbdstatus.device_size(
                entry(devices=devices)), devices)

    def test_attached_only_with_a_local_disk(self):
        for disk in ('Diskless', 'Detaching'):
            self.assertFalse(drbdstatus.of(entry(devices=[
                {'volume': 0, 'disk-state': disk}])).attached, disk)
        self.assertFalse(drbdstatus.of(entry(devices=[])).attached)
        self.assertTrue(drbdstatus.of(entry(devices=[
            {'volume': 0, 'disk-state': 'Inconsistent'}])).attached)

    def test_every_volume_counts_for_used_minors(self):
        state = drbdstatus.of(entry(devices=[
            {'volume': 0, 'minor': 7}, {'volume': 1, 'minor': 8},
            {'volume': 2}]))
        self.assertEqual(7, state.minor)
        self.assertEqual((7, 8), state.minors)

    def test_user_suspended(self):
        self.assertTrue(drbdstatus.of(
            entry(**{'suspended-user': True})).user_suspended)
        # without suspended-user: suspended, unless DRBD says it is not
        old = entry()
        del old['suspended-user']
        self.assertFalse(drbdstatus.of(old).user_suspended)
        del old['suspended']
        self.assertTrue(drbdstatus.of(old).user_suspended)

    def test_suspended_for_any_reason(self):
        state = drbdstatus.of(entry(**{'suspended': True,
                                       'suspended-quorum': True}))
        self.assertEqual(('suspended', 'suspended-quorum'),
                         state.suspended_reasons)
        self.assertFalse(state.user_suspended)

    def test_peers_connected(self):
        conns = entry()['connections']
        conns.append({'name': 'nodec', 'connection-state': 'Connecting'})
        self.assertFalse(drbdstatus.of(
            entry(connections=conns)).peers_connected)
        self.assertTrue(drbdstatus.of(entry(connections=[])).peers_connected)

    def test_disk_states_leave_out_what_is_not_reported(self):
        conns = [{'peer-node-id': 3, 'peer_devices': [{'volume': 0}]},
                 {'name': 'noded', 'peer_devices': []}]
        state = drbdstatus.of(entry(devices=[{'volume': 0}],
                                    connections=conns))
        # reported without a state: Unknown; a peer without the volume
        # and the local side without a device are left out
        self.assertEqual({'local': 'Unknown', '3': 'DUnknown'},
                         state.disk_states())
        self.assertEqual({}, drbdstatus.of(entry(
            devices=[], connections=[])).disk_states())

    def test_primary(self):
        self.assertFalse(drbdstatus.of(entry()).primary)
        self.assertTrue(drbdstatus.of(entry(role='Primary')).primary)
        self.assertFalse(drbdstatus.of(entry(role=None)).primary)

    def test_connected_peers(self):
        conns = entry()['connections'] + [
            {'name': 'nodec', 'connection-state': 'Connecting'},
            {'peer-node-id': 4, 'connection-state': 'Connected'},
            {'conn-name': 'noded', 'connection-state': 'Connected'}]
        state = drbdstatus.of(entry(connections=conns))
        # a peer reported without a name cannot be named
        self.assertEqual(('nodeb', 'noded'), state.connected_peers)
        self.assertEqual((), drbdstatus.of(
            entry(connections=[])).connected_peers)

    def test_peer_by_name(self):
        conns = entry()['connections'] + [
            {'name': 'nodec', 'connection-state': 'StandAlone'}]
        state = drbdstatus.of(entry(connections=conns))
        self.assertTrue(state.peer('nodeb').connected)
        self.assertEqual('UpToDate', state.peer('nodeb').disk)
        self.assertFalse(state.peer('nodec').connected)
        self.assertIsNone(state.peer('nodez'))

    def test_out_of_sync(self):
        def peer(**device):
            conn = dict(entry()['connections'][0],
                        peer_devices=[dict(volume=0, **device)])
            return drbdstatus.of(entry(connections=[conn])).peers[0]
        self.assertEqual(4096, peer(**{'out-of-sync': 4096}).out_of_sync)
        self.assertEqual(0, peer(**{'out-of-sync': 0}).out_of_sync)
        # not reported (no --statistics, older versions): None
        self.assertIsNone(peer().out_of_sync)
        self.assertIsNone(peer(**{'out-of-sync': 'junk'}).out_of_sync)


class CompactTestCase(base.TestCase):
    """``compact`` keeps what the model reads: ``of`` gives the same."""

    def assertSameModel(self, state):
        small = drbdstatus.compact(state)
        self.assertEqual(drbdstatus.of(state), drbdstatus.of(small))
        return small

    def test_full_entry_shrinks_to_the_read_fields(self):
        state = samples.status_entry(peers=('nodeb', 'nodec'))
        small = self.assertSameModel(state)
        self.assertLess(len(json.dumps(small)), len(json.dumps(state)) / 2)
        self.assertEqual(
            {'name', 'node-id', 'role', 'suspended', 'suspended-user',
             'devices', 'connections'}, set(small))
        self.assertEqual({'volume', 'minor', 'disk-state', 'client',
                          'quorum', 'open', 'size'},
                         set(small['devices'][0]))
        self.assertEqual({'volume', 'peer-disk-state', 'replication-state',
                          'out-of-sync'},
                         set(small['connections'][0]['peer_devices'][0]))
        self.assertNotIn('paths', small['connections'][0])

    def test_other_spellings_and_shapes(self):
        for state in (
                entry(connections=[{'conn-name': 'nodeb', 'peer_node_id': 2,
                                    'cstate': 'Connecting',
                                    'peer-devices': [{'pdsk': 'DUnknown',
                                                      'repl': 'Off'}]}]),
                entry(devices=[{'minor': 1000, 'disk': 'Diskless',
                                'opened': 'yes', 'client': 'yes'}]),
                entry(devices='broken', connections=None),
                entry(devices=[None, {'volume': 1, 'minor': 1001}],
                      connections=[None, {'name': 'x',
                                          'peer_devices': 'bad'}]),
                entry(suspended='yes', **{'suspended-user': 'no',
                                          'suspended-quorum': True,
                                          'suspended-fencing': False,
                                          'suspended-no-data': 'yes'})):
            self.assertSameModel(state)

    def test_suspension_reasons_keep_their_order(self):
        state = {'name': 'r0', 'suspended-quorum': True, 'suspended': True,
                 'suspended-user': True, 'suspended-fencing': False}
        small = self.assertSameModel(state)
        self.assertEqual(['suspended-quorum', 'suspended', 'suspended-user'],
                         list(small)[1:])
        self.assertEqual(('suspended-quorum', 'suspended', 'suspended-user'),
                         drbdstatus.of(small).suspended_reasons)

    def test_down_stays_down(self):
        for state in (None, {}):
            self.assertEqual(state, drbdstatus.compact(state))
