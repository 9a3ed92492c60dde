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
"""Fakes for the transport tests: replies and paramiko's parts."""

import json
import logging
import os
import pathlib
import threading
from unittest import mock

import fixtures
import paramiko

from blackstor_cinder.cluster import transport
from blackstor_cinder import session
from tests.unit import base

SECRET = 'Secret-0123456789abcdef'
LOGGER = 'blackstor_cinder.cluster.transport'


def reply(result=None, **kwargs):
    return json.dumps({'ok': True, 'result': result or {}, **kwargs}
                      ).encode()


def error(code, message, field=None, details=None):
    error = {'code': code, 'message': message}
    if field:
        error['field'] = field
    if details:
        error['details'] = details
    return json.dumps({'ok': False, 'error': error}).encode()


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


def ok_channel(result=None, **kwargs):
    return FakeChannel(stdout=reply(result or {'done': True}), **kwargs)


class SessionChannel(FakeChannel):
    """A channel whose agent answers request after request.

    ``answer(request)`` gives what the agent does with a request: bytes
    (a reply; exit code 0), a (exit code, reply bytes) pair, ``HANG``,
    or ``DIE`` (the process exits 1 without answering).
    """

    HANG, DIE = object(), object()

    def __init__(self, answer=None, opening=None, stderr=b''):
        super().__init__(hang=True)
        self.answer = answer or (lambda request: reply({'done': True}))
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


class SSHTestCase(base.TestCase):
    """An SSHTransport over FakeClients queued in ``self.clients``."""

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
