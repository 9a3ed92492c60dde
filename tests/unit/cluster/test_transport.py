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
"""Tests of the node transports: replies, LocalTransport, SSHTransport."""

import json
import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from unittest import mock

import ddt
import fixtures
import paramiko

from blackstor_cinder.cluster import model
from blackstor_cinder.cluster import transport
from blackstor_cinder import protocol
from blackstor_cinder import session
from tests.unit import base

SECRET = 'Secret-0123456789abcdef'
LOGGER = 'blackstor_cinder.cluster.transport'


def _reply(result=None, **kwargs):
    return json.dumps({'ok': True, 'result': result or {}, **kwargs}
                      ).encode()


def _error(code, message, field=None, details=None):
    error = {'code': code, 'message': message}
    if field:
        error['field'] = field
    if details:
        error['details'] = details
    return json.dumps({'ok': False, 'error': error}).encode()


@ddt.ddt
class ParseReplyTestCase(base.TestCase):

    def test_ok_returns_result(self):
        self.assertEqual({'a': 1}, transport.parse_reply(
            'n1', 0, _reply({'a': 1}), b''))

    def test_ok_without_result_is_empty(self):
        self.assertEqual({}, transport.parse_reply(
            'n1', 0, b'{"ok": true}\n', b''))

    def test_agent_error(self):
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 2,
            _error('invalid-input', 'size: -1 is out of range', 'size',
                   {'low': 1}), b'')
        self.assertNotIsInstance(exc, transport.NodeUnreachable)
        self.assertEqual(('n1', 'invalid-input', 'size', {'low': 1}),
                         (exc.node, exc.code, exc.field, exc.details))
        self.assertEqual('size: -1 is out of range', exc.message)
        self.assertEqual('n1: size: -1 is out of range', str(exc))

    def test_error_without_code_or_message(self):
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 1,
            b'{"ok": false, "error": "x"}', b'')
        self.assertEqual(protocol.E_INTERNAL, exc.code)
        self.assertIn('exit status 1', exc.message)
        self.assertIsNone(exc.field)

    @ddt.data(b'', b'not json', b'[1, 2]', b'{"result": {}}',
              b'{"ok": "yes"}', b'\xff\xfe', b'{"ok": true}{"ok": true}')
    def test_not_a_reply(self, stdout):
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 1, stdout,
            b'Traceback: KeyError: boom\n')
        self.assertEqual(protocol.E_INTERNAL, exc.code)
        self.assertIn('exit status 1', exc.message)
        self.assertIn('KeyError: boom', exc.message)

    def test_command_not_found(self):
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 127, b'',
            b'bash: line 1: blackstor-node: command not found')
        self.assertEqual(protocol.E_MISSING, exc.code)
        self.assertIn('command not found', exc.message)

    def test_killed_by_signal(self):
        exc = self.assertRaises(transport.NodeError, transport.parse_reply,
                                'n1', -9, b'', b'')
        self.assertIn('killed by signal 9', exc.message)

    def test_stderr_tail_is_bounded(self):
        stderr = b'x' * 100000 + b'THE END'
        exc = self.assertRaises(transport.NodeError, transport.parse_reply,
                                'n1', 1, b'', stderr)
        self.assertIn('THE END', exc.message)
        self.assertLess(len(exc.message), transport.STDERR_TAIL_CHARS + 200)

    def test_ok_with_failure_exit_status(self):
        exc = self.assertRaises(transport.NodeError, transport.parse_reply,
                                'n1', 1, _reply({}), b'')
        self.assertEqual(protocol.E_INTERNAL, exc.code)

    def test_ok_with_result_not_a_dict(self):
        self.assertRaises(transport.NodeError, transport.parse_reply,
                          'n1', 0, b'{"ok": true, "result": [1]}', b'')

    def test_secret_scrubbed_from_errors(self):
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 4,
            _error('conflict', f'bad file: net {{ shared-secret {SECRET}; }}'
                   f' and {SECRET}'), b'', secrets={SECRET})
        self.assertNotIn(SECRET, exc.message)
        self.assertIn('bad file', exc.message)
        exc = self.assertRaises(
            transport.NodeError, transport.parse_reply, 'n1', 1, b'',
            f'drbdadm: {SECRET}'.encode(), secrets={SECRET})
        self.assertNotIn(SECRET, exc.message)
        self.assertIn('drbdadm', exc.message)


