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

from tests.functional import cluster_box
from tests.functional import test_faults
from tests.functional import test_flows

MiB = test_flows.MiB
GiB = cluster_box.GiB
NODES = ('stor-a', 'stor-b', 'stor-c', 'stor-d')
SIZE = 64 * MiB


class TestHeal(test_flows.BoxTestCase):

    box_args = {'transport': 'ssh', 'storage': NODES, 'pool_size': 2 * GiB}
    counting = 'heal cases'

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
