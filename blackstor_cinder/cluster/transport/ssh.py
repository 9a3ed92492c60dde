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
"""The SSH transport: the agent on a node over one kept paramiko connection."""

from __future__ import annotations

import json
import select
import threading
import time
from typing import Sequence

from oslo_log import log as logging
import paramiko

from blackstor_cinder.cluster.transport import base
from blackstor_cinder.cluster.transport import ssh_connect
from blackstor_cinder import protocol
from blackstor_cinder import session

LOG = logging.getLogger(__name__)

DEFAULT_SSH_COMMAND = ('sudo', '-n', 'blackstor-node')
DEFAULT_CONNECT_TIMEOUT = 10.0

#: A reply larger than this is refused (an inventory is a few hundred KiB).
MAX_REPLY_BYTES = 64 * 1024 * 1024
#: An agent session idle longer than this is closed, not reused (well
#: below the agent's own idle end, session.IDLE).
SESSION_REUSE = 300.0


class SSHTransport:
    """Runs the agent on a node over SSH, reusing one connection.

    The connection is made on first use and kept. A request whose channel
    cannot be opened on a kept connection (the node rebooted, a firewall
    forgot the flow) is retried once on a new connection; a connection
    that cannot be made, a host key that is unknown or differs from the one
    in ``known_hosts``, or a failed key authentication is
    :class:`base.NodeUnreachable`. Up to ``max_sessions`` requests run at once,
    each on its own channel (keep it below sshd's MaxSessions, 10).

    With ``sessions`` (the default) a channel's agent stays and answers
    the next request too; idle channels are kept for
    :data:`SESSION_REUSE` seconds. A kept session found dead when used is
    replaced once (agent operations are idempotent). Without, every
    request runs its own agent process.

    ``host`` is looked up in ``known_hosts`` as written (``[host]:port``
    when the port is not 22), so give the same name or address there.
    """

    def __init__(self, node: str, host: str, *, user: str,
                 private_key: str, known_hosts: str, port: int = 22,
                 command: str | Sequence[str] = DEFAULT_SSH_COMMAND,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 timeout: float = base.DEFAULT_TIMEOUT,
                 keepalive: int = 30, max_sessions: int = 4,
                 sessions: bool = True) -> None:
        if host.startswith('[') and host.endswith(']'):
            host = host[1:-1]
        if not host or not user or not private_key or not known_hosts:
            raise ValueError(f'{node}: SSH needs a host, a user, a private '
                             'key and a known_hosts file')
        protocol.check_port('port', port)
        self.node = node
        self.host = host
        self.port = port
        self.user = user
        self.private_key = private_key
        self.known_hosts = known_hosts
        self.command = ssh_connect.remote_command(command)
        self.connect_timeout = base.check_timeout(connect_timeout,
                                                  DEFAULT_CONNECT_TIMEOUT)
        self.timeout = base.check_timeout(timeout, base.DEFAULT_TIMEOUT)
        self.keepalive = keepalive
        self._lock = threading.Lock()
        self._sessions = threading.BoundedSemaphore(max_sessions)
        self._client: paramiko.SSHClient | None = None
        self.sessions = sessions
        self._idle: list[_Session] = []
        self.traffic = base.Traffic()

    def __repr__(self) -> str:
        return (f'SSHTransport({self.node!r}, '
                f'{self.user}@{self._where()})')

    def _where(self) -> str:
        return ssh_connect.address(self.host, self.port)

    # Connection management.

    def _connect(self) -> paramiko.SSHClient:
        return ssh_connect.connect(
            self.node, self.host, self.port, user=self.user,
            private_key=self.private_key, known_hosts=self.known_hosts,
            timeout=self.connect_timeout, keepalive=self.keepalive)

    def _get_client(self, stale: paramiko.SSHClient | None = None
                    ) -> tuple[paramiko.SSHClient, bool]:
        """The kept client (connecting when needed) and whether it is new.

        ``stale`` is a client a caller found dead: it is replaced unless
        another thread already did so.
        """
        with self._lock:
            client = self._client
            if client is not None and (client is stale
                                       or not _active(client)):
                self._client = None
                client.close()
            if self._client is None:
                self._client = self._connect()
                return self._client, True
            return self._client, False

    def _discard(self, client: paramiko.SSHClient) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
        client.close()

    def _open_channel(self) -> paramiko.Channel:
        client, fresh = self._get_client()
        for attempt in (1, 2):
            try:
                return self._exec(client)
            except (OSError, EOFError, paramiko.SSHException) as e:
                if fresh or attempt == 2:
                    # Even a new connection fails: start over next time.
                    self._discard(client)
                    raise base.NodeUnreachable(
                        self.node, f'cannot run the agent at '
                        f'{self._where()}: {ssh_connect.reason(e)}'
                    ) from None
                LOG.debug('Connection to %(node)s is dead (%(error)s); '
                          'reconnecting', {'node': self.node, 'error': e})
            client, fresh = self._get_client(stale=client)
        raise AssertionError('unreachable')  # pragma: no cover

    def _exec(self, client: paramiko.SSHClient) -> paramiko.Channel:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise paramiko.SSHException('connection closed')
        chan = transport.open_session(timeout=self.connect_timeout)
        try:
            chan.exec_command(self.command)
        except BaseException:
            chan.close()
            raise
        return chan

    # Requests.

    def call(self, request: dict, timeout: float | None = None) -> dict:
        payload = base.encode(self.node, request)
        timeout = base.check_timeout(timeout, self.timeout)
        secrets = base.secrets_of(request)
        base.log_request(self.node, f'ssh {self._where()}', request)
        started = time.monotonic()
        deadline = started + timeout
        if not self._sessions.acquire(timeout=timeout):
            raise base.NodeTimeout(
                self.node, f'no free session within {timeout:g}s (too many '
                'requests to this node at once)')
        try:
            if self.sessions:
                returncode, stdout, stderr = self._ask(
                    payload, deadline, timeout)
            else:
                chan = self._open_channel()
                try:
                    returncode, stdout, stderr = self._exchange(
                        chan, payload, deadline, timeout)
                finally:
                    chan.close()
        finally:
            self._sessions.release()
        self.traffic.add(len(payload), len(stdout) + len(stderr))
        return base.parse_reply(self.node, returncode, stdout, stderr,
                                secrets, started)

    # Sessions.

    def _ask(self, payload: bytes, deadline: float, timeout: float
             ) -> tuple[int, bytes, bytes]:
        """(exit code, reply, stderr) of one request through a session."""
        for attempt in (1, 2):
            sess = self._take_idle() if attempt == 1 else None
            reused = sess is not None
            if sess is None:
                sess = self._start_session(deadline, timeout)
            # A kept session may have been kept too long by a node that
            # went away and came back (or its agent died idle): once more
            # on a new one (agent operations are idempotent).
            answer = self._in_session(sess, payload, deadline, timeout,
                                      'reply', may_retry=reused)
            if answer is None:
                continue
            self._keep(sess)
            return answer
        raise AssertionError('unreachable')  # pragma: no cover

    def _in_session(self, sess: _Session, line: bytes, deadline: float,
                    timeout: float, what: str, may_retry: bool = False
                    ) -> tuple[int, bytes, bytes] | None:
        """``sess.ask`` with its failures as base.NodeErrors.

        The session is closed on any failure; None when it ended before
        reading the line and ``may_retry``.
        """
        try:
            return sess.ask(line, deadline)
        except _SessionEnded as e:
            if may_retry and not e.answered:
                sess.close()
                LOG.debug('Kept agent session to %(node)s ended (%(why)s); '
                          'opening a new one', {'node': self.node, 'why': e})
                return None
            # Not started (not installed, sudo refused) or died: the exit
            # status and stderr tell why.
            error = self._session_error(sess, deadline)
            sess.close()
            raise error from None
        except TimeoutError:
            sess.close()
            raise base.NodeTimeout(
                self.node, f'the agent at {self._where()} did not {what} '
                f'within {timeout:g}s') from None
        except BaseException:
            sess.close()
            raise

    def _start_session(self, deadline: float, timeout: float) -> _Session:
        sess = _Session(self._open_channel())
        opening = session.opening().rstrip(b'\n')
        code, reply, stderr = self._in_session(
            sess, opening, deadline, timeout, 'open a session')
        self.traffic.add(len(opening), len(reply) + len(stderr))
        try:
            opened = json.loads(reply)['result']['session']
        except (ValueError, KeyError, TypeError):
            opened = None
        if code != 0 or opened != session.VERSION:
            sess.close()
            raise base.NodeError(
                self.node, protocol.E_INTERNAL,
                f'the agent at {self._where()} did not open a session (it '
                f'answered {reply[:200]!r})')
        return sess

    def _session_error(self, sess: _Session, deadline: float
                       ) -> base.NodeError:
        if b'\n' in sess.stdout or len(sess.stdout) > MAX_REPLY_BYTES:
            return base.NodeError(
                self.node, protocol.E_INTERNAL,
                f'the agent at {self._where()} answered out of the session '
                f'protocol: {base.text_tail(bytes(sess.stdout[:2000]), ())}')
        chan = sess.chan
        chan.status_event.wait(max(min(deadline - time.monotonic(), 5), 0))
        while chan.recv_stderr_ready():
            sess.stderr += chan.recv_stderr(65536)
            del sess.stderr[:-65536]
        returncode = (chan.recv_exit_status() if chan.status_event.is_set()
                      else -1)
        if returncode == -1:
            tail = base.text_tail(bytes(sess.stderr), ())
            return base.NodeUnreachable(
                self.node, f'connection to {self._where()} lost during the '
                'request' + (f': {tail}' if tail else ''))
        try:
            base.parse_reply(self.node, returncode, bytes(sess.stdout),
                             bytes(sess.stderr))
        except base.NodeError as e:
            return e
        return base.NodeError(
            self.node, protocol.E_INTERNAL,
            f'the agent at {self._where()} ended the session (exit status '
            f'{returncode}) without answering')

    def _take_idle(self) -> _Session | None:
        """The most recently used kept session still fit for a request."""
        stale = []
        found = None
        with self._lock:
            while self._idle:
                sess = self._idle.pop()
                if sess.usable() and self._client is not None \
                        and _active(self._client):
                    found = sess
                    break
                stale.append(sess)
        for sess in stale:
            sess.close()
        return found

    def _keep(self, sess: _Session) -> None:
        sess.idle_since = time.monotonic()
        with self._lock:
            if self._client is not None:
                self._idle.append(sess)
                return
        sess.close()  # closed meanwhile

    # One-shot requests.

    def _exchange(self, chan: paramiko.Channel, payload: bytes,
                  deadline: float, timeout: float
                  ) -> tuple[int, bytes, bytes]:
        def timed_out() -> base.NodeTimeout:
            return base.NodeTimeout(
                self.node, f'the agent at {self._where()} did not reply '
                f'within {timeout:g}s')

        try:
            chan.settimeout(max(deadline - time.monotonic(), 0.001))
            chan.sendall(payload)
            chan.shutdown_write()
        except TimeoutError:
            raise timed_out() from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            # The command may have ended early (not found, refused): its
            # exit status and stderr say more than this error.
            LOG.debug('Sending to %(node)s failed: %(error)s',
                      {'node': self.node, 'error': e})
        stdout = bytearray()
        stderr = bytearray()
        while True:
            while chan.recv_stderr_ready():
                stderr += chan.recv_stderr(65536)
                del stderr[:-65536]
            while chan.recv_ready():
                stdout += chan.recv(65536)
                if len(stdout) > MAX_REPLY_BYTES:
                    raise base.NodeError(
                        self.node, protocol.E_INTERNAL,
                        f'reply larger than {MAX_REPLY_BYTES} bytes')
            if chan.recv_ready() or chan.recv_stderr_ready():
                continue
            if chan.eof_received or chan.closed:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timed_out()
            # The channel's fileno becomes readable on data for stdout or
            # stderr, on EOF and on close.
            select.select([chan], [], [], remaining)
        remaining = deadline - time.monotonic()
        if not chan.status_event.wait(max(remaining, 0)):
            raise timed_out()
        returncode = chan.recv_exit_status()
        if returncode == -1:
            # No exit status: the connection went away mid-request.
            raise base.NodeUnreachable(
                self.node, f'connection to {self._where()} lost during the '
                'request' + (f': {base.text_tail(bytes(stderr), ())}'
                             if stderr else ''))
        return returncode, bytes(stdout), bytes(stderr)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            idle, self._idle = self._idle, []
        for sess in idle:
            sess.close()
        if client is not None:
            client.close()


