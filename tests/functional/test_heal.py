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
"""Node loss and evacuation on the cluster in a box, over SSH.

``blackstor-manage node lost|evacuate`` run as an operator runs them
(the CLI against a cinder.conf of the box); the data is checked on every
replica's LV file, the returning node's leftover is removed by ``check
--fix``, and nothing is left behind.
"""

import json
import pathlib
import subprocess
import sys

from blackstor_cinder.node import resrender
from tests.functional import cluster_box
from tests.functional import test_faults
from tests.functional import test_flows

MiB = test_flows.MiB
GiB = cluster_box.GiB
NODES = ('stor-a', 'stor-b', 'stor-c', 'stor-d')
SIZE = 64 * MiB


class HealBoxTestCase(test_flows.BoxTestCase):
    """What the heal cases share: blackstor-manage, replica checks."""

    def zones(self, node, vol):
        """The zone policy the node's .res of ``vol`` records."""
        return resrender.zones(self.res_text(node, vol))

    def setUp(self):
        super().setUp()
        self.conf_path = self.box.cinder_conf()
        self.manage = str(pathlib.Path(sys.executable).parent /
                          'blackstor-manage')
        self.down: set[str] = set()

    stop_node = test_faults.TestFaults.stop_node
    start_node = test_faults.TestFaults.start_node

    def run_manage(self, *args):
        return subprocess.run(
            [self.manage, '--config-file', str(self.conf_path), *args],
            capture_output=True, text=True, timeout=300)

    def volumes_on(self, tags, nodes):
        """Volumes whose replicas are on ``nodes`` (the others down)."""
        others = [n for n in NODES if n not in nodes]
        for node in others:
            self.stop_node(node)
        names = []
        for tag in tags:
            names.append(self.name(tag))
            self.ctl.create_volume(names[-1], SIZE, replicas=len(nodes))
        for node in others:
            self.start_node(node)
        return names

    def replicas(self, node, vol):
        return sorted(h['name'] for h in self.definition(node, vol)['hosts']
                      if h['diskful'])

    def assert_three_up_to_date(self, vol, nodes):
        for node in nodes:
            self.assertEqual(sorted(nodes), self.replicas(node, vol), node)
            state = self.state(node, vol)
            self.assertEqual('UpToDate', state['devices'][0]['disk-state'],
                             f'{vol} on {node}')
            for conn in state['connections']:
                if conn['name'] in nodes:
                    self.assertEqual('Connected', conn['connection-state'])
                    self.assertEqual(
                        0, conn['peer_devices'][0]['out-of-sync'])


