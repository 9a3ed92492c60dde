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
"""The checks the flows wait on, read from an agent's ``state``."""

import ddt

from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import sync
from tests.unit import base

SPEC = model.ResourceSpec('volume-1', 1000, 7000, (
    model.ResourceHost('n1', 0, '10.0.0.1', True, '/dev/vg/volume-1'),
    model.ResourceHost('n2', 1, '10.0.0.2', True, '/dev/vg/volume-1'),
    model.ResourceHost('hv1', 2, '10.0.1.1', False)))


def state(local='UpToDate', connection='Connected', **peer_device):
    """n1's status: its disk, and its connection to n2 (the replica)."""
    return {'name': 'volume-1', 'role': 'Secondary',
            'devices': [{'volume': 0, 'disk-state': local}],
            'connections': [
                {'name': 'n2', 'connection-state': connection,
                 'peer_devices': [dict(volume=0, **peer_device)]},
                # a client's connection does not count for the replicas
                {'name': 'hv1', 'connection-state': 'Connecting',
                 'peer_devices': [{'volume': 0}]}]}


def uptodate(**fields):
    return state(**{'peer-disk-state': 'UpToDate',
                    'replication-state': 'Established', **fields})


@ddt.ddt
class ChecksTest(base.TestCase):

    def test_peer_devices_of_the_other_replicas(self):
        peers = sync.peer_devices(SPEC, 'n1', uptodate())
        self.assertEqual(['n2'], list(peers))
        self.assertEqual('UpToDate', peers['n2'].disk)
        self.assertIsNone(sync.peer_devices(SPEC, 'n1', None))
        self.assertIsNone(sync.peer_devices(
            SPEC, 'n1', uptodate(connection='Connecting')))
        self.assertIsNone(sync.peer_devices(
            SPEC, 'n1', dict(uptodate(), connections=[])))

    @ddt.data(({'peer-disk-state': 'Inconsistent',
                'replication-state': 'Established'}, True),
              # a replication state not reported counts as Established
              ({'peer-disk-state': 'Inconsistent'}, True),
              ({'peer-disk-state': 'Inconsistent',
                'replication-state': 'SyncSource'}, False),
              ({'peer-disk-state': 'UpToDate'}, False),
              ({}, False))
    @ddt.unpack
    def test_ready_to_skip_sync(self, peer_device, ready):
        self.assertIs(ready, sync.ready_to_skip_sync(
            SPEC, 'n1', state(local='Inconsistent', **peer_device)))

    def test_skip_sync_waits_for_the_connection_and_the_disk(self):
        just_up = {'peer-disk-state': 'Inconsistent'}
        self.assertIs(False, sync.ready_to_skip_sync(
            SPEC, 'n1', state('Inconsistent', 'Connecting', **just_up)))
        self.assertIs(False, sync.ready_to_skip_sync(
            SPEC, 'n1', state('Attaching', **just_up)))
        self.assertIs(False, sync.ready_to_skip_sync(SPEC, 'n1', None))
        # an UpToDate disk on a just-created resource: not ours to skip
        self.assertIsNone(sync.ready_to_skip_sync(
            SPEC, 'n1', state('UpToDate', **just_up)))

    @ddt.data(({}, True), ({'out-of-sync': 0}, True),
              ({'out-of-sync': 8}, False),
              ({'peer-disk-state': 'Outdated'}, False))
    @ddt.unpack
    def test_in_sync(self, fields, synced):
        self.assertIs(synced, sync.in_sync(SPEC, 'n1', uptodate(**fields)))

    def test_in_sync_can_no_longer_hold_in_a_resync(self):
        self.assertIsNone(sync.in_sync(SPEC, 'n1', uptodate(
            **{'replication-state': 'SyncTarget'})))
        self.assertIs(False, sync.in_sync(
            SPEC, 'n1', uptodate(local='Inconsistent')))
        self.assertIs(False, sync.in_sync(
            SPEC, 'n1', uptodate(connection='Connecting')))

    @ddt.data(('SyncSource', 'Inconsistent', True),
              ('Established', 'UpToDate', True),
              ('Established', 'Inconsistent', False),
              ('SyncTarget', 'Inconsistent', False))
    @ddt.unpack
    def test_sync_started(self, replication, peer_disk, started):
        self.assertIs(started, sync.sync_started(SPEC, 'n1', state(**{
            'peer-disk-state': peer_disk,
            'replication-state': replication})))

    def test_brief(self):
        self.assertEqual('not running', sync._brief(None))
        self.assertEqual('not running', sync._brief({}))
        self.assertEqual(
            'connections [n2=Connected, hv1=Connecting] disks '
            '[local=UpToDate, n2=UpToDate, hv1=DUnknown]',
            sync._brief(uptodate()))
