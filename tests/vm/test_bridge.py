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
"""The drbdsetup forwarder (bash, in the VMs) against the bridge (host).

No VM needed: the forwarder runs here with the bridge's address in
BLACKSTOR_VM_BRIDGE, as drbdadm runs it inside a VM.
"""

import base64
import os
import pathlib
import shutil
import subprocess
import tempfile

import testtools

from tests.vm import bridge as bridge_mod

FORWARDER = pathlib.Path(__file__).parent / 'guest' / 'bin' / 'drbdsetup'


class ProtocolTestCase(testtools.TestCase):

    def test_request_lines(self):
        md = 'max-peers 7;\ncurrent-uuid 0x4;\n'
        text = ('node vm-a\narg attach\narg 1000\narg /dev/bs/v 1\n'
                'lv volume-1 71303168\nmd '
                + base64.b64encode(md.encode()).decode()
                + '\nend\n')
        self.assertEqual(
            {'node': 'vm-a', 'argv': ['attach', '1000', '/dev/bs/v 1'],
             'lvs': {'volume-1': 71303168}, 'md': md},
            bridge_mod.parse_request(text))
        self.assertRaises(ValueError, bridge_mod.parse_request, 'end\n')

    def test_answer_lines_write_meta_data_first(self):
        text = bridge_mod.format_reply({
            'rc': 10, 'stdout': 'a\nb', 'stderr': '', 'writeback': [
                {'minor': 1000, 'disk': '/dev/bs/v', 'move': True,
                 'gis': [(1, 'AB:CD:0:1')]}]})
        self.assertEqual(['move 1000 /dev/bs/v', 'gi 1000 /dev/bs/v 1 '
                          'AB:CD:0:1', 'out YQpi', 'rc 10'],
                         text.splitlines())


class ForwarderTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        root = tempfile.mkdtemp(prefix='bridge-test-')
        self.addCleanup(shutil.rmtree, root, True)
        self.bridge = bridge_mod.DrbdBridge(
            root, ['vm-a', 'vm-b'], 'blackstor', 'thinpool',
            lambda node, lv: None)
        self.addCleanup(self.bridge.close)

    def drbdsetup(self, *argv, node='vm-a'):
        env = dict(os.environ, __DRBD_NODE__=node,
                   BLACKSTOR_VM_BRIDGE=f'127.0.0.1:{self.bridge.port}')
        return subprocess.run(['bash', str(FORWARDER), *argv], env=env,
                              capture_output=True, text=True, timeout=60)

    def test_output_and_exit_code_come_back(self):
        proc = self.drbdsetup('new-resource', 'r0', '0')
        self.assertEqual((0, ''), (proc.returncode, proc.stderr))
        proc = self.drbdsetup('status', '--json', 'r0')
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertIn('"name": "r0"', proc.stdout)
        # The other VM sees its own kernel: nothing there.
        proc = self.drbdsetup('status', 'r0', node='vm-b')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('r0', proc.stderr)
        self.assertEqual([('vm-a', ['new-resource', 'r0', '0'], 0),
                          ('vm-a', ['status', '--json', 'r0'], 0)],
                         self.bridge.calls[:2])

    def test_bridge_gone(self):
        self.bridge.close()
        proc = self.drbdsetup('status')
        self.assertEqual(20, proc.returncode)
