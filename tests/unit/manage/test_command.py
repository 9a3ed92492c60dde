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
"""What every command shares: -f, -c, cells."""

import argparse
import io
import json

from cliff.formatters import json_format
from cliff.formatters import table
from cliff.formatters import yaml_format
import ddt
import yaml

from blackstor_cinder.manage import command
from tests.unit import base
from tests.unit.manage import fakes as mf


@ddt.ddt
class OutputTest(mf.ManageTestCase):

    @ddt.data('table', 'yaml')
    def test_other_formats_list_every_node(self, fmt):
        code, out, _err = self.run_main('nodes', 'list', '-f', fmt)
        self.assertEqual(0, code)
        if fmt == 'yaml':
            self.assertEqual(['n1', 'n2', 'n3', 'hv1'],
                             [r['Name'] for r in yaml.safe_load(out)])
        else:
            lines = out.splitlines()
            names = [line.split('|')[1].strip() for line in lines[3:-1]]
            self.assertEqual(['n1', 'n2', 'n3', 'hv1'], names)
            # Aligned: every line as wide as the border.
            self.assertEqual({len(lines[0])}, {len(x) for x in lines})
            self.assertIn('100.00', out)

    def test_columns(self):
        rows = self.run_json('nodes', 'list', '-c', 'Name', '-c', 'state')
        self.assertEqual({'Name', 'State'}, set(rows[0]))
        code, _out, err = self.run_main('nodes', 'list', '-c', 'nope')
        self.assertEqual(2, code)
        self.assertIn('Provisioned GiB', err)

    def test_unknown_format_asks_nothing(self):
        code, out, err = self.run_main('nodes', 'list', '-f', 'xml')
        self.assertEqual((2, ''), (code, out))
        self.assertIn("invalid choice: 'xml'", err)
        self.assertEqual([], self.cluster.requests)

    def test_csv_and_value(self):
        code, out, err = self.run_main('nodes', 'list', '-f', 'csv',
                                       '-c', 'Name', '-c', 'State')
        self.assertEqual(0, code, err)
        self.assertEqual(['"Name","State"', '"n1","up"', '"n2","up"',
                          '"n3","up"', '"hv1","up"'], out.splitlines())
        code, out, err = self.run_main('nodes', 'list', '-f', 'value',
                                       '-c', 'Name', '-c', 'Total GiB')
        self.assertEqual(0, code, err)
        self.assertEqual(['n1 100.0', 'n2 100.0', 'n3 100.0', 'hv1 None'],
                         out.splitlines())

    def test_sort_column(self):
        self.agent('n2').written_bytes = 25 * mf.G
        rows = self.run_json('nodes', 'list', '--sort-column', 'Name',
                             '--sort-descending')
        self.assertEqual(['n3', 'n2', 'n1', 'hv1'], [r['Name'] for r in rows])
        # Numbers as numbers; a node without a pool (None) last.
        code, out, err = self.run_main('nodes', 'list', '-f', 'value',
                                       '-c', 'Name', '--sort-column',
                                       'free_gib')
        self.assertEqual(0, code, err)
        self.assertEqual(['n2', 'n1', 'n3', 'hv1'], out.split())
        self.assertNotIn('Could not sort', err)

    def test_columns_as_cliff_names_them(self):
        rows = self.run_json('nodes', 'list', '-c', 'free_gib',
                             '-c', 'DRBD Kernel')
        self.assertEqual({'Free GiB', 'DRBD Kernel'}, set(rows[0]))


class FormatTest(base.TestCase):
    """Cells through cliff's formatters, as the commands hand them over."""

    ARGS = argparse.Namespace(max_width=0, fit_width=False,
                              print_empty=True, noindent=False)

    def emit_list(self, heads, rows):
        out = io.StringIO()
        table.TableFormatter().emit_list(
            heads, [[command.Cell(v) for v in row] for row in rows], out,
            self.ARGS)
        return out.getvalue()

    def emit_one(self, formatter, data):
        out = io.StringIO()
        formatter.emit_one(list(data),
                           [command.Cell(v) for v in data.values()], out,
                           self.ARGS)
        return out.getvalue()

    def test_multiline_cells_aligned(self):
        text = self.emit_list(
            ('A', 'Long heading'),
            [('x', {'n1': 'UpToDate', 'n2': 'Inconsistent'}),
             (1.5, ['a', 'b']), (None, True)])
        lines = text.splitlines()
        self.assertEqual({len(lines[0])}, {len(x) for x in lines})
        self.assertIn('| x    | n1=UpToDate     |', text)
        self.assertIn('|      | n2=Inconsistent |', text)
        self.assertIn('| 1.50 | a, b ', text)
        self.assertIn('True', text)

    def test_empty_list_shows_its_headings(self):
        lines = self.emit_list(('Kind', 'Node'), []).splitlines()
        self.assertEqual(['+------+------+', '| Kind | Node |'], lines[:2])
        self.assertEqual({'+------+------+'}, set(lines[2:]))

    def test_show_formats(self):
        data = {'Name': 'r', 'Nodes': {'n1': {'disk': 'UpToDate'}}}
        self.assertEqual(data, json.loads(
            self.emit_one(json_format.JSONFormatter(), data)))
        self.assertEqual(data, yaml.safe_load(
            self.emit_one(yaml_format.YAMLFormatter(), data)))
        shown = self.emit_one(table.TableFormatter(), data)
        self.assertIn('| Nodes | n1:             |\n'
                      '|       |   disk=UpToDate |', shown)
