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
"""Retype live on the cluster in a box, over SSH: replicas and zones.

An attached volume goes from 3 replicas to 2 (a tiebreaker appears) and
back to 3 (it goes) while its client writes; the data is checked on
every replica's LV file after each step, and nothing is left behind.
"""

from blackstor_cinder.cluster import retype
from blackstor_cinder.node import resrender
from tests.functional import test_flows
from tests.functional import test_heal

MiB = test_flows.MiB
NODES = test_heal.NODES
SIZE = test_heal.SIZE
#: stor-a and stor-b share a zone
ZONES = {'stor-a': 'z1', 'stor-b': 'z1', 'stor-c': 'z2', 'stor-d': 'z3'}
SYNC_TIMEOUT = 120.0


class TestRetype(test_flows.BoxTestCase):

    box_args = dict(test_heal.TestHeal.box_args, zones=ZONES)
    counting = 'retype cases'

    def setUp(self):
        super().setUp()
        self.down: set[str] = set()

    stop_node = test_heal.TestHeal.stop_node
    start_node = test_heal.TestHeal.start_node
    volumes_on = test_heal.TestHeal.volumes_on
    replicas = test_heal.TestHeal.replicas
    assert_up_to_date = test_heal.TestHeal.assert_three_up_to_date

    def retype(self, vol, replicas, zones='any'):
        return retype.retype(self.ctl, vol, replicas, zones,
                             sync_timeout=SYNC_TIMEOUT)

    def tiebreakers(self, node, vol):
        return sorted(resrender.tiebreakers(self.res_text(node, vol)))

    def assert_only_on(self, vol, nodes):
        """No LV, .res or running resource of ``vol`` off ``nodes``."""
        others = [n for n in self.box.nodes if n not in nodes]
        left = {node: [i for i in items if vol in i] for node, items in
                self.box.leftovers(others).items()}
        self.assertEqual({}, {n: i for n, i in left.items() if i})

    def assert_client_sees(self, vol, client, replicas, tiebreaker=None):
        self.assertEqual(sorted(replicas), self.replicas(client, vol))
        self.assertEqual([tiebreaker] if tiebreaker else [],
                         self.tiebreakers(client, vol))

    def test_three_to_two_to_three_attached(self):
        vol, = self.volumes_on(('retype-1',), ('stor-a', 'stor-b', 'stor-c'))
        path = self.ctl.attach(vol, 'hv-1')
        fd = self.open_device(path)
        data = test_flows.random_chunks((0, MiB), (SIZE - MiB, MiB))
        self.write_chunks(fd, data)

        result = self.retype(vol, 2)
        self.assertEqual([], result.added)
        self.assertEqual(1, len(result.removed))
        kept = sorted({'stor-a', 'stor-b', 'stor-c'} - set(result.removed))
        tie = self.ctl.find(vol).spec.tiebreaker_host.name
        self.assertEqual(f'tiebreaker placed on {tie}', result.tiebreaker)
        self.assert_up_to_date(vol, kept)
        self.assert_lv_data(vol, kept, data)
        self.assert_client_sees(vol, 'hv-1', kept, tie)
        self.assertEqual([tie], self.tiebreakers(kept[0], vol))
        self.assert_only_on(vol, kept + [tie, 'hv-1'])
        later = test_flows.random_chunks((8 * MiB, MiB))
        self.write_chunks(fd, later)
        self.assert_device_data(fd, {**data, **later})
        self.assert_lv_data(vol, kept, later)
        self.ran('3 -> 2 attached: a replica removed (LV, .res, DRBD), a '
                 'tiebreaker placed, the client writes on to both')

        result = self.retype(vol, 3)
        self.assertEqual(1, len(result.added))
        self.assertEqual([], result.removed)
        self.assertEqual(f'removed from {tie}', result.tiebreaker)
        three = sorted(kept + result.added)
        self.assert_up_to_date(vol, three)
        # the new replica synced what was written before it existed
        self.assert_lv_data(vol, three, {**data, **later})
        self.assert_client_sees(vol, 'hv-1', three)
        self.assert_only_on(vol, three + ['hv-1'])
        last = test_flows.random_chunks((16 * MiB, MiB))
        self.write_chunks(fd, last)
        self.assert_device_data(fd, {**data, **later, **last})
        self.assert_lv_data(vol, three, last)
        stats = self.ctl.stats()
        self.assertEqual((), stats.degraded_volumes)
        self.assertEqual((), stats.divergent_volumes)
        self.ran('2 -> 3 attached: a new replica synced in full, the '
                 'tiebreaker removed, the client writes to all three')

        before = self.box.leftovers()
        result = self.retype(vol, 3)
        self.assertEqual(([], []), (result.added, result.removed))
        self.assertEqual(before, self.box.leftovers())
        self.ran('retype to what the volume is: nothing changed')

        self.close_device(fd)
        self.ctl.detach(vol, 'hv-1')
        self.ctl.delete_volume(vol)
        self.assert_clean()

    def test_spread_moves_a_replica_live(self):
        vol, = self.volumes_on(('retype-z',), ('stor-a', 'stor-b', 'stor-c'))
        path = self.ctl.attach(vol, 'hv-2')
        fd = self.open_device(path)
        data = test_flows.random_chunks((0, MiB), (SIZE - MiB, MiB))
        self.write_chunks(fd, data)
        result = self.retype(vol, 3, 'spread')
        self.assertEqual(['stor-d'], result.added)
        self.assertEqual(1, len(result.removed))
        self.assertIn(result.removed[0], ('stor-a', 'stor-b'))
        moved = sorted({'stor-a', 'stor-b', 'stor-c', 'stor-d'}
                       - set(result.removed))
        self.assertEqual(3, len({ZONES[n] for n in moved}))
        self.assert_up_to_date(vol, moved)
        self.assert_lv_data(vol, moved, data)
        self.assert_client_sees(vol, 'hv-2', moved)
        self.assert_only_on(vol, moved + ['hv-2'])
        self.ran('zones any -> spread attached: the replica sharing a zone '
                 'moved to the free zone live, data on every replica')

        self.close_device(fd)
        self.ctl.detach(vol, 'hv-2')
        self.ctl.delete_volume(vol)
        self.assert_clean()

    def test_a_replica_more_with_snapshots_is_refused(self):
        vol, = self.volumes_on(('retype-s',), ('stor-a', 'stor-b'))
        self.ctl.ensure_tiebreaker(vol)
        snap = self.snap('retype-s')
        self.ctl.create_snapshot(vol, snap)
        before = self.box.leftovers()
        result = self.retype(vol, 3)
        self.assertIn(snap, result.migrate)
        self.assertEqual(before, self.box.leftovers())
        self.ran('2 -> 3 with a snapshot: refused as a migration, nothing '
                 'changed')
        self.ctl.delete_snapshot(snap)
        self.ctl.delete_volume(vol)
        self.assert_clean()
