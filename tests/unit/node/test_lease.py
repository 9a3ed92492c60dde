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
"""Suspend leases: the logic with a fake clock, and with real processes."""

import json
import subprocess
import sys
import time
from unittest import mock


from blackstor_cinder.node import agent
from blackstor_cinder.node.errors import AgentError
from blackstor_cinder.node import lease
from blackstor_cinder import protocol
from tests.unit.node import standin_node
from tests.unit.node import test_agent
from tests.unit import base


class LeaseAgentTestCase(test_agent.AgentTestCase):

    def setUp(self):
        super().setUp()
        self.popen = mock.Mock()
        self.agent = agent.Agent(self.conf, execute=self.fake,
                                 popen=self.popen)
        self.ok('create', **self.create_req())
        self.fake.calls.clear()
        self.path = lease.lease_path(self.conf, 'r0')

    def spawned(self):
        argv = self.popen.call_args[0][0]
        return dict(zip(argv[3::2], argv[4::2])), self.popen.call_args[1]

    def test_suspend_with_lease(self):
        result = self.ok('suspend-io', resource='r0', lease=1)
        self.assertEqual({'resource': 'r0', 'running': True,
                          'suspended': True, 'lease_expires_in': 1.0},
                         result)
        self.assertEqual([['drbdsetup', 'suspend-io', '1000']], self.changes())
        args, kwargs = self.spawned()
        self.assertEqual([sys.executable, '-m',
                          'blackstor_cinder.node.lease'],
                         self.popen.call_args[0][0][:3])
        self.assertEqual('r0', args['--resource'])
        self.assertEqual(1.0, float(args['--seconds']))
        self.assertEqual(args['--id'], lease.read_id(self.path))
        conf = json.loads(args['--config'])
        self.assertEqual(self.conf.drbd_config, conf['drbd_config'])
        self.assertEqual('nodea', conf['node_name'])
        self.assertTrue(kwargs['start_new_session'])
        for stream in ('stdin', 'stdout', 'stderr'):
            self.assertEqual(subprocess.DEVNULL, kwargs[stream])
        self.assertTrue(self.fake.running['r0']['suspended-user'])

    def test_second_suspend_replaces_the_lease(self):
        self.ok('suspend-io', resource='r0', lease=5)
        first = lease.read_id(self.path)
        self.ok('suspend-io', resource='r0', lease=5)
        second = lease.read_id(self.path)
        self.assertNotEqual(first, second)
        self.assertEqual(second, self.spawned()[0]['--id'])
        # DRBD was suspended once; the old lease process will do nothing.
        self.assertEqual(1, self.changes().count(
            ['drbdsetup', 'suspend-io', '1000']))
        self.assertFalse(self.agent.expire_lease('r0', first))
        self.assertTrue(self.fake.running['r0']['suspended-user'])

    def test_suspend_without_lease_cancels_it(self):
        self.ok('suspend-io', resource='r0', lease=5)
        result = self.ok('suspend-io', resource='r0')
        self.assertIsNone(result['lease_expires_in'])
        self.assertFalse(self.path.exists())
        self.assertEqual(1, self.popen.call_count)

    def test_resume_cancels_the_lease(self):
        self.ok('suspend-io', resource='r0', lease=5)
        lease_id = lease.read_id(self.path)
        result = self.ok('resume-io', resource='r0')
        self.assertTrue(result['lease_cancelled'])
        self.assertTrue(result['resumed'])
        self.assertFalse(self.path.exists())
        self.assertFalse(self.fake.running['r0']['suspended-user'])
        self.fake.running['r0']['suspended-user'] = True
        # The old lease no longer holds the token: it resumes nothing.
        self.assertFalse(self.agent.expire_lease('r0', lease_id))
        self.assertTrue(self.fake.running['r0']['suspended-user'])

    def test_expired_lease_resumes(self):
        self.ok('suspend-io', resource='r0', lease=5)
        self.fake.calls.clear()
        self.assertTrue(self.agent.expire_lease('r0',
                                                lease.read_id(self.path)))
        self.assertEqual([['drbdsetup', 'resume-io', '1000']], self.changes())
        self.assertFalse(self.path.exists())

    def test_resume_is_idempotent_and_follows_drbd(self):
        # Suspended by someone else (no lease, no earlier suspend here).
        self.fake.running['r0']['suspended-user'] = True
        self.assertTrue(self.ok('resume-io', resource='r0')['resumed'])
        self.assertFalse(self.ok('resume-io', resource='r0')['resumed'])
        # A DRBD without the field: resume rather than skip.
        del self.fake.running['r0']['suspended-user']
        self.fake.running['r0']['suspended'] = True
        self.assertTrue(self.ok('resume-io', resource='r0')['resumed'])
        self.assertEqual(2, self.changes().count(
            ['drbdsetup', 'resume-io', '1000']))
        self.assertFalse(self.ok('resume-io', resource='r9')['running'])

    def test_failed_suspend_leaves_no_lease(self):
        self.fake.fail('drbdsetup', 'suspend-io')
        self.error('suspend-io', protocol.E_FAILED, None, resource='r0',
                   lease=5)
        self.assertFalse(self.path.exists())

    def test_suspend_command_gets_a_share_of_the_lease(self):
        self.ok('suspend-io', resource='r0', lease=50)
        self.assertIn((['drbdsetup', 'suspend-io', '1000'],
                       50 / (protocol.SUSPEND_STEPS + 1)),
                      self.fake.timed_calls)

    def test_timed_out_suspend_keeps_its_lease(self):
        # The kernel may suspend after drbdsetup was killed: the lease
        # must still be there to resume it.
        self.fake.hang('drbdsetup', 'suspend-io', take_effect=True)
        self.error('suspend-io', protocol.E_TIMEOUT, None, resource='r0',
                   lease=5)
        self.assertTrue(self.path.exists())
        self.assertTrue(self.fake.running['r0']['suspended-user'])
        self.assertTrue(self.agent.expire_lease('r0',
                                                lease.read_id(self.path)))
        self.assertFalse(self.fake.running['r0']['suspended-user'])

    def test_failed_spawn_does_not_suspend(self):
        self.popen.side_effect = OSError(12, 'Cannot allocate memory')
        self.error('suspend-io', protocol.E_FAILED, None, resource='r0',
                   lease=5)
        self.assertFalse(self.path.exists())
        self.assertEqual([], self.changes())

    def test_not_running(self):
        result = self.ok('suspend-io', resource='r9', lease=5)
        self.assertFalse(result['running'])
        self.assertFalse(self.popen.called)

    def test_bad_lease(self):
        for value in (0, 0.5, 601, True, '5', None):
            self.error('suspend-io', protocol.E_INVALID, 'lease',
                       resource='r0', lease=value)
        self.assertFalse(self.popen.called)