class _SessionEnded(Exception):
    """The agent's channel ended before the answer was complete."""

    def __init__(self, answered: bool) -> None:
        super().__init__('the channel ended' + (
            ' in the middle of an answer' if answered else ''))
        self.answered = answered


class _Session:
    """One agent process on one channel, answering a line per request."""

    def __init__(self, chan: paramiko.Channel) -> None:
        self.chan = chan
        self.idle_since = time.monotonic()
        self.stdout = bytearray()
        self.stderr = bytearray()

    def usable(self) -> bool:
        chan = self.chan
        return (not chan.closed and not chan.eof_received
                and not chan.status_event.is_set()
                and not chan.recv_ready()
                and time.monotonic() - self.idle_since < SESSION_REUSE)

    def ask(self, line: bytes, deadline: float
            ) -> tuple[int, bytes, bytes]:
        """Send one request line; (exit code, reply, stderr) of its answer.

        Raises TimeoutError at ``deadline`` and :class:`_SessionEnded`
        when the channel ends first.
        """
        chan = self.chan
        del self.stdout[:], self.stderr[:]
        try:
            chan.settimeout(max(deadline - time.monotonic(), 0.001))
            chan.sendall(line + b'\n')
        except TimeoutError:
            raise
        except (OSError, EOFError, paramiko.SSHException):
            # Ended before reading it: the exit status says more.
            raise _SessionEnded(False) from None
        while True:
            while chan.recv_stderr_ready():
                self.stderr += chan.recv_stderr(65536)
                del self.stderr[:-65536]
            if chan.recv_ready():
                self.stdout += chan.recv(65536)
                end = self.stdout.find(b'\n')
                if end >= 0:
                    answer = session.unframe(bytes(self.stdout[:end]))
                    if answer is None:
                        raise _SessionEnded(True)
                    del self.stdout[:end + 1]
                    return answer[0], answer[1], bytes(self.stderr)
                if len(self.stdout) > MAX_REPLY_BYTES:
                    raise _SessionEnded(True)
                continue
            if chan.recv_stderr_ready():
                continue
            if chan.eof_received or chan.closed:
                raise _SessionEnded(bool(self.stdout))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            select.select([chan], [], [], remaining)

    def close(self) -> None:
        # The agent reads end of input and exits.
        self.chan.close()


def _active(client: paramiko.SSHClient) -> bool:
    transport = client.get_transport()
    return transport is not None and transport.is_active()
