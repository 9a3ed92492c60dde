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
"""The README demo's output and clean-up (tools/demo.py)."""

import importlib.util
import io
import pathlib
from unittest import mock

import fixtures

from tests.e2e import scenario
from tests.e2e import stack as stack_mod
from tests.unit import base

TOP = pathlib.Path(__file__).resolve().parents[2]


def load_demo():
    spec = importlib.util.spec_from_file_location('demo',
                                                  TOP / 'tools' / 'demo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = load_demo()


def status_column(line):
    """Where the status starts: after the name and its padding."""
    return line.index(' ok ') + 1 if ' ok ' in line else line.index('FAILED')


class TableTest(base.TestCase):

    def test_every_step_of_the_demo_lines_up(self):
        names = demo.STEPS + tuple(scenario.Journey.step_names())
        self.assertIn(demo.STACK_STEP, names)
        self.assertGreater(max(map(len, names)), 40)
        table = demo.Table(names)
        rows = [table.row(scenario.Step(name, 'ok', 12.3, 'detail'))
                for name in names]
        rows.append(table.row(scenario.Step(names[0], 'FAILED', 0.5)))
        columns = {status_column(row) for row in rows}
        self.assertEqual(1, len(columns), '\n'.join(rows))
        for name, row in zip(names, rows):
            self.assertTrue(row.startswith(f'  {name} '), row)
            self.assertTrue(row.endswith('  12.3s  detail'), row)

    def test_a_name_longer_than_announced_gets_its_own_line(self):
        table = demo.Table(['short', 'a bit longer'])
        long = 'a step nobody announced, longer than the column'
        first, second = table.row(scenario.Step(long, 'ok', 1.0)).split('\n')
        self.assertEqual(f'  {long}', first)
        self.assertEqual(status_column(table.row(
            scenario.Step('short', 'ok', 1.0))), status_column(second))
        self.assertEqual('', second[:status_column(second)].strip())

    def test_the_journey_reports_the_names_announced(self):
        journey = scenario.Journey(mock.sentinel.stack, mock.sentinel.box)
        self.assertEqual(scenario.Journey.step_names(),
                         [name for name, _ in journey.plan()])

    def test_cinder_api_shown_without_a_url_template(self):
        stack = stack_mod.Stack('/nonexistent', {'b': {}})
        stack.ports['cinder'] = 8776
        detail = demo.services_detail(stack)
        self.assertEqual('cinder-api http://127.0.0.1:8776/v3', detail)
        self.assertNotIn('%(', detail)
        # The catalog keeps the template Keystone fills in.
        self.assertEqual('http://127.0.0.1:8776/v3/%(project_id)s',
                         stack.cinder_url)


class TidyTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.workdir = pathlib.Path(
            self.useFixture(fixtures.TempDir()).path) / 'blackstor-demo-x'
        logs = self.workdir / 'stack' / 'logs'
        logs.mkdir(parents=True)
        (logs / 'cinder-volume.log').write_bytes(b'x' * (3 << 20))
        self.out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', self.out))

    def printed(self):
        return self.out.getvalue()

    def test_removed_after_success(self):
        demo.tidy(self.workdir, succeeded=True)
        self.assertFalse(self.workdir.exists())
        self.assertEqual(f'Removed {self.workdir} (3 MB of state and '
                         'logs).\n', self.printed())

    def test_kept_after_a_failure_and_said_where(self):
        demo.tidy(self.workdir, succeeded=False)
        self.assertTrue((self.workdir / 'stack' / 'logs').is_dir())
        self.assertIn(f'Kept {self.workdir}; logs: {self.workdir}/stack/logs',
                      self.printed())

    def test_kept_when_asked(self):
        demo.tidy(self.workdir, succeeded=True, keep=True)
        self.assertTrue(self.workdir.is_dir())
        self.assertIn(f'Kept {self.workdir}', self.printed())

    def test_kept_while_something_is_mounted_below(self):
        mounted = f'{self.workdir}/box/standin/stor-a/dev'
        mounts = (f'sysfs /sys sysfs rw 0 0\n'
                  f'fuse {mounted} fuse rw 0 0\n'
                  f'fuse {self.workdir}-other/dev fuse rw 0 0\n')
        with mock.patch.object(demo, 'open', mock.mock_open(read_data=mounts),
                               create=True):
            self.assertEqual([mounted], demo.mounts_under(self.workdir))
        with mock.patch.object(demo, 'mounts_under',
                               return_value=[mounted]):
            demo.tidy(self.workdir, succeeded=True)
        self.assertTrue(self.workdir.is_dir())
        self.assertIn(f'still mounted there: {mounted}', self.printed())
