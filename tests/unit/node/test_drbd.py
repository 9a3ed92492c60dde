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
"""drbdadm / drbdsetup / drbdmeta calls of the agent."""

import json
from unittest import mock

import fixtures
from oslo_concurrency import processutils

from blackstor_cinder.node import drbd
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node.errors import CommandError
from blackstor_cinder.node import executor
from blackstor_cinder import protocol
from tests.unit import base


# drbdmeta 9.22 get-gi right after create-md (run on a loop device).
GI_JUST_CREATED = ('0000000000000004:0000000000000000:0000000000000000:'
                   '0000000000000000:0:0:0:0:1:0:0:0:0:0:0:0\n')


def failure(rc, stderr):
    return processutils.ProcessExecutionError(exit_code=rc, stdout='',
                                              stderr=stderr)


class DrbdTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.execute = mock.Mock(return_value=('', ''))
        self.drbd = drbd.Drbd(executor.Executor(self.execute), '/etc/d.conf',
                              'nodea', proc_files=())

    def argv(self):
        return [list(c[0]) for c in self.execute.call_args_list]

    def test_drbdadm_commands(self):
        self.drbd.up('r0')
        self.drbd.adjust('r0')
        self.drbd.down('r0')
        self.drbd.create_md('r0', 7)
        self.drbd.wipe_md('r0')
        self.drbd.resize('r0', True)
        self.drbd.resize('r0', False)
        self.drbd.new_current_uuid('r0', True)
        self.drbd.new_current_uuid('r0', False)
        c = ['drbdadm', '-c', '/etc/d.conf']
        self.assertEqual([
            c + ['up', 'r0'], c + ['adjust', 'r0'], c + ['down', 'r0'],
            c + ['--', '--max-peers=7', '--force', 'create-md', 'r0'],
            c + ['--', '--force', 'wipe-md', 'r0'],
            c + ['--', '--assume-clean', 'resize', 'r0/0'],
            c + ['resize', 'r0/0'],
            c + ['new-current-uuid', '--clear-bitmap', 'r0/0'],
            c + ['new-current-uuid', 'r0/0']], self.argv())
        for call in self.execute.call_args_list:
            self.assertEqual('nodea',
                             call[1]['env_variables']['__DRBD_NODE__'])

    def test_suspend_and_resume_io_by_minor_under_a_timeout(self):
        # drbdsetup directly: drbdadm would kill it after 5 s.
        self.drbd.suspend_io((1000, 1001), timeout=12.0)
        self.drbd.resume_io((1000,))
        self.assertEqual([['drbdsetup', 'suspend-io', '1000'],
                          ['drbdsetup', 'suspend-io', '1001'],
                          ['drbdsetup', 'resume-io', '1000']], self.argv())
        timeouts = [c[1].get('timeout')
                    for c in self.execute.call_args_list]
        self.assertEqual([12.0, 12.0, None], timeouts)

    def test_status(self):
        entry = {'name': 'r0', 'devices': [{'minor': 1000}]}
        self.execute.return_value = (json.dumps([entry]), '')
        self.assertEqual(entry, self.drbd.state('r0'))
        self.assertEqual(['drbdsetup', 'status', '--json', '--statistics',
                          'r0'], self.argv()[0])
        self.assertEqual([entry], self.drbd.status())

    def test_size_bytes(self):
        for text, size in (('1048576k', 1 << 30), ('2097152s', 1 << 30),
                           ('2097152', 1 << 30), ('1G', 1 << 30),
                           ('1024M', 1 << 30), ('1T', 1 << 40)):
            self.assertEqual(size, drbd.size_bytes(text), text)
        for text in ('', 'k', '1.5G', '-1k', '1kb', '1 k'):
            self.assertRaises(ValueError, drbd.size_bytes, text)

    def test_status_not_running(self):
        self.execute.side_effect = failure(10, 'r0: No such resource\n')
        self.assertIsNone(self.drbd.state('r0'))

    def test_status_without_module(self):
        self.execute.side_effect = failure(
            20, 'sh: 1: /sbin/modprobe: not found\n'
                'Failed to modprobe drbd (No such file or directory)\n')
        e = self.assertRaises(AgentError, self.drbd.status)
        self.assertEqual(protocol.E_MISSING, e.code)
        self.assertIn('kernel module', e.message)

    def test_status_garbage(self):
        for out in ('nope', '{"a": 1}'):
            self.execute.return_value = (out, '')
            e = self.assertRaises(AgentError, self.drbd.status)
            self.assertEqual(protocol.E_FAILED, e.code)

    def test_has_metadata(self):
        self.execute.return_value = (GI_JUST_CREATED, '')
        self.assertTrue(self.drbd.has_metadata(1000, '/dev/vg0/r0', 2))
        self.assertEqual(['drbdmeta', '1000', 'v09', '/dev/vg0/r0',
                          'internal', 'get-gi', '--node-id', '2'],
                         self.argv()[0])
        self.execute.side_effect = failure(1, 'No valid meta data found\n')
        self.assertFalse(self.drbd.has_metadata(1000, '/dev/vg0/r0', 2))
        self.execute.side_effect = failure(20, 'open(/dev/x) failed')
        self.assertRaises(CommandError, self.drbd.has_metadata, 1000,
                          '/dev/x', 2)

    def test_current_uuid(self):
        self.execute.return_value = (GI_JUST_CREATED, '')
        self.assertEqual(drbd.UUID_JUST_CREATED,
                         self.drbd.current_uuid(1000, '/dev/vg0/r0', 2))
        self.execute.return_value = (
            'A1B2C3D4E5F60719:0000000000000000:0000000000000000:'
            '0000000000000000:1:1:0:0:1:0:0:0:0:0:0:0\n', '')
        self.assertEqual(0xA1B2C3D4E5F60719,
                         self.drbd.current_uuid(1000, '/dev/vg0/r0', 2))
        # drbdmeta 9.22 on a disk without metadata: rc 255, no output.
        self.execute.side_effect = failure(255, '')
        self.assertIsNone(self.drbd.current_uuid(1000, '/dev/vg0/r0', 2))
        self.execute.side_effect = None
        self.execute.return_value = ('garbage\n', '')
        e = self.assertRaises(AgentError, self.drbd.current_uuid, 1000,
                              '/dev/vg0/r0', 2)
        self.assertEqual(protocol.E_FAILED, e.code)

    def test_versions(self):
        self.execute.return_value = ('DRBDADM_API_VERSION=2\n'
                                     'DRBDADM_VERSION=9.22.0\n', '')
        self.assertEqual('9.22.0', self.drbd.utils_version())
        self.assertIsNone(self.drbd.kernel_version())
        self.execute.return_value = ('DRBD_KERNEL_VERSION_CODE=0x090208\n'
                                     'DRBD_KERNEL_VERSION=9.2.8\n', '')
        self.assertEqual('9.2.8', self.drbd.kernel_version())
        self.assertEqual(['drbdsetup', '--version'], self.argv()[-1])
        self.execute.side_effect = failure(20, 'Failed to modprobe drbd')
        self.assertIsNone(self.drbd.kernel_version())
        self.execute.side_effect = OSError(2, 'No such file')
        self.assertIsNone(self.drbd.kernel_version())
        self.execute.side_effect = None
        path = self.useFixture(fixtures.TempDir()).join('drbd')
        with open(path, 'w') as f:
            f.write('version: 9.2.8 (api:2/proto:86-122)\nGIT-hash: x\n')
        d = drbd.Drbd(executor.Executor(self.execute), 'c', 'n',
                      proc_files=('/nonexistent', path))
        self.assertEqual('9.2.8', d.kernel_version())
