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
"""Tests of SSHTransport: requests, one-shot channels and sessions."""

import json
import os
import socket
import threading
import time
from unittest import mock

import ddt
import fixtures
import paramiko

from blackstor_cinder.cluster import transport
from blackstor_cinder.cluster.transport import ssh
from blackstor_cinder import protocol
from blackstor_cinder import session
from tests.unit.cluster.transport import fakes


@ddt.ddt
class SSHTransportTestCase(fakes.SSHTestCase):

    def test_call(self):
        chan = fakes.ok_channel({'answer': 42})
        self.clients.append(fakes.FakeClient([chan]))
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
        chan = fakes.ok_channel({'answer': 42})
        self.clients.append(fakes.FakeClient([chan]))
        t = self._transport()
        t.call({'op': 'status', 'resource': 'volume-1'})
        self.assertEqual({'round_trips': 1, 'sent_bytes': len(chan.sent),
                          'received_bytes': len(fakes.reply({'answer': 42}))},
                         t.traffic.snapshot())

    def test_command_words(self):
        chan = fakes.ok_channel()
        self.clients.append(fakes.FakeClient([chan]))
        self._transport(command='/opt/bin/blackstor-node --debug').call(
            {'op': 'inventory'})
        self.assertEqual('/opt/bin/blackstor-node --debug', chan.command)

    def test_connection_reused(self):
        self.clients.append(fakes.FakeClient(
            [fakes.ok_channel(), fakes.ok_channel(), fakes.ok_channel()]))
        t = self._transport()
        for _ in range(3):
            t.call({'op': 'inventory'})
        self.assertEqual(1, len(self.made))

    def test_reconnect_once_when_the_kept_connection_died(self):
        self.clients.append(fakes.FakeClient(
            [fakes.ok_channel(), paramiko.SSHException('EOF')]))
        self.clients.append(fakes.FakeClient(
            [fakes.ok_channel({'second': True})]))
        t = self._transport()
        t.call({'op': 'inventory'})
        self.assertEqual({'second': True}, t.call({'op': 'inventory'}))
        self.assertEqual(2, len(self.made))
        self.assertTrue(self.made[0].closed)

    def test_reconnect_only_once(self):
        self.clients.append(fakes.FakeClient([fakes.ok_channel(), EOFError()]))
        self.clients.append(fakes.FakeClient([paramiko.ChannelException(
            1, 'administratively prohibited')]))
        self.clients.append(fakes.FakeClient([fakes.ok_channel()]))
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
        self.clients.append(fakes.FakeClient([socket.timeout('timed out')]))
        self.clients.append(fakes.FakeClient([fakes.ok_channel()]))
        t = self._transport()
        exc = self.assertRaises(transport.NodeUnreachable, t.call,
                                {'op': 'inventory'})
        self.assertIn('timed out', exc.message)
        self.assertEqual(1, len(self.made))

    def test_inactive_connection_replaced(self):
        self.clients.append(fakes.FakeClient([fakes.ok_channel()]))
        self.clients.append(fakes.FakeClient([fakes.ok_channel()]))
        t = self._transport()
        t.call({'op': 'inventory'})
        self.made[0].transport.active = False
        t.call({'op': 'inventory'})
        self.assertEqual(2, len(self.made))
        self.assertTrue(self.made[0].closed)

    def test_close(self):
        self.clients.append(fakes.FakeClient([fakes.ok_channel()]))
        t = self._transport()
        t.call({'op': 'inventory'})
        t.close()
        self.assertTrue(self.made[0].closed)
        t.close()

    def test_agent_error(self):
        self.clients.append(fakes.FakeClient([fakes.FakeChannel(
            stdout=fakes.error('busy', 'resource in use'), status=6)]))
        exc = self.assertRaises(transport.NodeError, self._transport().call,
                                {'op': 'delete', 'resource': 'volume-1'})
        self.assertNotIsInstance(exc, transport.NodeUnreachable)
        self.assertEqual(('node-a', 'busy'), (exc.node, exc.code))

    def test_stdout_and_stderr_in_chunks(self):
        big = {'data': 'y' * 300000}
        self.clients.append(fakes.FakeClient([fakes.FakeChannel(
            stdout=fakes.reply(big), stderr=b'e' * 200000 + b'LAST')]))
        self.assertEqual(big, self._transport().call({'op': 'inventory'}))

    def test_reply_too_large(self):
        self.useFixture(fixtures.MonkeyPatch(
            'blackstor_cinder.cluster.transport.ssh.MAX_REPLY_BYTES', 1000))
        self.clients.append(fakes.FakeClient(
            [fakes.FakeChannel(stdout=b'x' * 70000)]))
        exc = self.assertRaises(transport.NodeError, self._transport().call,
                                {'op': 'inventory'})
        self.assertIn('larger than 1000', exc.message)

    def test_timeout(self):
        chan = fakes.FakeChannel(hang=True)
        self.clients.append(fakes.FakeClient([chan, fakes.ok_channel()]))
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
        self.clients.append(fakes.FakeClient([fakes.FakeChannel(
            hang=True, send_error=socket.timeout())]))
        self.assertRaises(transport.NodeTimeout, self._transport().call,
                          {'op': 'inventory'})

    def test_connection_lost_mid_request(self):
        self.clients.append(fakes.FakeClient([fakes.FakeChannel(lost=True)]))
        exc = self.assertRaises(transport.NodeUnreachable,
                                self._transport().call, {'op': 'inventory'})
        self.assertEqual(transport.E_UNREACHABLE, exc.code)
        self.assertIn('lost', exc.message)

    def test_command_gone_before_the_request_was_sent(self):
        chan = fakes.FakeChannel(
            stderr=b'sudo: blackstor-node: command not found', status=127,
            send_error=OSError('Socket is closed'))
        self.clients.append(fakes.FakeClient([chan]))
        exc = self.assertRaises(transport.NodeError, self._transport().call,
                                {'op': 'inventory'})
        self.assertEqual(protocol.E_MISSING, exc.code)
        self.assertIn('command not found', exc.message)

    def test_parallel_calls_to_different_nodes(self):
        barrier = threading.Barrier(2, timeout=5)
        self.clients += [
            fakes.FakeClient(
                [fakes.ok_channel({'n': 1}, on_send=barrier.wait)]),
            fakes.FakeClient(
                [fakes.ok_channel({'n': 2}, on_send=barrier.wait)])]
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

        self.clients.append(fakes.FakeClient(
            [fakes.ok_channel({'i': i}) for i in range(3)],
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
        self.clients.append(fakes.FakeClient(
            [fakes.ok_channel(on_send=lambda: release.wait(5))]))
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
        self.clients.append(fakes.FakeClient([fakes.FakeChannel(
            stdout=fakes.reply({'definition': {'secret': fakes.SECRET,
                                               'minor': 1000}}))]))
        self._transport().call({
            'op': 'adjust', 'resource': 'volume-1', 'secret': fakes.SECRET,
            'res_text': f'shared-secret "{protocol.SECRET_PLACEHOLDER}";'})
        output = self.logger.output
        self.assertIn('volume-1', output)
        self.assertIn('adjust', output)
        self.assertIn('1000', output)
        self.assertNotIn(fakes.SECRET, output)
        self.assertNotIn('PRIVATE-KEY-CONTENT', output)


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
        chan = fakes.SessionChannel(lambda r: fakes.reply({'op': r['op']}))
        self.clients.append(fakes.FakeClient([chan]))
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
        answers = iter([
            (2, fakes.error(protocol.E_INVALID, 'bad', 'resource')),
            fakes.reply({'second': True})])
        chan = fakes.SessionChannel(lambda r: next(answers))
        self.clients.append(fakes.FakeClient([chan]))
        t = self._transport()
        e = self.assertRaises(transport.NodeError, t.call,
                              {'op': 'status', 'resource': 'r'})
        self.assertEqual((protocol.E_INVALID, 'resource'), (e.code, e.field))
        self.assertEqual({'second': True}, t.call({'op': 'inventory'}))
        self.assertEqual(2, len(chan.requests))

    def test_exit_code_of_the_answer_is_checked(self):
        chan = fakes.SessionChannel(lambda r: (1, fakes.reply({'x': 1})))
        self.clients.append(fakes.FakeClient([chan]))
        e = self.assertRaises(transport.NodeError,
                              self._transport().call, {'op': 'inventory'})
        self.assertIn('inconsistent reply', e.message)

    def test_kept_session_that_ended_is_replaced(self):
        first = fakes.SessionChannel()
        second = fakes.SessionChannel(lambda r: fakes.reply({'second': True}))
        self.clients.append(fakes.FakeClient([first, second]))
        t = self._transport()
        t.call({'op': 'inventory'})
        first.end(0)  # the agent went away while idle
        self.assertEqual({'second': True}, t.call({'op': 'inventory'}))
        self.assertTrue(first.closed)
        self.assertEqual(1, len(first.requests))

    def test_kept_session_dying_on_the_request_is_retried_once(self):
        answers = iter([fakes.reply(), fakes.SessionChannel.DIE])
        first = fakes.SessionChannel(lambda r: next(answers))
        second = fakes.SessionChannel(lambda r: fakes.SessionChannel.DIE)
        self.clients.append(fakes.FakeClient([first, second]))
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
            return fakes.SessionChannel.DIE
        chan = fakes.SessionChannel(die)
        self.clients.append(fakes.FakeClient([chan]))
        e = self.assertRaises(transport.NodeError,
                              self._transport().call, {'op': 'inventory'})
        self.assertIn('boom', e.message)
        self.assertEqual(1, len(chan.requests))

    def test_agent_that_cannot_start(self):
        chan = fakes.SessionChannel(
            stderr=b'sudo: blackstor-node: command not found\n')
        chan.end(127)
        self.clients.append(fakes.FakeClient([chan]))
        e = self.assertRaises(transport.NodeError,
                              self._transport().call, {'op': 'inventory'})
        self.assertEqual(protocol.E_MISSING, e.code)
        self.assertIn('command not found', e.message)

    def test_opening_answered_outside_the_protocol(self):
        chan = fakes.SessionChannel(
            opening=fakes.reply({'no': 'session'}) + b'\n')
        self.clients.append(fakes.FakeClient([chan]))
        e = self.assertRaises(transport.NodeError,
                              self._transport().call, {'op': 'inventory'})
        self.assertEqual(protocol.E_INTERNAL, e.code)
        self.assertIn('out of the session protocol', e.message)
        self.assertTrue(chan.closed)

    def test_opening_refused(self):
        chan = fakes.SessionChannel(opening=session.frame(
            {'ok': False, 'error': {'code': 'invalid-request',
                                    'message': 'op: unknown'}}, 2).encode())
        self.clients.append(fakes.FakeClient([chan]))
        e = self.assertRaises(transport.NodeError,
                              self._transport().call, {'op': 'inventory'})
        self.assertIn('did not open a session', e.message)

    def test_timeout_closes_the_session(self):
        answers = iter([fakes.SessionChannel.HANG])
        hung = fakes.SessionChannel(lambda r: next(answers))
        fresh = fakes.SessionChannel(lambda r: fakes.reply({'fresh': True}))
        self.clients.append(fakes.FakeClient([hung, fresh]))
        t = self._transport()
        started = time.monotonic()
        e = self.assertRaises(transport.NodeTimeout, t.call,
                              {'op': 'inventory'}, timeout=0.3)
        self.assertLess(time.monotonic() - started, 3)
        self.assertIn('0.3s', e.message)
        self.assertTrue(hung.closed)
        self.assertEqual({'fresh': True}, t.call({'op': 'inventory'}))

    def test_idle_too_long_is_not_reused(self):
        first, second = fakes.SessionChannel(), fakes.SessionChannel()
        self.clients.append(fakes.FakeClient([first, second]))
        t = self._transport()
        t.call({'op': 'inventory'})
        with mock.patch.object(ssh, 'SESSION_REUSE', 0):
            t.call({'op': 'inventory'})
        self.assertTrue(first.closed)
        self.assertEqual(1, len(second.requests))

    def test_stderr_is_drained(self):
        def answer(request):
            chan._err += b'log line\n' * 100000
            return fakes.reply({'ok': 1})
        chan = fakes.SessionChannel(lambda r: answer(r))
        self.clients.append(fakes.FakeClient([chan]))
        self.assertEqual({'ok': 1},
                         self._transport().call({'op': 'inventory'}))

    def test_answer_in_pieces(self):
        class Slow(fakes.SessionChannel):
            def recv(self, n):
                return super().recv(7)
        chan = Slow(lambda r: fakes.reply({'text': 'x' * 1000}))
        self.clients.append(fakes.FakeClient([chan]))
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
                return fakes.SessionChannel.HANG
            return fakes.reply({'quick': True})
        slow = fakes.SessionChannel(answer)
        quick = fakes.SessionChannel(answer)
        self.clients.append(fakes.FakeClient([slow, quick]))
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
        chans = [fakes.SessionChannel(), fakes.SessionChannel()]
        self.clients.append(fakes.FakeClient(chans))
        t = self._transport()
        t.call({'op': 'inventory'})
        t.close()
        self.assertTrue(chans[0].closed)
        self.assertTrue(self.made[0].closed)
