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
"""The benchmark's summaries, targets and table."""

from tests.bench import report
from tests.unit import base


def sample(seconds, trips, moved=1000, cpu=0.01):
    return {'seconds': seconds, 'cpu_seconds': cpu, 'round_trips': trips,
            'bytes': moved}


class ReportTestCase(base.TestCase):

    def test_percentile_nearest_rank(self):
        values = [5.0, 1.0, 3.0, 2.0, 4.0]
        self.assertEqual(5.0, report.percentile(values, 0.95))
        self.assertEqual(3.0, report.percentile(values, 0.5))
        self.assertEqual(95.0, report.percentile(
            [float(v) for v in range(1, 101)], 0.95))

    def test_summary(self):
        got = report.summary([
            sample(1.0, {'a': 2, 'b': 2}, 100),
            sample(3.0, {'a': 3, 'b': 1}, 300),
            sample(2.0, {'a': 1}, 200)])
        self.assertEqual(3, got['count'])
        self.assertEqual(2.0, got['median_s'])
        self.assertEqual(3.0, got['p95_s'])
        self.assertEqual(3, got['round_trips_per_node'])
        self.assertEqual(4, got['round_trips_total'])
        self.assertEqual(200, got['bytes_median'])

    def scale(self, volumes, create_s, create_trips):
        ops = {'create': report.summary([sample(create_s, create_trips)]),
               'detach': report.summary([sample(0.5, {'hv-1': 4})])}
        return {'volumes': volumes, 'ops': ops,
                'populate': {'added': volumes, 'seconds': volumes * 2.0}}

    def test_table_targets_and_ratio(self):
        results = {'scales': [self.scale(0, 2.0, {'a': 2}),
                              self.scale(100, 3.0, {'a': 3})],
                   'skipped': {1000: 'too slow'},
                   'machine_before': {'cpus': 2, 'load_average': [1, 2, 3]}}
        text = report.table(results)
        lines = text.splitlines()
        create0 = next(line for line in lines
                       if line.startswith('create') and ' 0 ' in line)
        create100 = next(line for line in lines
                         if line.startswith('create') and ' 100 ' in line)
        self.assertIn('<=2 ok', create0)
        self.assertIn('<=2 MISSED', create100)
        detach = next(line for line in lines if line.startswith('detach'))
        self.assertNotIn('<=', detach)          # no target for detach
        self.assertIn('create at 100 / create at 0 volumes (median): 1.50 '
                      '(target <= 1.2: MISSED)', text)
        self.assertIn('1000 volumes not measured: too slow', text)
        self.assertIn('populating to 100 volumes: 100 real creates in 200 s',
                      text)
        self.assertIn('2 CPUs, load average 1 2 3', text)

    def test_no_ratio_without_zero(self):
        self.assertIsNone(report.create_ratio([self.scale(100, 1.0, {})]))

    def test_seeded_population_says_so(self):
        scale = self.scale(1000, 2.0, {'a': 2})
        scale['populate'] = {'added': 1000, 'seconds': 9.0, 'how': 'seed'}
        text = report.table({'scales': [scale]})
        self.assertIn('populating to 1000 volumes: 1000 seeded (1 real '
                      'create, the rest written directly) in 9 s', text)

    def test_reference_beside_ours(self):
        scale = self.scale(0, 3.0, {'a': 2})
        scale['reference'] = {
            'create': report.summary([sample(0.5, {'lvm-ref': 2}),
                                      sample(1.5, {'lvm-ref': 4})])}
        text = report.table({'scales': [scale]})
        line = next(line for line in text.splitlines()
                    if line.startswith('create') and line.endswith('x'))
        self.assertEqual(['create', '0', '1.000', '1.500', '4', '3.0x'],
                         line.split())
        # detach has no counterpart in the reference
        self.assertEqual(1, sum(line.startswith('detach')
                                for line in text.splitlines()))

    def test_no_reference_no_reference_table(self):
        text = report.table({'scales': [self.scale(0, 3.0, {'a': 2})]})
        self.assertNotIn('LVM ref', text)
