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
"""blackstor-manage node lost|evacuate, in-process on the fake agents."""

from tests.unit.cluster import fakes
from tests.unit.manage import fakes as tm

READS = ('inventory', 'status')
STORAGE = tm.STORAGE + ('n4',)
CONF = tm.CONF.replace(
    'blackstor_storage_nodes = n1,n2,n3',
    'blackstor_storage_nodes = n1,n2,n3,n4').replace(
    'n3:10.0.0.3,', 'n3:10.0.0.3,n4:10.0.0.4,').replace(
    'n3:z3', 'n3:z3,n4:z4')


class NodeCommandTest(tm.ManageTestCase):

    def setUp(self):
        super().setUp()
        # A fourth storage node: two replicas, the tiebreaker, one free.
        self.conf_file = self.write('cinder.conf', CONF)
        self.with_origins(self.cluster.add('n4', pool_bytes=100 * tm.G))
        controller = self.controller()
        spec = controller.create_volume(tm.VOL_A, tm.G, replicas=2)
        self.holders = [h.name for h in spec.diskful_hosts]
        self.free = next(n for n in STORAGE if n not in self.holders
                         and n != spec.tiebreaker_host.name)

    def replicas(self, node):
        definition = fakes.parse_res(self.agent(node).res[tm.VOL_A][0])
        return sorted(h['name'] for h in definition['hosts']
                      if h['diskful'])

    def changes(self):
        return [r for _, r in self.cluster.requests
                if r['op'] not in READS]

    def test_node_lost(self):
        lost, kept = self.holders
        self.cluster.down.add(lost)
        rows = self.run_json('node', 'lost', lost)
        self.assertEqual([{'Resource': tm.VOL_A, 'From': lost,
                           'To': self.free, 'Result': 'moved',
                           'Snapshots': []}], rows)
        self.assertEqual(sorted([kept, self.free]), self.replicas(kept))
        code, out, err = self.run_main('node', 'lost', lost)
        self.assertEqual(0, code, err)
        self.assertIn('healed 0 volume(s)', err)

    def test_node_evacuate(self):
        leaving = self.holders[0]
        rows = self.run_json('node', 'evacuate', leaving)
        self.assertEqual([(tm.VOL_A, self.free, 'moved')],
                         [(r['Resource'], r['To'], r['Result'])
                          for r in rows])
        self.assertNotIn(tm.VOL_A, self.agent(leaving).lvs)
        self.assertNotIn(tm.VOL_A, self.agent(leaving).res)

    def test_refused_nothing_changed(self):
        before = len(self.changes())
        for argv, code, words in (
                (('node', 'lost', 'n9'), 1, 'not a configured storage'),
                (('node', 'lost', 'hv1'), 1, 'not a configured storage'),
                (('node', 'lost', self.holders[0]), 1, 'evacuate'),
                (('node', 'lost', 'n1', '--parallel', '0'), 2,
                 'not a positive integer'),
                (('node', 'evacuate', 'n1', '--sync-timeout', 'x'), 2,
                 'not a positive number')):
            got, _out, err = self.run_main(*argv)
            self.assertEqual(code, got, err)
            self.assertIn(words, err)
        self.assertEqual(before, len(self.changes()))

    def test_unmovable_exits_1(self):
        # every other node holds it or is down: nowhere to go (the
        # tiebreaker's node would take it: see the next test)
        lost = self.holders[0]
        tie = next(n for n in STORAGE if n not in self.holders
                   and n != self.free)
        self.cluster.down |= {lost, self.free, tie}
        code, out, err = self.run_main('node', 'lost', lost, '-f', 'json')
        self.assertEqual(1, code, err)
        self.assertIn('not moved', out)

    def test_the_tiebreakers_node_the_last_one_left(self):
        lost, kept = self.holders
        tie = next(n for n in STORAGE if n not in self.holders
                   and n != self.free)
        self.cluster.down |= {lost, self.free}
        rows = self.run_json('node', 'lost', lost)
        self.assertEqual([(tm.VOL_A, tie, 'moved')],
                         [(r['Resource'], r['To'], r['Result'])
                          for r in rows if r['To']])
        self.assertIn(f'its tiebreaker on {tie} became its new replica',
                      ' '.join(r['Result'] for r in rows))
        self.assertEqual(sorted([kept, tie]), self.replicas(kept))
