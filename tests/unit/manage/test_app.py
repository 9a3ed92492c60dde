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
"""The application: options, usage errors, help."""

import json

from tests.unit.manage import fakes as mf


class AppTest(mf.ManageTestCase):

    def test_options_after_the_command_words(self):
        code, out, err = self.run_main(
            'nodes', 'list', '--config-file', self.conf_file, '--backend',
            'blackstor-1', '-f', 'json', with_config=False)
        self.assertEqual(0, code, err)
        self.assertEqual(4, len(json.loads(out)))

    def test_usage_error_returns_2(self):
        code, out, err = self.run_main('nodes', 'explode')
        self.assertEqual((2, ''), (code, out))
        self.assertIn("'nodes explode' is not a command", err)
        self.assertIn('nodes list', err)
        code, out, err = self.run_main('nodes', 'list', '--bogus')
        self.assertEqual(2, code)
        self.assertIn('unrecognized arguments: --bogus', err)
        self.assertEqual([], self.cluster.requests)

    def test_no_command_is_a_usage_error(self):
        code, out, err = self.run_main()
        self.assertEqual((2, ''), (code, out))
        self.assertIn('a command is needed', err)

    def test_help_of_each_command(self):
        for words in (('nodes', 'list'), ('resources', 'list'),
                      ('resource', 'show'), ('check',), ('node', 'lost'),
                      ('node', 'evacuate')):
            for argv in (words + ('--help',), ('help',) + words):
                code, out, err = self.run_main(*argv)
                self.assertEqual(0, code, err)
                self.assertIn('usage: blackstor-manage ' + ' '.join(words),
                              out)
                self.assertIn('{json,shell,table,value,yaml}'
                              if words == ('resource', 'show') else
                              '{csv,json,table,value,yaml}', out)
                self.assertIn('-c COLUMN', out)
        code, out, _err = self.run_main('check', '--help')
        self.assertIn('--fix-orphan-lvs', out)
        code, out, _err = self.run_main('--help')
        self.assertEqual(0, code)
        self.assertIn('--config-file PATH', out)
        for words in ('nodes list', 'resources list', 'resource show',
                      'check', 'node lost', 'node evacuate'):
            self.assertIn(f'  {words}', out)
        self.assertEqual([], self.cluster.requests)