@ddt.ddt
class MaskTestCase(base.TestCase):

    def test_mask_request(self):
        request = {'op': 'attach', 'resource': 'volume-1', 'secret': SECRET,
                   'res_text': 'shared-secret "%s"' % (
                       protocol.SECRET_PLACEHOLDER),
                   'connection': {'provider_auth': 'other-secret-value'},
                   'hosts': [{'provider_auth': 'third-secret-value'}]}
        masked = json.dumps(transport.mask(request))
        for value in (SECRET, 'other-secret-value', 'third-secret-value'):
            self.assertNotIn(value, masked)
        self.assertIn('volume-1', masked)
        self.assertIn('attach', masked)
        # The original is untouched.
        self.assertEqual(SECRET, request['secret'])

    def test_mask_reply_definition(self):
        reply = {'ok': True, 'result': {'resources': {'volume-1': {
            'definition': {'name': 'volume-1', 'secret': SECRET,
                           'minor': 1000}}}}}
        masked = json.dumps(transport.mask(reply))
        self.assertNotIn(SECRET, masked)
        self.assertIn('1000', masked)

    def test_secrets_of(self):
        self.assertEqual({SECRET, 'pa'}, transport._secrets_of(
            {'op': 'x', 'secret': SECRET, 'resource': 'volume-1',
             'nested': [{'provider_auth': 'pa'}], 'size': 3}))

    @ddt.data(('sudo -n blackstor-node', 'sudo -n blackstor-node'),
              (['/usr/bin/python3', '/opt/agent.py', '--config-file=/a/b'],
               '/usr/bin/python3 /opt/agent.py --config-file=/a/b'),
              (('env', 'BLACKSTOR_NODE=n1', 'blackstor-node'),
               'env BLACKSTOR_NODE=n1 blackstor-node'))
    @ddt.unpack
    def test_remote_command(self, words, expected):
        self.assertEqual(expected, transport.remote_command(words))

    @ddt.data('', [], ['a b'], ['x;reboot'], 'a | b', 'a && b', '$(id)',
              '`id`', "a'b", 'a"b', 'a > /etc/x', 'a &', 'a*', '~/x',
              ['a\nb'], 'a\\b', ['x', ''], ['x', None], 'a#b', '(a)',
              'a{b}')
    def test_remote_command_refuses_shell_syntax(self, words):
        self.assertRaises(ValueError, transport.remote_command, words)


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
            name=LOGGER, level=logging.DEBUG))

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
        self.assertEqual(2 * len(transport._encode('n', request)),
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
            'blackstor_cinder.cluster.transport.KILL_GRACE', 0.2))
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
            transport.subprocess, 'Popen', return_value=proc))
        return self.useFixture(fixtures.MockPatchObject(
            transport.os, 'killpg')).mock

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
        proc = transport.subprocess.Popen.return_value
        proc.wait.side_effect = timeout
        self.assertRaises(transport.NodeTimeout, self._transport().call,
                          {'op': 'x'})
        self.assertEqual([mock.call(424242, signal.SIGTERM),
                          mock.call(424242, signal.SIGKILL)],
                         killpg.call_args_list)
        proc.wait.assert_called_once_with(timeout=transport.KILL_GRACE)
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
        self._transport().call({'op': 'echo', 'secret': SECRET,
                                'resource': 'volume-1'})
        self.assertIn('volume-1', self.logger.output)
        self.assertIn('local-node', self.logger.output)
        self.assertNotIn(SECRET, self.logger.output)

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


# A hand-written fake of the parts of paramiko SSHTransport uses.

class FakeChannel:
    """A channel that has its whole output ready, or hangs, or dies."""

    def __init__(self, stdout=b'', stderr=b'', status=0, hang=False,
                 lost=False, send_error=None, on_send=None):
        self._out = bytearray(stdout)
        self._err = bytearray(stderr)
        self._r, self._w = os.pipe()
        self.status_event = threading.Event()
        self.eof_received = False
        self.closed = False
        self.exit_status = -1
        self.sent = bytearray()
        self.shut = False
        self.command = None
        self.send_error = send_error
        self.on_send = on_send
        if lost:
            self.closed = True
            self.status_event.set()
            os.write(self._w, b'x')
        elif not hang:
            self.eof_received = True
            self.exit_status = status
            self.status_event.set()
            os.write(self._w, b'x')

    def fileno(self):
        return self._r

    def exec_command(self, command):
        self.command = command

    def settimeout(self, timeout):
        self.timeout = timeout

    def sendall(self, data):
        if self.on_send:
            self.on_send()
        if self.send_error:
            raise self.send_error
        self.sent += data

    def shutdown_write(self):
        self.shut = True

    def recv_ready(self):
        return bool(self._out)

    def recv(self, n):
        chunk, self._out[:n] = bytes(self._out[:n]), b''
        return chunk

    def recv_stderr_ready(self):
        return bool(self._err)

    def recv_stderr(self, n):
        chunk, self._err[:n] = bytes(self._err[:n]), b''
        return chunk

    def recv_exit_status(self):
        return self.exit_status

    def close(self):
        if self._r is not None:
            os.close(self._r)
            os.close(self._w)
            self._r = self._w = None
        self.closed = True