class TestHeal(HealBoxTestCase):

    box_args = {'transport': 'ssh', 'storage': NODES, 'pool_size': 2 * GiB}
    counting = 'heal cases'

    def test_node_lost_heals_and_its_return_is_an_orphan(self):
        vols = self.volumes_on(('heal-1', 'heal-2'),
                               ('stor-a', 'stor-b', 'stor-c'))
        path = self.ctl.attach(vols[0], 'hv-1')
        fd = self.open_device(path)
        data = test_flows.random_chunks((0, MiB), (SIZE - MiB, MiB))
        self.write_chunks(fd, data)
        self.assert_lv_data(vols[0], ('stor-a', 'stor-b', 'stor-c'), data)

        self.stop_node('stor-a')
        proc = self.run_manage('node', 'lost', 'stor-a', '-f', 'json')
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        rows = {r['Resource']: r for r in json.loads(proc.stdout)}
        self.assertEqual({v: 'stor-d' for v in vols},
                         {v: r['To'] for v, r in rows.items()})
        self.assertIn('healed 2 volume(s) off stor-a', proc.stderr)
        healed = ('stor-b', 'stor-c', 'stor-d')
        for vol in vols:
            self.assert_three_up_to_date(vol, healed)
        # the new replica holds what was written before it existed
        self.assert_lv_data(vols[0], healed, data)
        # the client was given the new replica and writes reach it
        client = sorted(h['name'] for h in self.definition(
            'hv-1', vols[0])['hosts'] if h['diskful'])
        self.assertEqual(list(healed), client)
        later = test_flows.random_chunks((8 * MiB, MiB))
        self.write_chunks(fd, later)
        self.assert_lv_data(vols[0], healed, later)
        self.ran('node lost: every volume back at 3 UpToDate replicas, '
                 'same data on each, the client writes to the new one')

        proc = self.run_manage('node', 'lost', 'stor-a')
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        self.assertIn('healed 0 volume(s)', proc.stderr)
        self.ran('node lost again: nothing to do')

        # stor-a boots with its old replicas: they never re-join
        self.start_node('stor-a')
        self.assertEqual({'stor-a': sorted(
            f'{kind}:{v}{ext}' for v in vols for kind, ext in (
                ('drbd', ''), ('lv', ''), ('res', '.res')))},
            {n: i for n, i in self.box.leftovers(['stor-a']).items()})
        for vol in vols:
            self.assertNotIn('stor-a', self.replicas('stor-b', vol))
        proc = self.run_manage('check', '--fix')
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        self.assertEqual({}, self.box.leftovers(['stor-a']))
        for vol in vols:
            self.assert_three_up_to_date(vol, healed)
        self.assert_lv_data(vols[0], healed, {**data, **later})
        stats = self.ctl.stats()
        self.assertEqual((), stats.degraded_volumes)
        self.assertEqual((), stats.divergent_volumes)
        self.ran('the lost node returns: its replicas are orphans, check '
                 '--fix removes them')

        self.close_device(fd)
        self.ctl.detach(vols[0], 'hv-1')
        for vol in vols:
            self.ctl.delete_volume(vol)
        self.assert_clean()

    def test_bad_node_refused(self):
        for bad in ('stor-z', 'hv-1'):
            proc = self.run_manage('node', 'lost', bad)
            self.assertEqual(1, proc.returncode, proc.stderr)
            self.assertIn('not a configured storage node', proc.stderr)
        proc = self.run_manage('node', 'lost', 'stor-b')
        self.assertEqual(1, proc.returncode, proc.stderr)
        self.assertIn('evacuate', proc.stderr)
        self.ran('node lost of an unknown node or one that answers: '
                 'refused')

    def test_evacuate_live(self):
        vols = self.volumes_on(('evac-1',), ('stor-a', 'stor-b', 'stor-c'))
        snap = self.snap('evac-1')
        self.ctl.create_snapshot(vols[0], snap)
        path = self.ctl.attach(vols[0], 'hv-1')
        fd = self.open_device(path)
        data = test_flows.random_chunks((0, MiB), (SIZE - MiB, MiB))
        self.write_chunks(fd, data)

        proc = self.run_manage('node', 'evacuate', 'stor-a', '-f', 'json')
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        rows = json.loads(proc.stdout)
        self.assertEqual([(vols[0], 'stor-d', [snap])],
                         [(r['Resource'], r['To'], r['Snapshots'])
                          for r in rows])
        self.assertIn(snap, proc.stderr)
        moved = ('stor-b', 'stor-c', 'stor-d')
        self.assert_three_up_to_date(vols[0], moved)
        self.assert_lv_data(vols[0], moved, data)
        self.assertEqual({}, self.box.leftovers(['stor-a']))
        later = test_flows.random_chunks((4 * MiB, MiB))
        self.write_chunks(fd, later)
        self.assert_device_data(fd, {**data, **later})
        self.assert_lv_data(vols[0], moved, later)
        self.ran('evacuate: the replica moved live, the old one removed '
                 'with its snapshot copy, the client writes on')

        self.close_device(fd)
        self.ctl.detach(vols[0], 'hv-1')
        self.ctl.delete_snapshot(snap)
        self.ctl.delete_volume(vols[0])
        self.assert_clean()


