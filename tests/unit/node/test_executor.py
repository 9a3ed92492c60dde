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
"""Command execution and its failures."""

import errno
import os
import subprocess
import sys
from unittest import mock

from oslo_concurrency import processutils

from blackstor_cinder.node import errors
from blackstor_cinder.node import executor
from blackstor_cinder import protocol
from tests.unit import base


class RunTestCase(base.TestCase):

    def test_ok(self):
        fake = mock.Mock(return_value=('out', 'err'))
        result = executor.run(fake, ['lvs', 1])
        self.assertEqual(executor.Result(['lvs', '1'], 0, 'out', 'err'),
                         result)
        fake.assert_called_once_with('lvs', '1')

    def test_env_without_root_helper_keeps_environment(self):
        fake = mock.Mock(return_value=('', ''))
        executor.run(fake, ['x'], env={'A': 'b'})
        env = fake.call_args[1]['env_variables']
        self.assertEqual('b', env['A'])
        self.assertEqual(os.environ['PATH'], env['PATH'])

    def test_root_helper_and_env(self):
        fake = mock.Mock(return_value=('', ''))
        executor.run(fake, ['x', 'y'], env={'B': '2', 'A': '1'},
                     root_helper='sudo -n', timeout=5)
        fake.assert_called_once_with('env', 'A=1', 'B=2', 'x', 'y',
                                     root_helper='sudo -n', run_as_root=True,
                                     timeout=5)

    def test_failure(self):
        fake = mock.Mock(side_effect=processutils.ProcessExecutionError(
            exit_code=5, stdout='o', stderr='bad thing\n'))
        e = self.assertRaises(errors.CommandError, executor.run, fake,
                              ['lvs', 'vg'])
        self.assertEqual(protocol.E_FAILED, e.code)
        self.assertEqual(5, e.rc)
        self.assertEqual('o', e.stdout)
        self.assertIn('bad thing', e.message)
        self.assertIn('lvs vg', e.message)
        result = executor.run(fake, ['lvs'], check=False)
        self.assertEqual((5, 'o', 'bad thing\n'),
                         (result.rc, result.stdout, result.stderr))

    def test_not_installed(self):
        fake = mock.Mock(side_effect=OSError(errno.ENOENT, 'No such file'))
        e = self.assertRaises(errors.AgentError, executor.run, fake, ['lvs'])
        self.assertEqual(protocol.E_MISSING, e.code)
        self.assertIn("'lvs'", e.message)
        self.assertIn('lvm2', e.message)

    def test_not_installed_behind_root_helper(self):
        fake = mock.Mock(side_effect=processutils.ProcessExecutionError(
            exit_code=127, stderr="env: 'lvs': No such file or directory"))
        e = self.assertRaises(errors.AgentError, executor.run, fake, ['lvs'],
                              root_helper='sudo')
        self.assertEqual(protocol.E_MISSING, e.code)

    def test_timeout(self):
        fake = mock.Mock(side_effect=subprocess.TimeoutExpired('x', 3))
        e = self.assertRaises(errors.AgentError, executor.run, fake, ['x'],
                              timeout=3)
        self.assertEqual(protocol.E_TIMEOUT, e.code)

    def test_real_process(self):
        result = executor.run(executor.default_execute,
                              [sys.executable, '-c', 'print(42)'])
        self.assertEqual('42\n', result.stdout)
        e = self.assertRaises(errors.AgentError, executor.run,
                              executor.default_execute,
                              ['blackstor-no-such-command'])
        self.assertEqual(protocol.E_MISSING, e.code)

    def test_real_failure(self):
        e = self.assertRaises(
            errors.CommandError, executor.run, executor.default_execute,
            [sys.executable, '-c',
             'import sys; print("out"); sys.exit("bad thing")'])
        self.assertEqual((1, 'out\n'), (e.rc, e.stdout))
        self.assertIn('bad thing', e.message)

    def test_real_root_helper_and_env(self):
        result = executor.run(
            executor.default_execute,
            [sys.executable, '-c',
             'import os, sys; print(os.environ["A"], sys.argv[1:])', 'x'],
            root_helper='env B=2', env={'A': '1'})
        self.assertEqual("1 ['x']\n", result.stdout)

    def test_agent_start_up_skips_oslo_concurrency(self):
        # Debian 12's oslo.concurrency imports eventlet: seconds per
        # request on a small node. The agent must not load it.
        code = ('import sys, blackstor_cinder.node.cli; '
                'print(sorted(m for m in sys.modules if m.startswith('
                '("oslo_concurrency", "eventlet", "oslo_utils.strutils"))))')
        out = subprocess.run([sys.executable, '-c', code], check=True,
                             capture_output=True, text=True).stdout
        self.assertEqual('[]\n', out)

    def test_real_timeout_kills(self):
        e = self.assertRaises(
            errors.AgentError, executor.run, executor.default_execute,
            [sys.executable, '-c', 'import time; time.sleep(30)'],
            timeout=0.5)
        self.assertEqual(protocol.E_TIMEOUT, e.code)

    def test_executor_binds(self):
        fake = mock.Mock(return_value=('', ''))
        run = executor.Executor(fake, root_helper='', timeout=9)
        run(['a'])
        fake.assert_called_once_with('a', timeout=9)
