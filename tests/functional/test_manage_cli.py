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
"""blackstor-manage, the console script, against a cluster in a box."""

import json
import pathlib
import subprocess
import sys

import testtools

from tests.functional import cluster_box


class ManageCLITest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        why = cluster_box.missing_prerequisites()
        if why:
            self.skipTest(why)
        self.box = self.useFixture(cluster_box.ClusterInABox())
        self.conf_path = self.box.cinder_conf()
        self.manage = str(pathlib.Path(sys.executable).parent /
                          'blackstor-manage')

    def run_manage(self, *args):
        return subprocess.run(
            [self.manage, '--config-file', str(self.conf_path), *args],
            capture_output=True, text=True, timeout=300)

    def test_nodes_list_json_has_every_node(self):
        proc = self.run_manage('nodes', 'list', '-f', 'json')
        self.assertEqual(0, proc.returncode, proc.stderr)
        rows = json.loads(proc.stdout)
        by_name = {row['Name']: row for row in rows}
        self.assertEqual(set(self.box.nodes), set(by_name))
        for name, node in self.box.nodes.items():
            self.assertEqual('up', by_name[name]['State'], by_name[name])
        self.assertGreater(by_name['stor-a']['Total GiB'], 0)

    def test_unreachable_node_and_check(self):
        controller = self.box.controller()
        controller.create_volume('volume-m1', 1 << 30)
        self.addCleanup(controller.delete_volume, 'volume-m1')
        proc = self.run_manage('check')
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        self.box.stop_node('stor-c')
        self.addCleanup(self.box.start_node, 'stor-c')
        proc = self.run_manage('nodes', 'list', '-f', 'json')
        rows = {row['Name']: row for row in json.loads(proc.stdout)}
        self.assertEqual('unreachable', rows['stor-c']['State'])
        self.assertEqual('up', rows['stor-a']['State'])