class LeaseRunTestCase(base.TestCase):
    """lease.run with a fake clock."""

    def test_sleeps_then_expires(self):
        sleeps = []
        node = mock.Mock()
        node.expire_lease.return_value = True
        self.assertTrue(lease.run(mock.sentinel.conf, 'r0', 'id1', 7.5,
                                  sleep=sleeps.append,
                                  agent_factory=lambda conf: node))
        self.assertEqual([7.5], sleeps)
        node.expire_lease.assert_called_once_with('r0', 'id1')

    def test_waits_for_a_busy_lock(self):
        now = [0.0]

        def sleep(seconds):
            now[0] += seconds
        node = mock.Mock()
        node.expire_lease.side_effect = [
            AgentError(protocol.E_BUSY, 'busy'),
            AgentError(protocol.E_BUSY, 'busy'), True]
        self.assertTrue(lease.run(None, 'r0', 'id1', 3, sleep=sleep,
                                  clock=lambda: now[0],
                                  agent_factory=lambda conf: node))
        self.assertEqual(5.0, now[0])

    def test_gives_up(self):
        now = [0.0]

        def sleep(seconds):
            now[0] += seconds
        node = mock.Mock()
        node.expire_lease.side_effect = AgentError(protocol.E_BUSY, 'busy')
        self.assertFalse(lease.run(None, 'r0', 'id1', 3, sleep=sleep,
                                   clock=lambda: now[0],
                                   agent_factory=lambda conf: node))
        self.assertGreaterEqual(now[0], lease.LOCK_PATIENCE)
        node.expire_lease.side_effect = AgentError(protocol.E_FAILED, 'x')
        self.assertFalse(lease.run(None, 'r0', 'id1', 3, sleep=sleep,
                                   agent_factory=lambda conf: node))


class LeaseProcessTestCase(base.TestCase):
    """A real agent, a real lease process, the stand-in's DRBD."""

    def setUp(self):
        super().setUp()
        why = standin_node.missing()
        if why:
            self.skipTest(why)
        self.nodes = self.useFixture(standin_node.StandinNodes(('nodea',)))
        self.nodes.create()

    def wait_resumed(self, timeout=40.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.nodes.status('nodea', 'r0')['suspended-user']:
                return True
            time.sleep(0.2)
        return False

    def test_lease_ends_the_suspension(self):
        # A lease of 15 s gives the stand-in's drbdsetup (a Python
        # start, slow on a busy machine) 3 s.
        result = self.nodes.ok('nodea', 'suspend-io', resource='r0',
                               lease=15)
        self.assertEqual(15.0, result['lease_expires_in'])
        self.assertTrue(self.nodes.status('nodea', 'r0')['suspended-user'])
        # No resume-io: the controller "died".
        self.assertTrue(self.wait_resumed())
        path = lease.lease_path(self.nodes.agents['nodea'].conf, 'r0')
        self.assertFalse(path.exists())

    def test_resume_first_keeps_later_suspend(self):
        self.nodes.ok('nodea', 'suspend-io', resource='r0', lease=15)
        self.nodes.ok('nodea', 'resume-io', resource='r0')
        self.nodes.ok('nodea', 'suspend-io', resource='r0')
        time.sleep(16.5)
        # The first lease is over, but its token is gone: still suspended.
        self.assertTrue(self.nodes.status('nodea', 'r0')['suspended-user'])
        self.nodes.ok('nodea', 'resume-io', resource='r0')
