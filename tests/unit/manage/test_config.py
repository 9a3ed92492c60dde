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
"""The backend section of cinder.conf, and its errors."""

import os

import ddt

from blackstor_cinder.manage import config
from tests.unit.manage import fakes as mf


@ddt.ddt
class ConfigTest(mf.ManageTestCase):

    @ddt.data(
        # (backend section, backend_defaults, expected)
        ('blackstor_replicas = 4', 'blackstor_replicas = 2', 4),
        ('', 'blackstor_replicas = 2', 2),
        ('', '', 3),
    )
    @ddt.unpack
    def test_backend_section_then_backend_defaults(self, mine, shared,
                                                   expected):
        path = self.write('c.conf', f'[backend_defaults]\n{shared}\n'
                                    f'[b]\n{mine}\n')
        conf = config.load_backend([path], 'b')
        self.assertEqual(expected, conf.blackstor_replicas)

    def test_empty_list_in_backend_section_wins(self):
        path = self.write('c.conf', '[backend_defaults]\n'
                                    'blackstor_client_nodes = a,b\n'
                                    '[b]\nblackstor_client_nodes =\n'
                                    '[c]\n')
        self.assertEqual([], config.load_backend(
            [path], 'b').blackstor_client_nodes)
        self.assertEqual(['a', 'b'], config.load_backend(
            [path], 'c').blackstor_client_nodes)

    def test_later_config_file_wins(self):
        extra = self.write('extra.conf', '[blackstor-1]\n'
                                         'blackstor_pool = vg2/thin\n')
        conf = config.load_backend([self.conf_file, extra], 'blackstor-1')
        self.assertEqual('vg2/thin', conf.blackstor_pool)
        self.assertEqual(['n1', 'n2', 'n3'], conf.blackstor_storage_nodes)

    def test_only_blackstor_backend_is_the_default(self):
        conf = config.load_backend([self.conf_file])
        self.assertEqual('blackstor-1', conf.group)
        self.assertEqual('vg/pool', conf.blackstor_pool)

    def test_two_blackstor_backends_need_a_name(self):
        path = self.write('two.conf', mf.CONF.replace(
            'lvm-1,blackstor-1', 'blackstor-1,blackstor-2') +
            '[blackstor-2]\nvolume_driver = blackstor_cinder.driver.X\n')
        e = self.assertRaises(config.ConfigError, config.load_backend,
                              [path])
        self.assertIn('blackstor-1, blackstor-2', str(e))

    @ddt.data(('--backend', 'nope'), ('--backend', 'lvm-1'))
    def test_bad_backend_is_a_clear_error(self, extra):
        code, out, err = self.run_main(*extra, 'nodes', 'list')
        self.assertEqual(2, code)
        self.assertEqual('', out)
        self.assertIn(extra[1], err)
        self.assertNotIn('Traceback', err)

    def test_missing_config_file(self):
        code, out, err = self.run_main(
            '--config-file', os.path.join(self.dir, 'none.conf'), 'nodes',
            'list', with_config=False)
        self.assertEqual(2, code)
        self.assertIn('none.conf', err)

    def test_invalid_backend_values(self):
        path = self.write('bad.conf', '[b]\nblackstor_storage_nodes = '
                                      'bad_name!\n')
        code, _out, err = self.run_main('--config-file', path, '--backend',
                                        'b', 'nodes', 'list',
                                        with_config=False)
        self.assertEqual(2, code)
        self.assertIn('bad_name!', err)
        self.assertNotIn('Traceback', err)