class FakeTransport:

    def __init__(self, channels):
        self.channels = list(channels)
        self.active = True
        self.keepalive = None

    def is_active(self):
        return self.active

    def set_keepalive(self, interval):
        self.keepalive = interval

    def open_session(self, timeout=None):
        self.open_timeout = timeout
        item = self.channels.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


class FakeClient:
    """SSHClient: ``connect`` raises ``error`` or sets up ``transport``."""

    def __init__(self, channels=(), error=None, missing_key=False,
                 on_connect=None):
        self.transport = FakeTransport(channels)
        self.error = error
        self.missing_key = missing_key
        self.on_connect = on_connect
        self.connected = False
        self.closed = False
        self.host_keys_path = None
        self.policy = None

    def load_host_keys(self, path):
        if not os.path.exists(path):
            raise FileNotFoundError(2, 'No such file or directory')
        self.host_keys_path = path

    def set_missing_host_key_policy(self, policy):
        self.policy = policy

    def connect(self, hostname, **kwargs):
        self.hostname = hostname
        self.kwargs = kwargs
        if self.on_connect:
            self.on_connect()
        if self.missing_key:
            key = mock.Mock(**{'get_name.return_value': 'ssh-ed25519',
                               'fingerprint': 'SHA256:abc'})
            self.policy.missing_host_key(self, f'[{hostname}]:22', key)
        if self.error:
            raise self.error
        self.connected = True

    def get_transport(self):
        return self.transport if self.connected else None

    def close(self):
        self.closed = True
        self.transport.active = False


def _ok_channel(result=None, **kwargs):
    return FakeChannel(stdout=_reply(result or {'done': True}), **kwargs)