class TestHealZones(HealBoxTestCase):
    """A spread volume on an any backend heals into a free zone.

    The backend's blackstor_zone_policy is any (cinder.conf of the box);
    the volume was created spread (its type's blackstor:zones), which its
    .res records: ``node lost`` runs without Cinder and places by it.
    """

    box_args = {'transport': 'ssh', 'pool_size': 2 * GiB,
                'storage': NODES + ('stor-e',),
                'zones': {'stor-a': 'z1', 'stor-b': 'z2', 'stor-c': 'z3',
                          'stor-d': 'z3', 'stor-e': 'z1'}}
    counting = 'heal zone cases'

    def test_node_lost_places_by_the_volumes_zone_policy(self):
        on = ('stor-a', 'stor-b', 'stor-c')
        for node in ('stor-d', 'stor-e'):
            self.stop_node(node)
        spread, any_ = self.name('zones-s'), self.name('zones-a')
        self.ctl.create_volume(spread, SIZE, replicas=3,
                               zone_policy='spread')
        self.ctl.create_volume(any_, SIZE, replicas=3)
        for node in ('stor-d', 'stor-e'):
            self.start_node(node)
        self.assertEqual('spread', self.zones('stor-b', spread))
        self.assertEqual('any', self.zones('stor-b', any_))
        path = self.ctl.attach(spread, 'hv-1')
        fd = self.open_device(path)
        data = test_flows.random_chunks((0, MiB), (SIZE - MiB, MiB))
        self.write_chunks(fd, data)
        self.assert_lv_data(spread, on, data)

        self.stop_node('stor-a')
        proc = self.run_manage('node', 'lost', 'stor-a', '-f', 'json')
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        rows = {r['Resource']: r['To'] for r in json.loads(proc.stdout)}
        # stor-d shares zone z3 with stor-c: the spread volume goes to
        # stor-e (z1); the any volume may share a zone
        self.assertEqual({spread: 'stor-e', any_: 'stor-d'}, rows)
        healed = ('stor-b', 'stor-c', 'stor-e')
        self.assert_three_up_to_date(spread, healed)
        self.assert_three_up_to_date(any_, ('stor-b', 'stor-c', 'stor-d'))
        self.assert_lv_data(spread, healed, data)
        for node in healed:
            self.assertEqual('spread', self.zones(node, spread), node)
        self.ran('node lost without Cinder: the spread volume heals into '
                 'the free zone, the any volume next to a replica')

        self.close_device(fd)
        self.ctl.detach(spread, 'hv-1')
        self.start_node('stor-a')
        proc = self.run_manage('check', '--fix')
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        for vol in (spread, any_):
            self.ctl.delete_volume(vol)
        self.assert_clean()


class TestHealTiebreaker(HealBoxTestCase):
    """Three nodes: the lost replica comes back on the tiebreaker's node."""

    box_args = {'transport': 'ssh', 'pool_size': 2 * GiB,
                'storage': ('stor-a', 'stor-b', 'stor-c')}
    counting = 'heal tiebreaker cases'

    def test_node_lost_the_tiebreaker_becomes_the_replica(self):
        vol = self.name('tie-1')
        spec = self.ctl.create_volume(vol, SIZE, replicas=2)
        tie = spec.tiebreaker_host.name
        lost, keeper = [h.name for h in spec.diskful_hosts]
        path = self.ctl.attach(vol, 'hv-1')
        fd = self.open_device(path)
        data = test_flows.random_chunks((0, MiB), (SIZE - MiB, MiB))
        self.write_chunks(fd, data)

        self.stop_node(lost)
        proc = self.run_manage('node', 'lost', lost, '-f', 'json')
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        rows = json.loads(proc.stdout)
        self.assertEqual([(vol, tie)], [(r['Resource'], r['To'])
                                        for r in rows if r['To']])
        self.assertIn(f'its tiebreaker on {tie} became its new replica',
                      ' '.join(str(r) for r in rows))
        healed = tuple(sorted((keeper, tie)))
        self.assert_three_up_to_date(vol, healed)
        self.assert_lv_data(vol, healed, data)
        host = next(h for h in self.definition(keeper, vol)['hosts']
                    if h['name'] == tie)
        self.assertEqual((spec.tiebreaker_host.node_id, True),
                         (host['node_id'], host['diskful']))
        self.assertEqual(set(), resrender.tiebreakers(
            self.res_text(keeper, vol)))
        later = test_flows.random_chunks((8 * MiB, MiB))
        self.write_chunks(fd, later)
        self.assert_lv_data(vol, healed, later)
        self.assertEqual((vol,), self.ctl.stats().without_tiebreaker)
        self.ran('node lost on three nodes: the tiebreaker became the '
                 'replica (new LV, create-md, attach, full sync), the '
                 'client writes to it')

        self.close_device(fd)
        self.ctl.detach(vol, 'hv-1')
        self.start_node(lost)
        proc = self.run_manage('check', '--fix')
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        self.ctl.delete_volume(vol)
        self.assert_clean()
