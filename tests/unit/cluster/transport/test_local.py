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
"""Tests of LocalTransport (the agent as a subprocess)."""

import logging
import os
import pathlib
import signal
import subprocess
import sys
import time
from unittest import mock

import fixtures

from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import transport
from blackstor_cinder.cluster.transport import base as tp_base
from blackstor_cinder.cluster.transport import local
from blackstor_cinder import protocol
from tests.unit import base
from tests.unit.cluster.transport import fakes

# A stand-in agent for LocalTransport: behaviour chosen by the request.
LOCAL_AGENT = r'''
import json, os, subprocess, sys, time
raw = sys.stdin.read()
request = json.loads(raw)
op = request['op']
if op == 'echo':
    print(json.dumps({'ok': True, 'result': {
        'request': request, 'argv': sys.argv[1:],
        'env': os.environ.get('BLACKSTOR_TEST'),
        'path': os.environ.get('PATH')}}))
elif op == 'crash':
    raise RuntimeError('agent exploded')
elif op == 'garbage':
    print('this is not json')
elif op == 'refuse':
    print(json.dumps({'ok': False, 'error': {
        'code': 'conflict', 'message': 'minor 1000 in use',
        'field': 'res_text'}}))
    sys.exit(4)
elif op == 'hang':
    child = subprocess.Popen([sys.executable, '-c',
                              'import time; time.sleep(60)'])
    with open(request['pidfile'], 'w') as f:
        f.write(f'{os.getpid()} {child.pid}')
    time.sleep(60)
elif op == 'ignore-term':
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(request['pidfile'], 'w') as f:
        f.write(str(os.getpid()))
    time.sleep(60)
'''


class LocalTransportTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.agent = self.dir / 'agent.py'
        self.agent.write_text(LOCAL_AGENT)
        self.argv = [sys.executable, str(self.agent), '--flag']
        self.logger = self.useFixture(fixtures.FakeLogger(
            name=fakes.LOGGER, level=logging.DEBUG))

    def _transport(self, **kwargs):
        return transport.LocalTransport('local-node', self.argv, **kwargs)

    def test_echo(self):
        request = {'op': 'echo', 'resource': 'volume-1', 'size': 10}
        result = self._transport().call(request)
        self.assertEqual(request, result['request'])
        self.assertEqual(['--flag'], result['argv'])
        self.assertIsNone(result['env'])

    def test_traffic_counted(self):
        t = self._transport()
        self.assertEqual({'round_trips': 0, 'sent_bytes': 0,
                          'received_bytes': 0}, t.traffic.snapshot())
        request = {'op': 'echo', 'resource': 'volume-1'}
        t.call(request)
        t.call(request)
        counted = t.traffic.snapshot()
        self.assertEqual(2, counted['round_trips'])
        self.assertEqual(2 * len(tp_base.encode('n', request)),
                         counted['sent_bytes'])
        self.assertGreater(counted['received_bytes'], 2 * len('{"ok"'))

    def test_pool_traffic(self):
        pool = transport.TransportPool(
            lambda node: transport.LocalTransport(node.name, self.argv))
        self.addCleanup(pool.close)
        for name in ('a', 'b', 'a'):
            pool.get(model.Node(name, '10.0.0.1')).call({'op': 'echo'})
        self.assertEqual({'a': 2, 'b': 1}, {
            name: t['round_trips'] for name, t in pool.traffic().items()})

    def test_env_overrides(self):
        t = self._transport(env={'BLACKSTOR_TEST': 'node-b'})
        result = t.call({'op': 'echo'})
        self.assertEqual('node-b', result['env'])
        # The rest of the environment is kept.
        self.assertEqual(os.environ.get('PATH'), result['path'])

    def test_crash(self):
        exc = self.assertRaises(transport.NodeError,
                                self._transport().call, {'op': 'crash'})
        self.assertNotIsInstance(exc, transport.NodeUnreachable)
        self.assertEqual(protocol.E_INTERNAL, exc.code)
        self.assertIn('RuntimeError: agent exploded', exc.message)
        self.assertIn('exit status 1', exc.message)

    def test_garbage(self):
        exc = self.assertRaises(transport.NodeError,
                                self._transport().call, {'op': 'garbage'})
        self.assertIn('not a protocol JSON object', exc.message)

    def test_agent_error(self):
        exc = self.assertRaises(transport.NodeError,
                                self._transport().call, {'op': 'refuse'})
        self.assertEqual(('conflict', 'res_text', 'minor 1000 in use'),
                         (exc.code, exc.field, exc.message))

    def _pids(self, pidfile):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if pidfile.exists() and pidfile.read_text():
                return [int(p) for p in pidfile.read_text().split()]
            time.sleep(0.02)
        self.fail('agent did not start')

    def _gone(self, pid):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            # A zombie of ours is gone enough.
            try:
                if open(f'/proc/{pid}/stat').read().split()[2] == 'Z':
                    return True
            except OSError:
                return True
            time.sleep(0.02)
        return False

    def test_timeout_kills_the_agent_and_its_children(self):
        pidfile = self.dir / 'pids'
        started = time.monotonic()
        exc = self.assertRaises(
            transport.NodeTimeout, self._transport().call,
            {'op': 'hang', 'pidfile': str(pidfile)}, timeout=1)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(protocol.E_TIMEOUT, exc.code)
        self.assertIsInstance(exc, transport.NodeUnreachable)
        agent, child = self._pids(pidfile)
        self.assertTrue(self._gone(agent))
        self.assertTrue(self._gone(child))

    def test_timeout_kills_an_agent_ignoring_sigterm(self):
        self.useFixture(fixtures.MonkeyPatch(
            'blackstor_cinder.cluster.transport.local.KILL_GRACE', 0.2))
        pidfile = self.dir / 'pid'
        self.assertRaises(transport.NodeTimeout, self._transport().call,
                          {'op': 'ignore-term', 'pidfile': str(pidfile)},
                          timeout=1)
        self.assertTrue(self._gone(self._pids(pidfile)[0]))

    def test_default_timeout(self):
        t = self._transport(timeout=0.5)
        self.assertRaises(transport.NodeTimeout, t.call,
                          {'op': 'hang', 'pidfile': str(self.dir / 'p')})

    def _fake_popen(self, *outcomes):
        proc = mock.Mock(pid=424242, returncode=0)
        proc.communicate.side_effect = list(outcomes)
        self.useFixture(fixtures.MockPatchObject(
            local.subprocess, 'Popen', return_value=proc))
        return self.useFixture(fixtures.MockPatchObject(
            local.os, 'killpg')).mock

    def test_timeout_of_eventlets_subprocess_copy(self):
        # eventlet's green Popen raises a TimeoutExpired of its own.
        other = type('TimeoutExpired', (Exception,),
                     {'__module__': 'subprocess'})
        killpg = self._fake_popen(other(), (b'', b''))
        exc = self.assertRaises(transport.NodeTimeout,
                                self._transport().call, {'op': 'x'})
        self.assertEqual(protocol.E_TIMEOUT, exc.code)
        killpg.assert_called_once_with(424242, signal.SIGTERM)

    def test_unkillable_agent_does_not_hang(self):
        # e.g. a root agent under sudo, started by an unprivileged user.
        timeout = subprocess.TimeoutExpired('agent', 1)
        killpg = self._fake_popen(timeout, timeout, timeout)
        killpg.side_effect = PermissionError(1, 'Operation not permitted')
        proc = local.subprocess.Popen.return_value
        proc.wait.side_effect = timeout
        self.assertRaises(transport.NodeTimeout, self._transport().call,
                          {'op': 'x'})
        self.assertEqual([mock.call(424242, signal.SIGTERM),
                          mock.call(424242, signal.SIGKILL)],
                         killpg.call_args_list)
        proc.wait.assert_called_once_with(timeout=local.KILL_GRACE)
        self.assertIn('did not stop', self.logger.output)

    def test_other_errors_stop_the_agent_and_propagate(self):
        killpg = self._fake_popen(KeyboardInterrupt(), (b'', b''))
        self.assertRaises(KeyboardInterrupt, self._transport().call,
                          {'op': 'x'})
        killpg.assert_called_once_with(424242, signal.SIGTERM)

    def test_missing_agent(self):
        t = transport.LocalTransport('local-node',
                                     [str(self.dir / 'no-such-agent')])
        exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                {'op': 'inventory'})
        self.assertEqual(transport.E_UNREACHABLE, exc.code)
        self.assertIn('no-such-agent', exc.message)

    def test_secret_not_logged(self):
        self._transport().call({'op': 'echo', 'secret': fakes.SECRET,
                                'resource': 'volume-1'})
        self.assertIn('volume-1', self.logger.output)
        self.assertIn('local-node', self.logger.output)
        self.assertNotIn(fakes.SECRET, self.logger.output)

    def test_bad_arguments(self):
        self.assertRaises(ValueError, transport.LocalTransport, 'n', [])
        self.assertRaises(ValueError, transport.LocalTransport, 'n',
                          'blackstor-node')
        self.assertRaises(ValueError, transport.LocalTransport, 'n',
                          ['x'], timeout=0)
        t = self._transport()
        self.assertRaises(ValueError, t.call, {'op': 'echo'}, timeout=-1)
        self.assertRaises(TypeError, t.call, ['op'])
        self.assertRaises(TypeError, t.call, {'resource': 'x'})
