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
"""SSHTransport against a real OpenSSH server on a loopback port."""

import concurrent.futures
import errno
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from unittest import mock

import testtools

from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import transport
from blackstor_cinder import protocol
from tests.functional import sshd_fixture

# Stands in for blackstor-node: echoes the request, its environment and
# argv; a few ops misbehave on purpose. Speaks sessions like the agent.
AGENT = r'''
import json, os, sys, time
from blackstor_cinder import session


def handle(request):
    op = request.get('op')
    if op == 'sleep':
        time.sleep(request['seconds'])
    if op == 'fail':
        return 3, {'ok': False, 'error': {
            'code': 'not-found', 'message': 'no such thing', 'field': 'x'}}
    if op == 'garbage':
        print('Traceback (most recent call last): boom', file=sys.stderr)
        sys.exit(1)
    return 0, {'ok': True, 'result': {
        'request': request, 'argv': sys.argv[1:], 'uid': os.getuid(),
        'node': os.environ.get('BLACKSTOR_TEST_NODE'),
        'pid': os.getpid(), 'ppid': os.getppid()}}


first = sys.stdin.readline()
if session.is_opening(first):
    sys.stdout.write(session.frame({'ok': True, 'result': {'session': 1}},
                                   0))
    sys.stdout.flush()
    for line in sys.stdin:
        code, reply = handle(json.loads(line))
        sys.stdout.write(session.frame(reply, code))
        sys.stdout.flush()
    sys.exit(0)
code, reply = handle(json.loads(first + sys.stdin.read()))
print(json.dumps(reply))
sys.exit(code)
'''

SECRET = 'Secret-0123456789abcdef'

