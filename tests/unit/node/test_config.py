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
"""The agent's configuration."""

import os

import fixtures

from blackstor_cinder.node import config
from tests.unit import base


class ConfigTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable(config.CONFIG_ENV,
                                                     None))

    def write(self, text):
        path = os.path.join(self.dir, 'node.conf')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_defaults(self):
        self.useFixture(fixtures.EnvironmentVariable('__DRBD_NODE__',
                                                     'pretend'))
        conf = config.load([])
        self.assertEqual([], conf.pools)
        self.assertEqual('/etc/drbd.d', conf.resource_dir)
        self.assertEqual('/etc/drbd.conf', conf.drbd_config)
        self.assertEqual('pretend', conf.node_name)
        self.assertEqual('', conf.root_helper)
        self.assertEqual('/dev', conf.device_root)
        self.assertEqual(7, conf.max_peers)

    def test_node_name_from_uname(self):
        self.useFixture(fixtures.EnvironmentVariable('__DRBD_NODE__', None))
        self.assertEqual(os.uname().nodename, config.load([]).node_name)

    def test_file(self):
        conf = config.load([self.write(
            '[node]\npools = vg0/thin,vg+1/tp\nnode_name = n1\n'
            'root_helper = sudo -n\nattach_timeout = 5\nmax_peers = 3\n')])
        self.assertEqual(['vg0/thin', 'vg+1/tp'], conf.pools)
        self.assertEqual('n1', conf.node_name)
        self.assertEqual('sudo -n', conf.root_helper)
        self.assertEqual(5.0, conf.attach_timeout)
        self.assertEqual(3, conf.max_peers)

    def test_bad_values(self):
        for text in ('pools = vg0', 'pools = vg0/a/b', 'node_name = a b',
                     'max_peers = 32', 'attach_timeout = x'):
            self.assertRaises(ValueError, config.load,
                              [self.write('[node]\n' + text + '\n')])

    def test_missing_file(self):
        self.assertRaises(OSError, config.load, ['/nonexistent/node.conf'])

    def test_config_files(self):
        self.assertEqual((['a'], True), config.config_files(['a']))
        self.useFixture(fixtures.EnvironmentVariable(config.CONFIG_ENV,
                                                     '/x.conf'))
        self.assertEqual((['/x.conf'], True), config.config_files(None))
        self.assertEqual((['a'], True), config.config_files(['a']))

    def test_list_opts(self):
        [(group, opts)] = config.list_opts()
        self.assertEqual('node', group)
        self.assertIn('pools', [o.name for o in opts])