@ddt.ddt
class SSHTransportTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.known_hosts = self.dir / 'known_hosts'
        self.known_hosts.write_text('')
        self.key_path = self.dir / 'id_ed25519'
        self.key_path.write_text('PRIVATE-KEY-CONTENT-DO-NOT-SHOW\n')
        self.pkey = mock.sentinel.pkey
        self.from_path = self.useFixture(fixtures.MockPatchObject(
            paramiko.PKey, 'from_path', return_value=self.pkey)).mock
        self.clients = []
        self.made = []
        self.useFixture(fixtures.MockPatchObject(
            paramiko, 'SSHClient', side_effect=self._make_client))
        self.logger = self.useFixture(fixtures.FakeLogger(
            name=LOGGER, level=logging.DEBUG))

    def _make_client(self):
        client = self.clients.pop(0)
        self.made.append(client)
        return client

    def _transport(self, node='node-a', **kwargs):
        # One-shot channels here; SSHSessionTestCase covers sessions.
        args = dict(user='blackstor', private_key=str(self.key_path),
                    known_hosts=str(self.known_hosts), port=2222,
                    connect_timeout=3, timeout=5, sessions=False)
        args.update(kwargs)
        t = transport.SSHTransport(node, '192.0.2.10', **args)
        self.addCleanup(t.close)
        return t

    def test_call(self):
        chan = _ok_channel({'answer': 42})
        self.clients.append(FakeClient([chan]))
        t = self._transport()
        request = {'op': 'status', 'resource': 'volume-1'}
        self.assertEqual({'answer': 42}, t.call(request))
        self.assertEqual(request, json.loads(chan.sent))
        self.assertTrue(chan.shut)
        self.assertTrue(chan.closed)
        self.assertEqual('sudo -n blackstor-node', chan.command)
        client = self.made[0]
        self.assertEqual('192.0.2.10', client.hostname)
        self.assertEqual(dict(port=2222, username='blackstor',
                              pkey=self.pkey, timeout=3, banner_timeout=3,
                              auth_timeout=3, channel_timeout=3,
                              allow_agent=False, look_for_keys=False),
                         client.kwargs)
        self.assertEqual(str(self.known_hosts), client.host_keys_path)
        self.assertIsInstance(client.policy, paramiko.RejectPolicy)
        self.assertNotIsInstance(client.policy, paramiko.AutoAddPolicy)
        self.from_path.assert_called_once_with(str(self.key_path))
        self.assertEqual(30, client.transport.keepalive)
        self.assertEqual(3, client.transport.open_timeout)

    def test_traffic_counted(self):
        chan = _ok_channel({'answer': 42})
        self.clients.append(FakeClient([chan]))
        t = self._transport()
        t.call({'op': 'status', 'resource': 'volume-1'})
        self.assertEqual({'round_trips': 1, 'sent_bytes': len(chan.sent),
                          'received_bytes': len(_reply({'answer': 42}))},
                         t.traffic.snapshot())

    def test_command_words(self):
        chan = _ok_channel()
        self.clients.append(FakeClient([chan]))
        self._transport(command='/opt/bin/blackstor-node --debug').call(
            {'op': 'inventory'})
        self.assertEqual('/opt/bin/blackstor-node --debug', chan.command)

    def test_bad_command_refused_at_construction(self):
        self.assertRaises(ValueError, self._transport,
                          command='blackstor-node; rm -rf /')

    def test_ipv6_host_in_brackets(self):
        t = transport.SSHTransport(
            'n6', '[fd00::1]', user='u', private_key='k', known_hosts='h')
        self.assertEqual('fd00::1', t.host)
        self.assertIn('[fd00::1]:22', repr(t))

    def test_connection_reused(self):
        self.clients.append(FakeClient([_ok_channel(), _ok_channel(),
                                        _ok_channel()]))
        t = self._transport()
        for _ in range(3):
            t.call({'op': 'inventory'})
        self.assertEqual(1, len(self.made))

    def test_reconnect_once_when_the_kept_connection_died(self):
        self.clients.append(FakeClient([_ok_channel(),
                                        paramiko.SSHException('EOF')]))
        self.clients.append(FakeClient([_ok_channel({'second': True})]))
        t = self._transport()
        t.call({'op': 'inventory'})
        self.assertEqual({'second': True}, t.call({'op': 'inventory'}))
        self.assertEqual(2, len(self.made))
        self.assertTrue(self.made[0].closed)

    def test_reconnect_only_once(self):
        self.clients.append(FakeClient([_ok_channel(), EOFError()]))
        self.clients.append(FakeClient([paramiko.ChannelException(
            1, 'administratively prohibited')]))
        self.clients.append(FakeClient([_ok_channel()]))
        t = self._transport()
        t.call({'op': 'inventory'})
        exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                {'op': 'inventory'})
        self.assertIn('prohibited', exc.message)
        self.assertEqual(2, len(self.made))
        # The next call starts over on a new connection.
        t.call({'op': 'inventory'})
        self.assertEqual(3, len(self.made))

    def test_fresh_connection_failing_is_not_retried(self):
        self.clients.append(FakeClient([socket.timeout('timed out')]))
        self.clients.append(FakeClient([_ok_channel()]))
        t = self._transport()
        exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                {'op': 'inventory'})
        self.assertIn('timed out', exc.message)
        self.assertEqual(1, len(self.made))

    def test_inactive_connection_replaced(self):
        self.clients.append(FakeClient([_ok_channel()]))
        self.clients.append(FakeClient([_ok_channel()]))
        t = self._transport()
        t.call({'op': 'inventory'})
        self.made[0].transport.active = False
        t.call({'op': 'inventory'})
        self.assertEqual(2, len(self.made))
        self.assertTrue(self.made[0].closed)

    def test_close(self):
        self.clients.append(FakeClient([_ok_channel()]))
        t = self._transport()
        t.call({'op': 'inventory'})
        t.close()
        self.assertTrue(self.made[0].closed)
        t.close()

    def test_agent_error(self):
        self.clients.append(FakeClient([FakeChannel(
            stdout=_error('busy', 'resource in use'), status=6)]))
        exc = self.assertRaises(transport.NodeError, self._transport().call,
                                {'op': 'delete', 'resource': 'volume-1'})
        self.assertNotIsInstance(exc, transport.NodeUnreachable)
        self.assertEqual(('node-a', 'busy'), (exc.node, exc.code))

    def test_stdout_and_stderr_in_chunks(self):
        big = {'data': 'y' * 300000}
        self.clients.append(FakeClient([FakeChannel(
            stdout=_reply(big), stderr=b'e' * 200000 + b'LAST')]))
        self.assertEqual(big, self._transport().call({'op': 'inventory'}))

    def test_reply_too_large(self):
        self.useFixture(fixtures.MonkeyPatch(
            'blackstor_cinder.cluster.transport.MAX_REPLY_BYTES', 1000))
        self.clients.append(FakeClient([FakeChannel(stdout=b'x' * 70000)]))
        exc = self.assertRaises(transport.NodeError, self._transport().call,
                                {'op': 'inventory'})
        self.assertIn('larger than 1000', exc.message)

    def test_timeout(self):
        chan = FakeChannel(hang=True)
        self.clients.append(FakeClient([chan, _ok_channel()]))
        t = self._transport()
        started = time.monotonic()
        exc = self.assertRaises(transport.NodeTimeout, t.call,
                                {'op': 'inventory'}, timeout=0.2)
        self.assertLess(time.monotonic() - started, 2)
        self.assertEqual(protocol.E_TIMEOUT, exc.code)
        self.assertIsInstance(exc, transport.NodeUnreachable)
        self.assertTrue(chan.closed)
        # The connection itself is kept.
        t.call({'op': 'inventory'})
        self.assertEqual(1, len(self.made))

    def test_send_timeout(self):
        self.clients.append(FakeClient([FakeChannel(
            hang=True, send_error=socket.timeout())]))
        self.assertRaises(transport.NodeTimeout, self._transport().call,
                          {'op': 'inventory'})

    def test_connection_lost_mid_request(self):
        self.clients.append(FakeClient([FakeChannel(lost=True)]))
        exc = self.assertRaises(transport.NodeUnreachable,
                                self._transport().call, {'op': 'inventory'})
        self.assertEqual(transport.E_UNREACHABLE, exc.code)
        self.assertIn('lost', exc.message)

    def test_command_gone_before_the_request_was_sent(self):
        chan = FakeChannel(stderr=b'sudo: blackstor-node: command not found',
                           status=127, send_error=OSError('Socket is closed'))
        self.clients.append(FakeClient([chan]))
        exc = self.assertRaises(transport.NodeError, self._transport().call,
                                {'op': 'inventory'})
        self.assertEqual(protocol.E_MISSING, exc.code)
        self.assertIn('command not found', exc.message)

    # Connection errors.

    def _connect_error(self, client, *words):
        self.clients.append(client)
        exc = self.assertRaises(transport.NodeUnreachable,
                                self._transport().call, {'op': 'inventory'})
        self.assertEqual(transport.E_UNREACHABLE, exc.code)
        for word in words:
            self.assertIn(word, exc.message)
        self.assertNotIn('PRIVATE-KEY-CONTENT', exc.message)
        self.assertTrue(client.closed)
        return exc

    def test_unknown_host_key(self):
        self._connect_error(FakeClient(missing_key=True),
                            'is not in', str(self.known_hosts),
                            'SHA256:abc', '192.0.2.10')

    def test_changed_host_key(self):
        got = mock.Mock(**{'get_name.return_value': 'ssh-ed25519',
                           'fingerprint': 'SHA256:new',
                           'get_base64.return_value': 'AAAnew'})
        expected = mock.Mock(**{'get_name.return_value': 'ssh-ed25519',
                                'fingerprint': 'SHA256:old',
                                'get_base64.return_value': 'AAAold'})
        self._connect_error(
            FakeClient(error=paramiko.BadHostKeyException(
                '[192.0.2.10]:2222', got, expected)),
            'does not match', 'SHA256:new', 'SHA256:old')

    def test_authentication_failed(self):
        self._connect_error(
            FakeClient(error=paramiko.AuthenticationException(
                'Authentication failed.')),
            'authentication as blackstor', 'failed')

    @ddt.data(socket.timeout('timed out'),
              paramiko.ssh_exception.NoValidConnectionsError(
                  {('192.0.2.10', 2222): ConnectionRefusedError()}),
              socket.gaierror(-2, 'Name or service not known'),
              EOFError(), paramiko.SSHException('Error reading SSH banner'))
    def test_cannot_connect(self, error):
        exc = self._connect_error(FakeClient(error=error), 'cannot connect',
                                  '192.0.2.10:2222')
        self.assertNotIn('[Errno', exc.message)

    def test_no_address_answered_says_what_each_one_did(self):
        exc = self._connect_error(
            FakeClient(error=paramiko.ssh_exception.NoValidConnectionsError(
                {('192.0.2.10', 2222): ConnectionRefusedError(
                    111, 'Connection refused')})),
            'cannot connect to 192.0.2.10:2222: Unable to connect to port '
            '2222 on 192.0.2.10 (Connection refused)')
        self.assertNotIn('Errno', exc.message)

    def test_missing_known_hosts_file(self):
        self.known_hosts.unlink()
        self._connect_error(FakeClient(), 'known_hosts',
                            str(self.known_hosts))

    def test_private_key_unreadable(self):
        self.from_path.side_effect = FileNotFoundError(2, 'No such file')
        exc = self.assertRaises(transport.NodeUnreachable,
                                self._transport().call, {'op': 'x'})
        self.assertIn(str(self.key_path), exc.message)
        self.assertEqual([], self.made)

    @ddt.data(paramiko.PasswordRequiredException('encrypted'),
              paramiko.SSHException('bad key PRIVATE-KEY-CONTENT'),
              ValueError('PRIVATE-KEY-CONTENT-DO-NOT-SHOW'),
              paramiko.ssh_exception.SSHException(
                  'not a valid key: PRIVATE-KEY-CONTENT'))
    def test_private_key_bad(self, error):
        self.from_path.side_effect = error
        exc = self.assertRaises(transport.NodeUnreachable,
                                self._transport().call, {'op': 'x'})
        self.assertIn(str(self.key_path), exc.message)
        self.assertNotIn('PRIVATE-KEY-CONTENT', exc.message)
        self.assertNotIn('PRIVATE-KEY-CONTENT', self.logger.output)

    # Threads.

    def test_parallel_calls_to_different_nodes(self):
        barrier = threading.Barrier(2, timeout=5)
        self.clients += [
            FakeClient([_ok_channel({'n': 1}, on_send=barrier.wait)]),
            FakeClient([_ok_channel({'n': 2}, on_send=barrier.wait)])]
        a = self._transport('node-a')
        b = self._transport('node-b')
        results = {}

        def call(t):
            results[t.node] = t.call({'op': 'inventory'})

        threads = [threading.Thread(target=call, args=(t,)) for t in (a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        # Both were inside a request at once, or the barrier broke.
        self.assertFalse(barrier.broken)
        self.assertEqual({1, 2}, {r['n'] for r in results.values()})

    def test_concurrent_first_calls_make_one_connection(self):
        connecting = threading.Event()

        def slow_connect():
            connecting.set()
            time.sleep(0.2)

        self.clients.append(FakeClient(
            [_ok_channel({'i': i}) for i in range(3)],
            on_connect=slow_connect))
        t = self._transport()
        results = []
        threads = [threading.Thread(
            target=lambda: results.append(t.call({'op': 'inventory'})))
            for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        self.assertEqual(1, len(self.made))
        self.assertEqual([0, 1, 2], sorted(r['i'] for r in results))

    def test_sessions_limited(self):
        release = threading.Event()
        self.clients.append(FakeClient(
            [_ok_channel(on_send=lambda: release.wait(5))]))
        t = self._transport(max_sessions=1)
        thread = threading.Thread(target=t.call, args=({'op': 'a'},))
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(release.set)
        exc = self.assertRaises(transport.NodeTimeout, t.call,
                                {'op': 'b'}, timeout=0.2)
        self.assertIn('no free session', exc.message)

    # Logging.

    def test_secret_not_logged(self):
        self.clients.append(FakeClient([FakeChannel(stdout=_reply(
            {'definition': {'secret': SECRET, 'minor': 1000}}))]))
        self._transport().call({
            'op': 'adjust', 'resource': 'volume-1', 'secret': SECRET,
            'res_text': f'shared-secret "{protocol.SECRET_PLACEHOLDER}";'})
        output = self.logger.output
        self.assertIn('volume-1', output)
        self.assertIn('adjust', output)
        self.assertIn('1000', output)
        self.assertNotIn(SECRET, output)
        self.assertNotIn('PRIVATE-KEY-CONTENT', output)


class SessionChannel(FakeChannel):
    """A channel whose agent answers request after request.

    ``answer(request)`` gives what the agent does with a request: bytes
    (a reply; exit code 0), a (exit code, reply bytes) pair, ``HANG``,
    or ``DIE`` (the process exits 1 without answering).
    """

    HANG, DIE = object(), object()

    def __init__(self, answer=None, opening=None, stderr=b''):
        super().__init__(hang=True)
        self.answer = answer or (lambda request: _reply({'done': True}))
        self.opening = opening
        self.requests = []
        self._err += stderr

    def sendall(self, data):
        if self.closed or self.eof_received:
            raise OSError('Socket is closed')
        self.sent += data
        line = json.loads(data)
        if line == json.loads(session.opening()):
            out = self.opening if self.opening is not None else \
                session.frame({'ok': True, 'result': {'session': 1}},
                              0).encode()
        else:
            self.requests.append(line)
            out = self.answer(line)
        if out is self.HANG:
            return
        if out is self.DIE:
            self.end(1)
            return
        code, reply = out if isinstance(out, tuple) else (0, out)
        if isinstance(out, bytes) and out.endswith(b'\n'):
            self._out += out  # raw bytes, as written by the agent
        else:
            self._out += session.frame(json.loads(reply), code).encode()
        os.write(self._w, b'x')

    def end(self, status):
        self.eof_received = True
        self.exit_status = status
        self.status_event.set()
        if self._w is not None:
            os.write(self._w, b'x')


@ddt.ddt
class SSHSessionTestCase(SSHTransportTestCase):
    """Requests through a kept agent process (the default)."""

    def _transport(self, node='node-a', **kwargs):
        kwargs.setdefault('sessions', True)
        return super()._transport(node, **kwargs)

    # The one-shot cases of the base class do not apply here.
    for _name in [n for n in dir(SSHTransportTestCase)
                  if n.startswith('test_')]:
        locals()[_name] = None
    del _name

    def test_requests_share_one_agent(self):
        chan = SessionChannel(lambda r: _reply({'op': r['op']}))
        self.clients.append(FakeClient([chan]))
        t = self._transport()
        self.assertEqual({'op': 'inventory'}, t.call({'op': 'inventory'}))
        self.assertEqual({'op': 'status'},
                         t.call({'op': 'status', 'resource': 'r'}))
        self.assertEqual('sudo -n blackstor-node', chan.command)
        self.assertEqual([{'op': 'inventory'},
                          {'op': 'status', 'resource': 'r'}], chan.requests)
        self.assertFalse(chan.shut)
        self.assertFalse(chan.closed)
        t.close()
        self.assertTrue(chan.closed)

    def test_agent_error_keeps_the_session(self):
        answers = iter([(2, _error(protocol.E_INVALID, 'bad', 'resource')),
                        _reply({'second': True})])
        chan = SessionChannel(lambda r: next(answers))
        self.clients.append(FakeClient([chan]))
        t = self._transport()
        e = self.assertRaises(transport.NodeError, t.call,
                              {'op': 'status', 'resource': 'r'})
        self.assertEqual((protocol.E_INVALID, 'resource'), (e.code, e.field))
        self.assertEqual({'second': True}, t.call({'op': 'inventory'}))
        self.assertEqual(2, len(chan.requests))

    def test_exit_code_of_the_answer_is_checked(self):
        chan = SessionChannel(lambda r: (1, _reply({'x': 1})))
        self.clients.append(FakeClient([chan]))
        e = self.assertRaises(transport.NodeError,
                              self._transport().call, {'op': 'inventory'})
        self.assertIn('inconsistent reply', e.message)

    def test_kept_session_that_ended_is_replaced(self):
        first = SessionChannel()
        second = SessionChannel(lambda r: _reply({'second': True}))
        self.clients.append(FakeClient([first, second]))
        t = self._transport()
        t.call({'op': 'inventory'})
        first.end(0)  # the agent went away while idle
        self.assertEqual({'second': True}, t.call({'op': 'inventory'}))
        self.assertTrue(first.closed)
        self.assertEqual(1, len(first.requests))

    def test_kept_session_dying_on_the_request_is_retried_once(self):
        answers = iter([_reply(), SessionChannel.DIE])
        first = SessionChannel(lambda r: next(answers))
        second = SessionChannel(lambda r: SessionChannel.DIE)
        self.clients.append(FakeClient([first, second]))
        t = self._transport()
        t.call({'op': 'inventory'})
        e = self.assertRaises(transport.NodeError, t.call,
                              {'op': 'inventory'})
        self.assertEqual(protocol.E_INTERNAL, e.code)
        self.assertIn('exit status 1', e.message)
        self.assertEqual(1, len(second.requests))
        self.assertTrue(first.closed and second.closed)

    def test_new_session_dying_is_not_retried(self):
        def die(request):
            chan._err += b'Traceback: boom\n'
            return SessionChannel.DIE
        chan = SessionChannel(die)
        self.clients.append(FakeClient([chan]))
        e = self.assertRaises(transport.NodeError,
                              self._transport().call, {'op': 'inventory'})
        self.assertIn('boom', e.message)
        self.assertEqual(1, len(chan.requests))

    def test_agent_that_cannot_start(self):
        chan = SessionChannel(stderr=b'sudo: blackstor-node: command not '
                                     b'found\n')
        chan.end(127)
        self.clients.append(FakeClient([chan]))
        e = self.assertRaises(transport.NodeError,
                              self._transport().call, {'op': 'inventory'})
        self.assertEqual(protocol.E_MISSING, e.code)
        self.assertIn('command not found', e.message)

    def test_opening_answered_outside_the_protocol(self):
        chan = SessionChannel(opening=_reply({'no': 'session'}) + b'\n')
        self.clients.append(FakeClient([chan]))
        e = self.assertRaises(transport.NodeError,
                              self._transport().call, {'op': 'inventory'})
        self.assertEqual(protocol.E_INTERNAL, e.code)
        self.assertIn('out of the session protocol', e.message)
        self.assertTrue(chan.closed)

    def test_opening_refused(self):
        chan = SessionChannel(opening=session.frame(
            {'ok': False, 'error': {'code': 'invalid-request',
                                    'message': 'op: unknown'}}, 2).encode())
        self.clients.append(FakeClient([chan]))
        e = self.assertRaises(transport.NodeError,
                              self._transport().call, {'op': 'inventory'})
        self.assertIn('did not open a session', e.message)

    def test_timeout_closes_the_session(self):
        answers = iter([SessionChannel.HANG])
        hung = SessionChannel(lambda r: next(answers))
        fresh = SessionChannel(lambda r: _reply({'fresh': True}))
        self.clients.append(FakeClient([hung, fresh]))
        t = self._transport()
        started = time.monotonic()
        e = self.assertRaises(transport.NodeTimeout, t.call,
                              {'op': 'inventory'}, timeout=0.3)
        self.assertLess(time.monotonic() - started, 3)
        self.assertIn('0.3s', e.message)
        self.assertTrue(hung.closed)
        self.assertEqual({'fresh': True}, t.call({'op': 'inventory'}))

    def test_idle_too_long_is_not_reused(self):
        first, second = SessionChannel(), SessionChannel()
        self.clients.append(FakeClient([first, second]))
        t = self._transport()
        t.call({'op': 'inventory'})
        with mock.patch.object(transport, 'SESSION_REUSE', 0):
            t.call({'op': 'inventory'})
        self.assertTrue(first.closed)
        self.assertEqual(1, len(second.requests))

    def test_stderr_is_drained(self):
        def answer(request):
            chan._err += b'log line\n' * 100000
            return _reply({'ok': 1})
        chan = SessionChannel(lambda r: answer(r))
        self.clients.append(FakeClient([chan]))
        self.assertEqual({'ok': 1},
                         self._transport().call({'op': 'inventory'}))

    def test_answer_in_pieces(self):
        class Slow(SessionChannel):
            def recv(self, n):
                return super().recv(7)
        chan = Slow(lambda r: _reply({'text': 'x' * 1000}))
        self.clients.append(FakeClient([chan]))
        self.assertEqual({'text': 'x' * 1000},
                         self._transport().call({'op': 'inventory'}))

    def test_parallel_requests_use_parallel_sessions(self):
        release = threading.Event()

        def answer(request):
            if request['op'] == 'status':
                threading.Thread(target=lambda: (
                    release.wait(5), slow._out.extend(session.frame(
                        {'ok': True, 'result': {'slow': True}}, 0).encode()),
                    os.write(slow._w, b'x'))).start()
                return SessionChannel.HANG
            return _reply({'quick': True})
        slow = SessionChannel(answer)
        quick = SessionChannel(answer)
        self.clients.append(FakeClient([slow, quick]))
        t = self._transport()
        results = []
        worker = threading.Thread(target=lambda: results.append(
            t.call({'op': 'status', 'resource': 'r'})))
        worker.start()
        deadline = time.monotonic() + 5
        while not slow.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual({'quick': True}, t.call({'op': 'inventory'}))
        release.set()
        worker.join(5)
        self.assertEqual([{'slow': True}], results)
        self.assertEqual(1, len(quick.requests))

    def test_close_ends_kept_sessions(self):
        chans = [SessionChannel(), SessionChannel()]
        self.clients.append(FakeClient(chans))
        t = self._transport()
        t.call({'op': 'inventory'})
        t.close()
        self.assertTrue(chans[0].closed)
        self.assertTrue(self.made[0].closed)


class MakeTransportTestCase(base.TestCase):

    def test_local(self):
        node = model.Node('host-1', '10.0.0.1')
        t = transport.make_transport(node, local_command=['agent', '-x'],
                                     local_env={'A': 'b'}, timeout=7)
        self.assertIsInstance(t, transport.LocalTransport)
        self.assertEqual(('host-1', ['agent', '-x'], {'A': 'b'}, 7.0),
                         (t.node, t.argv, t.env, t.timeout))

    def test_local_default_command(self):
        t = transport.make_transport(model.Node('host-1', '10.0.0.1'))
        self.assertEqual(['blackstor-node'], t.argv)

    def test_ssh(self):
        node = model.Node('host-2', '10.0.0.2', ssh_host='host-2.example',
                          ssh_port=2200)
        t = transport.make_transport(
            node, ssh_user='cinder', ssh_private_key='/k',
            ssh_known_hosts='/kh', ssh_command='sudo blackstor-node',
            connect_timeout=4, timeout=9)
        self.assertIsInstance(t, transport.SSHTransport)
        self.assertEqual(
            ('host-2', 'host-2.example', 2200, 'cinder', '/k', '/kh',
             'sudo blackstor-node', 4.0, 9.0),
            (t.node, t.host, t.port, t.user, t.private_key, t.known_hosts,
             t.command, t.connect_timeout, t.timeout))

    def test_ssh_needs_keys(self):
        node = model.Node('host-2', '10.0.0.2', ssh_host='host-2.example')
        self.assertRaises(ValueError, transport.make_transport, node,
                          ssh_user='cinder')

    def test_ssh_bad_port(self):
        node = model.Node('host-2', '10.0.0.2', ssh_host='h', ssh_port=0)
        self.assertRaises(ValueError, transport.make_transport, node,
                          ssh_user='u', ssh_private_key='/k',
                          ssh_known_hosts='/kh')


class TransportPoolTestCase(base.TestCase):

    def test_one_transport_per_node(self):
        made = []

        def factory(node):
            t = mock.Mock(node=node.name)
            made.append(t)
            return t

        pool = transport.TransportPool(factory)
        a = model.Node('a', '10.0.0.1', ssh_host='a')
        b = model.Node('b', '10.0.0.2', ssh_host='b')
        self.assertIs(pool.get(a), pool.get(a))
        self.assertIsNot(pool.get(a), pool.get(b))
        self.assertEqual(2, len(made))
        # A node that moved gets a new transport; the old one is closed.
        moved = model.Node('a', '10.0.0.1', ssh_host='a2')
        self.assertIsNot(made[0], pool.get(moved))
        made[0].close.assert_called_once_with()
        pool.close()
        for t in made[1:]:
            t.close.assert_called_once_with()