# The transports inside an eventlet-patched process, as in cinder-volume.
UNDER_EVENTLET = r'''
import concurrent.futures, json, sys
from cinder import monkey_patch
monkey_patch.patch()
from blackstor_cinder.cluster import transport
args = json.loads(sys.argv[1])
out = {'patched': monkey_patch.is_patched()}
t = transport.SSHTransport('node-a', args['host'], port=args['port'],
                           user=args['user'], private_key=args['key'],
                           known_hosts=args['known_hosts'],
                           command=args['command'], timeout=30)
out['op'] = t.call({'op': 'inventory'})['request']['op']
try:
    t.call({'op': 'sleep', 'seconds': 3}, timeout=1)
except transport.NodeTimeout as e:
    out['ssh_timeout'] = e.code
with concurrent.futures.ThreadPoolExecutor(3) as pool:
    out['parallel'] = sorted(r['request']['i'] for r in pool.map(
        lambda i: t.call({'op': 'sleep', 'seconds': 0.3, 'i': i}),
        range(3)))
t.close()
local = transport.LocalTransport('local', args['command'])
try:
    local.call({'op': 'sleep', 'seconds': 3}, timeout=1)
except transport.NodeTimeout as e:
    out['local_timeout'] = e.code
out['local_op'] = local.call({'op': 'status'})['request']['op']
print(json.dumps(out))
'''


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ends(pid, within=5.0):
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class SSHTransportTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        why = sshd_fixture.sshd_available()
        if why:
            self.skipTest(why)
        self.sshd = self.useFixture(sshd_fixture.SSHDFixture(
            client_key_types=('ed25519', 'ecdsa', 'rsa'),
            extra_config=['SetEnv BLACKSTOR_TEST_NODE=node-under-test']))
        self.agent = self.sshd.dir / 'agent.py'
        self.agent.write_text(AGENT)

    def _transport(self, **kwargs):
        args = dict(user=self.sshd.user, private_key=self.sshd.private_key,
                    known_hosts=self.sshd.known_hosts, port=self.sshd.port,
                    command=[sys.executable, str(self.agent), 'arg1'],
                    connect_timeout=10, timeout=30)
        args.update(kwargs)
        t = transport.SSHTransport('node-a', self.sshd.address, **args)
        self.addCleanup(t.close)
        return t

    def test_call_reaches_the_agent(self):
        t = self._transport()
        request = {'op': 'adjust', 'resource': 'volume-1',
                   'spec': {'minor': 1000, 'hosts': [{'name': 'node-a'}]},
                   'secret': SECRET}
        result = t.call(request)
        self.assertEqual(request, result['request'])
        self.assertEqual(['arg1'], result['argv'])
        self.assertEqual(os.getuid(), result['uid'])
        # sshd_config SetEnv reaches the agent: how the harness tells its
        # emulated nodes apart.
        self.assertEqual('node-under-test', result['node'])

    def test_each_client_key_type(self):
        for key_type, path in self.sshd.client_keys.items():
            t = self._transport(private_key=path)
            self.assertEqual({'op': 'inventory'},
                             t.call({'op': 'inventory'})['request'],
                             key_type)
        self.assertEqual(3, self.sshd.accepted_logins())

    def test_agent_error_is_node_error(self):
        t = self._transport()
        exc = self.assertRaises(transport.NodeError, t.call, {'op': 'fail'})
        self.assertNotIsInstance(exc, transport.NodeUnreachable)
        self.assertEqual((protocol.E_NOT_FOUND, 'no such thing', 'x'),
                         (exc.code, exc.message, exc.field))

    def test_garbage_reply_carries_stderr(self):
        t = self._transport()
        exc = self.assertRaises(transport.NodeError, t.call,
                                {'op': 'garbage'})
        self.assertEqual(protocol.E_INTERNAL, exc.code)
        self.assertIn('exit status 1', exc.message)
        self.assertIn('boom', exc.message)

    def test_command_not_found(self):
        t = self._transport(command=['/nonexistent/blackstor-node'])
        exc = self.assertRaises(transport.NodeError, t.call,
                                {'op': 'inventory'})
        self.assertEqual(protocol.E_MISSING, exc.code)
        self.assertIn('exit status 127', exc.message)

    def test_connection_reused(self):
        t = self._transport(sessions=False)
        pids = {t.call({'op': 'inventory'})['pid'] for _ in range(4)}
        self.assertEqual(4, len(pids))          # four agent runs
        self.assertEqual(1, self.sshd.accepted_logins())
        self.assertEqual(1, len(self.sshd.connection_pids()))

    def test_session_reused_and_ended_on_close(self):
        t = self._transport()
        pids = {t.call({'op': 'inventory'})['pid'] for _ in range(4)}
        self.assertEqual(1, len(pids))          # one agent, four requests
        pid = pids.pop()
        self.assertTrue(_alive(pid))            # kept while idle
        t.close()
        self.assertTrue(_ends(pid), f'agent {pid} left running')

    def test_parallel_calls_run_parallel_agents(self):
        t = self._transport()
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            results = list(pool.map(
                lambda i: t.call({'op': 'sleep', 'seconds': 1, 'i': i}),
                range(3)))
        self.assertEqual(3, len({r['pid'] for r in results}))
        # Then kept: the next calls reuse those agents.
        again = {t.call({'op': 'inventory'})['pid'] for _ in range(3)}
        self.assertLessEqual(again, {r['pid'] for r in results})

    def test_timeout_ends_the_agent_and_the_next_call_gets_a_new_one(self):
        t = self._transport()
        pid = t.call({'op': 'inventory'})['pid']
        self.assertRaises(transport.NodeTimeout, t.call,
                          {'op': 'sleep', 'seconds': 2}, timeout=0.5)
        self.assertNotEqual(pid, t.call({'op': 'inventory'})['pid'])
        self.assertTrue(_ends(pid, 10), f'agent {pid} left running')

    def test_parallel_calls_share_one_connection(self):
        t = self._transport()
        t.call({'op': 'inventory'})
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(
                lambda i: t.call({'op': 'sleep', 'seconds': 0.5, 'i': i}),
                range(4)))
        self.assertEqual(list(range(4)),
                         [r['request']['i'] for r in results])
        self.assertEqual(1, self.sshd.accepted_logins())

    def test_reconnects_after_the_connection_died(self):
        t = self._transport()
        t.call({'op': 'inventory'})
        pids = self.sshd.connection_pids()
        self.assertEqual(1, len(pids))
        os.kill(pids[0], signal.SIGTERM)
        result = t.call({'op': 'inventory'})
        self.assertEqual('inventory', result['request']['op'])
        self.assertEqual(2, self.sshd.accepted_logins())

    def test_close_then_call_reconnects(self):
        t = self._transport()
        t.call({'op': 'inventory'})
        t.close()
        t.call({'op': 'inventory'})
        self.assertEqual(2, self.sshd.accepted_logins())

    def test_timeout(self):
        t = self._transport()
        started = time.monotonic()
        exc = self.assertRaises(transport.NodeTimeout, t.call,
                                {'op': 'sleep', 'seconds': 4}, timeout=1)
        self.assertLess(time.monotonic() - started, 3.5)
        self.assertIsInstance(exc, transport.NodeUnreachable)
        self.assertEqual(protocol.E_TIMEOUT, exc.code)
        # The connection survives a slow request.
        t.call({'op': 'inventory'})
        self.assertEqual(1, self.sshd.accepted_logins())

    def test_hashed_known_hosts(self):
        path = self.sshd.write_known_hosts(self.sshd.dir / 'hashed',
                                           hashed=True)
        self.assertNotIn(self.sshd.address, open(path).read())
        t = self._transport(known_hosts=path)
        t.call({'op': 'inventory'})

    def test_known_hosts_with_one_key_type(self):
        # The server offers three host key types; the client must ask for
        # the one it knows.
        for key_type in ('rsa', 'ecdsa', 'ed25519'):
            path = self.sshd.write_known_hosts(
                self.sshd.dir / f'known_{key_type}', key_types=[key_type])
            t = self._transport(known_hosts=path)
            t.call({'op': 'inventory'})

    def test_wrong_host_key_refused(self):
        other = sshd_fixture.keygen(self.sshd.dir / 'impostor', 'ed25519')
        kind, blob = other.with_name('impostor.pub').read_text().split()[:2]
        path = self.sshd.dir / 'wrong_known_hosts'
        path.write_text(f'{self.sshd.host_entry()} {kind} {blob}\n')
        t = self._transport(known_hosts=str(path))
        exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                {'op': 'inventory'})
        self.assertEqual(transport.E_UNREACHABLE, exc.code)
        self.assertIn('does not match', exc.message)
        self.assert_names_host_and_file(exc, str(path))
        self.assertEqual(0, self.sshd.accepted_logins())

    def assert_names_host_and_file(self, exc, known_hosts):
        # The operator must see which host and which file to look at.
        self.assertEqual('node-a', exc.node)
        self.assertIn(f'{self.sshd.address}:{self.sshd.port}', exc.message)
        self.assertIn(known_hosts, exc.message)

    def test_changed_host_key_refused(self):
        # The server is re-keyed (or replaced) after a first good login:
        # the next connection is refused, never trusted anew.
        t = self._transport()
        t.call({'op': 'inventory'})
        self.sshd.stop()                # the warm connection ends with it
        for key_type in self.sshd.host_key_types:
            key = self.sshd.dir / f'ssh_host_{key_type}_key'
            key.unlink()
            key.with_suffix('.pub').unlink()
            sshd_fixture.keygen(key, key_type)
        self.sshd.start()
        known = open(self.sshd.known_hosts).read()
        exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                {'op': 'inventory'})
        self.assertIn('does not match', exc.message)
        self.assertIn('host key changed', exc.message)
        self.assert_names_host_and_file(exc, self.sshd.known_hosts)
        self.assertEqual(1, self.sshd.accepted_logins())
        # Nothing learnt: the file is as it was, the next call fails too.
        self.assertEqual(known, open(self.sshd.known_hosts).read())
        self.assertRaises(transport.NodeUnreachable, t.call,
                          {'op': 'inventory'})
        self.assertEqual(1, self.sshd.accepted_logins())

    def _stop_cuts_warm_connections(self, use_cgroup):
        # A node going down: sshd's per-connection children and the
        # sessions behind them call setsid(), so a kill of the listener's
        # process group alone leaves them answering on open connections.
        sshd = self.useFixture(sshd_fixture.SSHDFixture(
            use_cgroup=use_cgroup))
        command = [sys.executable, str(self.agent)]
        warm = self._transport(port=sshd.port, known_hosts=sshd.known_hosts,
                               private_key=sshd.private_key, command=command)
        plain = self._transport(port=sshd.port, known_hosts=sshd.known_hosts,
                                private_key=sshd.private_key,
                                command=command, sessions=False)
        agent = warm.call({'op': 'inventory'})['pid']   # kept in a session
        plain.call({'op': 'inventory'})                 # connection kept
        connections = sshd.connection_pids()
        self.assertEqual(2, len(connections))
        self.assertLessEqual(set(connections), sshd.processes.pids())
        self.assertIn(agent, sshd.processes.pids())

        sshd.stop()
        self.assertEqual(set(), sshd.processes.pids())
        for pid in connections + [agent]:
            self.assertTrue(_ends(pid), f'{pid} outlived the stop')
        for t in (warm, plain):
            exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                    {'op': 'inventory'})
            self.assertIn('node-a', str(exc))
        self.assertEqual(2, sshd.accepted_logins())

        sshd.start()                                    # the node is back
        self.assertNotEqual(agent, warm.call({'op': 'inventory'})['pid'])
        self.assertEqual(3, sshd.accepted_logins())

    def test_stop_cuts_warm_connections(self):
        # In a cgroup of its own where this host has a writable cgroup v2.
        self._stop_cuts_warm_connections(None)

    def test_stop_cuts_warm_connections_tracked_by_process_tree(self):
        self._stop_cuts_warm_connections(False)

    def test_tracker_uses_the_process_tree_when_the_cgroup_refuses(self):
        tracker = sshd_fixture.ProcessTracker()
        self.addCleanup(tracker.close)
        if tracker.cgroup is None:
            self.skipTest('no writable cgroup v2 here')
        proc = subprocess.Popen(['sleep', '60'], start_new_session=True)
        self.addCleanup(proc.wait)
        refused = OSError(errno.EBUSY, 'Device or resource busy')
        with mock.patch.object(pathlib.Path, 'write_text',
                               side_effect=refused):
            tracker.add(proc.pid)
        self.assertIsNone(tracker.cgroup)
        self.assertEqual({proc.pid}, tracker.pids())
        tracker.kill_all()
        self.assertEqual(-signal.SIGKILL, proc.wait(timeout=10))

    def test_missing_known_hosts_entry_refused(self):
        path = self.sshd.dir / 'other_known_hosts'
        # Right key, wrong port: not this server.
        kind, blob = self.sshd.host_keys['ed25519'].split()[:2]
        path.write_text(f'[{self.sshd.address}]:{self.sshd.port + 1} '
                        f'{kind} {blob}\n{self.sshd.address} {kind} {blob}\n')
        t = self._transport(known_hosts=str(path))
        exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                {'op': 'inventory'})
        self.assertIn('is not in', exc.message)
        self.assertEqual(0, self.sshd.accepted_logins())
        # Never added: the file is unchanged and the next call fails too.
        self.assertEqual(2, len(path.read_text().splitlines()))
        self.assertRaises(transport.NodeUnreachable, t.call,
                          {'op': 'inventory'})

    def test_missing_known_hosts_file_refused(self):
        t = self._transport(known_hosts=str(self.sshd.dir / 'nonexistent'))
        exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                {'op': 'inventory'})
        self.assertIn('known_hosts', exc.message)

    def test_unauthorized_key_refused(self):
        key = sshd_fixture.keygen(self.sshd.dir / 'stranger', 'ed25519')
        t = self._transport(private_key=str(key))
        exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                {'op': 'inventory'})
        self.assertIn('authentication', exc.message)

    def test_nobody_listening(self):
        port = sshd_fixture.free_port()
        t = self._transport(port=port)
        exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                {'op': 'inventory'})
        self.assertIn(f'{port}', exc.message)

    def test_under_eventlet(self):
        if importlib.util.find_spec('cinder') is None:
            self.skipTest('cinder is not installed')
        args = {'host': self.sshd.address, 'port': self.sshd.port,
                'user': self.sshd.user, 'key': self.sshd.private_key,
                'known_hosts': self.sshd.known_hosts,
                'command': [sys.executable, str(self.agent)]}
        env = dict(os.environ)
        env.pop('OS_CINDER_DISABLE_EVENTLET_PATCHING', None)
        proc = subprocess.run(
            [sys.executable, '-c', UNDER_EVENTLET, json.dumps(args)],
            capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertEqual(
            {'patched': True, 'op': 'inventory', 'ssh_timeout': 'timeout',
             'parallel': [0, 1, 2], 'local_timeout': 'timeout',
             'local_op': 'status'},
            json.loads(proc.stdout.splitlines()[-1]))
        self.assertEqual(1, self.sshd.accepted_logins())

    def test_make_transport(self):
        node = model.Node('node-a', '10.0.0.1', ssh_host=self.sshd.address,
                          ssh_port=self.sshd.port)
        t = transport.make_transport(
            node, ssh_user=self.sshd.user,
            ssh_private_key=self.sshd.private_key,
            ssh_known_hosts=self.sshd.known_hosts,
            ssh_command=f'{sys.executable} {self.agent}')
        self.addCleanup(t.close)
        self.assertIsInstance(t, transport.SSHTransport)
        self.assertEqual('inventory', t.call({'op': 'inventory'})
                         ['request']['op'])
